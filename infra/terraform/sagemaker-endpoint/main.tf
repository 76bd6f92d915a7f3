locals {
  # endpointkit manages what carries these two tags (and never touches anything else).
  tags = merge(var.tags, { "managed-by" = "endpointkit", "endpointkit:endpoint" = var.name })
  # Model names follow endpointkit's scheme <endpoint>-<version>-<12 hex digest>, so that
  # endpointkit recognises and manages the versions Terraform created.
  all_versions = concat(var.versions, var.shadow == null ? [] : [var.shadow])
  model_names = {
    for v in local.all_versions :
    v.name => "${substr("${var.name}-${v.name}", 0, 50)}-${substr(sha256(jsonencode(v)), 0, 12)}"
  }
}

resource "aws_sagemaker_model" "version" {
  for_each           = { for v in local.all_versions : v.name => v }
  name               = local.model_names[each.key]
  execution_role_arn = var.execution_role_arn

  primary_container {
    image          = each.value.image
    model_data_url = each.value.model_data_url
    environment    = merge(each.value.environment, { ENDPOINTKIT_VERSION = each.key })
  }

  tags = merge(local.tags, { "endpointkit:version" = each.key })
}

resource "aws_sagemaker_endpoint_configuration" "this" {
  # A config can't change in place: a new one is created (name_prefix) before the old one goes.
  name_prefix = "${substr(var.name, 0, 30)}-"

  dynamic "production_variants" {
    for_each = var.versions
    content {
      variant_name           = production_variants.value.name
      model_name             = aws_sagemaker_model.version[production_variants.value.name].name
      instance_type          = production_variants.value.instance_type
      initial_instance_count = production_variants.value.initial_instance_count
      initial_variant_weight = production_variants.value.weight
    }
  }

  dynamic "shadow_production_variants" {
    for_each = var.shadow == null ? [] : [var.shadow]
    content {
      variant_name           = shadow_production_variants.value.name
      model_name             = aws_sagemaker_model.version[shadow_production_variants.value.name].name
      instance_type          = shadow_production_variants.value.instance_type
      initial_instance_count = shadow_production_variants.value.initial_instance_count
      initial_variant_weight = shadow_production_variants.value.weight
    }
  }

  tags = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

# Two variants of the endpoint resource, because lifecycle blocks cannot be conditional.
resource "aws_sagemaker_endpoint" "managed_by_endpointkit" {
  count                = var.endpointkit_manages_traffic ? 1 : 0
  name                 = var.name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.this.name
  tags                 = local.tags

  lifecycle {
    ignore_changes = [endpoint_config_name]
  }
}

resource "aws_sagemaker_endpoint" "managed_by_terraform" {
  count                = var.endpointkit_manages_traffic ? 0 : 1
  name                 = var.name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.this.name
  tags                 = local.tags
}

locals {
  endpoint = var.endpointkit_manages_traffic ? aws_sagemaker_endpoint.managed_by_endpointkit[0] : aws_sagemaker_endpoint.managed_by_terraform[0]
}

resource "aws_appautoscaling_target" "variant" {
  for_each           = var.autoscaling == null ? {} : { for v in var.versions : v.name => v }
  service_namespace  = "sagemaker"
  resource_id        = "endpoint/${local.endpoint.name}/variant/${each.key}"
  scalable_dimension = "sagemaker:variant:DesiredInstanceCount"
  min_capacity       = var.autoscaling.min_capacity
  max_capacity       = var.autoscaling.max_capacity
}

resource "aws_appautoscaling_policy" "invocations" {
  for_each           = aws_appautoscaling_target.variant
  name               = "${var.name}-${each.key}-invocations"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = each.value.service_namespace
  resource_id        = each.value.resource_id
  scalable_dimension = each.value.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.target_invocations_per_instance
    scale_in_cooldown  = var.autoscaling.scale_in_cooldown
    scale_out_cooldown = var.autoscaling.scale_out_cooldown
    predefined_metric_specification {
      predefined_metric_type = "SageMakerVariantInvocationsPerInstance"
    }
  }
}

# On destroy, endpointkit removes the versions and configs it added after Terraform created the
# endpoint (Terraform does not know them), so nothing is left behind.
resource "terraform_data" "endpointkit_cleanup" {
  count = var.endpointkit_manages_traffic && var.endpointkit_cleanup ? 1 : 0
  triggers_replace = {
    endpoint = local.endpoint.name
    command  = var.endpointkit_command
    settings = jsonencode(var.endpointkit_settings)
  }

  provisioner "local-exec" {
    when    = destroy
    command = "${self.triggers_replace.command} tf destroy"
    environment = {
      ENDPOINTKIT_ENDPOINT = self.triggers_replace.endpoint
      ENDPOINTKIT_BACKEND  = "sagemaker"
      ENDPOINTKIT_SETTINGS = self.triggers_replace.settings
    }
  }
}

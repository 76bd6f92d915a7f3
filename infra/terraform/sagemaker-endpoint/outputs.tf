output "endpoint_name" {
  description = "The endpoint's name (what endpointkit and sagemaker-runtime call it)."
  value       = local.endpoint.name
}

output "endpoint_arn" {
  value = local.endpoint.arn
}

output "endpoint_config_name" {
  description = "The config Terraform created; endpointkit may have moved the endpoint on since."
  value       = aws_sagemaker_endpoint_configuration.this.name
}

output "model_names" {
  value = { for name, model in aws_sagemaker_model.version : name => model.name }
}

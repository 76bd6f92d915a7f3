# Runs `endpointkit tf apply` when the spec (or settings) change and `endpointkit tf destroy`
# on destroy. Values reach the commands through the environment, never the shell string; the
# destroy-time command reads what it needs from self.triggers_replace. Needs only Terraform's
# built-in provider, so it works for any backend (the vertex-endpoint module uses it).
terraform {
  required_version = ">= 1.5"
}

variable "endpoint" {
  description = "Endpoint name (must match the spec's name)."
  type        = string
}

variable "backend" {
  description = "endpointkit backend: vertex, sagemaker, local, ..."
  type        = string
}

variable "spec_file" {
  description = "Path to the endpointkit spec; its contents are hashed, so editing it re-runs the deploy."
  type        = string
}

variable "settings" {
  description = "Backend settings merged over the spec's."
  type        = map(string)
  default     = {}
}

variable "endpointkit_command" {
  type    = string
  default = "endpointkit"
}

resource "terraform_data" "deploy" {
  triggers_replace = {
    endpoint  = var.endpoint
    backend   = var.backend
    spec_hash = filesha256(var.spec_file)
    settings  = jsonencode(var.settings)
    command   = var.endpointkit_command
  }

  provisioner "local-exec" {
    command = "${self.triggers_replace.command} tf apply"
    environment = {
      ENDPOINTKIT_SPEC     = abspath(var.spec_file)
      ENDPOINTKIT_BACKEND  = self.triggers_replace.backend
      ENDPOINTKIT_SETTINGS = self.triggers_replace.settings
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = "${self.triggers_replace.command} tf destroy"
    environment = {
      ENDPOINTKIT_ENDPOINT = self.triggers_replace.endpoint
      ENDPOINTKIT_BACKEND  = self.triggers_replace.backend
      ENDPOINTKIT_SETTINGS = self.triggers_replace.settings
    }
  }
}

output "id" {
  value = terraform_data.deploy.id
}

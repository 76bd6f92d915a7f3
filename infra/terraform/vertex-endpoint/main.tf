resource "google_vertex_ai_endpoint" "this" {
  name         = var.name
  display_name = var.name
  project      = var.project
  location     = var.location
  labels       = merge(var.labels, { "managed-by" = "endpointkit" })
}

# The google provider cannot upload a model, deploy it or set the traffic split
# (terraform-provider-google#15303, #25152): endpointkit does, from the spec file. Values reach
# the command through the environment, never through the shell string, and the destroy-time
# command reads what it needs from self.triggers_replace.
resource "terraform_data" "deploy" {
  triggers_replace = {
    endpoint  = google_vertex_ai_endpoint.this.name
    spec_hash = filesha256(var.spec_file)
    settings = jsonencode(merge(var.settings, {
      project  = var.project
      location = var.location
    }))
    command = var.endpointkit_command
  }

  provisioner "local-exec" {
    command = "${self.triggers_replace.command} tf apply"
    environment = {
      ENDPOINTKIT_SPEC     = abspath(var.spec_file)
      ENDPOINTKIT_BACKEND  = "vertex"
      ENDPOINTKIT_SETTINGS = self.triggers_replace.settings
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = "${self.triggers_replace.command} tf destroy"
    environment = {
      ENDPOINTKIT_ENDPOINT = self.triggers_replace.endpoint
      ENDPOINTKIT_BACKEND  = "vertex"
      ENDPOINTKIT_SETTINGS = self.triggers_replace.settings
    }
  }
}

resource "google_vertex_ai_endpoint" "this" {
  name         = var.name
  display_name = var.name
  project      = var.project
  location     = var.location
  labels       = merge(var.labels, { "managed-by" = "endpointkit", "endpointkit-endpoint" = var.name })
}

# The google provider cannot upload a model, deploy it or set the traffic split
# (terraform-provider-google#15303, #25152): endpointkit does, from the spec file.
module "deploy" {
  source              = "../endpointkit-deploy"
  endpoint            = google_vertex_ai_endpoint.this.name
  backend             = "vertex"
  spec_file           = var.spec_file
  endpointkit_command = var.endpointkit_command
  settings = merge(var.settings, {
    project  = var.project
    location = var.location
  })
}

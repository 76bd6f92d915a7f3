variable "name" {
  description = "Endpoint name (also its endpoint ID): 1-63 lowercase letters, digits and hyphens, starting with a letter."
  type        = string
  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.name))
    error_message = "name must be 1-63 lowercase letters, digits and hyphens, starting with a letter and ending with a letter or digit."
  }
}

variable "project" {
  type = string
}

variable "location" {
  type    = string
  default = "us-central1"
}

variable "spec_file" {
  description = "Path to the endpointkit spec (backend: vertex) whose versions and traffic split endpointkit deploys after Terraform creates the endpoint. Its contents are hashed, so editing it re-runs the deploy."
  type        = string
}

variable "settings" {
  description = "Backend settings passed to endpointkit (merged over the spec's), e.g. { staging_bucket = \"gs://...\", serving_image = \"REGION-docker.pkg.dev/...\" }."
  type        = map(string)
  default     = {}
}

variable "endpointkit_command" {
  description = "How to run endpointkit on the machine that runs Terraform."
  type        = string
  default     = "endpointkit"
}

variable "labels" {
  type    = map(string)
  default = {}
}

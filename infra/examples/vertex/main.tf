# A Vertex AI endpoint created by Terraform; endpointkit uploads the models in endpoint.yaml,
# deploys them and sets the traffic split, which the google provider cannot do.
terraform {
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
}

variable "project" {
  type = string
}

module "churn" {
  source    = "../../terraform/vertex-endpoint"
  name      = "churn"
  project   = var.project
  location  = "europe-west4"
  spec_file = "${path.module}/endpoint.yaml"
  settings  = { staging_bucket = "gs://my-staging-bucket" }
}

output "endpoint_id" {
  value = module.churn.endpoint_id
}

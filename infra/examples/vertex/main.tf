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
  settings = {
    staging_bucket = "gs://my-staging-bucket"
    # the endpointkit serving image, pushed to Artifact Registry in the Model's region
    serving_image = "europe-west4-docker.pkg.dev/my-project/serving/endpointkit:cpu"
  }
}

output "endpoint_id" {
  value = module.churn.endpoint_id
}

# A SageMaker endpoint created by Terraform whose versions and traffic endpointkit manages
# afterwards (canary, shift, rollback) without Terraform ever resetting the weights.
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "execution_role_arn" {
  type = string
}

variable "image" {
  description = "The endpointkit serving image in your ECR (see containers/README.md)."
  type        = string
}

module "churn" {
  source             = "../../terraform/sagemaker-endpoint"
  name               = "churn"
  execution_role_arn = var.execution_role_arn
  versions = [
    {
      name           = "v1"
      image          = var.image
      model_data_url = "s3://my-models/churn/v1/model.tar.gz"
      instance_type  = "ml.m5.large"
    },
  ]
  autoscaling = {
    min_capacity                    = 1
    max_capacity                    = 4
    target_invocations_per_instance = 100
  }
  tags = { team = "risk" }
}

output "endpoint_name" {
  value = module.churn.endpoint_name
}

# After `terraform apply`:
#   endpointkit deploy churn v2 --backend sagemaker --model s3://my-models/churn/v2/model.tar.gz --traffic 10
#   endpointkit traffic churn v1=50 v2=50 --backend sagemaker
# and `terraform plan` stays clean.

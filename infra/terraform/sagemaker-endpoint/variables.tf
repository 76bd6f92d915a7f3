variable "name" {
  description = "Endpoint name: 1-63 lowercase letters, digits and hyphens, starting with a letter (endpointkit's rule, valid on every platform)."
  type        = string
  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.name))
    error_message = "name must be 1-63 lowercase letters, digits and hyphens, starting with a letter and ending with a letter or digit."
  }
}

variable "execution_role_arn" {
  description = "IAM role SageMaker assumes to pull the image and the model artifacts."
  type        = string
}

variable "versions" {
  description = "Model versions, one production variant each. weight is the initial share (relative, like SageMaker's InitialVariantWeight)."
  type = list(object({
    name                   = string
    image                  = string
    model_data_url         = string
    environment            = optional(map(string), {})
    instance_type          = optional(string, "ml.m5.large")
    initial_instance_count = optional(number, 1)
    weight                 = optional(number, 1)
  }))
  validation {
    condition     = length(var.versions) >= 1 && length(var.versions) <= 10
    error_message = "give 1 to 10 versions (SageMaker allows 10 production variants)."
  }
  validation {
    condition     = alltrue([for v in var.versions : can(regex("^[a-z][a-z0-9-]{0,61}[a-z0-9]$", v.name)) && v.name != "default"])
    error_message = "version names must be 2-63 lowercase letters, digits and hyphens, starting with a letter (and not 'default')."
  }
}

variable "shadow" {
  description = "Optional shadow version: gets a copy of sampled traffic, its answers are discarded."
  type = object({
    name                   = string
    image                  = string
    model_data_url         = string
    environment            = optional(map(string), {})
    instance_type          = optional(string, "ml.m5.large")
    initial_instance_count = optional(number, 1)
    weight                 = optional(number, 1)
  })
  default = null
}

variable "endpointkit_manages_traffic" {
  description = "When true (the default), Terraform creates the endpoint and then ignores its endpoint config, so versions, weights and autoscaled counts set later by endpointkit are never reset by terraform apply (terraform-provider-aws#48990)."
  type        = bool
  default     = true
}

variable "autoscaling" {
  description = "Optional target tracking on invocations per instance, applied to every production variant."
  type = object({
    min_capacity                    = number
    max_capacity                    = number
    target_invocations_per_instance = number
    scale_in_cooldown               = optional(number, 300)
    scale_out_cooldown              = optional(number, 60)
  })
  default = null
}

variable "tags" {
  description = "Tags for every resource (managed-by = endpointkit is added)."
  type        = map(string)
  default     = {}
}

variable "endpointkit_cleanup" {
  description = "On destroy, run `endpointkit tf destroy` to remove versions endpointkit added (needs endpointkit where Terraform runs)."
  type        = bool
  default     = true
}

variable "endpointkit_command" {
  description = "How to run endpointkit on the machine that runs Terraform."
  type        = string
  default     = "endpointkit"
}

variable "endpointkit_settings" {
  description = "SageMaker backend settings for endpointkit, e.g. { region = \"eu-west-1\" }."
  type        = map(string)
  default     = {}
}

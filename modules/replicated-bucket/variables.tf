variable "primary" {
  description = "The primary bucket: its name and region."
  type = object({
    bucket = string
    region = string
  })

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.primary.bucket))
    error_message = "primary.bucket must be a valid S3 bucket name (3-63 lowercase letters, digits, '.' and '-')."
  }
}

variable "secondary" {
  description = "The secondary bucket, in another region: its name and region."
  type = object({
    bucket = string
    region = string
  })

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.secondary.bucket))
    error_message = "secondary.bucket must be a valid S3 bucket name (3-63 lowercase letters, digits, '.' and '-')."
  }
}

variable "two_way" {
  description = "Also replicate secondary → primary (active/active). One-way (primary → secondary) when false."
  type        = bool
  default     = false
}

variable "replication_role_arn" {
  description = "ARN of the IAM role S3 assumes to replicate objects."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:iam::[0-9]{12}:role/", var.replication_role_arn))
    error_message = "replication_role_arn must be an IAM role ARN."
  }
}

variable "replicate_delete_markers" {
  description = "Replicate delete markers, so a delete in one region hides the object in the other too."
  type        = bool
  default     = true
}

variable "replica_storage_class" {
  description = "Storage class of replicas (e.g. STANDARD_IA); the source object's class when null."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let destroy delete every object version in both buckets."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for both buckets (merged over the provider's default_tags)."
  type        = map(string)
  default     = {}
}

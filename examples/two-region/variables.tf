variable "name" {
  description = "Stack name; prefixes bucket names and the failover name."
  type        = string
  default     = "assets"
}

variable "suffix" {
  description = "Suffix making bucket names globally unique, e.g. your account alias."
  type        = string
  default     = "demo"
}

variable "domain" {
  description = "Zone to create; the failover name is `<name>.<domain>`."
  type        = string
  default     = "tandem.test"
}

variable "primary_region" {
  description = "Region that serves while healthy."
  type        = string
  default     = "eu-west-1"
}

variable "secondary_region" {
  description = "Region that takes over."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = var.secondary_region != var.primary_region
    error_message = "The secondary region must differ from the primary."
  }
}

variable "replication_role_arn" {
  description = "IAM role S3 assumes to replicate between the regions."
  type        = string
  default     = "arn:aws:iam::123456789012:role/tandem-replication"
}

variable "proxy_ips" {
  description = "Public address of each region's proxy fleet (its load balancer), by region."
  type        = map(string)
  default = {
    "eu-west-1" = "192.0.2.10"
    "us-east-1" = "198.51.100.10"
  }
}

variable "aws_endpoint" {
  description = "Endpoint of an AWS emulator (moto) for Route 53, S3 and STS; real AWS when null."
  type        = string
  default     = null
}

variable "data_endpoints" {
  description = "S3 endpoint per region that the proxies read data from (e.g. SeaweedFS per region in the demo); real S3 when null."
  type        = map(string)
  default     = null
}

variable "redis_urls" {
  description = "Redis/Valkey URLs per region for the proxies' shared cache tier (one node, or several cluster seeds); memory only when null or absent for a region."
  type        = map(list(string))
  default     = null
}

variable "proxy_admin_endpoints" {
  description = "Admin URLs of the running proxies per region; apply waits for them to run new configs. None when null."
  type        = map(list(string))
  default     = null
}

variable "replicate_delete_markers" {
  description = "Replicate delete markers between the regions. moto always reports them Disabled, so the emulator runs set false."
  type        = bool
  default     = true
}

variable "name" {
  description = "Stack name, e.g. `assets`; the region is appended where names must be unique."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,40}$", var.name))
    error_message = "name must be lowercase letters, digits and '-', at most 41 characters."
  }
}

variable "region" {
  description = "The region this instance of the stack lives in."
  type        = string
}

variable "bucket" {
  description = "Name of this region's data bucket."
  type        = string
}

variable "peers" {
  description = "The other regions' data buckets, in failover order: this region replicates to each and its proxies fall back to them. `endpoint` is the S3 endpoint the proxies read that bucket from (default: `s3_endpoint`, or real S3)."
  type = list(object({
    bucket   = string
    region   = string
    endpoint = optional(string)
  }))
  default = []

  validation {
    condition     = alltrue([for p in var.peers : p.region != var.region])
    error_message = "peers must be in other regions: a same-region replica does not survive a region outage."
  }
}

variable "replication_role_arn" {
  description = "IAM role S3 assumes to replicate this region's bucket to its peers."
  type        = string
}

variable "config_bucket" {
  description = "Versioned bucket where this region's fleet config is published."
  type        = string
}

variable "config_region" {
  description = "Region of config_bucket."
  type        = string
}

variable "s3_endpoint" {
  description = "S3 endpoint the proxies use for the data buckets (emulators, S3-compatible stores); real AWS when null."
  type        = string
  default     = null
}

variable "redis_urls" {
  description = "This region's shared Redis/Valkey for the proxies' second cache tier: one URL, or several seeds of a Redis Cluster. Memory and origin only when empty. Keep it regional: a cross-region round trip costs more than the origin it saves."
  type        = list(string)
  default     = []
}

variable "proxy_endpoints" {
  description = "Admin URLs of this region's running proxies; apply waits for them to run a new config."
  type        = list(string)
  default     = []
}

variable "force_destroy" {
  description = "Let destroy delete every object version in the data bucket."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the data bucket."
  type        = map(string)
  default     = {}
}

variable "replicate_delete_markers" {
  description = "Replicate delete markers to the peers, so a delete hides the object everywhere."
  type        = bool
  default     = true
}

variable "retain_config_on_destroy" {
  description = "Keep this region's published fleet config when the stack is destroyed."
  type        = bool
  default     = false
}

variable "zone_id" {
  description = "ID of the hosted zone the name lives in."
  type        = string
}

variable "name" {
  description = "Fully qualified name to fail over, e.g. `api.example.com`."
  type        = string
}

variable "type" {
  description = "Record type of both record sets."
  type        = string
  default     = "A"

  validation {
    condition     = contains(["A", "AAAA", "CNAME", "TXT"], var.type)
    error_message = "type must be one of A, AAAA, CNAME or TXT for a failover name."
  }
}

variable "ttl" {
  description = "TTL in seconds for record sets that use `records` (ignored when both sides are aliases). Short TTLs make failover take effect sooner."
  type        = number
  default     = 60

  validation {
    condition     = var.ttl >= 0 && var.ttl <= 86400
    error_message = "ttl must be between 0 and 86400 seconds."
  }
}

variable "primary" {
  description = <<-EOT
    The primary target: answers while healthy. Give exactly one of `records` or `alias`.
    `health_check` creates a Route 53 health check for it (strongly recommended: without one, a
    `records` primary never fails over).
  EOT
  type = object({
    records        = optional(list(string))
    set_identifier = optional(string)
    alias = optional(object({
      name                   = string
      zone_id                = string
      evaluate_target_health = optional(bool, true)
    }))
    health_check = optional(object({
      type              = optional(string, "HTTPS")
      fqdn              = optional(string)
      ip_address        = optional(string)
      port              = optional(number)
      resource_path     = optional(string, "/health")
      search_string     = optional(string)
      failure_threshold = optional(number, 3)
      request_interval  = optional(number, 30)
      regions           = optional(list(string))
    }))
  })

  validation {
    condition     = (var.primary.records == null) != (var.primary.alias == null)
    error_message = "primary needs exactly one of records or alias."
  }

  validation {
    condition     = var.primary.health_check != null || try(var.primary.alias.evaluate_target_health, false)
    error_message = "primary needs a health_check (or an alias with evaluate_target_health = true), otherwise it can never fail over."
  }
}

variable "secondary" {
  description = "The secondary target: answers when the primary is unhealthy. Same shape as `primary`; its health check is optional."
  type = object({
    records        = optional(list(string))
    set_identifier = optional(string)
    alias = optional(object({
      name                   = string
      zone_id                = string
      evaluate_target_health = optional(bool, true)
    }))
    health_check = optional(object({
      type              = optional(string, "HTTPS")
      fqdn              = optional(string)
      ip_address        = optional(string)
      port              = optional(number)
      resource_path     = optional(string, "/health")
      search_string     = optional(string)
      failure_threshold = optional(number, 3)
      request_interval  = optional(number, 30)
      regions           = optional(list(string))
    }))
  })

  validation {
    condition     = (var.secondary.records == null) != (var.secondary.alias == null)
    error_message = "secondary needs exactly one of records or alias."
  }
}

variable "tags" {
  description = "Tags for the health checks (merged over the provider's default_tags)."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Fleet name: Kubernetes object names, the systemd unit, and the default config key."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.name))
    error_message = "name must be a DNS label (lowercase letters, digits and '-')."
  }
}

variable "config_bucket" {
  description = "Versioned bucket the fleet config is published to."
  type        = string
}

variable "config_key" {
  description = "Object key of the published config; `fleets/<name>.json` when null."
  type        = string
  default     = null
}

variable "config_region" {
  description = "Region of config_bucket; the provider's region when null."
  type        = string
  default     = null
}

variable "routes" {
  description = "Bucket routes: path prefix and the replica buckets to read from, in priority order (first = preferred; a replica's optional `tls_ca_file` is the PEM CA bundle, on the proxies' hosts, of an https endpoint with a private CA); optional `auth` (JWT: `algorithm`, and `secret_env`, `public_key_file`, `jwks_file` or `jwks_url` with `jwks_refresh`; `issuer`, `audience` (required with a JWKS), `claim_rules`); optional `cors` for browser clients."
  type = list(object({
    name        = string
    path_prefix = string
    replicas = list(object({
      name        = string
      bucket      = string
      region      = string
      endpoint    = optional(string)
      path_style  = optional(bool, false)
      tls_ca_file = optional(string)
      timeout     = optional(string, "2s")
    }))
    fallback_on_404 = optional(bool, false)
    auth = optional(object({
      algorithm       = string
      secret_env      = optional(string)
      public_key_file = optional(string)
      jwks_file       = optional(string)
      jwks_url        = optional(string)
      jwks_refresh    = optional(string)
      issuer          = optional(string)
      audience        = optional(string)
      claim_rules = optional(list(object({
        claim  = string
        value  = string
        prefix = string
      })), [])
    }))
    cors = optional(object({
      allowed_origins   = list(string)
      allowed_methods   = optional(list(string))
      allowed_headers   = optional(list(string))
      expose_headers    = optional(list(string))
      max_age           = optional(string)
      allow_credentials = optional(bool)
    }))
  }))

  validation {
    condition     = length(var.routes) > 0 && alltrue([for r in var.routes : length(r.replicas) > 0])
    error_message = "Declare at least one route, each with at least one replica."
  }

  validation {
    condition     = alltrue([for r in var.routes : startswith(r.path_prefix, "/") && endswith(r.path_prefix, "/")])
    error_message = "Each route's path_prefix must start and end with '/', e.g. \"/assets/\"."
  }
}

variable "cache" {
  description = "In-memory cache settings (sizes like `256MiB`, durations like `5m`)."
  type = object({
    max_bytes        = optional(string, "256MiB")
    max_object_bytes = optional(string, "8MiB")
    ttl              = optional(string, "5m")
    stale_if_error   = optional(string)
    max_fill_bytes   = optional(string)
    lock_timeout     = optional(string)
  })
  default = {}
}

variable "trusted_proxies" {
  description = "CIDRs of the load balancers in front of the proxies: their X-Forwarded-For is believed, and rate limits key on the real client. Empty: the TCP peer is the client."
  type        = list(string)
  default     = []
}

variable "proxy_protocol" {
  description = "The data listener expects a PROXY protocol header on every connection (an NLB with proxy protocol v2 enabled)."
  type        = bool
  default     = false
}

variable "tls_cert_file" {
  description = "Absolute path, on the proxies' hosts, of the PEM certificate chain the data listener serves TLS with (with `tls_key_file`); re-read on SIGHUP. Null: plain HTTP (TLS ends at the load balancer)."
  type        = string
  default     = null
}

variable "tls_key_file" {
  description = "Absolute path, on the proxies' hosts, of the PEM private key of `tls_cert_file`."
  type        = string
  default     = null
}

variable "limits" {
  description = "Client bounds (the proxy's defaults when null): `max_header_bytes`, `body_timeout`, `header_timeout`, `keepalive_timeout` (keep it above your load balancer's idle timeout), `send_timeout`, `min_send_rate`, `max_connections`, `admin_max_connections`. See docs/proxy/configuration.md#limits."
  type = object({
    max_header_bytes      = optional(string)
    body_timeout          = optional(string)
    header_timeout        = optional(string)
    keepalive_timeout     = optional(string)
    send_timeout          = optional(string)
    min_send_rate         = optional(string)
    max_connections       = optional(number)
    admin_max_connections = optional(number)
  })
  default = {}

  validation {
    condition     = alltrue([for n in [var.limits.max_connections, var.limits.admin_max_connections] : n == null ? true : n >= 1])
    error_message = "limits.max_connections and limits.admin_max_connections are at least 1."
  }
}

variable "redis" {
  description = "Shared Redis/Valkey cache tier for the whole fleet: `urls` (one node, or cluster seeds with `cluster = true`), `password_env` (the variable holding the password in the proxies' environment; never the password), `signing_key_env` and `previous_signing_key_env` (variables holding the fleet's HMAC key, at least 32 bytes, and the one being rotated out; a value or purge notice in Redis that does not verify is ignored), `tls_ca_file` (PEM CA bundle on the proxies' hosts, for `rediss://` with a private CA), `timeout`, `pool_size`, `max_object_bytes`. Null: memory and origin only."
  type = object({
    urls                     = list(string)
    cluster                  = optional(bool, false)
    password_env             = optional(string)
    signing_key_env          = optional(string)
    previous_signing_key_env = optional(string)
    tls_ca_file              = optional(string)
    timeout                  = optional(string, "50ms")
    pool_size                = optional(number, 16)
    max_object_bytes         = optional(string, "1MiB")
  })
  default = null

  validation {
    condition     = var.redis == null || length(try(var.redis.urls, [])) > 0
    error_message = "redis.urls needs at least one redis:// or rediss:// URL."
  }
}

variable "rate_limit" {
  description = "Per-client token bucket: `requests_per_second`, `burst`, `key` (`ip` or `subject`), `global` (one bucket per client across the fleet, through `redis`). Null: no limit."
  type = object({
    requests_per_second = number
    burst               = number
    key                 = optional(string, "ip")
    global              = optional(bool, false)
  })
  default = null

  validation {
    condition     = var.rate_limit == null || contains(["ip", "subject"], try(var.rate_limit.key, "ip"))
    error_message = "rate_limit.key is \"ip\" or \"subject\"."
  }
}

variable "drain" {
  description = "SIGTERM drain timing; also sets the manifests' preStop delay and grace period."
  type = object({
    delay = optional(string, "5s")
    grace = optional(string, "30s")
  })
  default = {}
}

variable "rollout_endpoints" {
  description = "Admin URLs of running proxies; apply waits until they all run the new config. Empty: no wait."
  type        = list(string)
  default     = []
}

variable "rollout_timeout" {
  description = "How long apply waits for the rollout."
  type        = string
  default     = "2m"
}

variable "image" {
  description = "tandem-proxy container image for the manifests."
  type        = string
  default     = "ghcr.io/tandem/tandem-proxy:0.1.0"
}

variable "namespace" {
  description = "Kubernetes namespace for the manifests."
  type        = string
  default     = "default"
}

variable "replicas" {
  description = "Pods (and the autoscaler's minimum)."
  type        = number
  default     = 3

  validation {
    condition     = var.replicas >= 1
    error_message = "replicas must be at least 1."
  }
}

variable "kubernetes" {
  description = "Kubernetes settings of the manifests: `pre_stop` (`sleep`, a preStop sleep action, needs Kubernetes 1.30+; `proxy` for older clusters, the proxy waits out the drain delay itself), the ServiceAccount (`service_account_name`, default the fleet name; `create_service_account`; `service_account_annotations`, e.g. `eks.amazonaws.com/role-arn` for IRSA; EKS Pod Identity needs none), `priority_class_name` and `priority_class_value` (render that PriorityClass), `memory_request`/`memory_limit` to override the memory derived from `cache` (1.25 x max_bytes + max_fill_bytes + 96Mi), and `prometheus_rule`/`service_monitor` to render the Prometheus Operator's objects (the tested alert rules; a scrape of the admin port)."
  type = object({
    pre_stop                    = optional(string, "sleep")
    service_account_name        = optional(string)
    create_service_account      = optional(bool, true)
    service_account_annotations = optional(map(string), {})
    priority_class_name         = optional(string)
    priority_class_value        = optional(number)
    memory_request              = optional(string)
    memory_limit                = optional(string)
    prometheus_rule             = optional(bool, false)
    service_monitor             = optional(bool, false)
  })
  default = {}

  validation {
    condition     = contains(["sleep", "proxy"], var.kubernetes.pre_stop)
    error_message = "kubernetes.pre_stop is \"sleep\" (Kubernetes 1.30+) or \"proxy\"."
  }
}

variable "retain_config_on_destroy" {
  description = "Keep the published config object when this module is destroyed, so running proxies keep serving."
  type        = bool
  default     = false
}

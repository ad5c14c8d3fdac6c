# A fleet config published for the proxies, its rollout, and deployment
# artifacts whose drain timing matches the config.
locals {
  config_key = coalesce(var.config_key, "fleets/${var.name}.json")
}

resource "tandem_proxy_fleet" "this" {
  config_bucket = var.config_bucket
  config_key    = local.config_key
  region        = var.config_region

  retain_on_destroy = var.retain_config_on_destroy

  listen {
    trusted_proxies = var.trusted_proxies
    proxy_protocol  = var.proxy_protocol
    tls_cert_file   = var.tls_cert_file
    tls_key_file    = var.tls_key_file
  }

  cache {
    max_bytes        = var.cache.max_bytes
    max_object_bytes = var.cache.max_object_bytes
    ttl              = var.cache.ttl
    stale_if_error   = var.cache.stale_if_error
    max_fill_bytes   = var.cache.max_fill_bytes
    lock_timeout     = var.cache.lock_timeout
  }

  drain {
    delay = var.drain.delay
    grace = var.drain.grace
  }

  dynamic "redis" {
    for_each = var.redis == null ? [] : [var.redis]
    content {
      urls                     = redis.value.urls
      cluster                  = redis.value.cluster
      password_env             = redis.value.password_env
      signing_key_env          = redis.value.signing_key_env
      previous_signing_key_env = redis.value.previous_signing_key_env
      tls_ca_file              = redis.value.tls_ca_file
      timeout                  = redis.value.timeout
      pool_size                = redis.value.pool_size
      max_object_bytes         = redis.value.max_object_bytes
    }
  }

  limits {
    max_header_bytes      = var.limits.max_header_bytes
    body_timeout          = var.limits.body_timeout
    header_timeout        = var.limits.header_timeout
    keepalive_timeout     = var.limits.keepalive_timeout
    send_timeout          = var.limits.send_timeout
    min_send_rate         = var.limits.min_send_rate
    max_connections       = var.limits.max_connections
    admin_max_connections = var.limits.admin_max_connections

    dynamic "rate_limit" {
      for_each = var.rate_limit == null ? [] : [var.rate_limit]
      content {
        requests_per_second = rate_limit.value.requests_per_second
        burst               = rate_limit.value.burst
        key                 = rate_limit.value.key
        global              = rate_limit.value.global
      }
    }
  }

  dynamic "bucket" {
    for_each = var.routes
    content {
      name            = bucket.value.name
      path_prefix     = bucket.value.path_prefix
      fallback_on_404 = bucket.value.fallback_on_404

      dynamic "auth" {
        for_each = bucket.value.auth == null ? [] : [bucket.value.auth]
        content {
          algorithm       = auth.value.algorithm
          secret_env      = auth.value.secret_env
          public_key_file = auth.value.public_key_file
          jwks_file       = auth.value.jwks_file
          jwks_url        = auth.value.jwks_url
          jwks_refresh    = auth.value.jwks_refresh
          issuer          = auth.value.issuer
          audience        = auth.value.audience

          dynamic "claim_rule" {
            for_each = auth.value.claim_rules
            content {
              claim  = claim_rule.value.claim
              value  = claim_rule.value.value
              prefix = claim_rule.value.prefix
            }
          }
        }
      }

      dynamic "cors" {
        for_each = bucket.value.cors == null ? [] : [bucket.value.cors]
        content {
          allowed_origins   = cors.value.allowed_origins
          allowed_methods   = cors.value.allowed_methods
          allowed_headers   = cors.value.allowed_headers
          expose_headers    = cors.value.expose_headers
          max_age           = cors.value.max_age
          allow_credentials = cors.value.allow_credentials
        }
      }

      dynamic "replica" {
        # List order is priority order: 1 for the first, 2 for the next...
        for_each = bucket.value.replicas
        content {
          name        = replica.value.name
          bucket      = replica.value.bucket
          region      = replica.value.region
          endpoint    = replica.value.endpoint
          path_style  = replica.value.path_style
          tls_ca_file = replica.value.tls_ca_file
          timeout     = replica.value.timeout
          priority    = replica.key + 1
        }
      }
    }
  }

  dynamic "rollout" {
    for_each = length(var.rollout_endpoints) > 0 ? [1] : []
    content {
      endpoints = var.rollout_endpoints
      timeout   = var.rollout_timeout
    }
  }
}

data "tandem_proxy_manifests" "this" {
  name          = var.name
  namespace     = var.namespace
  image         = var.image
  replicas      = var.replicas
  config_source = "s3://${var.config_bucket}/${local.config_key}"
  # From the variable, not the resource, so the manifests are known at plan.
  config_region = var.config_region
  drain_delay   = var.drain.delay
  drain_grace   = var.drain.grace
  pre_stop      = var.kubernetes.pre_stop
  # The pods' memory is derived from the cache the config above declares.
  cache_max_bytes      = var.cache.max_bytes
  cache_max_fill_bytes = var.cache.max_fill_bytes
  memory_request       = var.kubernetes.memory_request
  memory_limit         = var.kubernetes.memory_limit

  service_account_name        = var.kubernetes.service_account_name
  create_service_account      = var.kubernetes.create_service_account
  service_account_annotations = var.kubernetes.service_account_annotations
  priority_class_name         = var.kubernetes.priority_class_name
  priority_class_value        = var.kubernetes.priority_class_value
  prometheus_rule             = var.kubernetes.prometheus_rule
  service_monitor             = var.kubernetes.service_monitor
}

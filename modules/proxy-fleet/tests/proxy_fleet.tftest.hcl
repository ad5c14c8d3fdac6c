# Runs against moto: `terraform test -var aws_endpoint=http://127.0.0.1:PORT`.
variable "aws_endpoint" {
  type = string
}

provider "tandem" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  s3_use_path_style           = true
  endpoints {
    route53 = var.aws_endpoint
    s3      = var.aws_endpoint
    sts     = var.aws_endpoint
  }
}

run "config_bucket" {
  module {
    source = "./tests/setup"
  }
}

# Plan only: the document, its version and the manifests are all known at
# plan time. (Publishing is covered by acceptance-tests/tests/proxy_fleet.rs;
# applying here would leave an object version that moto fails to delete in
# the teardown, see the handoff notes.)
run "plans_config_and_manifests" {
  command = plan

  variables {
    name          = "assets"
    config_bucket = run.config_bucket.bucket
    routes = [{
      name        = "assets"
      path_prefix = "/assets/"
      replicas = [
        { name = "eu", bucket = "assets-eu", region = "eu-west-1", timeout = "500ms" },
        { name = "us", bucket = "assets-us", region = "us-east-1" },
      ]
    }]
    drain = { delay = "10s", grace = "20s" }
  }

  assert {
    condition     = length(output.config_version) == 16
    error_message = "config_version is a 16-hex-digit content hash"
  }

  assert {
    condition     = tandem_proxy_fleet.this.bucket[0].replica[1].priority == 2
    error_message = "replicas are prioritised in list order"
  }

  assert {
    condition     = yamldecode(output.kubernetes_manifests["Deployment/assets"]).spec.template.spec.terminationGracePeriodSeconds == 35
    error_message = "grace period = drain delay + drain grace + 5 s margin"
  }

  assert {
    condition     = toset(keys(output.kubernetes_manifests)) == toset(["Deployment/assets", "Service/assets", "PodDisruptionBudget/assets", "HorizontalPodAutoscaler/assets", "ServiceAccount/assets"])
    error_message = "one document per object, keyed Kind/name"
  }

  assert {
    condition     = alltrue([for k, o in output.kubernetes_objects : "${o.kind}/${o.metadata.name}" == k])
    error_message = "kubernetes_objects holds the decoded objects under the same keys"
  }

  assert {
    condition     = output.kubernetes_objects["Deployment/assets"].spec.template.spec.containers[0].resources.limits.memory == "480Mi"
    error_message = "the default 256 MiB cache gets 1.25 x 256 + 64 + 96 MiB"
  }
}

run "service_account_priority_class_and_memory_follow_the_inputs" {
  command = plan

  variables {
    name          = "assets"
    config_bucket = run.config_bucket.bucket
    routes = [{
      name        = "assets"
      path_prefix = "/assets/"
      replicas    = [{ name = "eu", bucket = "assets-eu", region = "eu-west-1" }]
    }]
    cache = { max_bytes = "1GiB", max_fill_bytes = "128MiB" }
    kubernetes = {
      pre_stop                    = "proxy"
      service_account_annotations = { "eks.amazonaws.com/role-arn" = "arn:aws:iam::123456789012:role/assets-proxy" }
      priority_class_name         = "edge-serving"
      priority_class_value        = 100000
      prometheus_rule             = true
      service_monitor             = true
    }
  }

  assert {
    condition     = length(output.kubernetes_objects["PrometheusRule/assets"].spec.groups[0].rules) >= 10 && output.kubernetes_objects["ServiceMonitor/assets"].spec.endpoints[0].port == "admin"
    error_message = "the Prometheus Operator's objects are rendered with the alert rules and the admin port"
  }

  assert {
    condition     = output.kubernetes_objects["ServiceAccount/assets"].metadata.annotations["eks.amazonaws.com/role-arn"] == "arn:aws:iam::123456789012:role/assets-proxy"
    error_message = "the IRSA annotation is on the ServiceAccount"
  }

  assert {
    condition     = output.kubernetes_objects["Deployment/assets"].spec.template.spec.serviceAccountName == "assets"
    error_message = "the pods run as that ServiceAccount"
  }

  assert {
    condition     = output.kubernetes_objects["PriorityClass/edge-serving"].value == 100000 && output.kubernetes_objects["Deployment/assets"].spec.template.spec.priorityClassName == "edge-serving"
    error_message = "the PriorityClass is rendered and used"
  }

  assert {
    condition     = output.kubernetes_objects["Deployment/assets"].spec.template.spec.containers[0].resources.requests.memory == "1504Mi"
    error_message = "memory = 1.25 x 1024 + 128 + 96 MiB"
  }

  assert {
    condition     = !can(output.kubernetes_objects["Deployment/assets"].spec.template.spec.containers[0].lifecycle)
    error_message = "pre_stop = proxy renders no hook"
  }
}

run "an_unknown_pre_stop_is_refused_at_plan" {
  command = plan

  variables {
    name          = "assets"
    config_bucket = run.config_bucket.bucket
    routes = [{
      name        = "assets"
      path_prefix = "/assets/"
      replicas    = [{ name = "eu", bucket = "assets-eu", region = "eu-west-1" }]
    }]
    kubernetes = { pre_stop = "exec" }
  }

  expect_failures = [var.kubernetes]
}

run "invalid_route_is_refused_at_plan" {
  command = plan

  variables {
    name          = "assets"
    config_bucket = run.config_bucket.bucket
    routes = [{
      name        = "assets"
      path_prefix = "assets"
      replicas    = [{ name = "eu", bucket = "assets-eu", region = "eu-west-1" }]
    }]
  }

  expect_failures = [var.routes]
}

run "redis_tier_and_global_rate_limit_reach_the_document" {
  command = plan

  variables {
    name          = "assets"
    config_bucket = run.config_bucket.bucket
    routes = [{
      name        = "assets"
      path_prefix = "/assets/"
      replicas    = [{ name = "eu", bucket = "assets-eu", region = "eu-west-1", endpoint = "https://minio.internal:9000", path_style = true, tls_ca_file = "/etc/tandem/minio-ca.pem" }]
      auth = {
        algorithm    = "RS256"
        jwks_url     = "https://id.example.com/.well-known/jwks.json"
        jwks_refresh = "5m"
        audience     = "assets"
        claim_rules  = [{ claim = "tenant", value = "acme", prefix = "acme/" }]
      }
    }]
    redis         = { urls = ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"], cluster = true, password_env = "REDIS_PASSWORD", signing_key_env = "FLEET_KEY" }
    rate_limit    = { requests_per_second = 50, burst = 100, global = true }
    tls_cert_file = "/etc/tandem/tls/cert.pem"
    tls_key_file  = "/etc/tandem/tls/key.pem"
  }

  assert {
    condition     = jsondecode(tandem_proxy_fleet.this.document).listen.tls_key_file == "/etc/tandem/tls/key.pem"
    error_message = "the listener's TLS files are published"
  }

  assert {
    condition     = jsondecode(tandem_proxy_fleet.this.document).redis.cluster == true
    error_message = "the redis section is published"
  }

  assert {
    condition     = jsondecode(tandem_proxy_fleet.this.document).redis.signing_key_env == "FLEET_KEY"
    error_message = "the signing key variable is published"
  }

  assert {
    condition     = jsondecode(tandem_proxy_fleet.this.document).buckets[0].replicas[0].tls_ca_file == "/etc/tandem/minio-ca.pem"
    error_message = "a replica's private CA file is published"
  }

  assert {
    condition     = jsondecode(tandem_proxy_fleet.this.document).buckets[0].auth.jwks_url == "https://id.example.com/.well-known/jwks.json" && jsondecode(tandem_proxy_fleet.this.document).buckets[0].auth.claim_rules[0].prefix == "acme/"
    error_message = "a route's JWT settings are published"
  }

  assert {
    condition     = jsondecode(tandem_proxy_fleet.this.document).limits.rate_limit.global == true
    error_message = "the global rate limit is published"
  }
}

run "client_bounds_and_fill_budget_reach_the_document" {
  command = plan

  variables {
    name          = "assets"
    config_bucket = run.config_bucket.bucket
    routes = [{
      name        = "assets"
      path_prefix = "/assets/"
      replicas    = [{ name = "eu", bucket = "assets-eu", region = "eu-west-1" }]
    }]
    cache           = { max_fill_bytes = "32MiB", lock_timeout = "2s" }
    limits          = { keepalive_timeout = "120s", max_connections = 10000 }
    trusted_proxies = ["10.0.0.0/8"]
  }

  assert {
    condition     = jsondecode(tandem_proxy_fleet.this.document).listen.trusted_proxies[0] == "10.0.0.0/8"
    error_message = "listen.trusted_proxies is published"
  }

  assert {
    condition     = jsondecode(tandem_proxy_fleet.this.document).limits.keepalive_timeout == "2m"
    error_message = "limits.keepalive_timeout is published (in the proxy's own duration format)"
  }

  assert {
    condition     = jsondecode(tandem_proxy_fleet.this.document).limits.max_connections == 10000
    error_message = "limits.max_connections is published"
  }

  assert {
    condition     = jsondecode(tandem_proxy_fleet.this.document).cache.max_fill_bytes == "32MiB"
    error_message = "cache.max_fill_bytes is published"
  }
}

run "a_zero_connection_cap_is_refused_at_plan" {
  command = plan

  variables {
    name          = "assets"
    config_bucket = run.config_bucket.bucket
    routes = [{
      name        = "assets"
      path_prefix = "/assets/"
      replicas    = [{ name = "eu", bucket = "assets-eu", region = "eu-west-1" }]
    }]
    limits = { max_connections = 0 }
  }

  expect_failures = [var.limits]
}

run "a_route_with_cors_reaches_the_document" {
  command = plan

  variables {
    name          = "assets"
    config_bucket = run.config_bucket.bucket
    routes = [{
      name        = "assets"
      path_prefix = "/assets/"
      replicas    = [{ name = "eu", bucket = "assets-eu", region = "eu-west-1" }]
      cors        = { allowed_origins = ["https://app.example.com"], expose_headers = ["ETag"] }
    }]
  }

  assert {
    condition     = jsondecode(tandem_proxy_fleet.this.document).buckets[0].cors.allowed_origins[0] == "https://app.example.com"
    error_message = "a route's cors is published"
  }
}

# The complete stack in two regions: a hosted zone, a failover name with
# health checks, data buckets replicating both ways, and each region's proxy
# fleet config and manifests. Pointed at emulators by `make demo` and the
# acceptance test; at AWS by leaving aws_endpoint null.
terraform {
  required_version = ">= 1.6"
  required_providers {
    tandem = { source = "tandem/tandem" }
  }
}

locals {
  regions = {
    (var.primary_region)   = "${var.name}-${var.suffix}-a"
    (var.secondary_region) = "${var.name}-${var.suffix}-b"
  }
}

provider "tandem" {
  region                      = var.primary_region
  access_key                  = var.aws_endpoint == null ? null : "test"
  secret_key                  = var.aws_endpoint == null ? null : "test"
  s3_use_path_style           = var.aws_endpoint != null
  skip_credentials_validation = var.aws_endpoint != null

  dynamic "endpoints" {
    for_each = var.aws_endpoint == null ? [] : [1]
    content {
      route53 = var.aws_endpoint
      s3      = var.aws_endpoint
      sts     = var.aws_endpoint
    }
  }
}

resource "tandem_route53_zone" "main" {
  name          = var.domain
  force_destroy = true
}

# Fleet configs are published here; versioned so every config can be rolled back.
resource "tandem_s3_bucket" "config" {
  bucket        = "${var.name}-${var.suffix}-config"
  region        = var.primary_region
  force_destroy = true
}

resource "tandem_s3_bucket_versioning" "config" {
  bucket = tandem_s3_bucket.config.bucket
  region = tandem_s3_bucket.config.region
  status = "Enabled"
}

module "region" {
  source   = "../../modules/regional-stack"
  for_each = local.regions

  name   = var.name
  region = each.key
  bucket = each.value
  peers = [for r, b in local.regions : {
    bucket   = b
    region   = r
    endpoint = var.data_endpoints == null ? null : var.data_endpoints[r]
  } if r != each.key]
  replication_role_arn = var.replication_role_arn
  config_bucket        = tandem_s3_bucket_versioning.config.bucket
  config_region        = tandem_s3_bucket_versioning.config.region
  s3_endpoint          = var.data_endpoints == null ? null : var.data_endpoints[each.key]
  proxy_endpoints      = var.proxy_admin_endpoints == null ? [] : var.proxy_admin_endpoints[each.key]
  redis_urls           = var.redis_urls == null ? [] : lookup(var.redis_urls, each.key, [])
  force_destroy        = true

  replicate_delete_markers = var.replicate_delete_markers
  # The config bucket goes too (force_destroy), taking every config version
  # with it; retaining the objects until then avoids delete markers, which
  # moto 5.2.5 cannot delete (see docs/benchmarks.md notes / handoff).
  retain_config_on_destroy = true
}

module "dns" {
  source = "../../modules/failover-dns"

  zone_id = tandem_route53_zone.main.zone_id
  name    = "${var.name}.${var.domain}"
  primary = {
    records      = [var.proxy_ips[var.primary_region]]
    health_check = { type = "HTTP", ip_address = var.proxy_ips[var.primary_region], port = 9090, resource_path = "/ready" }
  }
  secondary = {
    records      = [var.proxy_ips[var.secondary_region]]
    health_check = { type = "HTTP", ip_address = var.proxy_ips[var.secondary_region], port = 9090, resource_path = "/ready" }
  }
}

# One region's share of a multi-region stack: its data bucket (versioned,
# replicating to the peers) and the config of its proxy fleet, which reads
# the local bucket first and the peers after. Call it once per region, e.g.
# with for_each; peers are named, not referenced, so instances never depend
# on each other (replication waits briefly for a peer's versioning).
resource "tandem_s3_bucket" "data" {
  bucket        = var.bucket
  region        = var.region
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { stack = var.name, region = var.region })
}

resource "tandem_s3_bucket_versioning" "data" {
  bucket = tandem_s3_bucket.data.bucket
  region = tandem_s3_bucket.data.region
  status = "Enabled"
}

resource "tandem_s3_bucket_replication" "to_peers" {
  count = length(var.peers) > 0 ? 1 : 0

  bucket = tandem_s3_bucket_versioning.data.bucket
  region = tandem_s3_bucket_versioning.data.region
  role   = var.replication_role_arn

  dynamic "rule" {
    for_each = var.peers
    content {
      id                        = "to-${rule.value.region}"
      priority                  = rule.key + 1
      delete_marker_replication = var.replicate_delete_markers
      destination {
        bucket = "arn:aws:s3:::${rule.value.bucket}"
        region = rule.value.region
      }
    }
  }
}

module "fleet" {
  source = "../proxy-fleet"

  name          = "${var.name}-${var.region}"
  config_bucket = var.config_bucket
  config_region = var.config_region
  routes = [{
    name        = var.name
    path_prefix = "/${var.name}/"
    replicas = concat(
      [{ name = var.region, bucket = tandem_s3_bucket.data.bucket, region = var.region, endpoint = var.s3_endpoint, path_style = var.s3_endpoint != null }],
      # A peer's own endpoint when given (each region's S3-compatible
      # store in the demo); otherwise this region's, or real S3 when null.
      [for p in var.peers : {
        name       = p.region
        bucket     = p.bucket
        region     = p.region
        endpoint   = p.endpoint != null ? p.endpoint : var.s3_endpoint
        path_style = (p.endpoint != null ? p.endpoint : var.s3_endpoint) != null
      }],
    )
  }]
  rollout_endpoints = var.proxy_endpoints
  redis             = length(var.redis_urls) == 0 ? null : { urls = var.redis_urls, cluster = length(var.redis_urls) > 1 }

  retain_config_on_destroy = var.retain_config_on_destroy
}

output "buckets" {
  description = "Per side (`primary`, `secondary`): bucket name, region, ARN and regional domain name."
  value = {
    for side, b in tandem_s3_bucket.this : side => {
      bucket                      = b.bucket
      region                      = b.region
      arn                         = b.arn
      bucket_regional_domain_name = b.bucket_regional_domain_name
    }
  }
}

output "replication_directions" {
  description = "Replication directions in effect, as `source => destination` sides."
  value       = local.directions
}

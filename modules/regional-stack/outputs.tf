output "bucket" {
  description = "This region's data bucket: name, region and ARN."
  value = {
    bucket = tandem_s3_bucket.data.bucket
    region = tandem_s3_bucket.data.region
    arn    = tandem_s3_bucket.data.arn
  }
}

output "config_url" {
  description = "Where this region's proxies read their config."
  value       = module.fleet.config_url
}

output "config_version" {
  description = "Version of this region's fleet config."
  value       = module.fleet.config_version
}

output "kubernetes_manifests" {
  description = "This region's proxy objects (ServiceAccount, Deployment, Service, PDB, HPA) as YAML documents keyed `Kind/name`."
  value       = module.fleet.kubernetes_manifests
}

output "failover_name" {
  description = "The name clients use; Route 53 answers with the healthy region."
  value       = module.dns.name
}

output "config_urls" {
  description = "Where each region's proxies read their config."
  value       = { for r, m in module.region : r => m.config_url }
}

output "config_versions" {
  description = "Each region's fleet config version."
  value       = { for r, m in module.region : r => m.config_version }
}

output "buckets" {
  description = "Each region's data bucket."
  value       = { for r, m in module.region : r => m.bucket }
}

output "kubernetes_manifests" {
  description = "Each region's proxy manifests: a map of YAML documents keyed `Kind/name`."
  value       = { for r, m in module.region : r => m.kubernetes_manifests }
  sensitive   = false
}

output "config_version" {
  description = "Content hash of the published config; what every proxy reports once it runs it."
  value       = tandem_proxy_fleet.this.config_version
}

output "config_url" {
  description = "Where the proxies read their config: `s3://bucket/key`."
  value       = "s3://${var.config_bucket}/${local.config_key}"
}

output "kubernetes_manifests" {
  description = "Each Kubernetes object (ServiceAccount, Deployment, Service, PodDisruptionBudget, HorizontalPodAutoscaler, and the PriorityClass when rendered) as one YAML document, keyed `Kind/name`: `for_each` over it with `kubernetes_manifest` and `yamldecode(each.value)`."
  value       = data.tandem_proxy_manifests.this.manifests
}

output "kubernetes_objects" {
  description = "The same objects decoded, keyed `Kind/name`: `manifest = each.value` with no decoding."
  value       = { for k, v in data.tandem_proxy_manifests.this.manifests_json : k => jsondecode(v) }
}

output "systemd_unit" {
  description = "A hardened systemd unit (`Type=notify`) running the proxy with the same drain timing and memory limit."
  value       = data.tandem_proxy_manifests.this.systemd_unit
}

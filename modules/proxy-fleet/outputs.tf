output "config_version" {
  description = "Content hash of the published config; what every proxy reports once it runs it."
  value       = tandem_proxy_fleet.this.config_version
}

output "config_url" {
  description = "Where the proxies read their config: `s3://bucket/key`."
  value       = "s3://${var.config_bucket}/${local.config_key}"
}

output "kubernetes_manifests" {
  description = "Deployment, Service, PodDisruptionBudget and HorizontalPodAutoscaler as one YAML stream."
  value       = data.tandem_proxy_manifests.this.all
}

output "systemd_unit" {
  description = "A systemd unit running the proxy with the same drain timing."
  value       = data.tandem_proxy_manifests.this.systemd_unit
}

# Kubernetes and systemd artifacts for a proxy fleet, with probes and drain
# timing that match the proxy's own behaviour.
data "tandem_proxy_manifests" "assets" {
  name          = "assets"
  namespace     = "edge"
  image         = "registry.example.com/tandem-proxy:0.1.0"
  config_source = "s3://fleet-config/assets.json"
  config_region = "eu-west-1"

  replicas     = 3
  max_replicas = 9

  # Must match the fleet config's drain settings.
  drain_delay = "10s"
  drain_grace = "45s"

  credentials_secret = "tandem-proxy-aws"
}

# One YAML document per object, keyed `Kind/name`: a `for_each` over the
# map gives one kubernetes_manifest per object (see the Kubernetes guide).
output "manifests" {
  value = data.tandem_proxy_manifests.assets.manifests
}

output "deployment_yaml" {
  value = data.tandem_proxy_manifests.assets.manifests["Deployment/assets"]
}

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

# One file per object, e.g. for kubectl apply -f or a GitOps repo.
output "deployment_yaml" {
  value = data.tandem_proxy_manifests.assets.deployment
}

output "all_yaml" {
  value = data.tandem_proxy_manifests.assets.all
}

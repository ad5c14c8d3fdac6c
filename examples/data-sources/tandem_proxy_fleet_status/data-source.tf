# What every proxy of the fleet runs right now.
data "tandem_proxy_fleet_status" "eu" {
  endpoints = [
    "http://10.0.1.5:9090",
    "http://10.0.2.5:9090",
  ]
}

output "fleet_ready" {
  value = "${data.tandem_proxy_fleet_status.eu.ready_count} of ${length(data.tandem_proxy_fleet_status.eu.proxies)} ready"
}

# Fails the plan's checks while the fleet runs more than one config version.
check "one_config_version" {
  assert {
    condition     = length(data.tandem_proxy_fleet_status.eu.config_versions) <= 1
    error_message = "The fleet runs several config versions: ${join(", ", data.tandem_proxy_fleet_status.eu.config_versions)}"
  }
}

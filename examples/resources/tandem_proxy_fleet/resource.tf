# The runtime config of the proxy fleet serving /assets/ from two regions.
# `terraform plan` validates it with the proxy's own code; `apply` publishes
# it to a versioned bucket and waits until both proxies run it.
resource "tandem_proxy_fleet" "assets" {
  config_bucket = "example-fleet-config"
  config_key    = "fleets/assets.json"
  region        = "eu-west-1"

  cache {
    max_bytes      = "512MiB"
    ttl            = "5m"
    stale_if_error = "1h"
  }

  drain {
    delay = "5s"
    grace = "30s"
  }

  bucket {
    name        = "assets"
    path_prefix = "/assets/"

    replica {
      name     = "eu"
      bucket   = "example-assets-eu"
      region   = "eu-west-1"
      priority = 1
      timeout  = "500ms"
    }

    replica {
      name     = "us"
      bucket   = "example-assets-us"
      region   = "us-east-1"
      priority = 2
      timeout  = "1s"
    }

    breaker {
      failure_threshold = 5
      open_timeout      = "10s"
    }
  }

  rollout {
    endpoints = ["http://10.0.1.5:9090", "http://10.0.2.5:9090"]
    timeout   = "2m"
  }
}

output "config_version" {
  value = tandem_proxy_fleet.assets.config_version
}

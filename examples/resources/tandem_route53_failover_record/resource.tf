resource "tandem_route53_zone" "main" {
  name = "example.com"
}

resource "tandem_route53_health_check" "eu" {
  type          = "HTTPS"
  fqdn          = "eu.api.example.com"
  resource_path = "/ready"
}

# Send traffic to eu-west-1 while it is healthy, else to us-east-1. Both
# record sets are written in one atomic change batch.
resource "tandem_route53_failover_record" "api" {
  zone_id = tandem_route53_zone.main.zone_id
  name    = "api.example.com"
  type    = "A"
  ttl     = 60

  primary {
    records         = ["192.0.2.10"]
    health_check_id = tandem_route53_health_check.eu.id
  }

  secondary {
    records = ["198.51.100.10"]
  }
}

# The same with load balancers as alias targets: no ttl, and the secondary
# follows its own target's health.
resource "tandem_route53_failover_record" "www" {
  zone_id = tandem_route53_zone.main.zone_id
  name    = "www.example.com"
  type    = "A"

  primary {
    set_identifier  = "www-eu"
    health_check_id = tandem_route53_health_check.eu.id
    alias {
      name    = "eu-lb-123456.eu-west-1.elb.amazonaws.com"
      zone_id = "Z32O12XQLNTSW2"
    }
  }

  secondary {
    set_identifier = "www-us"
    alias {
      name                   = "us-lb-654321.us-east-1.elb.amazonaws.com"
      zone_id                = "Z35SXDOTRQ7X7K"
      evaluate_target_health = true
    }
  }

  timeouts {
    create = "10m"
  }
}

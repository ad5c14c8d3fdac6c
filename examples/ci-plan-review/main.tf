# A small stack to try the review on: `review.sh .` against it, then edit
# (drop the health check, or destroy) and run it again.
terraform {
  required_providers {
    tandem = { source = "tandem/tandem" }
  }
}

variable "domain" {
  description = "Zone the failover name lives in."
  type        = string
  default     = "example.com"
}

resource "tandem_route53_zone" "main" {
  name = var.domain
}

resource "tandem_route53_health_check" "primary" {
  type          = "HTTPS"
  fqdn          = "eu.api.${var.domain}"
  resource_path = "/ready"
}

resource "tandem_route53_failover_record" "api" {
  zone_id = tandem_route53_zone.main.zone_id
  name    = "api.${var.domain}"
  type    = "A"
  ttl     = 60

  primary {
    records         = ["192.0.2.10"]
    health_check_id = tandem_route53_health_check.primary.id
  }

  secondary {
    records = ["198.51.100.10"]
  }
}

# An HTTPS check of the primary region's endpoint, looking for "ok" in the body.
resource "tandem_route53_health_check" "eu" {
  type              = "HTTPS_STR_MATCH"
  fqdn              = "eu.api.example.com"
  resource_path     = "/healthz"
  search_string     = "ok"
  failure_threshold = 3
  request_interval  = 30
  regions           = ["eu-west-1", "us-east-1", "ap-southeast-1"]

  tags = {
    region = "eu-west-1"
  }
}

# A TCP check of a database port.
resource "tandem_route53_health_check" "db" {
  type       = "TCP"
  ip_address = "192.0.2.10"
  port       = 5432
}

# Healthy only while both checks above are healthy.
resource "tandem_route53_health_check" "eu_all" {
  type = "CALCULATED"
  child_healthchecks = [
    tandem_route53_health_check.eu.id,
    tandem_route53_health_check.db.id,
  ]
  child_health_threshold = 2
}

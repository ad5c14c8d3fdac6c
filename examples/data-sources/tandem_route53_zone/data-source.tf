# Look up a zone by name (or set `zone_id` instead).
data "tandem_route53_zone" "main" {
  name = "example.com"
}

output "zone_id" {
  value = data.tandem_route53_zone.main.zone_id
}

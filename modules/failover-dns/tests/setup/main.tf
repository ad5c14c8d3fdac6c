# A zone for the module's tests.
terraform {
  required_providers {
    tandem = { source = "tandem/tandem" }
  }
}


resource "tandem_route53_zone" "test" {
  name          = "failover-dns.tandem.test"
  force_destroy = true
}

output "zone_id" {
  value = tandem_route53_zone.test.zone_id
}

output "name" {
  value = tandem_route53_zone.test.name
}

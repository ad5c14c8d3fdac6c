# A public hosted zone. Delegate the domain to `name_servers` at your registrar.
resource "tandem_route53_zone" "main" {
  name    = "example.com"
  comment = "Public zone for example.com"

  # Destroying the zone also deletes the records Terraform does not manage.
  force_destroy = false

  tags = {
    env = "prod"
  }
}

output "name_servers" {
  value = tandem_route53_zone.main.name_servers
}

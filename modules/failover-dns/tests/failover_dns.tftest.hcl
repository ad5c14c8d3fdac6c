# Runs against moto: `terraform test -var aws_endpoint=http://127.0.0.1:PORT`
# (make test passes it). Applies real resources through the provider.
variable "aws_endpoint" {
  type = string
}

provider "tandem" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  s3_use_path_style           = true
  endpoints {
    route53 = var.aws_endpoint
    s3      = var.aws_endpoint
    sts     = var.aws_endpoint
  }
}

run "zone" {
  module {
    source = "./tests/setup"
  }
}

run "records_with_primary_health_check" {
  variables {
    zone_id = run.zone.zone_id
    name    = "api.${run.zone.name}"
    primary = {
      records      = ["192.0.2.10"]
      health_check = { fqdn = "eu.api.${run.zone.name}" }
    }
    secondary = {
      records = ["198.51.100.10"]
    }
  }

  assert {
    condition     = keys(output.health_check_ids) == ["primary"]
    error_message = "only the primary should get a health check"
  }

  assert {
    condition     = tandem_route53_failover_record.this.ttl == 60
    error_message = "records need the default TTL"
  }

  assert {
    condition     = tandem_route53_failover_record.this.primary.health_check_id == output.health_check_ids["primary"]
    error_message = "the primary must use its health check"
  }
}

run "primary_without_health_check_is_refused" {
  command = plan

  variables {
    zone_id   = run.zone.zone_id
    name      = "bad.${run.zone.name}"
    primary   = { records = ["192.0.2.10"] }
    secondary = { records = ["198.51.100.10"] }
  }

  expect_failures = [var.primary]
}

run "both_records_and_alias_is_refused" {
  command = plan

  variables {
    zone_id = run.zone.zone_id
    name    = "bad.${run.zone.name}"
    primary = {
      records      = ["192.0.2.10"]
      alias        = { name = "lb.example.com", zone_id = "Z1" }
      health_check = { fqdn = "x.example.com" }
    }
    secondary = { records = ["198.51.100.10"] }
  }

  expect_failures = [var.primary]
}

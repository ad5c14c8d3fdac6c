# The smallest useful Tandem stack, run by `make demo` against local
# emulators: a hosted zone and a failover name that sends traffic to the
# primary region while it is healthy, else to the secondary.
terraform {
  required_providers {
    tandem = { source = "tandem/tandem" }
  }
}

variable "aws_endpoint" {
  description = "Endpoint of the AWS emulator (moto) for Route 53, S3 and STS."
  type        = string
}

variable "domain" {
  description = "Zone to create."
  type        = string
  default     = "demo.tandem.test"
}

provider "tandem" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  s3_use_path_style           = true
  skip_credentials_validation = true
  endpoints {
    route53 = var.aws_endpoint
    s3      = var.aws_endpoint
    sts     = var.aws_endpoint
  }
}

resource "tandem_route53_zone" "demo" {
  name          = var.domain
  force_destroy = true
}

output "zone_id" {
  description = "The hosted zone's ID."
  value       = tandem_route53_zone.demo.zone_id
}

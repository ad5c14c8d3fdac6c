# Runs against moto: `terraform test -var aws_endpoint=http://127.0.0.1:PORT`.
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

variables {
  primary              = { bucket = "rb-test-eu", region = "eu-west-1" }
  secondary            = { bucket = "rb-test-us", region = "us-east-1" }
  replication_role_arn = "arn:aws:iam::123456789012:role/replication"
  force_destroy        = true
}

run "one_way" {
  assert {
    condition     = output.replication_directions == { primary = "secondary" }
    error_message = "one-way replication goes primary -> secondary only"
  }

  assert {
    condition     = output.buckets.primary.region == "eu-west-1" && output.buckets.secondary.region == "us-east-1"
    error_message = "each bucket lives in its own region"
  }

  assert {
    condition     = tandem_s3_bucket_replication.this["primary"].rule[0].destination.bucket == "arn:aws:s3:::rb-test-us"
    error_message = "the primary replicates to the secondary's ARN"
  }
}

run "two_way" {
  variables {
    two_way = true
  }

  assert {
    condition     = length(tandem_s3_bucket_replication.this) == 2
    error_message = "two-way replication needs a rule set on each side"
  }
}

run "bad_bucket_name_is_refused" {
  command = plan

  variables {
    primary = { bucket = "Not_Valid", region = "eu-west-1" }
  }

  expect_failures = [var.primary]
}

terraform {
  required_providers {
    tandem = {
      source  = "tandem/tandem"
      version = "~> 0.1"
    }
  }
}

# One provider block serves every region: resources that live in a region
# take their own `region` argument.
provider "tandem" {
  region = "eu-west-1"

  # Route 53 allows about 5 requests per second per account: every Route 53
  # call of this provider queues for its turn at this rate. Lower it when
  # other tools share the account.
  route53_requests_per_second = 5

  # The backstop when something else on the account makes Route 53 throttle.
  max_retries = 25

  default_tags {
    tags = {
      managed-by = "terraform"
      stack      = "tandem"
    }
  }
}

# Against local emulators (as `make demo` does):
#
# provider "tandem" {
#   region                      = "us-east-1"
#   access_key                  = "test"
#   secret_key                  = "test"
#   s3_use_path_style           = true
#   skip_credentials_validation = true
#   endpoints {
#     route53 = "http://127.0.0.1:5000"
#     s3      = "http://127.0.0.1:5000"
#     sts     = "http://127.0.0.1:5000"
#   }
# }

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

  # Retry throttled Route 53 calls generously: it allows ~5 requests/s.
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

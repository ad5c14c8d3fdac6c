# A versioned config bucket for the module's tests.
terraform {
  required_providers {
    tandem = { source = "tandem/tandem" }
  }
}

resource "tandem_s3_bucket" "config" {
  bucket        = "proxy-fleet-test-config"
  force_destroy = true
}

resource "tandem_s3_bucket_versioning" "config" {
  bucket = tandem_s3_bucket.config.bucket
  status = "Enabled"
}

output "bucket" {
  value = tandem_s3_bucket_versioning.config.bucket
}

resource "tandem_s3_bucket" "eu" {
  bucket = "example-assets-eu"
  region = "eu-west-1"
}

# Replication needs versioning Enabled on both sides.
resource "tandem_s3_bucket_versioning" "eu" {
  bucket = tandem_s3_bucket.eu.bucket
  region = tandem_s3_bucket.eu.region
  status = "Enabled"
}

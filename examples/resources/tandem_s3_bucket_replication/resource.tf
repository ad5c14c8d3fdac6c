resource "tandem_s3_bucket" "eu" {
  bucket = "example-assets-eu"
  region = "eu-west-1"
}

resource "tandem_s3_bucket" "us" {
  bucket = "example-assets-us"
  region = "us-east-1"
}

resource "tandem_s3_bucket_versioning" "eu" {
  bucket = tandem_s3_bucket.eu.bucket
  region = tandem_s3_bucket.eu.region
  status = "Enabled"
}

resource "tandem_s3_bucket_versioning" "us" {
  bucket = tandem_s3_bucket.us.bucket
  region = tandem_s3_bucket.us.region
  status = "Enabled"
}

# eu -> us. Referencing the versioning resources orders this after both, so
# the pre-flight versioning check passes on the first apply.
resource "tandem_s3_bucket_replication" "eu_to_us" {
  bucket = tandem_s3_bucket_versioning.eu.bucket
  region = tandem_s3_bucket_versioning.eu.region
  role   = "arn:aws:iam::123456789012:role/s3-replication"

  rule {
    id                        = "everything"
    priority                  = 1
    delete_marker_replication = true

    destination {
      bucket        = tandem_s3_bucket.us.arn
      region        = tandem_s3_bucket_versioning.us.region
      storage_class = "STANDARD_IA"

      # Replication Time Control (15-minute SLA) needs metrics.
      replication_time = true
      metrics          = true
    }
  }

  rule {
    id       = "thumbnails"
    priority = 2

    filter {
      prefix = "img/thumbs/"
      tags = {
        replicate = "yes"
      }
    }

    destination {
      bucket = tandem_s3_bucket.us.arn
      region = tandem_s3_bucket_versioning.us.region
    }
  }
}

# Two buckets in two regions from one provider block: `region` is per resource.
resource "tandem_s3_bucket" "eu" {
  bucket = "example-assets-eu"
  region = "eu-west-1"

  tags = {
    role = "primary"
  }
}

resource "tandem_s3_bucket" "us" {
  bucket = "example-assets-us"
  region = "us-east-1"

  # Destroying the bucket deletes every object version and delete marker.
  force_destroy = true
}

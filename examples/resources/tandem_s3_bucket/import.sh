# Import by name (the region is looked up) or by name@region.
terraform import tandem_s3_bucket.eu example-assets-eu@eu-west-1

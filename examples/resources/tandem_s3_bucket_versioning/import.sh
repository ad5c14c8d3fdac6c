terraform import tandem_s3_bucket_versioning.eu example-assets-eu@eu-west-1

terraform import tandem_s3_bucket_replication.eu_to_us example-assets-eu@eu-west-1

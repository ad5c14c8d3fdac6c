# Look up a bucket created elsewhere; its region is found when not given.
data "tandem_s3_bucket" "logs" {
  bucket = "example-logs"
}

output "logs_region" {
  value = data.tandem_s3_bucket.logs.region
}

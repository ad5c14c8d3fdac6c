//! terraform-provider-tandem: Route 53 failover, S3 replication and proxy fleet config as Terraform resources.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
fn main() {}

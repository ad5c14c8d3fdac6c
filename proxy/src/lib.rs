//! tandem-proxy: an S3 read-through caching proxy that fails over between replica buckets.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

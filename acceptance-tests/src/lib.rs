//! Acceptance harness: real Terraform driving the real provider against emulated AWS.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

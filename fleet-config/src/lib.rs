//! The fleet-config format shared by tandem-proxy and the Terraform provider: types, defaults and validation.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

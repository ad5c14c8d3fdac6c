//! The Tandem Terraform provider: its configuration, the AWS client set it
//! produces, and its resource and data source types (one file each).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod aws;
pub mod fleet;
pub mod model;
pub mod provider;
pub mod route53;
pub mod s3;
#[cfg(test)]
mod testing;

pub use provider::TandemProvider;

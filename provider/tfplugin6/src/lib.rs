//! A generic tfplugin6 provider server: the go-plugin handshake, AutoMTLS
//! with a pinned client certificate, the DynamicValue codec, typed schema
//! building with attribute validators, diagnostics with attribute paths,
//! typed models and default planning rules.
//!
//! It knows nothing about any cloud: a provider implements [`Provider`],
//! [`Resource`] and [`DataSource`] and calls [`run`] from `main`.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod codec;
pub mod diag;
pub mod log;
pub mod model;
pub mod plan;
pub mod plugin;
pub mod provider;
pub mod schema;
pub mod server;
pub mod types;
pub mod validate;
pub mod value;

/// Generated protocol code.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    /// Terraform's plugin protocol 6.
    pub mod tfplugin6 {
        tonic::include_proto!("tfplugin6");
    }
    /// go-plugin's controller, stdio and broker services.
    pub mod plugin {
        tonic::include_proto!("plugin");
    }
    /// gRPC health checking.
    pub mod health {
        tonic::include_proto!("grpc.health.v1");
    }
}

pub use diag::{AttrPath, Diagnostic, Diagnostics, Severity};
pub use model::Field;
pub use provider::{Applied, ApplyError, Ctx, DataSource, Plan, Provider, ReadResult, Resource};
pub use schema::{
    Attribute, Block, IdentityAttribute, IdentitySchema, NestedBlock, Nesting, Schema,
};
pub use types::Type;
pub use validate::Validator;
pub use value::{Number, Value};

/// Runs a provider as a Terraform plugin and returns the process exit code:
/// 0 after Terraform's Shutdown, 1 when run by hand or on set-up failure
/// (with a human message on stderr).
pub async fn run<P: Provider>(provider: P, provider_address: &str, module: &'static str) -> i32 {
    log::init(module);
    let debug = std::env::args()
        .skip(1)
        .any(|a| a == "--debug" || a == "-debug");
    let opts = plugin::ServeOptions {
        provider_address: provider_address.to_string(),
        debug,
    };
    match plugin::serve(provider, opts).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

//! A generic tfplugin6 provider server: go-plugin handshake, AutoMTLS, DynamicValue codec, schema and diagnostics.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

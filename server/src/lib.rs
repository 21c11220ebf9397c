//! The `keyward` binary's library: configuration, start-up, the HTTP
//! surface (console routes, REST API, health), the TLS listener and the
//! command line.

pub mod cli;
pub mod config;
pub mod error;
mod files;
pub mod http;
pub mod serve;
pub mod startup;
pub mod telemetry;
pub mod tls;

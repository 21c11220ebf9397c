//! The console's server functions, one concern per file. Each one checks
//! authorization itself (see `crate::auth`), whatever the page shows.

pub mod admins;
pub mod api_reference;
pub mod audit;
pub mod integrations;
pub mod security;
pub mod session;
pub mod setup;

/// Server functions live under their own prefix so `/api/` stays the REST
/// API's (and its JSON error envelope's) alone.
pub const PREFIX: &str = "/console/fn";

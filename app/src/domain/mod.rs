//! Keyward's domain: keys, tokens, admins, audit and storage. Server only.
//! Both the console's server functions and the REST API call into here;
//! nothing above this layer writes SQL or touches key material.

pub mod admin_tokens;
pub mod admins;
pub mod application;
pub mod audit;
pub mod ca;
pub mod certificates;
pub mod clock;
pub mod csr;
pub mod db;
pub mod error;
pub mod known_users;
pub mod logout_limit;
pub mod metrics;
pub mod mtls;
pub mod password;
pub mod revoked_filter;
pub mod secrets;
pub mod server_keys;
pub mod session_store;
pub mod sessions;
pub mod signing;
pub mod state;
pub mod throttle;
pub mod tokens;
pub mod usage;
pub mod views;
pub mod writer;

pub use error::{DomainError, DomainResult};
pub use state::{Keyward, Lifetimes};

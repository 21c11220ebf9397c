//! Keyward's domain: keys, tokens, admins, audit and storage. Server only.
//! Both the console's server functions and the REST API call into here;
//! nothing above this layer writes SQL or touches key material.

pub mod admins;
pub mod application;
pub mod audit;
pub mod clock;
pub mod db;
pub mod error;
pub mod password;
pub mod secrets;
pub mod session_store;
pub mod state;
pub mod throttle;

pub use error::{DomainError, DomainResult};
pub use state::{Keyward, Lifetimes};

//! Keyward's domain: keys, tokens, admins, audit and storage. Server only.
//!
//! The console's server functions, the REST API and the CLI all come in
//! through one door: the methods of [`Keyward`], each given the
//! [`Principal`] acting. An operation checks its own authorization, does
//! its work in one transaction with its audit event, and refreshes the
//! in-memory views itself. Nothing above this layer writes SQL, touches
//! key material or decides whether a credential is good.
//!
//! The rooms (see ARCHITECTURE.md):
//! - [`credentials`]: the application's API key and modes, server keys,
//!   admin tokens, end-user sessions and the tokens they carry;
//! - [`pki`]: the application's CA, CSRs, client certificates, the mTLS gate;
//! - [`admins`]: console accounts, passwords, the sign-in throttle,
//!   console sessions;
//! - [`storage`]: the database, the batching writer, the in-memory views
//!   and caches;
//! - [`audit`]: the hash-chained log every change is written with;
//!   [`audit_export`] takes it out (JSON Lines) and checks such a copy;
//! - [`webhooks`]: endpoints told of changes, signed and delivered from
//!   an outbox written with each audit event.

pub mod admins;
pub mod application;
pub mod audit;
pub mod audit_export;
mod background;
pub mod clock;
pub mod credentials;
pub mod error;
pub mod ids;
pub mod keyring;
mod keyward;
pub mod metrics;
pub mod pki;
pub mod principal;
pub mod secrets;
pub mod storage;
pub mod traces;
pub mod webhooks;

pub use error::{DomainError, DomainResult, Entity};
pub use keyward::{Keyward, Lifetimes, Mode, Settings};
pub use principal::{Principal, Role};

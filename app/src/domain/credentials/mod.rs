//! What callers present to Keyward, and what it issues: the application's
//! API key (in `application`), server keys, admin tokens, end-user
//! sessions and the signed tokens they carry.

pub mod admin_tokens;
pub mod end_users;
pub mod logout_limit;
pub mod server_keys;
pub mod sessions;
pub mod signing;
pub mod tokens;

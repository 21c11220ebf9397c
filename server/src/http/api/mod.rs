//! The REST API (SPEC §5), wire-compatible with the public Social Plus API.
//! Every error, including malformed JSON, missing headers, oversized bodies
//! and unknown routes, is the JSON envelope of [`ApiError`].

mod admin;
mod auth_tokens;
mod error;
mod extract;
mod sessions;

use axum::routing::{delete, get, post};
use axum::Router;

pub use error::ApiError;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v3/sessions", post(sessions::create))
        .route("/v4/sessions", post(sessions::create).delete(sessions::logout))
        .route("/v5/sessions", post(sessions::create))
        .route("/v3/sessions/current", get(sessions::current))
        .route("/v3/network-settings/chat", get(sessions::chat_network_settings))
        .route("/v3/authentication/token", get(auth_tokens::mint_v3))
        .route("/v4/authentication/token", post(auth_tokens::mint_v4))
        .route("/v4/users/{user_id}/sessions", delete(admin::revoke_user_sessions))
        .route("/v1/admins/me", get(admin::me))
        .route("/v1/admin-token", post(admin::rotate_token).delete(admin::revoke_token))
        .route("/v1/settings", get(admin::settings).patch(admin::update_settings))
        .route("/v1/server-keys", post(admin::generate_server_key))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not found".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::NotFound("Not found".into())
}

//! The REST API (SPEC §5), wire-compatible with the public Social Plus API.
//! Every error, including malformed JSON, missing headers, oversized bodies
//! and unknown routes, is the JSON envelope of [`ApiError`].

mod admin;
pub(crate) mod audit_stream;
mod auth_tokens;
mod certificates;
mod docs;
mod error;
mod extract;
mod sessions;
mod webhooks;

use axum::routing::{delete, get, post};
use axum::Router;

pub use docs::document as openapi_document;
pub use error::{AdminTokenRefusals, ApiError, ErrorBody};

/// `{"success": true}`: what an action with nothing else to tell answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Success {
    pub success: bool,
}

impl Success {
    pub const YES: Success = Success { success: true };
}

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(docs::openapi_json))
        .route("/v3/sessions", post(sessions::create).get(sessions::verify))
        .route("/v4/sessions", post(sessions::create).delete(sessions::delete))
        .route("/v5/sessions", post(sessions::create))
        .route("/v3/sessions/current", get(sessions::verify))
        .route("/v3/network-settings/chat", get(sessions::chat_network_settings))
        .route("/v3/authentication/token", get(auth_tokens::mint_v3))
        .route("/v4/authentication/token", post(auth_tokens::mint_v4))
        .route("/v4/users/{user_id}/sessions", delete(admin::revoke_user_sessions))
        .route("/v4/sessions/users/{user_id}", delete(admin::revoke_user_sessions))
        .route("/v1/admins/me", get(admin::me))
        .route("/v1/admin-token", post(admin::rotate_token).delete(admin::revoke_token))
        .route("/v1/settings", get(admin::settings).patch(admin::update_settings))
        .route(
            "/v1/server-keys",
            get(admin::list_server_keys).post(admin::generate_server_key),
        )
        .route("/v1/certificates", get(certificates::list).post(certificates::create))
        .route(
            "/v1/certificates/{id}",
            get(certificates::get).delete(certificates::revoke),
        )
        .route("/v1/certificates/{id}/renew", post(certificates::renew))
        .route("/v1/audit-events", get(admin::audit_events))
        .route("/v1/audit-events/export", get(audit_stream::export))
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get).patch(webhooks::update).delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/test", post(webhooks::test))
        .route("/v1/ca.pem", get(certificates::ca_pem))
        .route("/v1/crl.pem", get(certificates::crl_pem))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Social Plus's admin-token paths, outside `/api` (mounted at `/admin`):
/// the same handlers and rules as Keyward's `/api/v1/admin-token`.
pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/token",
            post(admin::rotate_token).delete(admin::revoke_token_by_body),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Paths that answer as the API: tokens in headers, errors in the envelope.
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/admin/")
}

/// Answers that did not come from a handler (the body-size limit, axum's
/// own extractor rejections) still leave in the error envelope.
/// Applied around the whole app (outside the body-size limit), for `/api/` paths.
pub async fn envelope_everything(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let is_api = is_api_path(req.uri().path());
    let res = next.run(req).await;
    if !is_api {
        return res;
    }
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BadRequest("The request body is larger than 64 KiB".into()),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => ApiError::NotFound("Not found".into()),
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized("Unauthorized".into()),
        StatusCode::FORBIDDEN => ApiError::Forbidden("Forbidden".into()),
        s if s.is_client_error() => ApiError::BadRequest("Bad request".into()),
        s => ApiError::Internal(format!("unhandled status {s}")),
    };
    error.into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not found".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::NotFound("Not found".into())
}

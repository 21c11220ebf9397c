//! `POST /api/v{3,4,5}/sessions` and what an access token can do.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use app::domain::clock::iso;
use app::domain::credentials::sessions::{SessionRequest, UserRef};

use super::extract::{AccessToken, AdminToken, ApiJson, ApiKey, ApiQuery};
use super::{ApiError, ErrorBody, Success};
use crate::http::AppState;

// No Debug: it carries the auth token.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionBody {
    /// A new userId is a new user; `ADMIN_` and `DELETED_` are reserved.
    #[schema(min_length = 1, max_length = 50)]
    user_id: String,
    #[schema(min_length = 1, max_length = 150)]
    device_id: String,
    /// Updates the user's display name.
    #[schema(max_length = 100)]
    display_name: Option<String>,
    /// `{kind, model, sdkVersion}`, as the SDKs send it.
    #[schema(value_type = Option<Object>)]
    device_info: Option<Value>,
    /// Required in secure mode: minted by the customer's backend.
    auth_token: Option<String>,
}

/// The session response, typed: the wire format in one place, written
/// straight from the issued session (this is the hot path of SPEC §8).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionResponse<'a> {
    access_token: &'a str,
    issued_at: String,
    expires_at: String,
    users: [UserBody<'a>; 1],
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserBody<'a> {
    #[serde(rename = "_id")]
    id: &'a str,
    user_id: &'a str,
    display_name: Option<&'a str>,
    created_at: String,
    updated_at: String,
}

/// Opens a session. A renewal's `Authorization: Bearer <previous token>`
/// and the `set-access-token-cookie` header of the official SDKs are
/// accepted and need nothing more: the new token stands on its own.
#[utoipa::path(
    post,
    path = "/api/v3/sessions",
    tag = "Sessions",
    summary = "Register a session (also /api/v4/sessions and /api/v5/sessions)",
    request_body = SessionBody,
    responses(
        (status = 200, description = "The session's access token and its user", body = SessionResponse),
        (status = 400, description = "A malformed or invalid body", body = ErrorBody),
        (status = 401, description = "No or a wrong API key; in secure mode, no or a bad auth token", body = ErrorBody),
        (status = 403, description = "Keyward is not set up yet", body = ErrorBody),
        (status = 429, description = "Too many new sessions", body = ErrorBody),
    ),
    security(("apiKey" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    _key: ApiKey,
    ApiJson(body): ApiJson<SessionBody>,
) -> Result<Response, ApiError> {
    let req = SessionRequest {
        user_id: body.user_id,
        device_id: body.device_id,
        display_name: body.display_name,
        device_info: body.device_info,
        auth_token: body.auth_token,
    };
    let issued = state.keyward.open_session(req).await?;
    let u = &issued.user;
    let body = SessionResponse {
        access_token: &issued.access_token,
        issued_at: iso(issued.claims.iat),
        expires_at: iso(issued.claims.exp),
        users: [UserBody {
            id: &u.id,
            user_id: &u.user_id,
            display_name: u.display_name.as_deref(),
            created_at: iso(u.created_at),
            updated_at: iso(u.updated_at),
        }],
    };
    Ok(Json(body).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// With an admin token: revoke every access token of this user.
    user_id: Option<String>,
    /// Social Plus's flag: `false` means userId is Keyward's own id for
    /// the user (`_id` in a session answer). Default `true`.
    is_public: Option<bool>,
}

/// Names the user as `isPublic` says.
pub(super) fn user_ref(user_id: &str, is_public: Option<bool>) -> UserRef<'_> {
    if is_public == Some(false) {
        UserRef::InternalId(user_id)
    } else {
        UserRef::UserId(user_id)
    }
}

/// `DELETE /api/v4/sessions`: with an access token, that token is dead
/// (a logout); with `?userId=` and an admin token, every access token of
/// that user is (Social Plus's admin revocation).
#[utoipa::path(
    delete,
    path = "/api/v4/sessions",
    tag = "Sessions",
    summary = "Log out this access token, or (with userId and an admin token) revoke all of a user's",
    params(DeleteQuery),
    responses(
        (status = 200, description = "Done", body = Success),
        (status = 400, description = "A malformed query", body = ErrorBody),
        (status = 401, description = "No or a bad token", body = ErrorBody),
        (status = 403, description = "mTLS is on and the request did not come with a certificate", body = ErrorBody),
        (status = 404, description = "userId Not Found.", body = ErrorBody),
        (status = 429, description = "Too many logouts for this user", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
    mut parts: Parts,
) -> Result<Json<Success>, ApiError> {
    match q.user_id {
        Some(user_id) => {
            let admin = AdminToken::from_request_parts(&mut parts, &state).await?;
            state
                .keyward
                .revoke_user_sessions(admin.principal(), user_ref(&user_id, q.is_public))
                .await?;
        }
        None => {
            let AccessToken(claims) = AccessToken::from_request_parts(&mut parts, &state).await?;
            state.keyward.log_out(&claims).await?;
        }
    }
    Ok(Json(Success::YES))
}

/// `GET /api/v3/sessions` (Social Plus) and `GET /api/v3/sessions/current`:
/// the access token is live. `lastCachePurge` is Social Plus's "purge what
/// you cached before this": Keyward never asks for a purge, so it is the
/// token's own issue time, before anything the client cached with it.
#[utoipa::path(
    get,
    path = "/api/v3/sessions",
    tag = "Sessions",
    summary = "Verify an access token (also /api/v3/sessions/current)",
    responses(
        (status = 200, description = "The token is live", body = VerifiedSession),
        (status = 401, description = "The token is invalid or expired", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn verify(AccessToken(claims): AccessToken) -> Json<VerifiedSession> {
    Json(VerifiedSession {
        user_id: claims.user_id,
        device_id: claims.device_id,
        issued_at: iso(claims.iat),
        expires_at: iso(claims.exp),
        last_cache_purge: iso(claims.iat),
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedSession {
    user_id: String,
    device_id: String,
    issued_at: String,
    expires_at: String,
    last_cache_purge: String,
}

/// What the official SDKs read right after login.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatSettings {
    message_preview: MessagePreview,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePreview {
    enabled: bool,
    is_include_deleted: bool,
}

/// Read by the official SDKs right after login.
#[utoipa::path(
    get,
    path = "/api/v3/network-settings/chat",
    tag = "Sessions",
    summary = "Chat network settings, as the SDKs read them",
    responses(
        (status = 200, description = "Message previews are off", body = ChatSettings),
        (status = 401, description = "No or a bad access token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn chat_network_settings(_token: AccessToken) -> Json<ChatSettings> {
    Json(ChatSettings {
        message_preview: MessagePreview {
            enabled: false,
            is_include_deleted: false,
        },
    })
}

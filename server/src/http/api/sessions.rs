//! `POST /api/v{3,4,5}/sessions` and what an access token can do.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use app::domain::clock::iso;
use app::domain::credentials::sessions::SessionRequest;

use super::extract::{AccessToken, AdminToken, ApiJson, ApiKey, ApiQuery};
use super::ApiError;
use crate::http::AppState;

// No Debug: it carries the auth token.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionBody {
    user_id: String,
    device_id: String,
    display_name: Option<String>,
    device_info: Option<Value>,
    auth_token: Option<String>,
}

/// The session response, typed: the wire format in one place, written
/// straight from the issued session (this is the hot path of SPEC §8).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionResponse<'a> {
    access_token: &'a str,
    issued_at: String,
    expires_at: String,
    users: [UserBody<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserBody<'a> {
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteQuery {
    user_id: Option<String>,
    /// Social Plus's flag for "userId is the public id", the only kind
    /// Keyward's API speaks.
    is_public: Option<bool>,
}

/// `DELETE /api/v4/sessions`: with an access token, that token is dead
/// (a logout); with `?userId=` and an admin token, every access token of
/// that user is (Social Plus's admin revocation).
pub async fn delete(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
    mut parts: Parts,
) -> Result<Json<Value>, ApiError> {
    match q.user_id {
        Some(user_id) => {
            if q.is_public == Some(false) {
                return Err(ApiError::Validation {
                    message: "isPublic=false is not supported: give the public userId".into(),
                    detail: vec!["isPublic: only true (the public userId) is supported".into()],
                });
            }
            let admin = AdminToken::from_request_parts(&mut parts, &state).await?;
            state.keyward.revoke_user_sessions(admin.principal(), &user_id).await?;
        }
        None => {
            let AccessToken(claims) = AccessToken::from_request_parts(&mut parts, &state).await?;
            state.keyward.log_out(&claims).await?;
        }
    }
    Ok(Json(json!({ "success": true })))
}

/// `GET /api/v3/sessions` (Social Plus) and `GET /api/v3/sessions/current`:
/// the access token is live. `lastCachePurge` is Social Plus's "purge what
/// you cached before this": Keyward never asks for a purge, so it is the
/// token's own issue time, before anything the client cached with it.
pub async fn verify(AccessToken(claims): AccessToken) -> Json<Value> {
    Json(json!({
        "userId": claims.user_id,
        "deviceId": claims.device_id,
        "issuedAt": iso(claims.iat),
        "expiresAt": iso(claims.exp),
        "lastCachePurge": iso(claims.iat),
    }))
}

/// Read by the official SDKs right after login.
pub async fn chat_network_settings(_token: AccessToken) -> Json<Value> {
    Json(json!({ "messagePreview": { "enabled": false, "isIncludeDeleted": false } }))
}

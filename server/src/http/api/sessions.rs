//! `POST /api/v{3,4,5}/sessions` and what an access token can do.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use app::domain::clock::iso;
use app::domain::credentials::sessions::SessionRequest;

use super::extract::{AccessToken, ApiJson, ApiKey};
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

/// `DELETE /api/v4/sessions`: this access token is dead.
pub async fn logout(State(state): State<AppState>, AccessToken(claims): AccessToken) -> Result<Json<Value>, ApiError> {
    state.keyward.log_out(&claims).await?;
    Ok(Json(json!({ "success": true })))
}

pub async fn current(AccessToken(claims): AccessToken) -> Json<Value> {
    Json(json!({
        "userId": claims.user_id,
        "deviceId": claims.device_id,
        "issuedAt": iso(claims.iat),
        "expiresAt": iso(claims.exp),
    }))
}

/// Read by the official SDKs right after login.
pub async fn chat_network_settings(_token: AccessToken) -> Json<Value> {
    Json(json!({ "messagePreview": { "enabled": false, "isIncludeDeleted": false } }))
}

//! `POST /api/v{3,4,5}/sessions` and what an access token can do.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use app::domain::clock::iso;
use app::domain::sessions::{self, SessionRequest};

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

/// Opens a session. A renewal's `Authorization: Bearer <previous token>`
/// and the `set-access-token-cookie` header of the official SDKs are
/// accepted and need nothing more: the new token stands on its own.
pub async fn create(
    State(state): State<AppState>,
    _key: ApiKey,
    ApiJson(body): ApiJson<SessionBody>,
) -> Result<Json<Value>, ApiError> {
    let req = SessionRequest {
        user_id: body.user_id,
        device_id: body.device_id,
        display_name: body.display_name,
        device_info: body.device_info,
        auth_token: body.auth_token,
    };
    let issued = sessions::create(&state.keyward, req).await?;
    let u = &issued.user;
    Ok(Json(json!({
        "accessToken": issued.access_token,
        "issuedAt": iso(issued.claims.iat),
        "expiresAt": iso(issued.claims.exp),
        "users": [{
            "_id": u.id,
            "userId": u.user_id,
            "displayName": u.display_name,
            "createdAt": iso(u.created_at),
            "updatedAt": iso(u.updated_at),
        }],
    })))
}

/// `DELETE /api/v4/sessions`: this access token is dead.
pub async fn logout(State(state): State<AppState>, AccessToken(claims): AccessToken) -> Result<Json<Value>, ApiError> {
    sessions::revoke_session(&state.keyward, &claims).await?;
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

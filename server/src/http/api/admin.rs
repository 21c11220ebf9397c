//! The admin API: everything an admin can do in the console, with an admin
//! token. Super-admin actions are console and CLI only.

use axum::extract::{Path, State};
use axum::Json;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};

use app::domain::clock::iso;
use app::domain::credentials::server_keys::KeyStatus;
use app::domain::{application, audit};

use super::extract::{json_or_default, AdminToken, ApiJson, ApiQuery};
use super::ApiError;
use crate::http::AppState;

/// Answered from the in-memory view: no database on this path.
pub async fn me(token: AdminToken) -> Json<Value> {
    let holder = &token.0;
    // The presented token may be the superseded one, still in its switch-over.
    let status = if holder.current { "active" } else { "switching" };
    Json(json!({
        "username": holder.principal.name(),
        "role": holder.principal.role().as_str(),
        "tokenExpiresAt": iso(holder.expires_at),
        "tokenStatus": status,
    }))
}

/// `POST /api/v1/admin-token`: a new token; the presented one keeps
/// working for the switch-over.
pub async fn rotate_token(State(state): State<AppState>, token: AdminToken) -> Result<Json<Value>, ApiError> {
    let issued = state.keyward.generate_admin_token(token.principal(), None).await?;
    Ok(Json(json!({
        "adminToken": issued.token.expose_secret(),
        "issuedAt": iso(issued.issued_at),
        "expiresAt": iso(issued.expires_at),
    })))
}

#[derive(Debug, Deserialize)]
pub struct ByUsername {
    username: String,
}

/// `DELETE /api/v1/admin-token?username=X`: X must be the caller.
pub async fn revoke_token(
    State(state): State<AppState>,
    token: AdminToken,
    ApiQuery(q): ApiQuery<ByUsername>,
) -> Result<Json<Value>, ApiError> {
    revoke(&state, &token, &q.username).await
}

/// `DELETE /admin/v1/token` with `{"username": X}` (Social Plus's path).
pub async fn revoke_token_by_body(
    State(state): State<AppState>,
    token: AdminToken,
    ApiJson(body): ApiJson<ByUsername>,
) -> Result<Json<Value>, ApiError> {
    revoke(&state, &token, &body.username).await
}

async fn revoke(state: &AppState, token: &AdminToken, username: &str) -> Result<Json<Value>, ApiError> {
    state
        .keyward
        .revoke_admin_token(token.principal(), username)
        .await
        .map_err(|e| match e {
            app::domain::DomainError::Forbidden => {
                ApiError::PermissionDenied("You may revoke only your own token".into())
            }
            other => other.into(),
        })?;
    Ok(Json(json!({ "success": true })))
}

/// `DELETE /api/v4/sessions/users/{userId}` (Social Plus) and
/// `DELETE /api/v4/users/{userId}/sessions`: all of that user's access
/// tokens die.
pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    token: AdminToken,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.keyward.revoke_user_sessions(token.principal(), &user_id).await?;
    Ok(Json(json!({ "success": true })))
}

fn settings_json(app: &application::Application) -> Json<Value> {
    Json(json!({
        "apiKey": app.api_key,
        "region": app.region,
        "regionUrl": app.region_url,
        "secureMode": app.secure_mode,
        "mtls": app.mtls,
    }))
}

pub async fn settings(State(state): State<AppState>, token: AdminToken) -> Result<Json<Value>, ApiError> {
    Ok(settings_json(&state.keyward.application(token.principal()).await?))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsPatch {
    secure_mode: Option<bool>,
    mtls: Option<bool>,
    /// Super admins only: eu, sg, us or a custom label (with `regionUrl`).
    region: Option<String>,
    region_url: Option<String>,
}

pub async fn update_settings(
    State(state): State<AppState>,
    token: AdminToken,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> Result<Json<Value>, ApiError> {
    if let Some(region) = &patch.region {
        state
            .keyward
            .set_region(token.principal(), region, patch.region_url.as_deref())
            .await
            .map_err(|e| match e {
                app::domain::DomainError::Forbidden => {
                    ApiError::PermissionDenied("Only a super admin may change the region".into())
                }
                other => other.into(),
            })?;
    } else if patch.region_url.is_some() {
        return Err(ApiError::Validation {
            message: "regionUrl goes with region".into(),
            detail: vec!["regionUrl: give region too".into()],
        });
    }
    let app = state
        .keyward
        .set_modes(token.principal(), patch.secure_mode, patch.mtls)
        .await?;
    Ok(settings_json(&app))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewKey {
    overlap_seconds: Option<i64>,
}

/// `POST /api/v1/server-keys`: the only time the key is shown.
pub async fn generate_server_key(
    State(state): State<AppState>,
    token: AdminToken,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let overlap = json_or_default::<NewKey>(&body)?.overlap_seconds.unwrap_or(0);
    let key = state.keyward.generate_server_key(token.principal(), overlap).await?;
    Ok(Json(json!({
        "serverKey": key.key.expose_secret(),
        "prefix": key.prefix,
        "createdAt": iso(key.created_at),
    })))
}

/// `GET /api/v1/server-keys`: the keys as the console lists them (prefix,
/// created, last used, status); a key itself is never shown again.
pub async fn list_server_keys(State(state): State<AppState>, token: AdminToken) -> Result<Json<Value>, ApiError> {
    let keys = state.keyward.server_keys(token.principal()).await?;
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            let (status, retires_at) = match k.status {
                KeyStatus::Active => ("active", None),
                KeyStatus::RetiringUntil(t) => ("retiring", Some(iso(t))),
                KeyStatus::Retired => ("retired", None),
            };
            json!({
                "id": k.id,
                "prefix": k.prefix,
                "createdAt": iso(k.created_at),
                "lastUsedAt": k.last_used_at.map(iso),
                "status": status,
                "retiresAt": retires_at,
            })
        })
        .collect();
    Ok(Json(json!({ "serverKeys": keys })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    before: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/audit-events?actor=&action=&target=&before=&limit=`: the
/// audit log as the console's page shows it, newest first; `nextBefore`
/// fetches the older page.
pub async fn audit_events(
    State(state): State<AppState>,
    token: AdminToken,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = audit::Filter {
        actor: q.actor,
        action: q.action,
        target: q.target,
    };
    let (_, found) = state
        .keyward
        .audit_page(token.principal(), filter, q.before, q.limit)
        .await?;
    let events: Vec<Value> = found
        .events
        .into_iter()
        .map(|e| {
            json!({
                "seq": e.seq,
                "at": iso(e.at),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::String(e.detail)),
                "source": e.source,
            })
        })
        .collect();
    Ok(Json(json!({ "events": events, "nextBefore": found.older_than })))
}

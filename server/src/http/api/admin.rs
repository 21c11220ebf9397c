//! The admin API: everything an admin can do in the console, with an admin
//! token. Super-admin actions are console and CLI only.

use axum::extract::{Path, State};
use axum::Json;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use app::domain::clock::iso;
use app::domain::credentials::server_keys::KeyStatus;
use app::domain::{application, audit};

use super::extract::{json_or_default, AdminToken, ApiJson, ApiQuery};
use super::{AdminTokenRefusals, ApiError, ErrorBody, Success};
use crate::http::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminMe {
    username: String,
    /// `admin` or `super_admin`.
    role: &'static str,
    token_expires_at: String,
    /// `active`, or `switching` for the token a newer one superseded.
    token_status: &'static str,
}

/// Answered from the in-memory view: no database on this path.
#[utoipa::path(
    get,
    path = "/api/v1/admins/me",
    tag = "Admin",
    summary = "The admin holding this token",
    responses((status = 200, description = "The token's holder", body = AdminMe), AdminTokenRefusals),
    security(("bearer" = []))
)]
pub async fn me(token: AdminToken) -> Json<AdminMe> {
    let holder = &token.0;
    // The presented token may be the superseded one, still in its switch-over.
    let status = if holder.current { "active" } else { "switching" };
    Json(AdminMe {
        username: holder.principal.name().to_owned(),
        role: holder.principal.role().as_str(),
        token_expires_at: iso(holder.expires_at),
        token_status: status,
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedAdminToken {
    /// The new token (`kwadm_…`), shown here once.
    admin_token: String,
    issued_at: String,
    expires_at: String,
}

/// `POST /api/v1/admin-token` and `POST /admin/v1/token`: a new token;
/// the presented one keeps working for the switch-over (or until it
/// expires, if sooner).
#[utoipa::path(
    post,
    path = "/api/v1/admin-token",
    tag = "Admin",
    summary = "Generate a new admin token (also POST /admin/v1/token)",
    responses(
        (status = 200, description = "The new token; the presented one keeps working for the switch-over, or until it expires if sooner", body = IssuedAdminToken),
        (status = 409, description = "The token is already being switched over", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn rotate_token(
    State(state): State<AppState>,
    token: AdminToken,
) -> Result<Json<IssuedAdminToken>, ApiError> {
    let issued = state
        .keyward
        .generate_admin_token(token.principal(), None, None, None)
        .await?;
    Ok(Json(IssuedAdminToken {
        admin_token: issued.token.expose_secret().to_owned(),
        issued_at: iso(issued.issued_at),
        expires_at: iso(issued.expires_at),
    }))
}

#[derive(Debug, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ByUsername {
    /// The caller's own username.
    username: String,
}

/// `DELETE /api/v1/admin-token?username=X`: X must be the caller.
#[utoipa::path(
    delete,
    path = "/api/v1/admin-token",
    tag = "Admin",
    summary = "Revoke your own admin token (and the one in its switch-over)",
    params(ByUsername),
    responses(
        (status = 200, description = "Revoked", body = Success),
        (status = 400, description = "No username", body = ErrorBody),
        (status = 401, description = "No, a bad or an expired admin token", body = ErrorBody),
        (status = 403, description = "Not your own (400301), or mTLS refused the request (400300)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    token: AdminToken,
    ApiQuery(q): ApiQuery<ByUsername>,
) -> Result<Json<Success>, ApiError> {
    revoke(&state, &token, &q.username).await
}

/// `DELETE /admin/v1/token` with `{"username": X}` (Social Plus's path).
#[utoipa::path(
    delete,
    path = "/admin/v1/token",
    tag = "Admin",
    summary = "Revoke your own admin token (Social Plus's path)",
    request_body = ByUsername,
    responses(
        (status = 200, description = "Revoked", body = Success),
        (status = 400, description = "A malformed body or no username", body = ErrorBody),
        (status = 401, description = "No, a bad or an expired admin token", body = ErrorBody),
        (status = 403, description = "Not your own (400301), or mTLS refused the request (400300)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_token_by_body(
    State(state): State<AppState>,
    token: AdminToken,
    ApiJson(body): ApiJson<ByUsername>,
) -> Result<Json<Success>, ApiError> {
    revoke(&state, &token, &body.username).await
}

async fn revoke(state: &AppState, token: &AdminToken, username: &str) -> Result<Json<Success>, ApiError> {
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
    Ok(Json(Success::YES))
}

/// `DELETE /api/v4/sessions/users/{userId}` (Social Plus) and
/// `DELETE /api/v4/users/{userId}/sessions`: all of that user's access
/// tokens die.
#[utoipa::path(
    delete,
    path = "/api/v4/sessions/users/{userId}",
    tag = "Sessions",
    summary = "Revoke every access token of a user (also /api/v4/users/{userId}/sessions)",
    params(
        ("userId" = String, Path, description = "The user's public id, or with isPublic=false Keyward's own (`_id`)"),
        IsPublic
    ),
    responses(
        (status = 200, description = "Every access token of the user is dead", body = Success),
        (status = 400, description = "A bad userId", body = ErrorBody),
        (status = 404, description = "userId Not Found.", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    token: AdminToken,
    Path(user_id): Path<String>,
    ApiQuery(q): ApiQuery<IsPublic>,
) -> Result<Json<Success>, ApiError> {
    let user = super::sessions::user_ref(&user_id, q.is_public);
    state.keyward.revoke_user_sessions(token.principal(), user).await?;
    Ok(Json(Success::YES))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct IsPublic {
    /// `false`: the path's userId is Keyward's own id for the user. Default `true`.
    is_public: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    api_key: String,
    /// eu, sg, us, or a custom region's label.
    region: String,
    /// A custom region's public base URL.
    region_url: Option<String>,
    secure_mode: bool,
    mtls: bool,
}

fn settings_json(app: application::Application) -> Json<Settings> {
    Json(Settings {
        api_key: app.api_key,
        region: app.region,
        region_url: app.region_url,
        secure_mode: app.secure_mode,
        mtls: app.mtls,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/settings",
    tag = "Admin",
    summary = "The application's settings",
    responses((status = 200, description = "The settings", body = Settings), AdminTokenRefusals),
    security(("bearer" = []))
)]
pub async fn settings(State(state): State<AppState>, token: AdminToken) -> Result<Json<Settings>, ApiError> {
    Ok(settings_json(state.keyward.application(token.principal()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsPatch {
    secure_mode: Option<bool>,
    mtls: Option<bool>,
    /// Changing the region is a super admin's, and super admins hold no
    /// admin token: through this API it is always refused (400301).
    region: Option<String>,
    region_url: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/settings",
    tag = "Admin",
    summary = "Turn secure mode or mTLS on or off (the region is changed in the console or the CLI)",
    request_body = SettingsPatch,
    responses(
        (status = 200, description = "The settings after the change", body = Settings),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 401, description = "No, a bad or an expired admin token", body = ErrorBody),
        (status = 403, description = "Changing the region is a super admin's (400301), or mTLS refused the request (400300)", body = ErrorBody),
        (status = 409, description = "mTLS needs secure mode and an active certificate first", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_settings(
    State(state): State<AppState>,
    token: AdminToken,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> Result<Json<Settings>, ApiError> {
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
    Ok(settings_json(app))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewKey {
    /// How long the previous key keeps working: 0 (the default) to 86400.
    overlap_seconds: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewServerKey {
    /// The key (`kwsk_…`), shown here once.
    server_key: String,
    prefix: String,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerKeys {
    /// Newest first.
    server_keys: Vec<ServerKeyItem>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerKeyItem {
    id: String,
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
    /// `active`, `retiring` (until `retiresAt`) or `retired`.
    status: &'static str,
    retires_at: Option<String>,
}

/// `POST /api/v1/server-keys`: the only time the key is shown.
#[utoipa::path(
    post,
    path = "/api/v1/server-keys",
    tag = "Admin",
    summary = "Generate a new server key (the previous one retires)",
    request_body(content = Option<NewKey>, description = "Optional; an empty body means no overlap"),
    responses(
        (status = 200, description = "The new key, shown only here", body = NewServerKey),
        (status = 400, description = "A malformed body or an overlap out of range", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn generate_server_key(
    State(state): State<AppState>,
    token: AdminToken,
    body: axum::body::Bytes,
) -> Result<Json<NewServerKey>, ApiError> {
    let overlap = json_or_default::<NewKey>(&body)?.overlap_seconds.unwrap_or(0);
    let key = state
        .keyward
        .generate_server_key(token.principal(), overlap, None)
        .await?;
    Ok(Json(NewServerKey {
        server_key: key.key.expose_secret().to_owned(),
        prefix: key.prefix,
        created_at: iso(key.created_at),
    }))
}

/// `GET /api/v1/server-keys`: the keys as the console lists them (prefix,
/// created, last used, status); a key itself is never shown again.
#[utoipa::path(
    get,
    path = "/api/v1/server-keys",
    tag = "Admin",
    summary = "The server keys as the console lists them; never a key itself",
    responses((status = 200, description = "The keys, newest first", body = ServerKeys), AdminTokenRefusals),
    security(("bearer" = []))
)]
pub async fn list_server_keys(State(state): State<AppState>, token: AdminToken) -> Result<Json<ServerKeys>, ApiError> {
    let keys = state.keyward.server_keys(token.principal()).await?;
    let server_keys = keys
        .into_iter()
        .map(|k| {
            let (status, retires_at) = match k.status {
                KeyStatus::Active => ("active", None),
                KeyStatus::RetiringUntil(t) => ("retiring", Some(iso(t))),
                KeyStatus::Retired => ("retired", None),
            };
            ServerKeyItem {
                id: k.id,
                prefix: k.prefix,
                created_at: iso(k.created_at),
                last_used_at: k.last_used_at.map(iso),
                status,
                retires_at,
            }
        })
        .collect();
    Ok(Json(ServerKeys { server_keys }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
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

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvents {
    /// Newest first.
    events: Vec<AuditEventItem>,
    /// Pass as `before` for the next, older page; none at the end.
    next_before: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventItem {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    target: String,
    /// What the event records besides (never a secret): any JSON value,
    /// `null` when there is nothing more.
    detail: Value,
    /// Where from: the client's address, or `cli`.
    source: String,
}

/// `GET /api/v1/audit-events?actor=&action=&target=&before=&limit=`: the
/// audit log as the console's page shows it, newest first; `nextBefore`
/// fetches the older page.
#[utoipa::path(
    get,
    path = "/api/v1/audit-events",
    tag = "Admin",
    summary = "A page of the audit log",
    params(AuditQuery),
    responses(
        (status = 200, description = "The page", body = AuditEvents),
        (status = 400, description = "A malformed query or a limit out of range", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn audit_events(
    State(state): State<AppState>,
    token: AdminToken,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditEvents>, ApiError> {
    let filter = audit::Filter {
        actor: q.actor,
        action: q.action,
        target: q.target,
        ..Default::default()
    };
    let (_, found) = state
        .keyward
        .audit_page(token.principal(), filter, q.before, q.limit)
        .await?;
    let events = found
        .events
        .into_iter()
        .map(|e| AuditEventItem {
            seq: e.seq,
            at: iso(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: audit::detail_value(e.detail),
            source: e.source,
        })
        .collect();
    Ok(Json(AuditEvents {
        events,
        next_before: found.older_than,
    }))
}

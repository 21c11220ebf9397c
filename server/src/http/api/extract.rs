//! Extractors that turn every malformed request into the error envelope,
//! and the credential checks: each handler names the credential it needs
//! in its signature, so it cannot run without the check.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;

use app::auth::ClientAddr;
use app::domain::admin_tokens::{self, Refusal};
use app::domain::admins::{Actor, Credential};
use app::domain::clock::now_ms;
use app::domain::mtls::{self, Transport};
use app::domain::secrets::{ct_eq, sha256};
use app::domain::sessions;
use app::domain::tokens::AccessClaims;
use app::domain::views::AdminTokenView;
use app::model::Role;

use super::ApiError;
use crate::http::AppState;

/// A JSON body; any decoding failure is a 400 envelope.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::BadRequest("Content-Type must be application/json".into()))
            }
            Err(JsonRejection::JsonSyntaxError(_)) => Err(ApiError::BadRequest("The body is not valid JSON".into())),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::BadRequest(data_error(&e.body_text()))),
            Err(JsonRejection::BytesRejection(e)) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::BadRequest("The body is too large".into()))
            }
            Err(_) => Err(ApiError::BadRequest("The body could not be read".into())),
        }
    }
}

/// An optional JSON body: empty means all defaults.
pub fn json_or_default<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("Invalid body: {e}")))
}

/// serde's message names the field and the problem; drop axum's preamble.
fn data_error(text: &str) -> String {
    let detail = text.split_once(": ").map(|(_, d)| d).unwrap_or(text);
    format!("Invalid body: {detail}")
}

/// Query parameters; failures are a 400 envelope.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e: QueryRejection| ApiError::BadRequest(data_error(&e.body_text())))
    }
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = header(parts, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// A request that carried this application's API key.
pub struct ApiKey;

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let app = state
            .keyward
            .views
            .app()
            .ok_or_else(|| ApiError::Forbidden("Keyward has not been set up yet".into()))?;
        let given =
            header(parts, "x-api-key").ok_or_else(|| ApiError::Unauthorized("X-API-Key header is required".into()))?;
        if ct_eq(given.as_bytes(), app.api_key.as_bytes()) {
            Ok(ApiKey)
        } else {
            Err(ApiError::Unauthorized("Invalid API key".into()))
        }
    }
}

/// While mTLS is on, the credential endpoints (auth-token minting and every
/// admin-token endpoint) answer only requests that arrived with a good
/// client certificate. Checked before the credential, so a caller without
/// a certificate learns nothing about the credential it sent.
fn require_mtls(parts: &Parts, state: &AppState) -> Result<(), ApiError> {
    let views = &state.keyward.views;
    if !views.mtls_on() {
        return Ok(());
    }
    let transport = parts.extensions.get::<Transport>().unwrap_or(&Transport::PlainHttp);
    mtls::check(views, transport, now_ms())
        .map(|_| ())
        .map_err(|refusal| ApiError::Forbidden(refusal.message().into()))
}

/// A request that carried a live server key.
pub struct ServerKey;

impl FromRequestParts<AppState> for ServerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        require_mtls(parts, state)?;
        let given = header(parts, "x-server-key")
            .ok_or_else(|| ApiError::Unauthorized("X-Server-Key header is required".into()))?;
        let kw = &state.keyward;
        let now = now_ms();
        match kw.views.server_key(&sha256(given.as_bytes())) {
            Some(key) if key.retires_at.is_none_or(|t| t > now) => {
                kw.usage.server_key_used(&key.id, now);
                Ok(ServerKey)
            }
            _ => Err(ApiError::Unauthorized("Invalid server key".into())),
        }
    }
}

/// A request that carried a live access token.
pub struct AccessToken(pub AccessClaims);

impl FromRequestParts<AppState> for AccessToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)
            .ok_or_else(|| ApiError::Unauthorized("Authorization: Bearer <accessToken> is required".into()))?;
        Ok(AccessToken(sessions::verify_access(&state.keyward, token).await?))
    }
}

/// A request that carried a live admin token (of an enabled admin), and
/// the address it came from (for the audit log).
pub struct AdminToken(pub AdminTokenView, String);

impl AdminToken {
    /// Audited as "from where" (SPEC §3): the client's address, marked as
    /// the admin API's so it reads apart from the console's.
    pub fn actor(&self) -> Actor {
        Actor {
            name: self.0.username.clone(),
            source: Some(format!("{} (admin API)", self.1)),
            credential: Credential::AdminToken {
                token_id: self.0.token_id.clone(),
            },
        }
    }
}

impl FromRequestParts<AppState> for AdminToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        require_mtls(parts, state)?;
        let token = bearer(parts).ok_or_else(|| ApiError::Unauthorized("Invalid token".into()))?;
        let kw = &state.keyward;
        match admin_tokens::verify(&kw.views, token) {
            Ok(view) if view.role == Role::Admin => {
                kw.usage.admin_token_used(&view.token_id, now_ms());
                let client = parts
                    .extensions
                    .get::<ClientAddr>()
                    .map_or_else(|| "unknown".to_string(), |ClientAddr(a)| a.clone());
                Ok(AdminToken(view, client))
            }
            Ok(_) | Err(Refusal::Invalid) => Err(ApiError::Unauthorized("Invalid token".into())),
            Err(Refusal::Expired) => Err(ApiError::Unauthorized("token expired".into())),
        }
    }
}

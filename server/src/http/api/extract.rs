//! Extractors that turn every malformed request into the error envelope,
//! and the credential checks: each handler names the credential it needs
//! in its signature, so it cannot run without the check.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;

use app::auth::ClientAddr;
use app::domain::application::ApiKeyRefusal;
use app::domain::credentials::admin_tokens::{AdminTokenRefusal, TokenHolder};
use app::domain::credentials::server_keys::ServerKeyRefusal;
use app::domain::credentials::tokens::AccessClaims;
use app::domain::pki::mtls::{self, Transport};
use app::domain::Principal;

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
            Err(JsonRejection::JsonDataError(e)) => Err(data_error("body", &e.body_text())),
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
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::Validation {
            message: format!("Invalid body: {e}"),
            detail: vec![e.to_string()],
        },
        _ => ApiError::BadRequest(format!("Invalid body: {e}")),
    })
}

/// serde's message names the field and the problem; drop axum's preamble.
fn data_error(what: &str, text: &str) -> ApiError {
    let detail = text.split_once(": ").map(|(_, d)| d).unwrap_or(text);
    ApiError::Validation {
        message: format!("Invalid {what}: {detail}"),
        detail: vec![detail.to_string()],
    }
}

/// Query parameters; failures are a 400 envelope.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e: QueryRejection| data_error("query", &e.body_text()))
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
        match state.keyward.check_api_key(header(parts, "x-api-key")) {
            Ok(()) => Ok(ApiKey),
            Err(ApiKeyRefusal::NotSetUp) => Err(ApiError::Forbidden("Keyward has not been set up yet".into())),
            Err(ApiKeyRefusal::Missing) => Err(ApiError::Unauthorized("X-API-Key header is required".into())),
            Err(ApiKeyRefusal::Invalid) => Err(ApiError::Unauthorized("Invalid API key".into())),
        }
    }
}

fn transport(parts: &Parts) -> &Transport {
    parts.extensions.get::<Transport>().unwrap_or(&Transport::PlainHttp)
}

fn mtls_refused(refusal: mtls::Refusal) -> ApiError {
    ApiError::Forbidden(refusal.message().into())
}

/// A request that carried a live server key.
pub struct ServerKey;

impl FromRequestParts<AppState> for ServerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match state
            .keyward
            .check_server_key(transport(parts), header(parts, "x-server-key"))
            .await
        {
            Ok(()) => Ok(ServerKey),
            Err(ServerKeyRefusal::Mtls(r)) => Err(mtls_refused(r)),
            Err(ServerKeyRefusal::Missing) => Err(ApiError::Unauthorized("X-Server-Key header is required".into())),
            Err(ServerKeyRefusal::Invalid) => Err(ApiError::Unauthorized("Invalid server key".into())),
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
        Ok(AccessToken(state.keyward.verify_access_token(token).await?))
    }
}

/// A request that carried a live admin token (of an enabled admin): its
/// holder, as the principal the admin API's operations are given.
pub struct AdminToken(pub TokenHolder);

impl AdminToken {
    pub fn principal(&self) -> &Principal {
        &self.0.principal
    }
}

impl FromRequestParts<AppState> for AdminToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = parts
            .extensions
            .get::<ClientAddr>()
            .map_or_else(|| "unknown".to_string(), |ClientAddr(a)| a.clone());
        match state
            .keyward
            .check_admin_token(transport(parts), bearer(parts), &client)
            .await
        {
            Ok(holder) => Ok(AdminToken(holder)),
            Err(AdminTokenRefusal::Mtls(r)) => Err(mtls_refused(r)),
            Err(AdminTokenRefusal::Invalid) => Err(ApiError::Unauthorized("Invalid token".into())),
            Err(AdminTokenRefusal::Expired) => Err(ApiError::Unauthorized("token expired".into())),
        }
    }
}

//! The API's one error type: always the JSON envelope
//! `{"status":"error","code":…,"message":…}` with the matching HTTP status;
//! a validation error also lists what is wrong in `data.detail`, as
//! Social Plus's envelope does.
//!
//! Code 400100 is for a bad credential alone: the official SDKs take it as
//! final and end the client, so nothing a caller could retry carries it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use app::domain::{DomainError, Entity};

/// The error envelope, as every API error is answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always `error`.
    pub status: &'static str,
    /// 400000 bad request, 400100 bad credential (final: the SDKs end the
    /// client), 400300 forbidden, 400301 permission denied, 400400 not
    /// found, 400900 conflict, 400311 rate limited, 500000 internal.
    pub code: u32,
    pub message: String,
    /// A validation error's problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<ErrorData>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorData {
    /// One line per problem, naming the field.
    pub detail: Vec<String>,
}

/// What every admin-token endpoint may answer besides its own, for the
/// OpenAPI document (the answers themselves are `ApiError`s).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // never built: it only describes the answers
pub enum AdminTokenRefusals {
    /// No, a bad or an expired admin token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// mTLS is on and the request did not come with an active certificate.
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    /// Bad input, each problem named in `data.detail`.
    Validation {
        message: String,
        detail: Vec<String>,
    },
    Unauthorized(String),
    Forbidden(String),
    /// Allowed to no one in the caller's place (Social Plus's 400301).
    PermissionDenied(String),
    NotFound(String),
    Conflict(String),
    RateLimited(String),
    /// The detail is logged; the client learns nothing of it.
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, u32, &str) {
        match self {
            ApiError::BadRequest(m) | ApiError::Validation { message: m, .. } => (StatusCode::BAD_REQUEST, 400000, m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, 400100, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, 400300, m),
            ApiError::PermissionDenied(m) => (StatusCode::FORBIDDEN, 400301, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, 400400, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, 400900, m),
            ApiError::RateLimited(m) => (StatusCode::TOO_MANY_REQUESTS, 400311, m),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, 500000, "Internal server error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error in an API handler");
        }
        let (status, code, message) = self.parts();
        let body = ErrorBody {
            status: "error",
            code,
            message: message.to_owned(),
            data: match self {
                ApiError::Validation { detail, .. } => Some(ErrorData { detail }),
                _ => None,
            },
        };
        (status, Json(body)).into_response()
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound(Entity::Admin) => ApiError::NotFound("No admin with that username".into()),
            DomainError::NotFound(Entity::Certificate) => ApiError::NotFound("No certificate with that id".into()),
            DomainError::NotFound(Entity::ServerKey) => ApiError::NotFound("No server key with that id".into()),
            DomainError::NotFound(Entity::Webhook) => ApiError::NotFound("No webhook endpoint with that id".into()),
            // Social Plus's UserIdNotFound, word for word.
            DomainError::NotFound(Entity::EndUser) => ApiError::NotFound("userId Not Found.".into()),
            DomainError::Invalid { message, .. } => ApiError::Validation {
                detail: vec![message.clone()],
                message,
            },
            DomainError::Conflict(m) => ApiError::Conflict(m),
            DomainError::BadCredentials => ApiError::Unauthorized("Unauthorized".into()),
            DomainError::Forbidden => ApiError::Forbidden("Forbidden".into()),
            DomainError::Unauthorized(m) => ApiError::Unauthorized(m),
            DomainError::RateLimited(s) => ApiError::RateLimited(format!("Too many requests; retry in {s} seconds")),
            DomainError::SetupRequired => ApiError::Forbidden("Keyward has not been set up yet".into()),
            DomainError::Internal(d) => ApiError::Internal(d),
        }
    }
}

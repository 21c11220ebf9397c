//! Auth-token minting for customer backends, with the server key.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiQuery, ServerKey};
use super::{ApiError, ErrorBody};
use crate::http::AppState;

#[derive(Debug, Deserialize, ToSchema, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ForUser {
    /// The user the auth token is for.
    #[schema(min_length = 1, max_length = 50)]
    #[param(min_length = 1, max_length = 50)]
    user_id: String,
}

fn mint(state: &AppState, user_id: &str) -> Result<String, ApiError> {
    Ok(state.keyward.mint_auth_token(user_id)?)
}

/// `GET /api/v3/authentication/token?userId=U`: the token as a JSON string.
#[utoipa::path(
    get,
    path = "/api/v3/authentication/token",
    tag = "Auth tokens",
    summary = "Mint an auth token for a user (the customer's backend)",
    params(ForUser),
    responses(
        (status = 200, description = "The auth token, a JSON string; it lives the auth-token lifetime (10 minutes by default) and is redeemed once", body = String, content_type = "application/json"),
        (status = 400, description = "No or a bad userId", body = ErrorBody),
        (status = 401, description = "No or a wrong server key", body = ErrorBody),
        (status = 403, description = "mTLS is on and the request did not come with a certificate", body = ErrorBody),
    ),
    security(("serverKey" = []))
)]
pub async fn mint_v3(
    State(state): State<AppState>,
    _key: ServerKey,
    ApiQuery(q): ApiQuery<ForUser>,
) -> Result<Json<String>, ApiError> {
    mint(&state, &q.user_id).map(Json)
}

/// `POST /api/v4/authentication/token` with `{userId}`: the token as text.
#[utoipa::path(
    post,
    path = "/api/v4/authentication/token",
    tag = "Auth tokens",
    summary = "Mint an auth token for a user (the customer's backend)",
    request_body = ForUser,
    responses(
        (status = 200, description = "The auth token as text; it lives the auth-token lifetime (10 minutes by default) and is redeemed once", body = String, content_type = "text/plain"),
        (status = 400, description = "A malformed body or a bad userId", body = ErrorBody),
        (status = 401, description = "No or a wrong server key", body = ErrorBody),
        (status = 403, description = "mTLS is on and the request did not come with a certificate", body = ErrorBody),
    ),
    security(("serverKey" = []))
)]
pub async fn mint_v4(
    State(state): State<AppState>,
    _key: ServerKey,
    ApiJson(body): ApiJson<ForUser>,
) -> Result<impl IntoResponse, ApiError> {
    let token = mint(&state, &body.user_id)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token))
}

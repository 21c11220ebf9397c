//! Auth-token minting for customer backends, with the server key.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::extract::{ApiJson, ApiQuery, ServerKey};
use super::ApiError;
use crate::http::AppState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForUser {
    user_id: String,
}

fn mint(state: &AppState, user_id: &str) -> Result<String, ApiError> {
    Ok(state.keyward.mint_auth_token(user_id)?)
}

/// `GET /api/v3/authentication/token?userId=U`: the token as a JSON string.
pub async fn mint_v3(
    State(state): State<AppState>,
    _key: ServerKey,
    ApiQuery(q): ApiQuery<ForUser>,
) -> Result<Json<String>, ApiError> {
    mint(&state, &q.user_id).map(Json)
}

/// `POST /api/v4/authentication/token` with `{userId}`: the token as text.
pub async fn mint_v4(
    State(state): State<AppState>,
    _key: ServerKey,
    ApiJson(body): ApiJson<ForUser>,
) -> Result<impl IntoResponse, ApiError> {
    let token = mint(&state, &body.user_id)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token))
}

//! Webhook endpoints through the admin API: add one (its
//! signing secret is in that answer only), list them, read one with its
//! delivery log, disable or enable it, delete it, send it a test event.

use axum::extract::{Path, State};
use axum::Json;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use app::domain::clock::iso;
use app::domain::webhooks::{Delivery, Webhook};

use super::extract::{AdminToken, ApiJson};
use super::{AdminTokenRefusals, ApiError, ErrorBody, Success};
use crate::http::AppState;

/// An endpoint; its secret only in the answer that created it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookBody {
    id: String,
    url: String,
    description: String,
    /// Event names, or `["*"]` for every event.
    events: Vec<String>,
    enabled: bool,
    /// Why Keyward disabled it (24 hours of failed deliveries), if it did.
    disabled_reason: Option<String>,
    /// No delivery has succeeded since then.
    failing_since: Option<String>,
    created_at: String,
    created_by: String,
    /// The signing secret (`whsec_…`): shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl WebhookBody {
    fn of(w: Webhook) -> WebhookBody {
        WebhookBody {
            failing_since: w.failing_since.map(iso),
            created_at: iso(w.created_at),
            id: w.id,
            url: w.url,
            description: w.description,
            events: w.events,
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
            created_by: w.created_by,
            secret: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Webhooks {
    webhooks: Vec<WebhookBody>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryBody {
    /// Sent as `Keyward-Delivery`: the same on every attempt.
    id: String,
    event: String,
    /// The audit event it announces.
    seq: i64,
    /// `pending`, `delivered`, `failed` (given up after 24 hours) or
    /// `cancelled` (the endpoint was disabled).
    state: String,
    attempts: i64,
    created_at: String,
    last_attempt_at: Option<String>,
    next_attempt_at: Option<String>,
    /// The receiver's status code at the last attempt, if it answered.
    response_code: Option<i64>,
    last_error: Option<String>,
}

impl DeliveryBody {
    fn of(d: Delivery) -> DeliveryBody {
        DeliveryBody {
            created_at: iso(d.created_at),
            last_attempt_at: d.last_attempt_at.map(iso),
            next_attempt_at: d.next_attempt_at.map(iso),
            id: d.id,
            event: d.event,
            seq: d.seq,
            state: d.state,
            attempts: d.attempts,
            response_code: d.response_code,
            last_error: d.last_error,
        }
    }
}

/// An endpoint with its latest deliveries, newest first.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithDeliveries {
    #[serde(flatten)]
    webhook: WebhookBody,
    deliveries: Vec<DeliveryBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookBody {
    /// `https://…` (or `http://`); loopback and private addresses only
    /// where the operator allows them, link-local never.
    url: String,
    /// Event names (see the README), or `["*"]`.
    events: Vec<String>,
    description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    /// `false` disables it (what it had still to send is cancelled);
    /// `true` enables it again.
    enabled: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestSent {
    /// The test event's delivery: see it in `GET /api/v1/webhooks/{id}`.
    delivery_id: String,
}

/// `GET /api/v1/webhooks`
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "Webhooks",
    summary = "The webhook endpoints",
    responses((status = 200, description = "Oldest first; no secrets", body = Webhooks), AdminTokenRefusals),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>, token: AdminToken) -> Result<Json<Webhooks>, ApiError> {
    let rows = state.keyward.webhooks(token.principal()).await?;
    Ok(Json(Webhooks {
        webhooks: rows.into_iter().map(WebhookBody::of).collect(),
    }))
}

/// `POST /api/v1/webhooks`
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "Webhooks",
    summary = "Add a webhook endpoint; its signing secret is shown only here",
    request_body = NewWebhookBody,
    responses(
        (status = 200, description = "The endpoint, with its secret", body = WebhookBody),
        (status = 400, description = "A bad URL, a refused address or an unknown event", body = ErrorBody),
        (status = 409, description = "There are 20 endpoints already", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    token: AdminToken,
    ApiJson(body): ApiJson<NewWebhookBody>,
) -> Result<Json<WebhookBody>, ApiError> {
    let created = state
        .keyward
        .create_webhook(
            token.principal(),
            &body.url,
            &body.events,
            body.description.as_deref().unwrap_or_default(),
        )
        .await?;
    let mut out = WebhookBody::of(created.webhook);
    out.secret = Some(created.secret.expose_secret().to_owned());
    Ok(Json(out))
}

/// `GET /api/v1/webhooks/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "Webhooks",
    summary = "One endpoint with its delivery log",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint and its latest 50 deliveries", body = WebhookWithDeliveries),
        (status = 404, description = "No endpoint with that id", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    token: AdminToken,
    Path(id): Path<String>,
) -> Result<Json<WebhookWithDeliveries>, ApiError> {
    let (webhook, deliveries) = state.keyward.webhook_deliveries(token.principal(), &id).await?;
    Ok(Json(WebhookWithDeliveries {
        webhook: WebhookBody::of(webhook),
        deliveries: deliveries.into_iter().map(DeliveryBody::of).collect(),
    }))
}

/// `PATCH /api/v1/webhooks/{id}`
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    tag = "Webhooks",
    summary = "Disable or enable an endpoint",
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = WebhookChange,
    responses(
        (status = 200, description = "The endpoint", body = WebhookBody),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 404, description = "No endpoint with that id", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    token: AdminToken,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WebhookChange>,
) -> Result<Json<WebhookBody>, ApiError> {
    let webhook = state
        .keyward
        .set_webhook_enabled(token.principal(), &id, body.enabled)
        .await?;
    Ok(Json(WebhookBody::of(webhook)))
}

/// `DELETE /api/v1/webhooks/{id}`
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "Webhooks",
    summary = "Delete an endpoint and its delivery log",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "Deleted", body = Success),
        (status = 404, description = "No endpoint with that id", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    token: AdminToken,
    Path(id): Path<String>,
) -> Result<Json<Success>, ApiError> {
    state.keyward.delete_webhook(token.principal(), &id).await?;
    Ok(Json(Success::YES))
}

/// `POST /api/v1/webhooks/{id}/test`
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/test",
    tag = "Webhooks",
    summary = "Send a test event to one endpoint",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "Queued; sent at once", body = TestSent),
        (status = 404, description = "No endpoint with that id", body = ErrorBody),
        (status = 409, description = "The endpoint is disabled", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn test(
    State(state): State<AppState>,
    token: AdminToken,
    Path(id): Path<String>,
) -> Result<Json<TestSent>, ApiError> {
    let delivery_id = state.keyward.test_webhook(token.principal(), &id).await?;
    Ok(Json(TestSent { delivery_id }))
}

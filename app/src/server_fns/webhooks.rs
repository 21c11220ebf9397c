use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{Done, NewWebhookSecret, WebhooksData};

/// Where a refused endpoint form's fields wait for the next page.
#[cfg(feature = "ssr")]
const KEPT_WEBHOOK: &str = "kept_webhook";
#[cfg(feature = "ssr")]
const REVEALED_SECRET: &str = "webhook_secret";
#[cfg(feature = "ssr")]
const PAGE: &str = "/settings/webhooks";

/// The endpoints, and the delivery log of the one named by `log`.
#[server(prefix = "/console/fn", endpoint = "webhooks")]
pub async fn load_webhooks(log: Option<String>) -> Result<WebhooksData, AppError> {
    use crate::domain::clock::display;
    use crate::domain::webhooks::{events, MAX_ENDPOINTS};
    use crate::model::{DeliveryLog, DeliveryRow, EventChoice, WebhookRow};

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let endpoints = kw
        .webhooks(&who)
        .await?
        .into_iter()
        .map(|w| WebhookRow {
            events: if w.events.iter().any(|e| e == events::ALL) {
                "All events".into()
            } else {
                w.events.join(", ")
            },
            failing_since: w.failing_since.map(|at| format!("Failing since {}", display(at))),
            created: format!("{} by {}", display(w.created_at), w.created_by),
            id: w.id,
            url: w.url,
            description: w.description,
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
        })
        .collect();
    let log = match log.filter(|id| !id.is_empty()) {
        None => None,
        Some(id) => match kw.webhook_deliveries(&who, &id).await {
            // Deleted meanwhile (or a stale link): the page without a log.
            Err(crate::domain::DomainError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
            Ok((endpoint, deliveries)) => Some(DeliveryLog {
                endpoint_id: endpoint.id,
                url: endpoint.url,
                deliveries: deliveries
                    .into_iter()
                    .map(|d| DeliveryRow {
                        created: display(d.created_at),
                        last_attempt: d.last_attempt_at.map(display),
                        next_attempt: d.next_attempt_at.map(display),
                        id: d.id,
                        event: d.event,
                        seq: d.seq,
                        state: d.state,
                        attempts: d.attempts,
                        response_code: d.response_code,
                        last_error: d.last_error,
                    })
                    .collect(),
            }),
        },
    };
    Ok(WebhooksData {
        endpoints,
        events: events::EVENTS
            .iter()
            .map(|(name, description)| EventChoice {
                name: (*name).into(),
                description: (*description).into(),
            })
            .collect(),
        log,
        revealed: crate::reveal::take(REVEALED_SECRET).await?,
        kept: crate::reveal::take(KEPT_WEBHOOK).await?,
        max_endpoints: MAX_ENDPOINTS,
    })
}

/// Adds an endpoint; its secret comes back once. `scope` is `all` (every
/// event) or `chosen` (the ticked `events`).
#[server(prefix = "/console/fn", endpoint = "create_webhook")]
pub async fn create_webhook(
    url: String,
    description: Option<String>,
    scope: String,
    events: Option<Vec<String>>,
) -> Result<NewWebhookSecret, AppError> {
    use secrecy::ExposeSecret;

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let all = scope == "all";
    let chosen = events.unwrap_or_default();
    let subscribed = if all {
        vec![crate::domain::webhooks::events::ALL.to_owned()]
    } else {
        chosen.clone()
    };
    let description = description.unwrap_or_default();
    let created = match kw.create_webhook(&who, &url, &subscribed, &description).await {
        Ok(created) => created,
        Err(refused) => {
            let kept = crate::model::WebhookInput {
                url,
                description,
                all,
                events: chosen,
            };
            crate::server_fns::keep(KEPT_WEBHOOK, &kept).await;
            return Err(refused.into());
        }
    };
    let shown = NewWebhookSecret {
        id: created.webhook.id,
        url: created.webhook.url,
        secret: created.secret.expose_secret().to_owned(),
    };
    crate::reveal::stash(REVEALED_SECRET, &shown).await?;
    leptos_axum::redirect(&format!("{PAGE}#endpoints"));
    Ok(shown)
}

#[server(prefix = "/console/fn", endpoint = "set_webhook_enabled")]
pub async fn set_webhook_enabled(id: String, enabled: bool) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let w = kw.set_webhook_enabled(&who, &id, enabled).await?;
    leptos_axum::redirect(&format!("{PAGE}#endpoints"));
    crate::server_fns::done(if enabled {
        format!("{} is enabled: it hears new events from now on.", w.url)
    } else {
        format!(
            "{} is disabled: nothing more is sent to it, and what it still had to receive is cancelled.",
            w.url
        )
    })
    .await
}

#[server(prefix = "/console/fn", endpoint = "delete_webhook")]
pub async fn delete_webhook(id: String) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    kw.delete_webhook(&who, &id).await?;
    leptos_axum::redirect(&format!("{PAGE}#endpoints"));
    crate::server_fns::done("The endpoint is deleted, with its delivery log.").await
}

/// Sends a test event; the delivery log shows what the receiver answered.
#[server(prefix = "/console/fn", endpoint = "send_test_webhook")]
pub async fn send_test_webhook(id: String) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    kw.test_webhook(&who, &id).await?;
    leptos_axum::redirect(&format!("{PAGE}?log={id}#log"));
    crate::server_fns::done("A test event is on its way: its delivery is at the top of the log.").await
}

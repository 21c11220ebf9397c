//! Webhooks: endpoints that hear about changes to the application's
//! credentials where their owners already look. Each event is an audit
//! event first (`events`); its deliveries are written to an outbox in the
//! same transaction (`outbox`) and sent, signed, by a background worker
//! (`delivery`), at least once, retried for a day. Expiry announcements
//! are made by `expiry`. Where an endpoint may point is `address`'s rule.

pub mod address;
pub(in crate::domain) mod delivery;
pub mod events;
pub(in crate::domain) mod expiry;
pub(in crate::domain) mod outbox;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sqlx::AnyConnection;

use crate::domain::audit::AuditEvent;
use crate::domain::clock::now_ms;
use crate::domain::ids::ordered_id;
use crate::domain::secrets::{self, MasterKey};
use crate::domain::{DomainError, DomainResult, Entity, Keyward, Principal};

/// At most this many endpoints: each event is sent to every one.
pub const MAX_ENDPOINTS: i64 = 20;
/// A description's longest length, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 200;
/// Deliveries shown per endpoint, newest first.
pub const DELIVERY_LOG: i64 = 50;

/// An endpoint as admins see it: never its secret.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Event names, or `["*"]`.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why Keyward disabled it, when it did.
    pub disabled_reason: Option<String>,
    /// Failing since then (no delivery has succeeded since).
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
}

/// A new endpoint and its signing secret, shown this once.
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: SecretString,
}

impl std::fmt::Debug for CreatedWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedWebhook")
            .field("webhook", &self.webhook)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// One delivery of one event to one endpoint.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub event: String,
    /// The audit event it announces.
    pub seq: i64,
    /// `pending`, `delivered`, `failed` or `cancelled`.
    pub state: String,
    pub attempts: i64,
    pub created_at: i64,
    pub last_attempt_at: Option<i64>,
    /// When it is tried again, while pending.
    pub next_attempt_at: Option<i64>,
    pub response_code: Option<i64>,
    pub last_error: Option<String>,
}

fn seal_context(id: &str) -> String {
    format!("webhook-secret:{id}")
}

type EndpointRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    i64,
    String,
);
const ENDPOINT_COLUMNS: &str =
    "id, url, description, events, enabled, disabled_reason, failing_since, created_at, created_by";

fn webhook(
    (id, url, description, events, enabled, disabled_reason, failing_since, created_at, created_by): EndpointRow,
) -> Webhook {
    Webhook {
        id,
        url,
        description,
        events: events.split(',').filter(|e| !e.is_empty()).map(str::to_owned).collect(),
        enabled: enabled != 0,
        disabled_reason,
        failing_since,
        created_at,
        created_by,
    }
}

/// The subscription as given: known names (or `*` alone), each once.
fn check_events(events: &[String]) -> DomainResult<Vec<String>> {
    let bad = |m: String| DomainError::invalid_field("events", m);
    let mut out: Vec<String> = Vec::new();
    for e in events {
        let e = e.trim();
        if e != events::ALL && !events::is_event(e) {
            let shown: String = e.chars().take(60).collect();
            return Err(bad(format!("Unknown event {shown:?}: see the list of events.")));
        }
        if !out.iter().any(|o| o == e) {
            out.push(e.to_owned());
        }
    }
    if out.is_empty() {
        return Err(bad("Choose at least one event (or all events).".into()));
    }
    if out.len() > 1 && out.iter().any(|e| e == events::ALL) {
        return Err(bad("All events (\"*\") stands alone.".into()));
    }
    Ok(out)
}

fn check_description(text: &str) -> DomainResult<String> {
    let text = text.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(DomainError::invalid_field(
            "description",
            "The description is longer than 200 characters.",
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(DomainError::invalid_field(
            "description",
            "The description cannot hold control characters.",
        ));
    }
    Ok(text.to_owned())
}

/// A URL as the audit log keeps it: its path or query may carry a
/// receiver's token (Slack's and Discord's do), so only its origin.
fn url_for_log(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

async fn fetch(conn: &mut AnyConnection, id: &str) -> DomainResult<Webhook> {
    crate::domain::ids::plausible(id, Entity::Webhook)?;
    let row: Option<EndpointRow> = sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(webhook).ok_or(DomainError::NotFound(Entity::Webhook))
}

/// Cancels what an endpoint still had to send (it was disabled).
pub(in crate::domain) async fn cancel_pending(conn: &mut AnyConnection, id: &str, now: i64) -> DomainResult<u64> {
    Ok(sqlx::query(
        "UPDATE webhook_deliveries SET state = 'cancelled', last_at = COALESCE(last_at, $1) \
         WHERE endpoint_id = $2 AND state = 'pending'",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Re-seals every endpoint's secret under a new master key (its rotation).
pub(in crate::domain) async fn reseal(
    conn: &mut AnyConnection,
    old: &MasterKey,
    new: &MasterKey,
) -> DomainResult<usize> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT id, secret_sealed FROM webhook_endpoints")
        .fetch_all(&mut *conn)
        .await?;
    for (id, sealed) in &rows {
        sqlx::query("UPDATE webhook_endpoints SET secret_sealed = $1 WHERE id = $2")
            .bind(old.reseal(new, sealed, &seal_context(id))?)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(rows.len())
}

/// An endpoint's secret, opened to sign with.
pub(in crate::domain) fn open_secret(master: &MasterKey, id: &str, sealed: &[u8]) -> DomainResult<SecretString> {
    let plain = master.open(sealed, &seal_context(id))?;
    String::from_utf8(plain)
        .map(SecretString::from)
        .map_err(|_| DomainError::Internal("a sealed webhook secret is not text".into()))
}

impl Keyward {
    /// Adds an endpoint: its URL checked (and its name
    /// resolved) against the address rules, its events known. The signing
    /// secret is returned this once; Keyward keeps it sealed.
    pub async fn create_webhook(
        &self,
        who: &Principal,
        url: &str,
        events: &[String],
        description: &str,
    ) -> DomainResult<CreatedWebhook> {
        let url = address::parse(url, self.webhook_allow_private)?;
        let events = check_events(events)?;
        let description = check_description(description)?;
        if let Some(url::Host::Domain(host)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            address::resolve(host, port, self.webhook_allow_private)
                .await
                .map_err(|m| DomainError::invalid_field("url", m))?;
        }
        let id = ordered_id();
        let secret = secrets::generate("whsec_");
        let sealed = self
            .master_key
            .seal(secret.expose_secret().as_bytes(), &seal_context(&id))?;
        let now = now_ms();
        let mut change = self.db.change_as(who).await?;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM webhook_endpoints")
            .fetch_one(change.conn())
            .await?;
        if count >= MAX_ENDPOINTS {
            return Err(DomainError::Conflict(format!(
                "There are {MAX_ENDPOINTS} endpoints already: delete one first."
            )));
        }
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, description, events, secret_sealed, enabled, created_at, \
             created_by, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $6)",
        )
        .bind(&id)
        .bind(url.as_str())
        .bind(&description)
        .bind(events.join(","))
        .bind(sealed)
        .bind(now)
        .bind(who.name())
        .execute(change.conn())
        .await?;
        let created = fetch(change.conn(), &id).await?;
        change
            .commit(
                AuditEvent::new(who.name(), "webhook.create", &id)
                    .detail(json!({ "url": url_for_log(&url), "events": events }))
                    .source(who.source()),
            )
            .await?;
        Ok(CreatedWebhook {
            webhook: created,
            secret,
        })
    }

    /// Every endpoint, oldest first (any admin: like server keys and
    /// certificates, webhooks are the application's security settings).
    pub async fn webhooks(&self, _who: &Principal) -> DomainResult<Vec<Webhook>> {
        let rows: Vec<EndpointRow> = sqlx::query_as(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"
        ))
        .fetch_all(self.db.read())
        .await?;
        Ok(rows.into_iter().map(webhook).collect())
    }

    /// One endpoint and its latest deliveries, newest first.
    pub async fn webhook_deliveries(&self, _who: &Principal, id: &str) -> DomainResult<(Webhook, Vec<Delivery>)> {
        let mut conn = self.db.read().acquire().await?;
        let endpoint = fetch(&mut conn, id).await?;
        type Row = (
            String,
            String,
            i64,
            String,
            i64,
            i64,
            Option<i64>,
            i64,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, event, seq, state, attempts, created_at, last_at, next_at, response_code, last_error \
             FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(id)
        .bind(DELIVERY_LOG)
        .fetch_all(&mut *conn)
        .await?;
        let deliveries = rows
            .into_iter()
            .map(
                |(id, event, seq, state, attempts, created_at, last_at, next_at, response_code, last_error)| Delivery {
                    next_attempt_at: (state == "pending").then_some(next_at),
                    id,
                    event,
                    seq,
                    state,
                    attempts,
                    created_at,
                    last_attempt_at: last_at,
                    response_code,
                    last_error,
                },
            )
            .collect();
        Ok((endpoint, deliveries))
    }

    /// Deletes an endpoint with its delivery log; nothing more is sent to it.
    pub async fn delete_webhook(&self, who: &Principal, id: &str) -> DomainResult<()> {
        let mut change = self.db.change_as(who).await?;
        let endpoint = fetch(change.conn(), id).await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(id)
            .execute(change.conn())
            .await?;
        sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(change.conn())
            .await?;
        change
            .commit(
                AuditEvent::new(who.name(), "webhook.delete", id)
                    .detail(
                        json!({ "url": url::Url::parse(&endpoint.url).map(|u| url_for_log(&u)).unwrap_or_default() }),
                    )
                    .source(who.source()),
            )
            .await
    }

    /// Disables an endpoint (what it had still to send is cancelled) or
    /// enables it again (its failures forgotten).
    pub async fn set_webhook_enabled(&self, who: &Principal, id: &str, enabled: bool) -> DomainResult<Webhook> {
        let now = now_ms();
        let mut change = self.db.change_as(who).await?;
        let before = fetch(change.conn(), id).await?;
        if before.enabled == enabled {
            return Ok(before);
        }
        sqlx::query(
            "UPDATE webhook_endpoints SET enabled = $1, disabled_reason = NULL, failing_since = NULL, \
             updated_at = $2 WHERE id = $3",
        )
        .bind(i64::from(enabled))
        .bind(now)
        .bind(id)
        .execute(change.conn())
        .await?;
        let cancelled = if enabled {
            0
        } else {
            cancel_pending(change.conn(), id, now).await?
        };
        let after = fetch(change.conn(), id).await?;
        let action = if enabled { "webhook.enable" } else { "webhook.disable" };
        change
            .commit(
                AuditEvent::new(who.name(), action, id)
                    .detail(json!({ "deliveries_cancelled": cancelled }))
                    .source(who.source()),
            )
            .await?;
        Ok(after)
    }

    /// Sends a test event to one endpoint (an audited `webhook.test`, so
    /// it is signed, logged and retried like any other); says its delivery.
    pub async fn test_webhook(&self, who: &Principal, id: &str) -> DomainResult<String> {
        let mut change = self.db.change_as(who).await?;
        let endpoint = fetch(change.conn(), id).await?;
        if !endpoint.enabled {
            return Err(DomainError::Conflict(
                "This endpoint is disabled: enable it to send it events.".into(),
            ));
        }
        let seq = change.seq();
        change
            .commit(
                AuditEvent::new(who.name(), "webhook.test", id)
                    .detail(json!({ "note": "a test event from Settings > Webhooks" }))
                    .source(who.source()),
            )
            .await?;
        // Gone only if the endpoint was deleted meanwhile.
        let delivery: Option<(String,)> =
            sqlx::query_as("SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 AND seq = $2")
                .bind(id)
                .bind(seq)
                .fetch_optional(self.db.write())
                .await?;
        delivery.map(|(d,)| d).ok_or(DomainError::NotFound(Entity::Webhook))
    }
}

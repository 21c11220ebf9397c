//! The delivery worker: takes due deliveries from the outbox, signs each
//! payload (`Keyward-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`, keyed with the endpoint's secret), sends it without
//! following redirects, through a resolver that refuses what the address
//! rules refuse (checked on the addresses actually connected to), and
//! records the outcome. An endpoint failing for 24 hours is disabled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::address;
use super::outbox::{self, After, Claimed, Outcome, GIVE_UP_AFTER_MS};
use crate::domain::audit::{self, AuditEvent};
use crate::domain::clock::{display, iso, now_ms};
use crate::domain::{DomainError, DomainResult, Keyward};

/// A receiver has this long to answer (connecting included).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Due deliveries are looked for this often, besides being woken by a
/// commit on this instance.
const POLL: Duration = Duration::from_secs(1);
/// Deliveries sent at once (each to a different endpoint): one for each
/// endpoint there may be, so hanging receivers cannot hold up the rest.
const IN_FLIGHT: usize = super::MAX_ENDPOINTS as usize;
/// Sends running at a stop get this long to end.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Finished deliveries are kept this long for the delivery log.
const KEEP_MS: i64 = 30 * 24 * 3600 * 1000;

/// The resolver's refusal, found again in the error chain to say why.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves as the system does, then refuses a name with any address the
/// rules refuse: the connection goes only to addresses checked here, so
/// a name that changes between the check and the connect gains nothing.
struct CheckedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = address::resolve(name.as_str(), 0, allow_private)
                .await
                .map_err(|m| Box::new(Refused(m)) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn client(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(SEND_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .dns_resolver(Arc::new(CheckedResolver { allow_private }))
        .user_agent(concat!("Keyward-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The signature header's value for `body` sent at `t` (Unix seconds):
/// Stripe's scheme, keyed with the whole `whsec_…` string as its bytes.
pub fn signature(secret: &SecretString, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends deliveries as they fall due, until told to stop: up to
/// [`IN_FLIGHT`] at once, one per endpoint, claiming more as each ends.
/// Sends still running at a stop get a moment to end; one cut off is sent
/// again once its lease runs out.
pub(in crate::domain) async fn run(kw: Keyward, mut stop: watch::Receiver<bool>) {
    let client = match client(kw.webhook_allow_private) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "could not build the webhook client: no webhook will be sent");
            return;
        }
    };
    let mut sending: JoinSet<()> = JoinSet::new();
    // The endpoint each running send is for, by task.
    let mut busy: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut forgot_at = 0i64;
    loop {
        let free = IN_FLIGHT.saturating_sub(busy.len());
        if free > 0 {
            let endpoints: Vec<String> = busy.values().cloned().collect();
            match outbox::claim(&kw.db, free as i64, &endpoints).await {
                Ok(claimed) => {
                    for d in claimed {
                        let endpoint = d.endpoint_id.clone();
                        let task = sending.spawn(deliver(kw.clone(), client.clone(), d));
                        busy.insert(task.id(), endpoint);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not claim webhook deliveries"),
            }
        }
        if now_ms() - forgot_at > 3600 * 1000 {
            forgot_at = now_ms();
            if let Err(e) = outbox::forget_old(&kw.db, KEEP_MS).await {
                tracing::warn!(error = %e, "could not delete old webhook deliveries");
            }
        }
        tokio::select! {
            Some(ended) = sending.join_next_with_id(), if !sending.is_empty() => {
                let id = match ended {
                    Ok((id, ())) => id,
                    Err(e) => {
                        tracing::error!(error = %e, "a webhook send ended abnormally");
                        e.id()
                    }
                };
                busy.remove(&id);
            }
            _ = tokio::time::sleep(POLL) => {}
            _ = kw.db.outbox_ready().notified() => {}
            _ = stop.changed() => break,
        }
    }
    let _ = tokio::time::timeout(STOP_GRACE, async { while sending.join_next().await.is_some() {} }).await;
    sending.abort_all();
}

/// Where to send a delivery, with what, signed with which secret; `None`
/// when its endpoint or event is gone.
async fn prepare(kw: &Keyward, d: &Claimed) -> DomainResult<Option<(url::Url, SecretString, Vec<u8>)>> {
    let endpoint: Option<(String, Vec<u8>)> =
        sqlx::query_as("SELECT url, secret_sealed FROM webhook_endpoints WHERE id = $1")
            .bind(&d.endpoint_id)
            .fetch_optional(kw.db.read())
            .await?;
    let Some((url, sealed)) = endpoint else { return Ok(None) };
    let event: Option<audit::Row> =
        sqlx::query_as("SELECT seq, at, actor, action, target, detail, source, hash FROM audit_events WHERE seq = $1")
            .bind(d.seq)
            .fetch_optional(kw.db.read())
            .await?;
    let Some((seq, at, actor, action, target, detail, source, hash)) = event else {
        return Ok(None);
    };
    let secret = super::open_secret(&kw.master_key, &d.endpoint_id, &sealed)?;
    let url = url::Url::parse(&url).map_err(|e| DomainError::Internal(format!("a stored webhook URL: {e}")))?;
    let body = json!({
        "id": d.id,
        "event": d.event,
        "time": iso(at),
        "seq": seq,
        "hash": hex::encode(hash),
        "actor": actor,
        "action": action,
        "target": target,
        "detail": audit::detail_value(detail),
        "source": (!source.is_empty()).then_some(source),
    });
    Ok(Some((url, secret, body.to_string().into_bytes())))
}

async fn deliver(kw: Keyward, client: reqwest::Client, d: Claimed) {
    let (kw, d) = (&kw, &d);
    let outcome = match prepare(kw, d).await {
        Ok(Some((url, secret, body))) => send(&client, kw.webhook_allow_private, d, &url, &secret, body).await,
        Ok(None) => Outcome {
            status: None,
            error: Some("its endpoint or event is gone".into()),
        },
        Err(e) => {
            tracing::error!(error = %e, delivery = %d.id, "could not prepare a webhook delivery");
            Outcome {
                status: None,
                error: Some("Keyward could not prepare it (see its log)".into()),
            }
        }
    };
    match outbox::record(&kw.db, d, &outcome).await {
        Ok(After::Delivered) => {
            tracing::info!(delivery = %d.id, endpoint = %d.endpoint_id, event = %d.event, attempt = d.attempts, "webhook delivered");
        }
        Ok(After::Lost) => {
            tracing::info!(delivery = %d.id, endpoint = %d.endpoint_id, "a webhook delivery was cancelled or taken over while it was sent");
        }
        Ok(after) => {
            tracing::info!(
                delivery = %d.id,
                endpoint = %d.endpoint_id,
                event = %d.event,
                attempt = d.attempts,
                error = outcome.error.as_deref().unwrap_or_default(),
                gave_up = after == After::Failed,
                "webhook delivery failed"
            );
            if let Err(e) = disable_if_failing_for_a_day(kw, &d.endpoint_id).await {
                tracing::warn!(error = %e, endpoint = %d.endpoint_id, "could not disable a failing webhook endpoint");
            }
        }
        Err(e) => tracing::warn!(error = %e, delivery = %d.id, "could not record a webhook delivery"),
    }
}

async fn send(
    client: &reqwest::Client,
    allow_private: bool,
    d: &Claimed,
    url: &url::Url,
    secret: &SecretString,
    body: Vec<u8>,
) -> Outcome {
    if let Some(ip) = address::literal_ip(url) {
        if let Err(r) = address::check_ip(ip, allow_private) {
            return Outcome {
                status: None,
                error: Some(format!("refused: {}", r.as_str())),
            };
        }
    }
    let t = now_ms().div_euclid(1000);
    let sent = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("keyward-signature", signature(secret, t, &body))
        .header("keyward-delivery", &d.id)
        .header("keyward-event", &d.event)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(res) => {
            let status = res.status();
            let error = match status.as_u16() {
                200..=299 => None,
                300..=399 => Some(format!("answered {}: redirects are not followed", status.as_u16())),
                code => Some(format!("answered {code}")),
            };
            Outcome {
                status: Some(status.as_u16()),
                error,
            }
        }
        Err(e) => Outcome {
            status: None,
            error: Some(describe(&e)),
        },
    }
}

/// A failed send in words, never with the URL (its query may hold a
/// receiver's token).
fn describe(e: &reqwest::Error) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<Refused>() {
            return format!("refused: {r}");
        }
        cause = c.source();
    }
    if e.is_timeout() {
        format!("no answer within {} seconds", SEND_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

/// Disables an endpoint none of whose deliveries has succeeded for 24
/// hours (re-checked inside the change), with an audit event and the
/// notice the console shows.
async fn disable_if_failing_for_a_day(kw: &Keyward, endpoint_id: &str) -> DomainResult<()> {
    let now = now_ms();
    let cut = now - GIVE_UP_AFTER_MS;
    let row: Option<(i64, Option<i64>)> =
        sqlx::query_as("SELECT enabled, failing_since FROM webhook_endpoints WHERE id = $1")
            .bind(endpoint_id)
            .fetch_optional(kw.db.read())
            .await?;
    let Some((1, Some(since))) = row else { return Ok(()) };
    if since > cut {
        return Ok(());
    }
    let mut change = kw.db.change().await?;
    let reason = format!(
        "Keyward disabled this endpoint on {}: no delivery to it succeeded for 24 hours (since {}).",
        display(now),
        display(since)
    );
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1, updated_at = $2 \
         WHERE id = $3 AND enabled = 1 AND failing_since IS NOT NULL AND failing_since <= $4 \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries s WHERE s.endpoint_id = $3 \
                             AND s.state = 'delivered' AND s.last_at >= webhook_endpoints.failing_since)",
    )
    .bind(&reason)
    .bind(now)
    .bind(endpoint_id)
    .bind(cut)
    .execute(change.conn())
    .await?
    .rows_affected();
    if done == 0 {
        return Ok(());
    }
    let cancelled = super::cancel_pending(change.conn(), endpoint_id, now).await?;
    change
        .commit(
            AuditEvent::new("keyward", "webhook.auto_disable", endpoint_id)
                .detail(json!({ "failing_since": iso(since), "deliveries_cancelled": cancelled })),
        )
        .await?;
    tracing::warn!(endpoint = %endpoint_id, "a webhook endpoint failed for 24 hours and was disabled");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stripe's scheme; the README's verifier recomputes it.
    #[test]
    fn the_signature_is_hmac_sha256_over_time_dot_body() {
        let secret = SecretString::from("whsec_test");
        let sig = signature(&secret, 1_700_000_000, br#"{"a":1}"#);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").unwrap();
        mac.update(br#"1700000000.{"a":1}"#);
        assert_eq!(
            sig,
            format!("t=1700000000,v1={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert_ne!(sig, signature(&secret, 1_700_000_001, br#"{"a":1}"#));
    }
}

//! Webhooks end to end, with a real HTTP receiver started by each test:
//! signed deliveries that carry the audit event, the events each change
//! raises, retries, giving up after a day, the address rules (at creation
//! and at delivery), delivery after a kill -9, and two instances sending
//! each event once.

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::certificates::{issued, openssl_csr, Key};
use crate::helpers::*;

/// What the receiver answers, request by request (then 200).
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    /// 302 to another path on the receiver.
    Redirect,
    /// Reads the request and never answers.
    Hang,
}

#[derive(Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

struct Receiver {
    url: String,
    got: mpsc::UnboundedReceiver<Received>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let (tx, got) = mpsc::unbounded_channel();
        let script: Arc<Mutex<VecDeque<Reply>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx2, script2) = (tx.clone(), script.clone());
        let handler = move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let (tx, script) = (tx2.clone(), script2.clone());
            async move {
                let reply = script.lock().unwrap().pop_front().unwrap_or(Reply::Status(200));
                let _ = tx.send(Received {
                    path: uri.path().to_owned(),
                    headers,
                    body: body.to_vec(),
                });
                match reply {
                    Reply::Status(s) => (StatusCode::from_u16(s).unwrap(), HeaderMap::new()),
                    Reply::Redirect => {
                        let mut h = HeaderMap::new();
                        h.insert("location", "/elsewhere".parse().unwrap());
                        (StatusCode::FOUND, h)
                    }
                    Reply::Hang => {
                        tokio::time::sleep(Duration::from_secs(600)).await;
                        (StatusCode::OK, HeaderMap::new())
                    }
                }
            }
        };
        let router = axum::Router::new().fallback(handler);
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        drop(tx);
        Receiver {
            url: format!("http://{addr}/hooks/keyward?channel=security"),
            got,
            script,
            task,
        }
    }

    fn then(&self, replies: &[Reply]) {
        self.script.lock().unwrap().extend(replies.iter().copied());
    }

    /// The next request, waited for at most `limit`.
    async fn next_within(&mut self, limit: Duration) -> Received {
        tokio::time::timeout(limit, self.got.recv())
            .await
            .expect("a delivery arrives in time")
            .expect("the receiver runs")
    }

    async fn next(&mut self) -> Received {
        self.next_within(Duration::from_secs(20)).await
    }

    /// Nothing arrives for `wait`.
    async fn quiet_for(&mut self, wait: Duration) {
        if let Ok(Some(r)) = tokio::time::timeout(wait, self.got.recv()).await {
            panic!(
                "nothing was expected, got {} {}",
                r.path,
                String::from_utf8_lossy(&r.body)
            );
        }
    }
}

fn header(r: &Received, name: &str) -> String {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} is sent"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Checks the signature as the README tells receivers to, and returns
/// the payload.
fn verified(r: &Received, secret: &str) -> Value {
    let sig = header(r, "keyward-signature");
    let (mut t, mut v1) = (None, None);
    for part in sig.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_owned()),
            Some(("v1", x)) => v1 = Some(x.to_owned()),
            _ => {}
        }
    }
    let (t, v1) = (t.expect("t="), v1.expect("v1="));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&r.body);
    let expected = hex_of(&mac.finalize().into_bytes());
    assert_eq!(v1, expected, "the signature holds");
    let age = time::OffsetDateTime::now_utc().unix_timestamp() - t.parse::<i64>().unwrap();
    assert!((-5..300).contains(&age), "a fresh timestamp ({age}s)");
    assert_eq!(header(r, "content-type"), "application/json");
    let payload: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(payload["id"].as_str(), Some(header(r, "keyward-delivery").as_str()));
    assert_eq!(payload["event"].as_str(), Some(header(r, "keyward-event").as_str()));
    payload
}

/// Runs the README's Python `verify` on a delivery; prints its answer.
fn readme_verifier(secret: &str, signature: &str, body: &[u8]) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let code = readme
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README shows a Python verifier");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body"), body).unwrap();
    let script =
        format!("{code}\nimport sys\nprint(verify(sys.argv[1], sys.argv[2], open(sys.argv[3], 'rb').read()))\n");
    let out = std::process::Command::new("python3")
        .args(["-c", &script, secret, signature])
        .arg(dir.path().join("body"))
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn allow_private(c: &mut server::config::Config) {
    c.webhook_allow_private = true;
}

/// An admin's token the running server knows.
async fn root_token(app: &TestApp) -> String {
    crate::certificates::ops_token(app).await
}

async fn create(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// An endpoint for `events` at the receiver: (its id, its secret).
async fn endpoint(app: &TestApp, token: &str, rx: &Receiver, events: Value) -> (String, String) {
    let res = create(
        app,
        token,
        json!({ "url": rx.url, "events": events, "description": "SIEM" }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().expect("the secret, this once").to_owned(),
    )
}

async fn send_test(app: &TestApp, token: &str, id: &str) -> String {
    let res = app
        .bearer(Method::POST, &format!("/api/v1/webhooks/{id}/test"), token)
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["deliveryId"].as_str().unwrap().to_owned()
}

/// The endpoint's delivery log entry `delivery`, once its state is `want`
/// ("tried": pending after at least one attempt).
async fn delivery_when(app: &TestApp, token: &str, id: &str, delivery: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..500 {
        let body = app.bearer_json(&format!("/api/v1/webhooks/{id}"), token).await;
        if let Some(d) = body["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == delivery)
        {
            let tried = d["state"] == "pending" && d["lastAttemptAt"].is_string();
            if d["state"] == want || (want == "tried" && tried) {
                return d.clone();
            }
            last = d.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("delivery {delivery} never became {want}: {last}");
}

#[tokio::test]
async fn a_delivery_is_signed_and_carries_its_audit_event() {
    let app = TestApp::ready_with(allow_private).await;
    let token = root_token(&app).await;
    let mut rx = Receiver::start().await;
    let (id, secret) = endpoint(&app, &token, &rx, json!(["*"])).await;
    assert!(secret.starts_with("whsec_") && secret.len() > 30, "{secret}");

    let delivery = send_test(&app, &token, &id).await;
    let got = rx.next().await;
    assert_eq!(got.path, "/hooks/keyward", "the URL as given, its query kept");
    let payload = verified(&got, &secret);
    assert_eq!(payload["id"], delivery.as_str());
    assert_eq!(payload["event"], "webhook.test");
    assert_eq!(payload["actor"], "ops");
    assert_eq!(payload["target"], id.as_str());
    // The audit event it announces, as the audit stream exports it.
    let export = app
        .bearer(Method::GET, "/api/v1/audit-events/export", &token)
        .await
        .text()
        .await
        .unwrap();
    let line: Value = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["seq"] == payload["seq"])
        .expect("the event is in the audit log");
    assert_eq!(line["action"], "webhook.test");
    assert_eq!(line["hash"], payload["hash"], "the chain hash matches");
    assert_eq!(line["time"], payload["time"]);

    let d = delivery_when(&app, &token, &id, &delivery, "delivered").await;
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["responseCode"], 200);
    assert_eq!(d["event"], "webhook.test");
    // The README's verifier, as a receiver would paste it, agrees; and
    // refuses a body changed by one byte.
    assert_eq!(
        readme_verifier(&secret, &header(&got, "keyward-signature"), &got.body),
        "True"
    );
    let mut forged = got.body.clone();
    forged[1] ^= 1;
    assert_eq!(
        readme_verifier(&secret, &header(&got, "keyward-signature"), &forged),
        "False"
    );
    // A malformed header is a refusal, not a crash.
    for bad in [
        "",
        "t=,v1=",
        "v1=abc",
        "t=1e9,v1=abc",
        "t=99999999999999999999,v1=x",
        "garbage,",
        "t=1,v1=é",
    ] {
        assert_eq!(readme_verifier(&secret, bad, &got.body), "False", "{bad:?}");
    }

    // The secret is never shown again, nor written to the audit log.
    let listed = app.bearer_json("/api/v1/webhooks", &token).await;
    assert_eq!(listed["webhooks"][0]["id"], id.as_str());
    assert!(!listed.to_string().contains(&secret), "{listed}");
    assert!(!export.contains(&secret));
    assert!(
        !export.contains("channel=security"),
        "the URL's query stays out of the log"
    );
}

/// Each change a security team watches raises its event, to an endpoint
/// that asked for every event; one that asked for one event hears only it.
/// (Two threads: the CLI calls block one, and the server must go on
/// meanwhile, as it would in its own process.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_event_is_delivered() {
    let mut app = TestApp::ready_with(allow_private).await;
    let token = root_token(&app).await;
    let mut all = Receiver::start().await;
    let mut one = Receiver::start().await;
    let (all_id, secret) = endpoint(&app, &token, &all, json!(["*"])).await;
    let (_, one_secret) = endpoint(&app, &token, &one, json!(["certificate.revoked"])).await;

    // Server keys: one generated, then retired and removed in the console.
    app.server_key(&token, 0).await;
    assert_eq!(app.login().await.status(), 302);
    let (status, body) = app
        .call(
            &app.client,
            "generate_server_key",
            &[("overlap_hours", "0"), ("name", "second")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let operator = app::domain::Principal::operator();
    let keys = app.kw().server_keys(&operator).await.unwrap();
    let retired = keys.iter().find(|k| k.name.as_deref() != Some("second")).unwrap();
    let (status, body) = app.call(&app.client, "remove_server_key", &[("id", &retired.id)]).await;
    assert_eq!(status, 200, "{body}");
    // A certificate, the switches, then all undone.
    let dir = tempfile::tempdir().unwrap();
    let (key, csr) = openssl_csr(dir.path(), Key::P256, "backend");
    let cert = issued(&app, &token, "backend", &csr).await;
    // Under mTLS the admin API answers only the certificate's holder.
    let with_cert = crate::mtls::tls_client(&app, Some((cert["pem"].as_str().unwrap(), &key)));
    for (client, base, settings) in [
        (&app.client, &app.base, json!({ "secureMode": true, "mtls": true })),
        (&with_cert, &app.https_base, json!({ "mtls": false })),
        (&app.client, &app.base, json!({ "secureMode": false })),
    ] {
        let res = client
            .patch(format!("{base}/api/v1/settings"))
            .bearer_auth(&token)
            .json(&settings)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = app
        .bearer(
            Method::DELETE,
            &format!("/api/v1/certificates/{}", cert["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(res.status(), 200);
    // Admins: created, given a token, disabled (its tokens revoked), enabled.
    let eve_token = app.admin_with_token("eve");
    app.settle().await;
    let res = app.bearer(Method::POST, "/api/v1/admin-token", &eve_token).await;
    assert_eq!(res.status(), 200);
    let res = app
        .bearer(Method::DELETE, "/api/v1/admin-token?username=eve", &eve_token)
        .await;
    assert_eq!(res.status(), 200);
    for args in [
        ["admin", "disable", "--username", "eve"],
        ["admin", "enable", "--username", "eve"],
    ] {
        let out = app.keyward(&args, None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // A lockout after wrong passwords (from a client of its own).
    let attacker = browser(&app.base);
    for _ in 0..8 {
        app.call(
            &attacker,
            "login",
            &[("username", "eve"), ("password", "wrong password!!")],
        )
        .await;
    }
    // A second factor enrolled, then required of every admin.
    crate::two_factor::enrol(&app, &app.client, PASSWORD).await;
    let (status, body) = app
        .call(&app.client, "set_second_factor_policy", &[("required", "true")])
        .await;
    assert_eq!(status, 200, "{body}");
    // Another endpoint added, disabled, enabled and deleted: heard by the
    // first. And a test event to the first.
    let (extra, _) = endpoint(&app, &token, &one, json!(["webhook.test"])).await;
    for enabled in [false, true] {
        let res = app
            .client
            .patch(app.url(&format!("/api/v1/webhooks/{extra}")))
            .bearer_auth(&token)
            .json(&json!({ "enabled": enabled }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = app
        .bearer(Method::DELETE, &format!("/api/v1/webhooks/{extra}"), &token)
        .await;
    assert_eq!(res.status(), 200);
    send_test(&app, &token, &all_id).await;
    // Expiry, announced at the next start: a certificate a day from its
    // end and one just ended; an admin token five days from its end and
    // one past it.
    let now = app::domain::clock::now_ms();
    let db = app.kw().db().write().clone();
    const DAY: i64 = 24 * 3600 * 1000;
    for (name, not_after) in [("expiring", now + 20 * 3600 * 1000), ("ended", now - 3600 * 1000)] {
        let (_, csr) = openssl_csr(dir.path(), Key::P256, name);
        let cert = issued(&app, &token, name, &csr).await;
        sqlx::query("UPDATE certificates SET not_before = $1, not_after = $2 WHERE id = $3")
            .bind(now - 30 * DAY)
            .bind(not_after)
            .bind(cert["id"].as_str().unwrap())
            .execute(&db)
            .await
            .unwrap();
    }
    // A certificate renewed (the two above no longer count: one ended).
    let (_, csr_renewing) = openssl_csr(dir.path(), Key::P256, "renewing");
    let renewing = issued(&app, &token, "renewing", &csr_renewing).await;
    let res = app
        .bearer(
            Method::POST,
            &format!("/api/v1/certificates/{}/renew", renewing["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(res.status(), 200);
    for (name, expires_at) in [("stale", now - 60_000), ("soon", now + 5 * DAY)] {
        app.admin_with_token(name);
        sqlx::query(
            "UPDATE admin_tokens SET issued_at = $1, expires_at = $2 \
             WHERE admin_id = (SELECT id FROM admin_users WHERE username = $3)",
        )
        .bind(now - 365 * DAY)
        .bind(expires_at)
        .bind(name)
        .execute(&db)
        .await
        .unwrap();
    }
    // The CA rotated from the host (its overlap leaves every certificate
    // above as it was).
    let out = app.keyward(&["ca", "rotate", "--overlap", "24h"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Last, the master key rotated from the host; the restart takes the
    // new key, and the secrets re-sealed under it still sign.
    let new_key = app.data_dir.join("rotated.key");
    let out = app.keyward(
        &["master-key", "rotate", "--new-key-file", new_key.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.restart_with(|c| {
        allow_private(c);
        c.master_key_file = Some(new_key.clone());
    })
    .await;

    // Every event there is.
    let expected: BTreeSet<&str> = app::domain::webhooks::events::EVENTS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let mut seen = BTreeSet::new();
    let mut bodies = String::new();
    let mut ids = BTreeSet::new();
    let mut expiring = Value::Null;
    while !expected.is_subset(&seen.iter().map(String::as_str).collect()) {
        let got = all.next_within(Duration::from_secs(20)).await;
        let payload = verified(&got, &secret);
        bodies.push_str(&String::from_utf8_lossy(&got.body));
        assert!(
            ids.insert(payload["id"].as_str().unwrap().to_owned()),
            "a delivery id is sent once"
        );
        if payload["event"] == "certificate.expiring" {
            expiring = payload.clone();
        }
        seen.insert(payload["event"].as_str().unwrap().to_owned());
    }
    assert_eq!(expiring["target"], "expiring");
    assert_eq!(expiring["detail"]["days_left"], 1);
    // The endpoint that asked for one event heard that one only.
    let got = one.next().await;
    assert_eq!(verified(&got, &one_secret)["event"], "certificate.revoked");
    one.quiet_for(Duration::from_secs(2)).await;
    // No payload carries a secret.
    for s in [token.as_str(), &eve_token, &secret, &one_secret, PASSWORD, &csr] {
        assert!(!bodies.contains(s), "a payload holds a secret");
    }
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_id() {
    let app = TestApp::ready_with(allow_private).await;
    let token = root_token(&app).await;
    let mut rx = Receiver::start().await;
    let (id, secret) = endpoint(&app, &token, &rx, json!(["webhook.test"])).await;
    rx.then(&[Reply::Status(503)]);
    let delivery = send_test(&app, &token, &id).await;
    let first = rx.next().await;
    verified(&first, &secret);
    let d = delivery_when(&app, &token, &id, &delivery, "tried").await;
    assert_eq!(d["responseCode"], 503);
    assert_eq!(d["lastError"], "answered 503");
    assert!(d["nextAttemptAt"].is_string());
    let again = rx.next_within(Duration::from_secs(15)).await;
    let payload = verified(&again, &secret);
    assert_eq!(header(&again, "keyward-delivery"), delivery, "the same delivery id");
    assert_eq!(payload["id"], delivery.as_str());
    let d = delivery_when(&app, &token, &id, &delivery, "delivered").await;
    assert_eq!(d["attempts"], 2);
    // The endpoint's mark is written just after the delivery's.
    let mut endpoint = Value::Null;
    for _ in 0..50 {
        endpoint = app.bearer_json(&format!("/api/v1/webhooks/{id}"), &token).await;
        if endpoint["failingSince"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(endpoint["failingSince"].is_null(), "{endpoint}");
}

/// An endpoint none of whose deliveries succeeded for a day is disabled,
/// with a notice, and its pending deliveries are dropped; enabled again,
/// it hears new events.
#[tokio::test]
async fn an_endpoint_failing_for_a_day_is_disabled() {
    let app = TestApp::ready_with(allow_private).await;
    let token = root_token(&app).await;
    let mut rx = Receiver::start().await;
    let (id, _) = endpoint(&app, &token, &rx, json!(["*"])).await;
    // The receiver holds the request without an answer; meanwhile a day
    // passes (the rows are aged). The endpoint is disabled when that
    // attempt fails; the delivery is given up, or cancelled with the
    // endpoint, whichever the worker's copy of its age says first (the
    // give-up itself is a unit test of outbox::record).
    rx.then(&[Reply::Hang]);
    let delivery = send_test(&app, &token, &id).await;
    rx.next().await;
    let day_ago = app::domain::clock::now_ms() - 24 * 3600 * 1000 - 1000;
    let db = app.kw().db().write().clone();
    sqlx::query("UPDATE webhook_deliveries SET created_at = $1 WHERE id = $2")
        .bind(day_ago)
        .bind(&delivery)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE webhook_endpoints SET failing_since = $1 WHERE id = $2")
        .bind(day_ago)
        .bind(&id)
        .execute(&db)
        .await
        .unwrap();
    // The held request times out after 10 s.
    let mut endpoint = Value::Null;
    for _ in 0..400 {
        endpoint = app.bearer_json(&format!("/api/v1/webhooks/{id}"), &token).await;
        if endpoint["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(endpoint["enabled"], false, "{endpoint}");
    let d = endpoint["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == delivery.as_str())
        .unwrap()
        .clone();
    assert!(d["state"] == "failed" || d["state"] == "cancelled", "{d}");
    assert_eq!(d["lastError"], "no answer within 10 seconds");
    assert!(
        endpoint["disabledReason"]
            .as_str()
            .unwrap()
            .contains("no delivery to it succeeded for 24 hours"),
        "{endpoint}"
    );
    let events = app
        .bearer_json("/api/v1/audit-events?action=webhook.auto_disable", &token)
        .await;
    assert!(events.to_string().contains("webhook.auto_disable"), "{events}");
    // Disabled: a test is refused, and a change sends nothing.
    let res = app
        .bearer(Method::POST, &format!("/api/v1/webhooks/{id}/test"), &token)
        .await;
    envelope(res, 409, 400900).await;
    app.server_key(&token, 0).await;
    rx.quiet_for(Duration::from_millis(1500)).await;
    // Enabled again, it hears the next event, its notice gone.
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/webhooks/{id}")))
        .bearer_auth(&token)
        .json(&json!({ "enabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["disabledReason"].is_null() && body["enabled"] == true, "{body}");
    app.server_key(&token, 0).await;
    let got = rx.next().await;
    let payload: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(payload["event"], "server_key.generated");
}

/// Disabling an endpoint cancels what it still had to receive, the send
/// under way included: its late outcome does not bring it back, and
/// enabling the endpoint again sends none of it.
#[tokio::test]
async fn a_disabled_endpoints_deliveries_stay_cancelled() {
    let app = TestApp::ready_with(allow_private).await;
    let token = root_token(&app).await;
    let mut rx = Receiver::start().await;
    let (id, _) = endpoint(&app, &token, &rx, json!(["webhook.test"])).await;
    rx.then(&[Reply::Hang]);
    let first = send_test(&app, &token, &id).await;
    rx.next().await;
    let queued = [send_test(&app, &token, &id).await, send_test(&app, &token, &id).await];
    let set = |enabled: bool| {
        app.client
            .patch(app.url(&format!("/api/v1/webhooks/{id}")))
            .bearer_auth(&token)
            .json(&json!({ "enabled": enabled }))
            .send()
    };
    assert_eq!(set(false).await.unwrap().status(), 200);
    // The hanging send times out (10 s) and is recorded, or not, after.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for d in [&first, &queued[0], &queued[1]] {
        delivery_when(&app, &token, &id, d, "cancelled").await;
    }
    assert_eq!(set(true).await.unwrap().status(), 200);
    rx.quiet_for(Duration::from_millis(1500)).await;
}

/// Loopback and private addresses need the operator's leave, link-local
/// ones are refused always; the rule holds again at delivery, and a
/// redirect is not followed.
#[tokio::test]
async fn addresses_are_checked_at_creation_and_at_delivery() {
    let mut app = TestApp::ready().await;
    let token = root_token(&app).await;
    let mut rx = Receiver::start().await;
    for url in [
        rx.url.as_str(),
        "http://localhost:9/x",
        "http://[::1]:9/x",
        "http://10.0.0.8/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/x",
        "http://0.0.0.0:9/x",
        "ftp://example.com/x",
        "https://user:pw@example.com/x",
    ] {
        let res = create(&app, &token, json!({ "url": url, "events": ["*"] })).await;
        let message = envelope(res, 400, 400000).await;
        assert!(!message.is_empty(), "{url}");
    }
    let res = create(
        &app,
        &token,
        json!({ "url": "http://169.254.169.254/", "events": ["*"] }),
    )
    .await;
    assert!(envelope(res, 400, 400000).await.contains("link-local"));
    let res = create(
        &app,
        &token,
        json!({ "url": "https://hooks.example.com/", "events": ["no.such"] }),
    )
    .await;
    assert!(envelope(res, 400, 400000).await.contains("Unknown event"));
    let res = create(
        &app,
        &token,
        json!({ "url": "https://hooks.example.com/", "events": [] }),
    )
    .await;
    envelope(res, 400, 400000).await;

    // With leave, loopback is fine; metadata still is not.
    app.restart_with(allow_private).await;
    let res = create(
        &app,
        &token,
        json!({ "url": "http://169.254.169.254/", "events": ["*"] }),
    )
    .await;
    assert!(envelope(res, 400, 400000).await.contains("link-local"));
    let (id, _) = endpoint(&app, &token, &rx, json!(["*"])).await;
    let by_name = rx.url.replace("127.0.0.1", "localhost");
    let res = create(&app, &token, json!({ "url": by_name, "events": ["webhook.test"] })).await;
    assert_eq!(res.status(), 200);
    let named: Value = res.json().await.unwrap();
    let named = named["id"].as_str().unwrap().to_owned();
    rx.next().await; // webhook.created, to the first endpoint
                     // A redirect is an answer, not a hop.
    rx.then(&[Reply::Redirect]);
    let delivery = send_test(&app, &token, &id).await;
    rx.next().await;
    let d = delivery_when(&app, &token, &id, &delivery, "tried").await;
    assert_eq!(d["responseCode"], 302);
    assert!(
        d["lastError"].as_str().unwrap().contains("redirects are not followed"),
        "{d}"
    );
    rx.quiet_for(Duration::from_millis(500)).await;
    // The leave withdrawn: nothing is sent to loopback, whether the URL
    // names the address or a name that resolves to it.
    app.restart_with(|_| {}).await;
    for id in [&id, &named] {
        let delivery = send_test(&app, &token, id).await;
        let d = delivery_when(&app, &token, id, &delivery, "tried").await;
        assert!(
            d["lastError"].as_str().unwrap_or_default().starts_with("refused:"),
            "{d}"
        );
        assert!(d["responseCode"].is_null());
    }
    rx.quiet_for(Duration::from_millis(500)).await;
}

/// An admin token is needed (as for certificates and server keys), and
/// a missing endpoint is a 404.
#[tokio::test]
async fn webhooks_need_an_admin_token() {
    let app = TestApp::ready_with(allow_private).await;
    let res = app.client.get(app.url("/api/v1/webhooks")).send().await.unwrap();
    envelope(res, 401, 400100).await;
    let res = create(
        &app,
        "kwadm_not-a-token",
        json!({ "url": "http://127.0.0.1:9/", "events": ["*"] }),
    )
    .await;
    envelope(res, 401, 400100).await;
    let token = root_token(&app).await;
    let res = app.bearer(Method::DELETE, "/api/v1/webhooks/nope", &token).await;
    envelope(res, 404, 400400).await;
    let res = app.bearer(Method::POST, "/api/v1/webhooks/nope/test", &token).await;
    envelope(res, 404, 400400).await;
    // An id PostgreSQL could not even compare is simply not found.
    for path in ["/api/v1/webhooks/%00", "/api/v1/webhooks/a%00b/test"] {
        let method = if path.ends_with("/test") {
            Method::POST
        } else {
            Method::GET
        };
        envelope(app.bearer(method, path, &token).await, 404, 400400).await;
    }
}

/// The free port a child server is told to listen on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kill -9 while a delivery is on its way: after the restart it is sent
/// again (same delivery id), once the dead instance's claim runs out.
#[tokio::test]
async fn a_delivery_survives_a_kill_9() {
    let mut app = TestApp::ready_with(allow_private).await;
    let token = root_token(&app).await;
    let mut rx = Receiver::start().await;
    let (id, secret) = endpoint(&app, &token, &rx, json!(["*"])).await;
    app.stop().await;

    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
        .arg("serve")
        .env("KEYWARD_DATA_DIR", &app.data_dir)
        .env("DATABASE_URL", &app.db_url)
        .env("KEYWARD_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("KEYWARD_HTTPS_ADDR", "127.0.0.1:0")
        .env("KEYWARD_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("KEYWARD_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the child server answers");
    rx.then(&[Reply::Hang]);
    let res = client
        .post(format!("{base}/api/v1/webhooks/{id}/test"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let delivery = body["deliveryId"].as_str().unwrap().to_owned();
    // The request is on its way (the receiver holds it): kill -9.
    let first = rx.next().await;
    assert_eq!(header(&first, "keyward-delivery"), delivery);
    child.kill().unwrap();
    child.wait().unwrap();

    app.restart_with(allow_private).await;
    let again = rx.next_within(Duration::from_secs(60)).await;
    assert_eq!(header(&again, "keyward-delivery"), delivery, "the same delivery, again");
    verified(&again, &secret);
    let d = delivery_when(&app, &token, &id, &delivery, "delivered").await;
    assert_eq!(d["attempts"], 2);
}

/// Two instances on one database: every event is delivered once.
#[tokio::test]
async fn two_instances_deliver_each_event_once() {
    let app = TestApp::ready_with(allow_private).await;
    let token = root_token(&app).await;
    let mut config = config_for(&app.data_dir, &app.db_url);
    allow_private(&mut config);
    let other = server::startup::build(config).await.expect("a second instance starts");
    let other_base = format!("http://{}", other.http_addr);
    let mut rx = Receiver::start().await;
    let (id, _) = endpoint(&app, &token, &rx, json!(["*"])).await;
    other.keyward.refresh().await.unwrap();
    // Events made on both instances, at once.
    let mut sent = BTreeSet::new();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = if i % 2 == 0 {
            app.url(&format!("/api/v1/webhooks/{id}/test"))
        } else {
            format!("{other_base}/api/v1/webhooks/{id}/test")
        };
        let (client, token) = (app.client.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let res = client.post(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.unwrap();
            body["deliveryId"].as_str().unwrap().to_owned()
        }));
    }
    for t in tasks {
        sent.insert(t.await.unwrap());
    }
    let mut got = Vec::new();
    while got.len() < sent.len() {
        got.push(header(&rx.next().await, "keyward-delivery"));
    }
    rx.quiet_for(Duration::from_secs(2)).await;
    let unique: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "no delivery was sent twice: {got:?}");
    assert_eq!(unique, sent);
    other.shutdown().await.unwrap();
}

/// Settings > Webhooks without JavaScript: an endpoint added for chosen
/// events, its secret shown on the one page the form lands on, a refused
/// form kept, a test event and its delivery log, disable and delete.
#[tokio::test]
async fn the_console_manages_endpoints_without_javascript() {
    let app = TestApp::ready_with(allow_private).await;
    assert_eq!(app.login().await.status(), 302);
    let mut rx = Receiver::start().await;
    let page = "/settings/webhooks";

    // Refused: the URL kept, the reason shown.
    let res = app
        .form(
            &app.client,
            "create_webhook",
            "/settings/webhooks?do=add",
            &[("url", "ftp://nope.example/x"), ("scope", "all")],
        )
        .await;
    assert_eq!(res.status(), 302);
    let back = location(&res);
    let html = app.html(back.trim_start_matches(&app.base)).await;
    assert!(html.contains("ftp://nope.example/x"), "the URL is kept: {html}");
    assert!(html.contains("must start with https://"), "{html}");

    // Two chosen events, by their place in the list.
    let res = app
        .form(
            &app.client,
            "create_webhook",
            page,
            &[
                ("url", rx.url.as_str()),
                ("description", "Security team"),
                ("scope", "chosen"),
                ("events[2]", "secure_mode.on"),
                ("events[11]", "certificate.revoked"),
            ],
        )
        .await;
    assert_eq!(res.status(), 302);
    let html = app.html(page).await;
    let secret = html
        .split("data-testid=\"webhook-secret\"")
        .nth(1)
        .and_then(|rest| rest.split("value=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .expect("the secret is on the page the form lands on")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(html.contains("secure_mode.on, certificate.revoked"), "{html}");
    assert!(html.contains("Security team"));
    let again = app.html(page).await;
    assert!(!again.contains(&secret), "shown once");

    // A test event: the receiver checks it, the log shows it delivered.
    let operator = app::domain::Principal::operator();
    let id = app.kw().webhooks(&operator).await.unwrap()[0].id.clone();
    let res = app.form(&app.client, "send_test_webhook", page, &[("id", &id)]).await;
    assert_eq!(location(&res), format!("{page}?log={id}#log"));
    verified(&rx.next().await, &secret);
    let mut log = String::new();
    for _ in 0..100 {
        log = app.html(&format!("{page}?log={id}")).await;
        if log.contains(">delivered<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(log.contains("webhook.test") && log.contains(">delivered<"), "{log}");

    // Disabled, then deleted.
    let (status, body) = app
        .call(&app.client, "set_webhook_enabled", &[("id", &id), ("enabled", "false")])
        .await;
    assert_eq!(status, 200, "{body}");
    let html = app.html(page).await;
    assert!(html.contains(">Disabled<") && html.contains(">Enable<"), "{html}");
    let (status, body) = app.call(&app.client, "send_test_webhook", &[("id", &id)]).await;
    assert_eq!(status, 409, "a disabled endpoint gets no test: {body}");
    let (status, body) = app.call(&app.client, "delete_webhook", &[("id", &id)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(app.html(page).await.contains("No endpoint yet."));
    rx.quiet_for(Duration::from_millis(300)).await;
}

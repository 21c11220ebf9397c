//! `/metrics` read by the Prometheus project's own parsers, its series
//! moving with what they count, and spans sent to a real OTLP/HTTP
//! receiver: each with no secret in any label or attribute.

use prost::Message;
use reqwest::Method;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;

use crate::helpers::*;

/// One sample as the parser read it.
#[derive(Debug, Clone)]
struct Sample {
    family: String,
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The Python with `prometheus_client` (scripts/test.sh makes a venv with
/// it and names it in KEYWARD_TEST_PYTHON).
fn python() -> String {
    std::env::var("KEYWARD_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Parses `text` with Prometheus's parser for `format` ("openmetrics" or "text").
fn parse(format: &str, text: &str) -> Vec<Sample> {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/support/prom_parse.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(format)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "prometheus_client is missing: run ./scripts/test.sh (it installs it), \
         or set KEYWARD_TEST_PYTHON to a Python that has it"
    );
    assert!(
        out.status.success(),
        "the {format} parser refused the exposition: {stderr}\n{text}"
    );
    let parsed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    parsed
        .into_iter()
        .map(|s| Sample {
            family: s["family"].as_str().unwrap().to_string(),
            name: s["name"].as_str().unwrap().to_string(),
            labels: serde_json::from_value(s["labels"].clone()).unwrap(),
            value: s["value"].as_f64().unwrap(),
        })
        .collect()
}

struct Scrape {
    samples: Vec<Sample>,
    text: String,
}

impl Scrape {
    /// Reads `/metrics` in both formats, checks each parses and that they
    /// hold the same families, and keeps the OpenMetrics one.
    async fn take(app: &TestApp) -> Scrape {
        let get = |accept: &'static str| {
            let req = app.client.get(app.url("/metrics")).header("accept", accept);
            async move {
                let res = req.send().await.unwrap();
                assert_eq!(res.status(), 200);
                let kind = res.headers()["content-type"].to_str().unwrap().to_string();
                (kind, res.text().await.unwrap())
            }
        };
        let (kind, classic) = get("text/plain").await;
        assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
        let (kind, open) = get("application/openmetrics-text;version=1.0.0,text/plain;q=0.5").await;
        assert!(
            kind.starts_with("application/openmetrics-text; version=1.0.0"),
            "{kind}"
        );
        assert!(open.ends_with("# EOF\n"));
        let families = |s: &[Sample]| s.iter().map(|s| s.family.clone()).collect::<BTreeSet<_>>();
        let classic_samples = parse("text", &classic);
        let samples = parse("openmetrics", &open);
        assert_eq!(
            families(&classic_samples),
            families(&samples),
            "both formats hold the same families"
        );
        Scrape { samples, text: open }
    }

    /// The value of the sample `name` with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    fn has_family(&self, family: &str) -> bool {
        self.samples.iter().any(|s| s.family == family)
    }
}

/// Every series the README's Operations section lists.
const DOCUMENTED: [&str; 18] = [
    "keyward_http_responses",
    "keyward_http_requests",
    "keyward_http_request_duration_seconds",
    "keyward_token_verifications",
    "keyward_sign_ins",
    "keyward_rotations",
    "keyward_revocations",
    "keyward_writer_commit_seconds",
    "keyward_writer_writes",
    "keyward_writer_failed_statements",
    "keyward_writer_queued",
    "keyward_revocation_filter_bytes",
    "keyward_revocation_filter_logouts",
    "keyward_known_user_lookups",
    "keyward_known_users",
    "keyward_known_user_bytes",
    "keyward_stored_user_filter_bytes",
    "process_resident_memory_bytes",
];

#[tokio::test]
async fn metrics_parse_with_prometheus_parsers_and_their_series_move() {
    let app = TestApp::ready().await;
    let before = Scrape::take(&app).await;
    for family in DOCUMENTED {
        assert!(before.has_family(family), "{family} is missing:\n{}", before.text);
    }
    // The domain's series exist, at zero, before their first event.
    assert_eq!(
        before.value(
            "keyward_token_verifications_total",
            &[("token", "auth"), ("result", "revoked")]
        ),
        Some(0.0)
    );
    assert_eq!(
        before.value("keyward_revocations_total", &[("kind", "certificate")]),
        Some(0.0)
    );

    // An end user: a session, a verification, a forged token, a logout,
    // and the logged-out token again.
    let user = "metered-user-7f3a";
    let token = app.session_token(user).await;
    let verify = |t: String| app.bearer(Method::GET, "/api/v3/sessions", t);
    assert_eq!(verify(token.clone()).await.status(), 200);
    assert_eq!(verify("forged.token".into()).await.status(), 401);
    assert_eq!(
        app.bearer(Method::DELETE, "/api/v4/sessions", &token).await.status(),
        200
    );
    assert_eq!(verify(token.clone()).await.status(), 401);

    // An admin: a server key, an auth token redeemed once and refused the
    // second time, forged credentials, a rotation of their own token, a
    // certificate issued and revoked, a user's sessions ended (a route
    // with a parameter), and their token revoked.
    let admin_token = app.admin_with_token("metrics-ops");
    app.settle().await;
    let server_key = app.server_key(&admin_token, 0).await;
    // v4 answers the auth token as plain text.
    let auth_token = app.mint(&server_key, user).await.text().await.unwrap();
    assert!(auth_token.starts_with("kwauth_"), "{auth_token}");
    let redeem = || app.session(serde_json::json!({"userId": user, "deviceId": "d", "authToken": auth_token}));
    assert_eq!(redeem().await.status(), 200);
    assert_eq!(redeem().await.status(), 401);
    assert_eq!(app.mint("kwsk_forged", user).await.status(), 401);
    let forged = app.bearer(Method::POST, "/api/v1/server-keys", "kwa_forged").await;
    assert_eq!(forged.status(), 401);
    let rotated = app.bearer(Method::POST, "/api/v1/admin-token", &admin_token).await;
    assert_eq!(rotated.status(), 200);
    let dir = tempfile::tempdir().unwrap();
    let (_, csr) = crate::certificates::openssl_csr(dir.path(), crate::certificates::Key::P256, "metered");
    let cert = crate::certificates::issued(&app, &admin_token, "metered", &csr).await;
    let path = format!("/api/v1/certificates/{}", cert["id"].as_str().unwrap());
    assert_eq!(app.bearer(Method::DELETE, &path, &admin_token).await.status(), 200);
    let ended = app
        .bearer(Method::DELETE, &format!("/api/v4/sessions/users/{user}"), &admin_token)
        .await;
    assert_eq!(ended.status(), 200);
    let revoked = app
        .bearer(Method::DELETE, "/api/v1/admin-token?username=metrics-ops", &admin_token)
        .await;
    assert_eq!(revoked.status(), 200);

    // Console sign-ins: a wrong password, then the right one; then wrong
    // ones from another browser until the throttle refuses.
    async fn wrong(app: &TestApp) -> String {
        let client = browser(&app.base);
        app.call(
            &client,
            "login",
            &[("username", ADMIN), ("password", "not the password")],
        )
        .await
        .1
    }
    assert!(wrong(&app).await.contains("Incorrect username or password"));
    assert_eq!(app.login().await.status(), 302);
    let mut throttled = false;
    for _ in 0..12 {
        if wrong(&app).await.contains("RateLimited") {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "the throttle never refused");

    // A page the console does not have, its path holding a would-be secret.
    let res = app.client.get(app.url("/no/such/page-s3cr3t")).send().await.unwrap();
    assert_eq!(res.status(), 404);

    let after = Scrape::take(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after
            .value(name, labels)
            .unwrap_or_else(|| panic!("{name}{labels:?} is missing"))
            - before.value(name, labels).unwrap_or(0.0)
    };
    let verified = |token: &str, result: &str| {
        moved(
            "keyward_token_verifications_total",
            &[("token", token), ("result", result)],
        )
    };
    // The verification, and the logout's own check of its token.
    assert_eq!(verified("access", "ok"), 2.0);
    assert_eq!(verified("access", "invalid"), 1.0);
    assert_eq!(verified("access", "revoked"), 1.0);
    assert_eq!(verified("auth", "ok"), 1.0);
    assert_eq!(verified("auth", "revoked"), 1.0);
    assert_eq!(verified("server_key", "ok"), 1.0);
    assert_eq!(verified("server_key", "invalid"), 1.0);
    assert!(verified("api_key", "ok") >= 3.0);
    assert!(verified("admin", "ok") >= 6.0);
    assert_eq!(verified("admin", "invalid"), 1.0);
    assert!(moved("keyward_sign_ins_total", &[("result", "bad_credentials")]) >= 2.0);
    assert_eq!(moved("keyward_sign_ins_total", &[("result", "ok")]), 1.0);
    assert_eq!(moved("keyward_sign_ins_total", &[("result", "throttled")]), 1.0);
    assert_eq!(moved("keyward_rotations_total", &[("kind", "server_key")]), 1.0);
    assert_eq!(moved("keyward_rotations_total", &[("kind", "admin_token")]), 1.0);
    assert_eq!(moved("keyward_revocations_total", &[("kind", "logout")]), 1.0);
    assert_eq!(moved("keyward_revocations_total", &[("kind", "certificate")]), 1.0);
    assert_eq!(
        moved("keyward_revocations_total", &[("kind", "end_user_sessions")]),
        1.0
    );
    assert_eq!(moved("keyward_revocations_total", &[("kind", "admin_token")]), 1.0);
    // The user is created once; the redemption's session finds it in memory.
    assert_eq!(moved("keyward_writer_writes_total", &[("kind", "user")]), 1.0);
    assert!(moved("keyward_known_user_lookups_total", &[("result", "hit")]) >= 1.0);
    // The new user's look-up: read first, or certainly new once the filter
    // of stored user ids has loaded.
    assert!(
        moved("keyward_known_user_lookups_total", &[("result", "miss")])
            + moved("keyward_known_user_lookups_total", &[("result", "new")])
            >= 1.0
    );
    assert_eq!(moved("keyward_writer_writes_total", &[("kind", "redemption")]), 2.0);
    assert_eq!(moved("keyward_writer_writes_total", &[("kind", "logout")]), 1.0);
    assert!(moved("keyward_writer_commit_seconds_count", &[]) >= 3.0);
    assert_eq!(
        after.value("keyward_writer_commit_seconds_count", &[]),
        after.value("keyward_writer_commit_seconds_bucket", &[("le", "+Inf")])
    );
    let requests = |method: &str, route: &str, class: &str| {
        moved(
            "keyward_http_requests_total",
            &[("method", method), ("route", route), ("class", class)],
        )
    };
    assert_eq!(requests("POST", "/api/v3/sessions", "2xx"), 2.0);
    assert_eq!(requests("POST", "/api/v3/sessions", "4xx"), 1.0);
    assert_eq!(requests("GET", "/api/v3/sessions", "2xx"), 1.0);
    assert_eq!(requests("GET", "/api/v3/sessions", "4xx"), 2.0);
    assert_eq!(requests("DELETE", "/api/v4/sessions/users/{user_id}", "2xx"), 1.0);
    assert_eq!(requests("GET", "unmatched", "4xx"), 1.0);
    assert!(moved("keyward_http_responses_total", &[("class", "2xx")]) >= 10.0);
    assert!(moved("keyward_http_request_duration_seconds_count", &[]) >= 20.0);
    assert!(after.value("process_resident_memory_bytes", &[]).unwrap() > 1e6);

    // No label value anywhere carries a user, a key, a token or a path.
    let secrets = [
        user.to_string(),
        token.clone(),
        admin_token.clone(),
        server_key.clone(),
        auth_token.clone(),
        app.api_key().await,
        "s3cr3t".to_string(),
    ];
    for secret in &secrets {
        assert!(!after.text.contains(secret.as_str()), "{secret} is in /metrics");
    }
}

/// An access token past its lifetime is counted as expired, not invalid.
#[tokio::test]
async fn an_expired_access_token_is_counted_as_expired() {
    let app = TestApp::ready_with(|c| c.lifetimes.access_token_ttl = Duration::from_millis(1)).await;
    let token = app.session_token("short-lived").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(app.bearer(Method::GET, "/api/v3/sessions", &token).await.status(), 401);
    let after = Scrape::take(&app).await;
    let count = |result: &str| {
        after
            .value(
                "keyward_token_verifications_total",
                &[("token", "access"), ("result", result)],
            )
            .unwrap()
    };
    assert_eq!(count("expired"), 1.0);
    assert_eq!(count("invalid"), 0.0);
}

/// What the receiver kept of one span.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    name: String,
    kind: i32,
    attributes: BTreeMap<String, String>,
    start: u64,
    end: u64,
    error: bool,
    service: String,
}

/// A small OTLP/HTTP receiver: decodes each export (protobuf) and keeps its spans.
async fn receiver() -> (String, Arc<Mutex<Vec<ReceivedSpan>>>) {
    use axum::body::Bytes;
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kept = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let kept = kept.clone();
            async move {
                assert_eq!(headers["content-type"], "application/x-protobuf");
                let export = ExportTraceServiceRequest::decode(body).expect("an OTLP export");
                let mut kept = kept.lock().unwrap();
                for resource in export.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .map(|a| show(a.value.as_ref().and_then(|v| v.value.as_ref())))
                        .unwrap_or_default();
                    for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                        kept.push(ReceivedSpan {
                            name: span.name,
                            kind: span.kind,
                            attributes: span
                                .attributes
                                .iter()
                                .map(|a| (a.key.clone(), show(a.value.as_ref().and_then(|v| v.value.as_ref()))))
                                .collect(),
                            start: span.start_time_unix_nano,
                            end: span.end_time_unix_nano,
                            error: span.status.is_some_and(|s| s.code == 2),
                            service: service.clone(),
                        });
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::default()
                        .encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), spans)
}

fn show(value: Option<&AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn spans_reach_an_otlp_receiver_and_carry_no_secret() {
    let (collector, spans) = receiver().await;
    let mut app =
        TestApp::ready_with(|c| c.otlp_endpoint = Some(server::config::parse_otlp_endpoint(&collector).unwrap())).await;
    let api_key = app.api_key().await;
    let user = "traced-user-s3cr3t";
    let token = app.session_token(user).await;
    // A credential in the query string must not reach a span.
    let res = app
        .client
        .get(app.url(&format!("/api/v3/sessions?accessToken={token}&x=s3cr3t")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .delete(app.url(&format!("/api/v4/sessions/users/{user}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "no admin token");
    let res = app.client.get(app.url("/no/such/page-s3cr3t")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let wrong = app
        .call(
            &browser(&app.base),
            "login",
            &[("username", ADMIN), ("password", "password-s3cr3t")],
        )
        .await;
    assert!(wrong.1.contains("Incorrect username or password"), "{wrong:?}");
    // Stopping flushes what is queued.
    app.stop().await;

    let spans = spans.lock().unwrap().clone();
    assert!(!spans.is_empty(), "no span arrived");
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
    };
    const SERVER: i32 = 2;
    const INTERNAL: i32 = 1;
    let opened = find("POST /api/v3/sessions");
    assert_eq!(opened.kind, SERVER);
    assert_eq!(opened.attributes["http.route"], "/api/v3/sessions");
    assert_eq!(opened.attributes["http.request.method"], "POST");
    assert_eq!(opened.attributes["http.response.status_code"], "200");
    assert_eq!(opened.service, "keyward");
    assert!(opened.end >= opened.start && opened.end - opened.start < 10_000_000_000);
    assert!(!opened.error);
    let verified = find("GET /api/v3/sessions");
    assert_eq!(verified.attributes["http.response.status_code"], "200");
    let revoke = find("DELETE /api/v4/sessions/users/{user_id}");
    assert_eq!(revoke.attributes["http.route"], "/api/v4/sessions/users/{user_id}");
    assert_eq!(revoke.attributes["http.response.status_code"], "401");
    let missing = spans
        .iter()
        .find(|s| s.name == "GET" && s.attributes.get("http.response.status_code").map(String::as_str) == Some("404"))
        .expect("the unmatched request's span");
    assert!(!missing.attributes.contains_key("http.route"));
    let commit = find("keyward.writer.commit");
    assert_eq!(commit.kind, INTERNAL);
    assert_eq!(commit.attributes["keyward.batch.users"], "1");
    assert!(["sqlite", "postgresql"].contains(&commit.attributes["db.system.name"].as_str()));

    let secrets = [token.as_str(), api_key.as_str(), "s3cr3t", "?"];
    for span in &spans {
        for secret in secrets {
            assert!(!span.name.contains(secret), "{secret} in span name {span:?}");
            for (key, value) in &span.attributes {
                assert!(!value.contains(secret), "{secret} in attribute {key} of {span:?}");
            }
        }
    }
}

//! Two instances on one database: a change made on one is obeyed by the
//! other within a second, by the other's own poll (no forced refresh).

use reqwest::Method;
use serde_json::json;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::mtls::{mint, mtls_on, tls_client};

/// A second instance on `app`'s data and database.
async fn other(app: &TestApp) -> server::startup::Running {
    server::startup::build(config_for(&app.data_dir, &app.db_url))
        .await
        .expect("a second instance starts")
}

/// Waits (at most a second) until `check` holds.
async fn within_a_second<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, Duration::from_secs(1), check).await
}

async fn status(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_revoked_or_disabled_admins_token_dies_on_the_other_instance() {
    let app = TestApp::ready().await;
    let token = app.admin_with_token("ops");
    // The first instance is told at once (it takes the revoke); the other
    // must find out by itself.
    app.settle().await;
    let other = other(&app).await;
    let me = |token: String| {
        let url = format!("http://{}/api/v1/admins/me", other.http_addr);
        async move { status(reqwest::Client::new().get(url).bearer_auth(token)).await }
    };
    assert_eq!(me(token.clone()).await, 200);
    let res = app
        .bearer(Method::DELETE, "/api/v1/admin-token?username=ops", &token)
        .await;
    assert_eq!(res.status(), 200);
    within_a_second("a token revocation", || async { me(token.clone()).await == 401 }).await;

    let token = app.issue_token("ops");
    within_a_second("a new token", || async { me(token.clone()).await == 200 }).await;
    let out = app.keyward(&["admin", "disable", "--username", "ops"], None);
    assert!(out.status.success());
    within_a_second("a disable", || async { me(token.clone()).await == 401 }).await;
    other.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_rotated_server_key_dies_on_the_other_instance() {
    let app = TestApp::ready().await;
    let token = app.admin_with_token("ops");
    app.settle().await;
    let old = app.server_key(&token, 0).await;
    let other = other(&app).await;
    let base = format!("http://{}", other.http_addr);
    let mint_there = |key: String| {
        let url = format!("{base}/api/v4/authentication/token");
        async move {
            status(
                reqwest::Client::new()
                    .post(url)
                    .header("x-server-key", key)
                    .json(&json!({ "userId": "alice" })),
            )
            .await
        }
    };
    assert_eq!(mint_there(old.clone()).await, 200);
    // A new key without overlap: the old one retires at once.
    app.server_key(&token, 0).await;
    within_a_second("a server-key rotation", || async {
        mint_there(old.clone()).await == 401
    })
    .await;
    other.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_revoked_certificate_and_the_mtls_switch_reach_the_other_instance() {
    let m = mtls_on(|_| {}).await;
    let app = &m.app;
    let other = other(app).await;
    let https = format!("https://{}", other.https_addr);
    let http = format!("http://{}", other.http_addr);
    let with_cert = tls_client(app, Some((m.cert["pem"].as_str().unwrap(), &m.key)));
    assert_eq!(mint(&with_cert, &https, &m.server_key).await.status(), 200);
    assert_eq!(
        mint(&app.client, &http, &m.server_key).await.status(),
        403,
        "mTLS is on"
    );

    // mTLS off on the first instance: plain HTTP mints on the other.
    let res = with_cert
        .patch(format!("{}/api/v1/settings", app.https_base))
        .bearer_auth(&m.token)
        .json(&json!({ "mtls": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    within_a_second("the mTLS switch", || async {
        mint(&app.client, &http, &m.server_key).await.status() == 200
    })
    .await;

    // On again, then the certificate revoked on the first instance.
    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&m.token)
        .json(&json!({ "mtls": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    within_a_second("the mTLS switch back on", || async {
        mint(&app.client, &http, &m.server_key).await.status() == 403
    })
    .await;
    let res = with_cert
        .delete(format!(
            "{}/api/v1/certificates/{}",
            app.https_base,
            m.cert["id"].as_str().unwrap()
        ))
        .bearer_auth(&m.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    within_a_second("a certificate revocation", || async {
        mint(&with_cert, &https, &m.server_key).await.status() == 403
    })
    .await;
    other.shutdown().await.unwrap();
}

/// Waits (at most `limit`) until `check` holds.
pub(crate) async fn within<F, Fut>(what: &str, limit: Duration, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not seen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ends the connections the instances listen on (PostgreSQL), as a
/// database restart or a network cut would; says how many it ended.
async fn cut_listeners(db_url: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'keyward-listener' AND datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    n
}

/// On PostgreSQL a change is pushed (LISTEN/NOTIFY): the other instance
/// obeys it at once although its own poll is ten minutes away, for every
/// source of notifications (an audited change from the API or from the
/// host's CLI, a logout, a rename), and again after its listening
/// connection was cut (it connects again). SQLite has the poll alone,
/// which the tests above check on both backends.
#[tokio::test]
async fn on_postgres_changes_are_pushed_to_the_other_instance() {
    if backend() != "postgres" {
        return;
    }
    let app = TestApp::ready().await;
    let token = app.admin_with_token("ops");
    app.settle().await;
    let mut config = config_for(&app.data_dir, &app.db_url);
    config.refresh_interval = Duration::from_secs(600);
    let other = server::startup::build(config).await.unwrap();
    let base = format!("http://{}", other.http_addr);
    let api_key = app.api_key().await;
    let there = reqwest::Client::new();
    let me = |token: String| {
        let req = there.get(format!("{base}/api/v1/admins/me")).bearer_auth(token);
        async move { status(req).await }
    };
    let soon = Duration::from_secs(5);
    assert_eq!(me(token.clone()).await, 200);

    // An audited change through the API.
    let res = app
        .bearer(Method::DELETE, "/api/v1/admin-token?username=ops", &token)
        .await;
    assert_eq!(res.status(), 200);
    within("a token revocation", soon, || async { me(token.clone()).await == 401 }).await;

    // One from the host's command line (another process).
    let token = app.issue_token("ops");
    within("a token issued by the CLI", soon, || async {
        me(token.clone()).await == 200
    })
    .await;

    // A logout (not audited: the batching writer announces it).
    let access = app.session_token("frank").await;
    let current = |t: String| {
        let req = there.get(format!("{base}/api/v3/sessions/current")).bearer_auth(t);
        async move { status(req).await }
    };
    assert_eq!(current(access.clone()).await, 200);
    let res = app.bearer(Method::DELETE, "/api/v4/sessions", &access).await;
    assert_eq!(res.status(), 200);
    within("a logout", soon, || async { current(access.clone()).await == 401 }).await;

    // A rename, once the other instance holds the user in memory.
    let display_name = |name: Option<&'static str>| {
        let mut body = json!({ "userId": "carol", "deviceId": "d" });
        if let Some(name) = name {
            body["displayName"] = json!(name);
        }
        let req = there
            .post(format!("{base}/api/v3/sessions"))
            .header("x-api-key", &api_key)
            .json(&body);
        async move {
            let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
            body["users"][0]["displayName"].as_str().unwrap().to_string()
        }
    };
    assert_eq!(display_name(Some("Carol")).await, "Carol");
    assert_eq!(display_name(None).await, "Carol");
    let res = app
        .session(json!({ "userId": "carol", "deviceId": "d", "displayName": "Caroline" }))
        .await;
    assert_eq!(res.status(), 200);
    within("a rename", soon, || async { display_name(None).await == "Caroline" }).await;

    // The listening connections cut: each instance connects again.
    assert_eq!(cut_listeners(&app.db_url).await, 2, "both instances listen");
    let res = app
        .bearer(Method::DELETE, "/api/v1/admin-token?username=ops", &token)
        .await;
    assert_eq!(res.status(), 200);
    within("a revocation after the listener was cut", soon, || async {
        me(token.clone()).await == 401
    })
    .await;
    other.shutdown().await.unwrap();
}

//! Two instances on one database: a change made on one is obeyed by the
//! other within a second, by the other's own poll (no forced refresh).

use reqwest::Method;
use serde_json::json;
use std::future::Future;
use std::time::{Duration, Instant};

use app::domain::clock::now_ms;
use app::domain::storage::views::LATE_COMMIT_WINDOW_MS;

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

/// An hour from now: revocations made by hand outlive the test.
fn in_an_hour() -> i64 {
    now_ms() + 3_600_000
}

/// Stores a revocation by hand under sequence number `seq`, as a
/// transaction that took it and committed late (on PostgreSQL, where a
/// slower transaction's number can commit after a higher one) would.
/// Numbers taken afterwards follow the highest stored, as they would.
async fn revoke_by_hand(app: &TestApp, seq: i64, kind: &str, subject: &str, at: i64) {
    let db = app.kw().db().write();
    sqlx::query("INSERT INTO revocations (seq, kind, subject, at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(seq)
        .bind(kind)
        .bind(subject)
        .bind(at)
        .bind(in_an_hour())
        .execute(db)
        .await
        .unwrap();
    if backend() == "postgres" {
        sqlx::query("SELECT setval(pg_get_serial_sequence('revocations', 'seq'), (SELECT MAX(seq) FROM revocations))")
            .execute(db)
            .await
            .unwrap();
    }
}

/// The session id an access token carries (`kwat_<payload>.<mac>`; the
/// payload is not secret).
fn session_id(access_token: &str) -> String {
    use base64::Engine;
    let payload = access_token
        .strip_prefix("kwat_")
        .and_then(|t| t.split('.').next())
        .expect("an access token");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&json).unwrap();
    claims["sid"].as_str().expect("a session id").to_string()
}

/// Asks `instance` whether an access token still opens a session.
async fn current(instance: &server::startup::Running, token: &str) -> u16 {
    let url = format!("http://{}/api/v3/sessions/current", instance.http_addr);
    status(reqwest::Client::new().get(url).bearer_auth(token)).await
}

/// Logs `token` out on `app` and waits (at most `limit`) until `other`
/// obeys it: `other` has then read the revocations past everything stored
/// before.
async fn log_out_seen_by(app: &TestApp, other: &server::startup::Running, token: &str, limit: Duration) {
    let res = app.bearer(Method::DELETE, "/api/v4/sessions", token).await;
    assert_eq!(res.status(), 200);
    within("a logout", limit, || async { current(other, token).await == 401 }).await;
}

/// A revocation committed late, under a lower number than the highest an
/// instance read at its start, is obeyed there: for a while after its
/// first load it re-reads recent revocations by time, not only by number.
#[tokio::test]
async fn a_revocation_committed_late_below_what_an_instance_started_with_is_obeyed() {
    let app = TestApp::ready().await;
    let frank = app.session_token("frank").await;
    let grace = app.session_token("grace").await;
    revoke_by_hand(&app, 1000, "session", "nobody", now_ms()).await;
    let other = other(&app).await;
    assert_eq!(current(&other, &frank).await, 200);
    // So the late commit comes after a poll, not before the first.
    log_out_seen_by(&app, &other, &grace, Duration::from_secs(1)).await;

    let (frank_id,): (String,) = sqlx::query_as("SELECT id FROM end_users WHERE user_id = 'frank'")
        .fetch_one(app.kw().db().read())
        .await
        .unwrap();
    revoke_by_hand(&app, 500, "user", &frank_id, now_ms()).await;
    within_a_second("a revocation committed late", || async {
        current(&other, &frank).await == 401
    })
    .await;
    other.shutdown().await.unwrap();
}

/// Numbers skipped while an instance runs are watched one by one for a
/// while: a logout committed late into one of them is obeyed, though it is
/// dated too long ago for any re-read by time to find it.
#[tokio::test]
async fn a_logout_committed_late_into_a_skipped_number_is_obeyed() {
    let app = TestApp::ready().await;
    let [ivan, judy, ken] = [
        app.session_token("ivan").await,
        app.session_token("judy").await,
        app.session_token("ken").await,
    ];
    let other = other(&app).await;
    revoke_by_hand(&app, 2000, "session", "nobody", now_ms()).await;
    // Judy's logout is read by a poll after the one that read the skip
    // (Ivan's is read by that one or later): the skipped numbers have been
    // kept through a poll since they were found.
    let second = Duration::from_secs(1);
    log_out_seen_by(&app, &other, &ivan, second).await;
    log_out_seen_by(&app, &other, &judy, second).await;
    assert_eq!(current(&other, &ken).await, 200);
    revoke_by_hand(&app, 1500, "session", &session_id(&ken), now_ms() - 60_000).await;
    within_a_second("a logout committed late into a skipped number", || async {
        current(&other, &ken).await == 401
    })
    .await;
    other.shutdown().await.unwrap();
}

/// Too many numbers skipped to watch one by one (65,536 are; 90,000 is past
/// them): recent revocations are re-read by time instead, for a while.
#[tokio::test]
async fn a_logout_committed_late_among_too_many_skipped_numbers_is_obeyed() {
    let app = TestApp::ready().await;
    let [leo, mia] = [app.session_token("leo").await, app.session_token("mia").await];
    let other = other(&app).await;
    // The re-read by time that follows an instance's start has ended, so
    // only the one the skip starts can find what follows.
    tokio::time::sleep(Duration::from_millis(LATE_COMMIT_WINDOW_MS as u64 + 500)).await;
    revoke_by_hand(&app, 100_000, "session", "nobody", now_ms()).await;
    // The skip has been read by number (else 90,000 would be read as new).
    // Each poll now also looks up the 65,536 watched numbers: slower.
    let slower = Duration::from_secs(5);
    log_out_seen_by(&app, &other, &leo, slower).await;
    assert_eq!(current(&other, &mia).await, 200);
    revoke_by_hand(&app, 90_000, "session", &session_id(&mia), now_ms()).await;
    within(
        "a logout committed late among too many skipped numbers",
        slower,
        || async { current(&other, &mia).await == 401 },
    )
    .await;
    other.shutdown().await.unwrap();
}

/// An instance that starts loads every unexpired logout, however many, and
/// no expired one: the load is paged, and a logout past the first page
/// counts too.
#[tokio::test]
async fn an_instance_that_starts_obeys_every_logout_stored_before() {
    use app::domain::storage::views::REBUILD_PAGE;
    let app = TestApp::ready().await;
    let token = app.session_token("frank").await;
    // Older than the window of recent revocations a starting instance
    // re-reads by time: only the paged load can find them.
    let (at, far) = (now_ms() - 60_000, in_an_hour());
    let many = REBUILD_PAGE + 400;
    let series = if backend() == "postgres" {
        "SELECT 1000000 + i, 'session', 'gone-' || i, $1, $2 FROM generate_series(1, $3) AS g(i)"
    } else {
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $3) \
         SELECT 1000000 + i, 'session', 'gone-' || i, $1, $2 FROM n"
    };
    sqlx::query(&format!(
        "INSERT INTO revocations (seq, kind, subject, at, expires_at) {series}"
    ))
    .bind(at)
    .bind(far)
    .bind(many)
    .execute(app.kw().db().write())
    .await
    .unwrap();
    revoke_by_hand(&app, 1_000_000 + many + 1, "session", &session_id(&token), at).await;
    for n in 1..=3 {
        // Expired: a logout of a token that has expired since.
        sqlx::query("INSERT INTO revocations (seq, kind, subject, at, expires_at) VALUES ($1, 'session', $2, $3, $4)")
            .bind(2_000_000 + n)
            .bind(format!("expired-{n}"))
            .bind(at)
            .bind(at + 1_000)
            .execute(app.kw().db().write())
            .await
            .unwrap();
    }
    let other = other(&app).await;
    assert_eq!(
        current(&other, &token).await,
        401,
        "the last of {many} + 1 logouts is obeyed"
    );
    assert_eq!(
        other.keyward.metrics().revocation_filter_logouts(),
        many + 1,
        "every unexpired logout is held, and no expired one"
    );
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

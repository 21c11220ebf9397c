//! Limits an attacker meets: sign-in lockouts that cannot be turned on
//! someone else, and logouts that cannot exhaust memory.

use serde_json::json;
use std::time::{Duration, Instant};

use crate::helpers::*;

/// A browser-like client whose connections come from `ip` (127.0.0.0/8).
fn browser_from(base: &str, ip: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", base.parse().unwrap());
    headers.insert("accept", "text/html".parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .local_address(Some(ip.parse().unwrap()))
        .build()
        .unwrap()
}

/// Signs in, waiting out the per-username backoff (seconds), never a lockout.
async fn sign_in_within(app: &TestApp, client: &reqwest::Client, user: &str, pw: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let res = app.login_with(client, user, pw).await;
        if location(&res) == "/settings/integrations" {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn wrong_passwords_from_one_address_do_not_lock_the_admin_out_elsewhere() {
    let app = TestApp::ready().await;
    // The admin signs in from their usual address.
    let admin = browser_from(&app.base, "127.0.0.1");
    assert!(sign_in_within(&app, &admin, ADMIN, PASSWORD, Duration::ZERO).await);
    let attacker = browser_from(&app.base, "127.0.0.2");
    for _ in 0..8 {
        app.call(
            &attacker,
            "login",
            &[("username", ADMIN), ("password", "wrong password!!")],
        )
        .await;
    }
    // The attacker's own address is locked out, even with the right password…
    let (status, body) = app
        .call(&attacker, "login", &[("username", ADMIN), ("password", PASSWORD)])
        .await;
    assert_eq!(status, 429, "{body}");
    // …the admin gets in from their usual address at once…
    let again = browser_from(&app.base, "127.0.0.1");
    assert!(sign_in_within(&app, &again, ADMIN, PASSWORD, Duration::ZERO).await);
    // …and from a new one after a backoff of seconds at most.
    let new_place = browser_from(&app.base, "127.0.0.4");
    assert!(sign_in_within(&app, &new_place, ADMIN, PASSWORD, Duration::from_secs(20)).await);
}

#[tokio::test]
async fn a_super_admin_sees_a_locked_admin_and_unlocks_them() {
    let app = TestApp::ready().await;
    app.create_admin("ops");
    let ops = browser_from(&app.base, "127.0.0.3");
    for _ in 0..6 {
        app.call(&ops, "login", &[("username", "ops"), ("password", "wrong password!!")])
            .await;
    }
    assert_eq!(
        app.call(
            &ops,
            "login",
            &[("username", "ops"), ("password", "a long enough password")]
        )
        .await
        .0,
        429
    );
    app.login().await;
    let page = app.html("/settings/admin-users").await;
    assert!(page.contains("Locked out"), "the list says ops is locked out");
    assert!(page.contains("Unlock"), "with an Unlock for the super admin");

    let (status, body) = app.call(&app.client, "unlock_admin", &[("username", "ops")]).await;
    assert_eq!(status, 200, "{body}");
    let res = app.login_with(&ops, "ops", "a long enough password").await;
    assert_eq!(location(&res), "/settings/integrations", "unlocked at once");

    let events = app::domain::audit::recent(app.kw().db(), 20).await.unwrap();
    let lockout = events
        .iter()
        .find(|e| e.action == "admin.lockout")
        .expect("the lockout is audited");
    assert_eq!(lockout.target, "ops");
    assert!(lockout.detail.contains("127.0.0.3"), "{}", lockout.detail);
    let unlock = events
        .iter()
        .find(|e| e.action == "admin.unlock")
        .expect("the unlock is audited");
    assert_eq!((unlock.actor.as_str(), unlock.target.as_str()), (ADMIN, "ops"));
}

#[tokio::test]
async fn an_admin_cannot_unlock() {
    let app = TestApp::ready().await;
    app.create_admin("ops");
    let ops = browser(&app.base);
    app.login_with(&ops, "ops", "a long enough password").await;
    let (status, _) = app.call(&ops, "unlock_admin", &[("username", ADMIN)]).await;
    assert_eq!(status, 403);
}
#[tokio::test]
async fn logouts_are_rate_limited_per_user() {
    let app = TestApp::ready().await;
    let mut refused = 0;
    for _ in 0..40 {
        let token = app.session_token("busy").await;
        let res = app.bearer(reqwest::Method::DELETE, "/api/v4/sessions", &token).await;
        if res.status() == 429 {
            envelope(res, 429, 400311).await;
            refused += 1;
        } else {
            assert_eq!(res.status(), 200);
        }
    }
    assert!(refused > 0, "40 logouts of one user in a row were all accepted");
    // Another user is not held back by the busy one.
    let token = app.session_token("calm").await;
    let res = app.bearer(reqwest::Method::DELETE, "/api/v4/sessions", token).await;
    assert_eq!(res.status(), 200);
}

/// With a revocation memory far too small for what is revoked, a logged
/// out token is still refused and a live one still accepted: the memory is
/// only a filter, the database decides.
#[tokio::test]
async fn a_tiny_revocation_budget_never_lets_a_logged_out_token_through() {
    let app = TestApp::spawn_with(|c| c.revocation_memory = 1024).await;
    app.setup(app.setup_token.clone().unwrap().as_str(), PASSWORD).await;
    let mut live = Vec::new();
    let mut dead = Vec::new();
    for i in 0..300 {
        let res = app
            .session(json!({ "userId": format!("user-{i}"), "deviceId": "d" }))
            .await;
        let body: serde_json::Value = res.json().await.unwrap();
        let token = body["accessToken"].as_str().unwrap().to_string();
        if i % 3 == 0 {
            live.push(token);
        } else {
            let res = app.bearer(reqwest::Method::DELETE, "/api/v4/sessions", &token).await;
            assert_eq!(res.status(), 200);
            dead.push(token);
        }
    }
    for token in &dead {
        let res = app
            .bearer(reqwest::Method::GET, "/api/v3/sessions/current", token)
            .await;
        assert_eq!(res.status(), 401);
    }
    for token in &live {
        let res = app
            .bearer(reqwest::Method::GET, "/api/v3/sessions/current", token)
            .await;
        assert_eq!(res.status(), 200);
    }
}

/// The filter is rebuilt from the database now and then (so logouts of
/// expired tokens leave it): what was logged out stays refused.
#[tokio::test]
async fn logouts_stay_refused_across_a_rebuild_and_a_restart() {
    let mut app = TestApp::ready().await;
    let mut dead = Vec::new();
    for i in 0..5 {
        let token = app.session_token(&format!("u{i}")).await;
        let res = app.bearer(reqwest::Method::DELETE, "/api/v4/sessions", &token).await;
        assert_eq!(res.status(), 200);
        dead.push(token);
    }
    let kw = app.kw().clone();
    kw.rebuild_logout_filter().await.unwrap();
    assert_eq!(
        kw.metrics().revocation_filter_logouts(),
        5,
        "the rebuilt filter holds the five"
    );
    for token in &dead {
        let res = app
            .bearer(reqwest::Method::GET, "/api/v3/sessions/current", token)
            .await;
        assert_eq!(res.status(), 401);
    }
    app.stop().await;
    let restarted = server::startup::build(config_for(&app.data_dir, &app.db_url))
        .await
        .unwrap();
    let base = format!("http://{}", restarted.http_addr);
    for token in &dead {
        let res = reqwest::Client::new()
            .get(format!("{base}/api/v3/sessions/current"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "refused after a restart");
    }
    restarted.shutdown().await.unwrap();
}

/// A logout on one instance is refused on another within a second, with no
/// forced refresh: the other's own poll brings it.
#[tokio::test]
async fn a_logout_on_one_instance_is_refused_on_another_within_a_second() {
    let app = TestApp::ready().await;
    let other = server::startup::build(config_for(&app.data_dir, &app.db_url))
        .await
        .unwrap();
    let other_base = format!("http://{}", other.http_addr);
    let token = app.session_token("dora").await;
    let current = || {
        reqwest::Client::new()
            .get(format!("{other_base}/api/v3/sessions/current"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(current().await.unwrap().status(), 200, "live on the other instance");
    let res = app.bearer(reqwest::Method::DELETE, "/api/v4/sessions", &token).await;
    assert_eq!(res.status(), 200);
    let logged_out = Instant::now();
    loop {
        if current().await.unwrap().status() == 401 {
            break;
        }
        assert!(
            logged_out.elapsed() < Duration::from_secs(1),
            "still accepted on the other instance after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    other.shutdown().await.unwrap();
}

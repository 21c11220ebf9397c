//! Sign-in lockouts that an attacker cannot turn on someone else.

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
    // …but the admin, elsewhere, gets in after a short backoff at most.
    let admin = browser_from(&app.base, "127.0.0.1");
    assert!(sign_in_within(&app, &admin, ADMIN, PASSWORD, Duration::from_secs(20)).await);
}

#[tokio::test]
async fn a_super_admin_sees_a_locked_admin_and_unlocks_them() {
    let app = TestApp::ready().await;
    app.keyward(
        &["admin", "create", "--username", "ops", "--password-stdin"],
        Some("a long enough password\n"),
    );
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
    let page = app
        .client
        .get(app.url("/settings/admin-users"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Locked out"), "the list says ops is locked out");
    assert!(page.contains("Unlock"), "with an Unlock for the super admin");

    let (status, body) = app.call(&app.client, "unlock_admin", &[("username", "ops")]).await;
    assert_eq!(status, 200, "{body}");
    let res = app.login_with(&ops, "ops", "a long enough password").await;
    assert_eq!(location(&res), "/settings/integrations", "unlocked at once");

    let events = app::domain::audit::recent(&app.kw().db, 20).await.unwrap();
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
    app.keyward(
        &["admin", "create", "--username", "ops", "--password-stdin"],
        Some("a long enough password\n"),
    );
    let ops = browser(&app.base);
    app.login_with(&ops, "ops", "a long enough password").await;
    let (status, _) = app.call(&ops, "unlock_admin", &[("username", ADMIN)]).await;
    assert_eq!(status, 403);
}

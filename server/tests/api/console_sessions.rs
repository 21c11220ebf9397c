//! Console sessions end when they should: idle and absolute timeouts, a
//! password reset, a sign-out (the old cookie replayed is worthless); and
//! under an HTTPS public URL the cookie is `__Host-` and `Secure`.

use std::time::{Duration, Instant};

use crate::helpers::*;

async fn signed_in(app: &TestApp, client: &reqwest::Client) -> bool {
    let res = client.get(app.url("/settings/integrations")).send().await.unwrap();
    match res.status().as_u16() {
        200 => true,
        302 => {
            assert!(location(&res).starts_with("/login"), "{}", location(&res));
            false
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn an_idle_session_ends() {
    let app = TestApp::ready_with(|c| c.lifetimes.console_idle = Duration::from_millis(1500)).await;
    app.login().await;
    assert!(signed_in(&app, &app.client).await);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        !signed_in(&app, &app.client).await,
        "still signed in after the idle timeout"
    );
}

#[tokio::test]
async fn a_busy_session_still_ends_at_its_absolute_limit() {
    let app = TestApp::ready_with(|c| c.lifetimes.console_absolute = Duration::from_millis(2500)).await;
    app.login().await;
    let started = Instant::now();
    // Activity all along: only the absolute limit can end it.
    while started.elapsed() < Duration::from_millis(2000) {
        assert!(signed_in(&app, &app.client).await, "ended early");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let deadline = started + Duration::from_secs(6);
    while signed_in(&app, &app.client).await {
        assert!(Instant::now() < deadline, "still signed in past the absolute limit");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_password_reset_ends_existing_sessions_and_a_sign_out_is_final() {
    let app = TestApp::ready().await;
    let res = app.login().await;
    let cookie = session_cookie(&res).expect("a session cookie");
    assert!(signed_in(&app, &app.client).await);
    let out = app.keyward(
        &["admin", "reset-password", "--username", ADMIN, "--password-stdin"],
        Some("a brand new password\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!signed_in(&app, &app.client).await, "the reset ended the session");

    // Signed in again, then out: replaying the old cookie gets nothing.
    let res = app.login_with(&app.client, ADMIN, "a brand new password").await;
    let second = session_cookie(&res).expect("a new session cookie");
    assert_ne!(second, cookie);
    app.call(&app.client, "logout", &[]).await;
    for old in [cookie, second] {
        let res = anonymous()
            .get(app.url("/settings/integrations"))
            .header("cookie", old)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302, "a replayed cookie signed in");
    }
}

#[tokio::test]
async fn under_an_https_public_url_the_cookie_is_host_only_and_secure() {
    let app = TestApp::ready_with(|c| c.public_url = Some("https://keyward.example/".into())).await;
    let res = app.login().await;
    assert_eq!(location(&res), "/settings/integrations");
    let set = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("__Host-keyward="))
        .expect("a __Host- session cookie");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    assert!(!set.contains("Domain="), "a __Host- cookie names no domain: {set}");
}

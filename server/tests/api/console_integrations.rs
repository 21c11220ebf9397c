//! Settings > Integrations says what a switch needs before it is offered,
//! and counts what has been answered.

use serde_json::Value;

use crate::certificates::ops_token;
use crate::helpers::*;
use crate::mtls::mtls_on;

/// The secure-mode confirmation counts a session opened a moment ago
/// (not only what the background bookkeeping has written so far).
#[tokio::test]
async fn the_secure_mode_confirmation_counts_sessions_just_opened() {
    let app = TestApp::ready().await;
    app.session_token("alice").await;
    app.session_token("bob").await;
    assert_eq!(app.login().await.status(), 302);
    let (status, body) = app.call(&app.client, "integrations", &[]).await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["unsecured_sessions_last_day"], 2, "{body}");
    let html = app.html("/settings/integrations?confirm=secure-mode").await;
    assert!(
        html.contains(">2</strong> sessions were opened without an auth token"),
        "{html}"
    );
}

/// With no server key, turning secure mode on would refuse every client:
/// the confirmation says so first. With a key, it does not.
#[tokio::test]
async fn secure_mode_without_a_server_key_is_warned_of_before_it_is_turned_on() {
    let app = TestApp::ready().await;
    assert_eq!(app.login().await.status(), 302);
    let html = app.html("/settings/integrations?confirm=secure-mode").await;
    assert!(html.contains("data-testid=\"no-server-key\""), "{html}");
    assert!(html.contains("You have no server key"), "{html}");

    let token = ops_token(&app).await;
    app.server_key(&token, 0).await;
    let html = app.html("/settings/integrations?confirm=secure-mode").await;
    assert!(!html.contains("data-testid=\"no-server-key\""), "{html}");
}

/// While mTLS is on, secure mode cannot be turned off: the card says what
/// to do first and offers no confirmation that would then refuse.
#[tokio::test]
async fn secure_mode_off_is_not_offered_while_mtls_is_on() {
    let on = mtls_on(|_| {}).await;
    let app = &on.app;
    assert_eq!(app.login().await.status(), 302);
    for path in ["/settings/integrations", "/settings/integrations?confirm=secure-mode"] {
        let html = app.html(path).await;
        assert!(
            html.contains("data-testid=\"secure-mode-needs-mtls-off\""),
            "{path}: {html}"
        );
        assert!(
            !html.contains("Turn secure mode off"),
            "{path}: no button or link to it: {html}"
        );
    }
    // The server refuses it anyway, whatever a page offers.
    let (status, body) = app.call(&app.client, "set_secure_mode", &[("enabled", "false")]).await;
    assert_eq!(status, 409, "{body}");
}

/// Generating a key must not cut off a backend that used the current one
/// today: the step then defaults to the longest overlap and names the keys
/// that will stop. An unused key gets no overlap by default.
#[tokio::test]
async fn a_new_key_defaults_to_an_overlap_when_the_current_key_was_used_today() {
    let app = TestApp::ready().await;
    let token = ops_token(&app).await;
    let key = app.server_key(&token, 0).await;
    assert_eq!(app.login().await.status(), 302);
    let html = app.html("/settings/integrations?confirm=server-key").await;
    assert!(
        html.contains(r#"value="0" selected"#),
        "unused: no overlap by default: {html}"
    );
    assert!(!html.contains("data-testid=\"overlap-why\""), "{html}");

    assert_eq!(app.mint(&key, "alice").await.status(), 200);
    let html = app.html("/settings/integrations?confirm=server-key").await;
    assert!(
        html.contains(r#"value="24" selected"#),
        "used today: 24 hours by default: {html}"
    );
    assert!(!html.contains(r#"value="0" selected"#), "{html}");
    let stopping = html
        .split("data-testid=\"keys-that-stop\"")
        .nth(1)
        .expect("the keys that stop");
    assert!(stopping.contains(&key[..11]), "the key is named: {stopping}");
    assert!(html.contains("24 hours (until "), "each choice says until when: {html}");
}

/// Keys carry an optional name; a retired key can be taken off the list
/// (its events stay), a key that still works cannot.
#[tokio::test]
async fn keys_carry_names_and_only_retired_ones_can_be_removed() {
    let app = TestApp::ready().await;
    assert_eq!(app.login().await.status(), 302);
    let (status, body) = app
        .call(&app.client, "generate_server_key", &named("billing backend"))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .call(&app.client, "generate_server_key", &named(&"x".repeat(41)))
        .await;
    assert_eq!(status, 400, "a name of 41 characters: {body}");
    let (status, body) = app.call(&app.client, "generate_server_key", &named("")).await;
    assert_eq!(status, 200, "no name is fine: {body}");
    let html = app.html("/settings/integrations").await;
    assert!(html.contains("billing backend"), "{html}");

    let operator = app::domain::Principal::operator();
    let keys = app.kw().server_keys(&operator).await.unwrap();
    let retired = keys
        .iter()
        .find(|k| k.name.as_deref() == Some("billing backend"))
        .unwrap();
    let active = keys.iter().find(|k| k.name.is_none()).unwrap();
    let (status, body) = app.call(&app.client, "remove_server_key", &[("id", &active.id)]).await;
    assert_eq!(status, 409, "a key that works stays: {body}");
    let (status, body) = app
        .call(&app.client, "remove_server_key", &[("id", "no-such-key")])
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.call(&app.client, "remove_server_key", &[("id", &retired.id)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("is off the list"), "{body}");
    let keys = app.kw().server_keys(&operator).await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (_, page) = app
        .kw()
        .audit_page(&operator, Default::default(), None, Some(20))
        .await
        .unwrap();
    let actions: Vec<&str> = page.events.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"server_key.remove"), "{actions:?}");
    assert_eq!(
        actions.iter().filter(|a| **a == "server_key.generate").count(),
        2,
        "{actions:?}"
    );
}

/// A generate-key form: no overlap, and `name`.
fn named(name: &str) -> [(&str, &str); 2] {
    [("overlap_hours", "0"), ("name", name)]
}

/// What a form post without JavaScript left for its next page is not
/// shown to the next admin who signs in on the same browser.
#[tokio::test]
async fn a_message_left_for_one_admin_does_not_reach_the_next() {
    let app = TestApp::ready().await;
    app.create_admin("ops");
    app.settle().await;
    assert_eq!(app.login().await.status(), 302);
    let res = app
        .form(
            &app.client,
            "set_secure_mode",
            "/settings/integrations",
            &[("enabled", "true")],
        )
        .await;
    assert_eq!(res.status(), 302, "a plain form post");
    // Not read: another admin signs in on this browser instead.
    assert_eq!(app.login_with(&app.client, "ops", ADMIN_PASSWORD).await.status(), 302);
    let html = app.html("/settings/integrations").await;
    assert!(
        html.contains("data-testid=\"done\""),
        "the live region is there: {html}"
    );
    assert!(!html.contains("Secure mode is on: clients need"), "{html}");
}

/// The limits of a key's generation hold at their edges, and a key that
/// still works (retiring, not only active) is listed as such and cannot be
/// removed: a mutation run found each of these untested.
#[tokio::test]
async fn server_key_limits_hold_at_their_edges_and_a_retiring_key_stays() {
    let app = TestApp::ready().await;
    let token = ops_token(&app).await;
    let generate = |overlap: i64| {
        app.client
            .post(app.url("/api/v1/server-keys"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "overlapSeconds": overlap }))
            .send()
    };
    // Each key by the prefix its generation answered (two made in the same
    // millisecond would list in either order).
    let prefix = |res: reqwest::Response| async move {
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        body["prefix"].as_str().unwrap().to_string()
    };
    let retired = prefix(generate(0).await.unwrap()).await;
    let retiring = prefix(generate(0).await.unwrap()).await;
    let res = generate(24 * 3600 + 1).await.unwrap();
    assert_eq!(res.status(), 400, "past 24 hours: {}", res.text().await.unwrap());
    let before = app::domain::clock::now_ms();
    let active = prefix(generate(24 * 3600).await.unwrap()).await;

    let res = app.bearer(reqwest::Method::GET, "/api/v1/server-keys", &token).await;
    let body: Value = res.json().await.unwrap();
    let keys = body["serverKeys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "{body}");
    let key = |prefix: &str| keys.iter().find(|k| k["prefix"] == prefix).expect("listed").clone();
    let (retired, retiring, active) = (key(&retired), key(&retiring), key(&active));
    assert_eq!(active["status"], "active", "{body}");
    assert_eq!(retiring["status"], "retiring", "still works for a day: {body}");
    assert_eq!(retired["status"], "retired", "replaced with no overlap: {body}");
    assert!(retired["retiresAt"].is_null(), "{body}");
    let until = time::OffsetDateTime::parse(
        retiring["retiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let until_ms = (until.unix_timestamp_nanos() / 1_000_000) as i64;
    assert!(
        (before + 86_400_000..=app::domain::clock::now_ms() + 86_400_000).contains(&until_ms),
        "retires in 24 hours: {body}"
    );

    assert_eq!(app.login().await.status(), 302);
    let id = retiring["id"].as_str().unwrap();
    let (status, body) = app.call(&app.client, "remove_server_key", &[("id", id)]).await;
    assert_eq!(status, 409, "a retiring key still works: {body}");
    assert!(body.contains("still works"), "{body}");

    // A name: 40 characters at most; no control or invisible characters.
    let (status, body) = app
        .call(&app.client, "generate_server_key", &named(&"x".repeat(40)))
        .await;
    assert_eq!(status, 200, "40 characters: {body}");
    for bad in ["bell\u{7}", "a\u{202E}b", "\u{FEFF}x", "zero\u{200B}width"] {
        let (status, body) = app.call(&app.client, "generate_server_key", &named(bad)).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert!(body.contains("control or invisible"), "{body}");
    }
    let operator = app::domain::Principal::operator();
    assert_eq!(
        app.kw().server_keys(&operator).await.unwrap().len(),
        4,
        "nothing refused was stored"
    );
}

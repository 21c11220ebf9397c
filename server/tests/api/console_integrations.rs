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

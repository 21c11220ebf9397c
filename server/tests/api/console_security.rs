//! Settings > Security shows what a certificate's state is and where the
//! HTTPS listener is, and warns of an expiry when it is time to act.

use serde_json::json;

use crate::certificates::{create_certificate, issued, openssl_csr, ops_token, Key};
use crate::helpers::*;

/// A certificate just issued for 30 days is not "about to expire"; one in
/// the last third of its life (and 30 days at most) is. With no room for
/// another active certificate, the warning says what is possible.
#[tokio::test]
async fn an_expiry_is_warned_of_late_in_a_certificates_life_and_says_what_is_possible() {
    let app = TestApp::ready().await;
    let token = ops_token(&app).await;
    assert_eq!(app.login().await.status(), 302);
    let dir = tempfile::tempdir().unwrap();
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "short");
    let res = create_certificate(&app, &token, json!({ "name": "short", "csr": csr, "validityDays": 30 })).await;
    assert_eq!(res.status(), 200);
    let html = app.html("/settings/security").await;
    assert!(
        !html.contains("data-testid=\"cert-warning\""),
        "a new certificate is not expiring: {html}"
    );

    // Five days left of thirty: time to act.
    let now = app::domain::clock::now_ms();
    sqlx::query("UPDATE certificates SET not_before = $1, not_after = $2 WHERE name = 'short'")
        .bind(now - 25 * 86_400_000)
        .bind(now + 5 * 86_400_000)
        .execute(app.kw().db().write())
        .await
        .unwrap();
    app.settle().await;
    let html = app.html("/settings/security").await;
    assert!(html.contains("data-testid=\"cert-warning\""), "{html}");
    assert!(html.contains("Create a replacement"), "there is room for one: {html}");

    // Two active: creating is not possible until one is revoked.
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "other");
    issued(&app, &token, "other", &csr).await;
    let html = app.html("/settings/security").await;
    assert!(
        html.contains("Revoke a certificate you no longer use, then create a replacement"),
        "{html}"
    );
    assert!(!html.contains("Create a replacement"), "{html}");
}

/// A revoked certificate says when it was revoked, not how long it has
/// left; the mTLS card names the HTTPS listener backends must use.
#[tokio::test]
async fn a_revoked_certificate_shows_its_revocation_and_the_listener_is_named() {
    let app = TestApp::ready().await;
    let token = ops_token(&app).await;
    assert_eq!(app.login().await.status(), 302);
    let dir = tempfile::tempdir().unwrap();
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "gone");
    let cert = issued(&app, &token, "gone", &csr).await;
    let id = cert["id"].as_str().unwrap();
    let html = app.html("/settings/security").await;
    assert!(
        html.contains(&format!("{}/", app.https_base)),
        "the listener's address: {html}"
    );

    let (status, body) = app.call(&app.client, "revoke_certificate", &[("id", id)]).await;
    assert_eq!(status, 200, "{body}");
    let html = app.html("/settings/security").await;
    let row = html
        .split("data-testid=\"certificate-row\"")
        .nth(1)
        .expect("the certificate's row");
    assert!(row.contains("Revoked "), "{row}");
    assert!(!row.contains(" in 3"), "no countdown for a revoked certificate: {row}");
    assert!(row.contains("badge revoked"), "{row}");
}

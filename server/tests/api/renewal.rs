//! Renewal (issue 20): a certificate issued again for its own key and
//! subject, no CSR; the old one keeps working for the overlap chosen, then
//! is refused. Checked with real TLS clients through the HTTPS listener
//! and with the openssl command line.

use serde_json::{json, Value};
use std::time::Duration;

use crate::certificates::openssl;
use crate::helpers::*;
use crate::mtls::{mint, mtls_on, refused, tls_client};

/// `openssl x509 -noout <what>` of the first certificate in `pem`.
fn x509(dir: &std::path::Path, pem: &str, what: &str) -> String {
    let file = dir.join(format!("{}.pem", rand_name()));
    std::fs::write(&file, pem).unwrap();
    openssl(&["x509", "-noout", what, "-in", file.to_str().unwrap()])
}

fn rand_name() -> String {
    app::domain::ids::random_id()
}

pub(crate) async fn renew(
    client: &reqwest::Client,
    app: &TestApp,
    token: &str,
    id: &str,
    body: Value,
) -> reqwest::Response {
    client
        .post(format!("{}/api/v1/certificates/{id}/renew", app.https_base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_renewal_keeps_the_key_and_subject_and_the_old_certificate_for_the_overlap() {
    let m = mtls_on(|_| {}).await;
    let app = &m.app;
    let old_id = m.cert["id"].as_str().unwrap().to_owned();
    let old_pem = m.cert["pem"].as_str().unwrap();
    let old_client = tls_client(app, Some((old_pem, &m.key)));

    let res = renew(&old_client, app, &m.token, &old_id, json!({ "overlapSeconds": 8 })).await;
    assert_eq!(res.status(), 200);
    let new: Value = res.json().await.unwrap();
    let new_pem = new["pem"].as_str().unwrap();
    // During the overlap both work, with the same private key (first, so
    // a slow machine cannot eat the overlap).
    let new_client = tls_client(app, Some((new_pem, &m.key)));
    assert_eq!(mint(&old_client, &app.https_base, &m.server_key).await.status(), 200);
    assert_eq!(mint(&new_client, &app.https_base, &m.server_key).await.status(), 200);
    assert_ne!(new["id"], old_id.as_str());
    assert_eq!(new["name"], m.cert["name"]);
    assert_eq!(new["status"], "active");
    assert_ne!(new["serialNumber"], m.cert["serialNumber"]);

    // The same key and subject, as openssl reads them; an end no earlier.
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        x509(dir.path(), old_pem, "-pubkey"),
        x509(dir.path(), new_pem, "-pubkey")
    );
    assert_eq!(
        x509(dir.path(), old_pem, "-subject"),
        x509(dir.path(), new_pem, "-subject")
    );
    assert_ne!(
        x509(dir.path(), old_pem, "-serial"),
        x509(dir.path(), new_pem, "-serial")
    );
    assert!(new["notAfter"].as_str().unwrap() >= m.cert["notAfter"].as_str().unwrap());

    // The list says which replaced which, and until when the old one works.
    let listed: Value = new_client
        .get(format!("{}/api/v1/certificates", app.https_base))
        .bearer_auth(&m.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old = listed["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == old_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(old["renewedAs"], new["id"]);
    assert!(old["retiresAt"].is_string(), "{old}");
    assert_eq!(old["status"], "active", "still working: {old}");

    // Renewed once: renew the new one, not the old one again.
    let res = renew(&new_client, app, &m.token, &old_id, json!({})).await;
    assert!(envelope(res, 409, 400900).await.contains("renewed already"));

    // After the overlap the old certificate is refused; the new one works.
    let retires = time::OffsetDateTime::parse(
        old["retiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = retires - time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(left.whole_milliseconds().max(0) as u64 + 300)).await;
    refused(
        mint(&old_client, &app.https_base, &m.server_key).await,
        "renewed and its overlap is over",
    )
    .await;
    assert_eq!(mint(&new_client, &app.https_base, &m.server_key).await.status(), 200);
    let old: Value = new_client
        .get(format!("{}/api/v1/certificates/{old_id}", app.https_base))
        .bearer_auth(&m.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(old["status"], "replaced");
}

/// With no overlap the old certificate is refused from the next request
/// on; a renewal does not count towards the two active certificates.
#[tokio::test]
async fn a_renewal_without_overlap_stops_the_old_certificate_at_once() {
    let m = mtls_on(|_| {}).await;
    let app = &m.app;
    let old_id = m.cert["id"].as_str().unwrap().to_owned();
    let old_client = tls_client(app, Some((m.cert["pem"].as_str().unwrap(), &m.key)));
    let res = renew(
        &old_client,
        app,
        &m.token,
        &old_id,
        json!({ "overlapSeconds": 0, "validityDays": 30 }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let new: Value = res.json().await.unwrap();
    refused(
        mint(&old_client, &app.https_base, &m.server_key).await,
        "renewed and its overlap is over",
    )
    .await;
    let new_client = tls_client(app, Some((new["pem"].as_str().unwrap(), &m.key)));
    assert_eq!(mint(&new_client, &app.https_base, &m.server_key).await.status(), 200);
    let days = |c: &Value| {
        let at = |f: &str| {
            time::OffsetDateTime::parse(c[f].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
        };
        (at("notAfter") - at("notBefore")).whole_days()
    };
    assert_eq!(days(&new), 30);
}

/// A renewed certificate in its overlap does not count towards the two
/// active ones, its renewal does; revoking the renewal revokes it too
/// (the same key), so the limit cannot be walked round and a key taken
/// back stays taken back.
#[tokio::test]
async fn revoking_a_renewal_revokes_the_certificate_it_renewed() {
    let m = mtls_on(|_| {}).await;
    let app = &m.app;
    let old_id = m.cert["id"].as_str().unwrap().to_owned();
    let old_client = tls_client(app, Some((m.cert["pem"].as_str().unwrap(), &m.key)));
    let res = renew(&old_client, app, &m.token, &old_id, json!({ "overlapSeconds": 3600 })).await;
    assert_eq!(res.status(), 200);
    let new: Value = res.json().await.unwrap();
    let new_client = tls_client(app, Some((new["pem"].as_str().unwrap(), &m.key)));
    // Room for one more: the renewed one is on its way out…
    let dir = tempfile::tempdir().unwrap();
    let create = |cn: &'static str| {
        let (_, csr) = crate::certificates::openssl_csr(dir.path(), crate::certificates::Key::P256, cn);
        new_client
            .post(format!("{}/api/v1/certificates", app.https_base))
            .bearer_auth(&m.token)
            .json(&json!({ "name": cn, "csr": csr }))
            .send()
    };
    assert_eq!(create("second").await.unwrap().status(), 200);
    // …and no more than that.
    assert_eq!(create("third").await.unwrap().status(), 409);
    // The renewal revoked: the certificate it renewed stops too.
    let res = old_client
        .delete(format!(
            "{}/api/v1/certificates/{}",
            app.https_base,
            new["id"].as_str().unwrap()
        ))
        .bearer_auth(&m.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    refused(mint(&old_client, &app.https_base, &m.server_key).await, "revoked").await;
    refused(mint(&new_client, &app.https_base, &m.server_key).await, "revoked").await;
    let crl = app
        .client
        .get(app.url("/api/v1/crl.pem"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crl.pem");
    std::fs::write(&file, crl).unwrap();
    let listed = openssl(&["crl", "-noout", "-text", "-in", file.to_str().unwrap()]).to_uppercase();
    for c in [&m.cert, &new] {
        let serial = c["serialNumber"].as_str().unwrap().to_uppercase();
        assert!(
            listed.contains(serial.trim_start_matches('0')),
            "{serial} in the CRL: {listed}"
        );
    }
}

#[tokio::test]
async fn renewals_are_refused_what_they_cannot_do() {
    // mTLS off: the admin API over plain HTTP.
    let app = TestApp::ready().await;
    let token = crate::certificates::ops_token(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, csr) = crate::certificates::openssl_csr(dir.path(), crate::certificates::Key::P256, "refusals");
    let cert = crate::certificates::issued(&app, &token, "refusals", &csr).await;
    let id = cert["id"].as_str().unwrap().to_owned();
    let renew = |id: String, body: Option<Value>| {
        let mut req = app
            .client
            .post(app.url(&format!("/api/v1/certificates/{id}/renew")))
            .bearer_auth(&token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send()
    };
    let res = renew(id.clone(), Some(json!({ "overlapSeconds": -1 }))).await.unwrap();
    envelope(res, 400, 400000).await;
    let res = renew(id.clone(), Some(json!({ "validityDays": 1, "validitySeconds": 60 })))
        .await
        .unwrap();
    envelope(res, 400, 400000).await;
    let res = renew(id.clone(), Some(json!({ "validityDays": 100000 })))
        .await
        .unwrap();
    envelope(res, 400, 400000).await;
    let res = renew("no-such-certificate".into(), Some(json!({}))).await.unwrap();
    envelope(res, 404, 400400).await;
    // An empty body is all defaults: a day's overlap, the old lifetime.
    let res = renew(id.clone(), None).await.unwrap();
    assert_eq!(res.status(), 200);
    let new: Value = res.json().await.unwrap();
    let listed = app.bearer_json(&format!("/api/v1/certificates/{id}"), &token).await;
    let at = |v: &Value, f: &str| {
        time::OffsetDateTime::parse(v[f].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
    };
    let overlap = at(&listed, "retiresAt") - time::OffsetDateTime::now_utc();
    assert!((23..=24).contains(&overlap.whole_hours()), "a day's overlap: {listed}");
    assert_eq!(
        (at(&new, "notAfter") - at(&new, "notBefore")).whole_days(),
        (at(&cert, "notAfter") - at(&cert, "notBefore")).whole_days(),
        "as long as the one it renewed"
    );
    // A revoked certificate is not renewed.
    let new_id = new["id"].as_str().unwrap().to_owned();
    let res = app
        .bearer(
            reqwest::Method::DELETE,
            &format!("/api/v1/certificates/{new_id}"),
            &token,
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = renew(new_id, Some(json!({}))).await.unwrap();
    assert!(envelope(res, 409, 400900).await.contains("revoked"));
}

/// Settings > Security without JavaScript: "Renew…" on a certificate,
/// the new one offered for download, the old one saying until when it works.
#[tokio::test]
async fn the_console_renews_without_javascript() {
    let app = TestApp::ready().await;
    app.login().await;
    let token = crate::certificates::ops_token(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, csr) = crate::certificates::openssl_csr(dir.path(), crate::certificates::Key::P256, "console-renewal");
    let cert = crate::certificates::issued(&app, &token, "console", &csr).await;
    let id = cert["id"].as_str().unwrap();
    let page = app.html(&format!("/settings/security?renew={id}")).await;
    assert!(page.contains("data-testid=\"renew-certificate\""), "{page}");
    let res = app
        .form(
            &app.client,
            "renew_certificate",
            &format!("/settings/security?renew={id}"),
            &[("id", id), ("validity_days", "90"), ("overlap_hours", "24")],
        )
        .await;
    assert_eq!(res.status(), 302);
    let to = location(&res);
    assert!(to.starts_with("/settings/security?issued="), "{to}");
    let html = app.html(&to).await;
    assert!(html.contains("issued. Download it"), "{html}");
    assert!(html.contains("Renewed: works until "), "{html}");
    // The renewed one offers no second renewal; the new one does.
    let new_id = to["/settings/security?issued=".len()..].split('#').next().unwrap();
    assert!(!html.contains(&format!("?renew={id}")), "{html}");
    assert!(html.contains(&format!("?renew={new_id}")), "{html}");
}

//! Settings > Security through the admin API and the console: the CA,
//! certificates issued from CSRs made by the `openssl` command line, the
//! CRL, and the rules of the mTLS switch.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::*;
use reqwest::Method;

/// What kind of key a test CSR is made with.
#[derive(Clone, Copy, Debug)]
pub enum Key {
    Rsa(u32),
    P256,
    Ed25519,
}

/// A key and a CSR for `/CN=<cn>`, made by `openssl req`.
pub fn openssl_csr(dir: &Path, key: Key, cn: &str) -> (PathBuf, String) {
    let key_path = dir.join(format!("{cn}.key"));
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-new", "-nodes", "-subj", &format!("/CN={cn}/O=Acme")]);
    match key {
        Key::Rsa(bits) => cmd.args(["-newkey", &format!("rsa:{bits}")]),
        Key::P256 => cmd.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        Key::Ed25519 => cmd.args(["-newkey", "ed25519"]),
    };
    let out = cmd.arg("-keyout").arg(&key_path).output().expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (key_path, String::from_utf8(out.stdout).unwrap())
}

/// Runs openssl with `args`; its stdout, or a panic with its stderr.
pub fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An admin token the running server already knows.
pub async fn ops_token(app: &TestApp) -> String {
    let token = app.admin_with_token("ops");
    app.settle().await;
    token
}

/// `POST /api/v1/certificates` over plain HTTP.
pub async fn create_certificate(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/certificates"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A refused `POST /api/v1/certificates`: its envelope's message.
async fn refusal(app: &TestApp, token: &str, body: Value, status: u16) -> String {
    let code = match status {
        400 => 400000,
        409 => 400900,
        other => panic!("no envelope code for {other}"),
    };
    envelope(create_certificate(app, token, body).await, status, code).await
}

/// `GET /api/v1/certificates`, as the list of certificates.
async fn listed(app: &TestApp, token: &str) -> Vec<Value> {
    let body: Value = app.bearer_json("/api/v1/certificates", token).await;
    body["certificates"].as_array().unwrap().clone()
}

pub async fn issued(app: &TestApp, token: &str, name: &str, csr: &str) -> Value {
    let res = create_certificate(app, token, json!({ "name": name, "csr": csr })).await;
    assert_eq!(res.status(), 200, "issuing {name}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn certificates_are_issued_from_openssl_csrs_of_every_accepted_key_type() {
    let app = TestApp::ready().await;
    let token = ops_token(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = app.client.get(app.url("/api/v1/ca.pem")).send().await.unwrap();
    assert_eq!(ca_pem.status(), 200);
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca_pem.text().await.unwrap()).unwrap();
    assert!(openssl(&["x509", "-in", ca_path.to_str().unwrap(), "-noout", "-subject"]).contains("Acme Chat CA"));

    for (i, key) in [Key::Rsa(2048), Key::P256, Key::Ed25519].into_iter().enumerate() {
        let (_, csr) = openssl_csr(dir.path(), key, &format!("backend-{i}"));
        let body = issued(&app, &token, &format!("backend {i}"), &csr).await;
        assert_eq!(body["status"], "active");
        assert_eq!(body["subject"], format!("CN=backend-{i}, O=Acme"));
        let pem = body["pem"].as_str().unwrap();
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2, "leaf and CA chain");
        let cert_path = dir.path().join(format!("cert-{i}.pem"));
        std::fs::write(&cert_path, pem).unwrap();
        // openssl itself accepts the chain and sees a client certificate.
        let verified = openssl(&[
            "verify",
            "-CAfile",
            ca_path.to_str().unwrap(),
            "-purpose",
            "sslclient",
            cert_path.to_str().unwrap(),
        ]);
        assert!(verified.trim_end().ends_with("OK"), "{verified}");
        let text = openssl(&["x509", "-in", cert_path.to_str().unwrap(), "-noout", "-text"]);
        assert!(text.contains("TLS Web Client Authentication"), "{text}");
        assert!(text.contains("CA:FALSE"), "{text}");
        let fingerprint = openssl(&[
            "x509",
            "-in",
            cert_path.to_str().unwrap(),
            "-noout",
            "-fingerprint",
            "-sha256",
        ]);
        assert!(
            fingerprint.contains(body["fingerprintSha256"].as_str().unwrap()),
            "{fingerprint} vs {}",
            body["fingerprintSha256"]
        );
        // Two may be active: make room for the next key type.
        if i == 1 {
            let id = body["id"].as_str().unwrap();
            let res = app
                .bearer(Method::DELETE, &format!("/api/v1/certificates/{id}"), &token)
                .await;
            assert_eq!(res.status(), 200);
        }
    }
    let list = listed(&app, &token).await;
    let statuses: Vec<&str> = list.iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["active", "revoked", "active"], "newest first");
}

#[tokio::test]
async fn unacceptable_csrs_and_names_are_refused_with_the_reason() {
    let app = TestApp::ready().await;
    let token = ops_token(&app).await;
    let dir = tempfile::tempdir().unwrap();

    let (_, weak) = openssl_csr(dir.path(), Key::Rsa(1024), "weak");
    let msg = refusal(&app, &token, json!({"name": "weak", "csr": weak}), 400).await;
    assert!(msg.contains("1024 bits") && msg.contains("2048"), "{msg}");

    let (_, good) = openssl_csr(dir.path(), Key::P256, "good");
    // A line cut out of the middle: no longer PKCS#10.
    let lines: Vec<&str> = good.lines().collect();
    let mut cut = lines.clone();
    cut.remove(2);
    let msg = refusal(&app, &token, json!({"name": "cut", "csr": cut.join("\n")}), 400).await;
    assert!(msg.contains("PKCS#10") || msg.contains("base64"), "{msg}");

    // One bit of the signature flipped: it parses, but does not verify.
    use base64::Engine;
    let b64: String = lines[1..lines.len() - 1].concat();
    let mut der = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let tampered = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    let msg = refusal(&app, &token, json!({"name": "x", "csr": tampered}), 400).await;
    assert!(msg.contains("signature does not match"), "{msg}");

    let msg = refusal(&app, &token, json!({"name": "n".repeat(31), "csr": good}), 400).await;
    assert!(msg.contains("1 to 30 characters"), "{msg}");
    let msg = refusal(&app, &token, json!({"name": "  ", "csr": good}), 400).await;
    assert!(msg.contains("1 to 30 characters"), "{msg}");

    let msg = refusal(
        &app,
        &token,
        json!({"name": "long", "csr": good, "validityDays": 366}),
        400,
    )
    .await;
    assert!(msg.contains("365 days"), "{msg}");

    // Two active, then the third is refused; names are unique among active ones.
    issued(&app, &token, "first", &good).await;
    let msg = refusal(&app, &token, json!({"name": "first", "csr": good}), 409).await;
    assert!(msg.contains("already named"), "{msg}");
    issued(&app, &token, "second", &good).await;
    let msg = refusal(&app, &token, json!({"name": "third", "csr": good}), 409).await;
    assert!(msg.contains("At most 2"), "{msg}");
    // Nothing refused was stored.
    let list = listed(&app, &token).await;
    assert_eq!(list.len(), 2);
}

#[tokio::test]
async fn the_ca_and_crl_are_public_and_the_crl_lists_revoked_serials() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/api/v1/ca.pem")).send().await.unwrap();
    envelope(res, 404, 400400).await;
    let app = TestApp::ready().await;
    let token = ops_token(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "b");
    let cert = issued(&app, &token, "b", &csr).await;
    let path = format!("/api/v1/certificates/{}", cert["id"].as_str().unwrap());
    let res = app.bearer(Method::DELETE, &path, &token).await;
    assert_eq!(res.status(), 200);
    let res = app.bearer(Method::DELETE, &path, &token).await;
    envelope(res, 409, 400900).await;

    let crl = anonymous().get(app.url("/api/v1/crl.pem")).send().await.unwrap();
    assert_eq!(crl.status(), 200);
    assert_eq!(crl.headers()["content-type"], "application/x-pem-file");
    let crl_path = dir.path().join("crl.pem");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&crl_path, crl.text().await.unwrap()).unwrap();
    std::fs::write(
        &ca_path,
        anonymous()
            .get(app.url("/api/v1/ca.pem"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    // Signed by the CA, and naming the revoked serial.
    let text = openssl(&[
        "crl",
        "-in",
        crl_path.to_str().unwrap(),
        "-CAfile",
        ca_path.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    let serial = cert["serialNumber"].as_str().unwrap().to_uppercase();
    assert!(text.contains(&serial), "{serial} in {text}");
}

#[tokio::test]
async fn the_mtls_switch_needs_secure_mode_and_an_active_certificate() {
    let app = TestApp::ready().await;
    let token = ops_token(&app).await;
    let patch = |body: Value| {
        app.client
            .patch(app.url("/api/v1/settings"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let msg = envelope(patch(json!({"mtls": true})).await.unwrap(), 409, 400900).await;
    assert!(msg.contains("secure mode"), "{msg}");
    assert_eq!(patch(json!({"secureMode": true})).await.unwrap().status(), 200);
    let msg = envelope(patch(json!({"mtls": true})).await.unwrap(), 409, 400900).await;
    assert!(msg.contains("active certificate"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "b");
    issued(&app, &token, "b", &csr).await;
    let res = patch(json!({"mtls": true})).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mtls"], true);
    // Now the admin API itself needs a client certificate over HTTPS.
    let msg = envelope(patch(json!({"secureMode": false})).await.unwrap(), 403, 400300).await;
    assert!(msg.contains("plain HTTP"), "{msg}");
}

#[tokio::test]
async fn console_issues_downloads_and_revokes_without_javascript() {
    let app = TestApp::ready().await;
    app.login().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, csr) = openssl_csr(dir.path(), Key::Ed25519, "console");
    let res = app
        .form(
            &app.client,
            "create_certificate",
            "/settings/security?do=create",
            &[("name", "from the console"), ("csr", &csr), ("validity_days", "90")],
        )
        .await;
    assert_eq!(res.status(), 302);
    let to = location(&res);
    assert!(to.starts_with("/settings/security?issued="), "{to}");
    let id = to["/settings/security?issued=".len()..]
        .split('#')
        .next()
        .unwrap()
        .to_string();

    let html = app.html(&to).await;
    assert!(html.contains("from the console"), "the table lists it");
    assert!(html.contains("issued. Download it"), "the page says it was issued");
    assert!(
        html.contains("in 89 days") || html.contains("in 90 days"),
        "countdown shown"
    );

    let url = app.url(&format!("/console/certificates/{id}/download"));
    let res = anonymous().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/login"));
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("from-the-console.pem"));
    assert_eq!(res.text().await.unwrap().matches("BEGIN CERTIFICATE").count(), 2);

    // A bad CSR comes back as a readable message on the page.
    let res = app
        .form(
            &app.client,
            "create_certificate",
            "/settings/security?do=create",
            &[("name", "bad"), ("csr", "not a csr"), ("validity_days", "90")],
        )
        .await;
    assert!(res.status().is_redirection(), "back to the form");
    let back = location(&res);
    assert!(
        back.contains("/settings/security") && back.contains("__err="),
        "with its error: {back}"
    );
    let shown = app.client.get(&back).send().await.unwrap().text().await.unwrap();
    assert!(shown.contains("CSR"), "the reason is on the page");
    let (named_bad,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM certificates WHERE name = 'bad'")
        .fetch_one(app.kw().db().read())
        .await
        .unwrap();
    assert_eq!(named_bad, 0, "nothing was issued");
    // mTLS cannot be turned on yet: secure mode is off.
    let (status, body) = app.call(&app.client, "set_mtls", &[("enabled", "true")]).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("secure mode"), "{body}");

    let res = app
        .form(
            &app.client,
            "revoke_certificate",
            &format!("/settings/security?revoke={id}"),
            &[("id", &id)],
        )
        .await;
    assert_eq!(res.status(), 302);
    let html = app.html("/settings/security").await;
    assert!(html.contains(">revoked<"), "status shown");
    // Signed-out callers of the server functions are refused (from this
    // site, so it is the sign-in check that refuses, not the origin check).
    let (status, _) = app
        .call(&browser(&app.base), "revoke_certificate", &[("id", &id)])
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_certificate_is_fetched_again_with_its_chain_by_admin_token_only() {
    let app = TestApp::ready().await;
    let token = ops_token(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "again");
    let body = issued(&app, &token, "again", &csr).await;
    let path = format!("/api/v1/certificates/{}", body["id"].as_str().unwrap());
    let again = app.bearer_json(&path, &token).await;
    assert_eq!(again["pem"], body["pem"], "the same leaf and chain");
    assert_eq!(again["fingerprintSha256"], body["fingerprintSha256"]);
    assert_eq!(again["status"], "active");
    let res = app.bearer(Method::GET, "/api/v1/certificates/no-such-id", &token).await;
    envelope(res, 404, 400400).await;
    let res = anonymous().get(app.url(&path)).send().await.unwrap();
    envelope(res, 401, 400100).await;
}

//! CA rotation (issue 20): a new CA issues from the rotation on; the old
//! one's certificates keep working for the overlap, then are refused; an
//! immediate rotation refuses them from the next request on every
//! instance. Real TLS clients through the HTTPS listener, the bundle and
//! the CRLs checked with openssl, the rotation driven from the host's CLI
//! and from the console.

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

use crate::certificates::{create_certificate, issued, openssl, openssl_csr, Key};
use crate::helpers::*;
use crate::mtls::{mint, mtls_on, refused, tls_client};
use crate::renewal::renew;

/// Writes `pem` to a new file in `dir`.
fn file(dir: &Path, name: &str, pem: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The PEM blocks of `kind` ("CERTIFICATE", "X509 CRL") in `pem`.
fn blocks(pem: &str, kind: &str) -> Vec<String> {
    let (begin, end) = (format!("-----BEGIN {kind}-----"), format!("-----END {kind}-----"));
    pem.split(&begin)
        .skip(1)
        .map(|rest| format!("{begin}{}{end}\n", rest.split(&end).next().unwrap()))
        .collect()
}

/// Does `openssl verify` accept `cert` with `cas` as the only trust?
fn verifies(dir: &Path, cas: &str, cert: &str) -> bool {
    let (cas, cert) = (file(dir, "trust.pem", cas), file(dir, "leaf.pem", cert));
    std::process::Command::new("openssl")
        .args(["verify", "-CAfile", &cas, &cert])
        .output()
        .unwrap()
        .status
        .success()
}

fn issuer(dir: &Path, cert: &str) -> String {
    let cert = file(dir, "issued.pem", cert);
    openssl(&["x509", "-noout", "-issuer", "-in", &cert])
}

async fn public(app: &TestApp, path: &str) -> String {
    let res = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

/// Each CRL in `crls` is signed by one of `cas`, in order.
fn crls_signed_by(dir: &Path, crls: &str, cas: &[String]) {
    let crls = blocks(crls, "X509 CRL");
    assert_eq!(crls.len(), cas.len(), "one CRL for each trusted CA");
    for (crl, ca) in crls.iter().zip(cas) {
        let (crl, ca) = (file(dir, "one.crl", crl), file(dir, "one-ca.pem", ca));
        let out = std::process::Command::new("openssl")
            .args(["crl", "-noout", "-in", &crl, "-CAfile", &ca])
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stderr).contains("verify OK"),
            "CRL signed by its CA: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The serial numbers (upper-case hex) a CRL lists, as openssl reads it.
fn crl_serials(dir: &Path, crl: &str) -> Vec<String> {
    let crl = file(dir, "listed.crl", crl);
    openssl(&["crl", "-noout", "-text", "-in", &crl])
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number: "))
        .map(|s| s.trim().to_uppercase())
        .collect()
}

/// `DELETE {base}/api/v1/certificates/{id}`: its status.
async fn revoke(client: &reqwest::Client, base: &str, token: &str, id: &str) -> u16 {
    client
        .delete(format!("{}/api/v1/certificates/{id}", base.trim_end_matches('/')))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn certificate(client: &reqwest::Client, app: &TestApp, token: &str, id: &str) -> Value {
    client
        .get(format!("{}/api/v1/certificates/{id}", app.https_base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn ms_of(iso: &str) -> i64 {
    let t = time::OffsetDateTime::parse(iso, &time::format_description::well_known::Rfc3339).unwrap();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_overlap_both_cas_are_trusted_then_only_the_new_one() {
    let m = mtls_on(|_| {}).await;
    let app = &m.app;
    let dir = m.dir.path();
    let backend = tls_client(app, Some((m.cert["pem"].as_str().unwrap(), &m.key)));
    // A second certificate from the first CA, left to run out with it.
    let (legacy_key, csr) = openssl_csr(dir, Key::P256, "legacy");
    // (Over HTTPS with the certificate: mTLS is on.)
    let res = backend
        .post(format!("{}/api/v1/certificates", app.https_base))
        .bearer_auth(&m.token)
        .json(&json!({ "name": "legacy", "csr": csr }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let legacy: Value = res.json().await.unwrap();
    let legacy_pem = legacy["pem"].as_str().unwrap().to_owned();
    let legacy_client = tls_client(app, Some((&legacy_pem, &legacy_key)));
    let old_ca = public(app, "/api/v1/ca.pem").await;
    assert_eq!(blocks(&old_ca, "CERTIFICATE").len(), 1);

    let out = app.keyward(&["ca", "rotate", "--overlap", "15s"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("new CA 2"), "{said}");
    assert!(
        said.contains("renew these before then") && said.contains("\"legacy\"") && said.contains("\"backend\""),
        "{said}"
    );
    // The bundle carries both CAs, the new one first; the CRL file one
    // CRL for each, signed by it.
    let bundle = public(app, "/api/v1/ca.pem").await;
    let cas = blocks(&bundle, "CERTIFICATE");
    assert_eq!(cas.len(), 2, "{bundle}");
    assert_eq!(cas[1], blocks(&old_ca, "CERTIFICATE")[0], "the old CA, second");
    assert!(
        verifies(dir, &bundle, &legacy_pem),
        "the old CA's certificate checks against the bundle"
    );
    crls_signed_by(dir, &public(app, "/api/v1/crl.pem").await, &cas);

    // Renewed onto the new CA: the same key, the new issuer, and it checks
    // against the new CA alone; the renewed-from one stops at once.
    let res = renew(
        &backend,
        app,
        &m.token,
        m.cert["id"].as_str().unwrap(),
        json!({ "overlapSeconds": 0 }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let renewed: Value = res.json().await.unwrap();
    let renewed_pem = renewed["pem"].as_str().unwrap();
    assert_eq!(renewed["ca"], 2);
    assert!(
        issuer(dir, renewed_pem).contains("Acme Chat CA 2"),
        "{}",
        issuer(dir, renewed_pem)
    );
    assert!(verifies(dir, &cas[0], renewed_pem), "renewal checks against the new CA");
    assert!(
        !verifies(dir, &cas[0], &legacy_pem),
        "the old CA's certificate does not"
    );
    let renewed_client = tls_client(app, Some((renewed_pem, &m.key)));

    // Both CAs' certificates work during the overlap.
    assert_eq!(
        mint(&renewed_client, &app.https_base, &m.server_key).await.status(),
        200
    );
    assert_eq!(mint(&legacy_client, &app.https_base, &m.server_key).await.status(), 200);

    // A certificate of the old CA revoked: listed in the old CA's CRL only.
    let status = revoke(
        &renewed_client,
        &app.https_base,
        &m.token,
        m.cert["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let crls = blocks(&public(app, "/api/v1/crl.pem").await, "X509 CRL");
    let serial = m.cert["serialNumber"].as_str().unwrap().to_uppercase();
    assert!(!crl_serials(dir, &crls[0]).contains(&serial), "not in the new CA's CRL");
    assert!(crl_serials(dir, &crls[1]).contains(&serial), "in the old CA's CRL");
    let listed = certificate(&renewed_client, app, &m.token, legacy["id"].as_str().unwrap()).await;
    assert_eq!(listed["status"], "active", "{listed}");
    assert_eq!(listed["ca"], 1);
    let retires = ms_of(listed["caRetiresAt"].as_str().unwrap());

    // After it, the old CA's certificate is refused and says why; the new
    // CA's works; the bundle and the CRLs are the new CA's alone.
    let left = retires - app::domain::clock::now_ms();
    tokio::time::sleep(Duration::from_millis(left.max(0) as u64 + 300)).await;
    refused(mint(&legacy_client, &app.https_base, &m.server_key).await, "retired").await;
    assert_eq!(
        mint(&renewed_client, &app.https_base, &m.server_key).await.status(),
        200
    );
    let listed = certificate(&renewed_client, app, &m.token, legacy["id"].as_str().unwrap()).await;
    assert_eq!(listed["status"], "ca_retired", "{listed}");
    let bundle = public(app, "/api/v1/ca.pem").await;
    assert_eq!(blocks(&bundle, "CERTIFICATE"), vec![cas[0].clone()]);
    crls_signed_by(dir, &public(app, "/api/v1/crl.pem").await, &cas[..1]);

    // A certificate the retired CA issued is renewed onto the new one
    // (no new CSR), and works again.
    let res = renew(
        &renewed_client,
        app,
        &m.token,
        legacy["id"].as_str().unwrap(),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let again: Value = res.json().await.unwrap();
    let again_client = tls_client(app, Some((again["pem"].as_str().unwrap(), &legacy_key)));
    assert_eq!(mint(&again_client, &app.https_base, &m.server_key).await.status(), 200);
    assert_eq!(again["ca"], 2);

    // Revoked, it is in the (now only) CRL, the new CA's.
    let status = revoke(
        &renewed_client,
        &app.https_base,
        &m.token,
        again["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let crls = blocks(&public(app, "/api/v1/crl.pem").await, "X509 CRL");
    assert_eq!(crls.len(), 1);
    assert_eq!(
        crl_serials(dir, &crls[0]),
        vec![again["serialNumber"].as_str().unwrap().to_uppercase()]
    );

    // Audited as from the host.
    let audit: Vec<(String, String)> =
        sqlx::query_as("SELECT actor, source FROM audit_events WHERE action = 'ca.rotate'")
            .fetch_all(app.kw().db().read())
            .await
            .unwrap();
    assert_eq!(audit, vec![("operator".to_owned(), "cli".to_owned())]);
}

/// A leaked key: rotating with no overlap refuses the old CA's
/// certificates from the next request on every instance (here two, whose
/// polls are ten minutes away), once the operator has agreed to stop the
/// active certificates it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immediate_rotation_refuses_the_old_cas_certificates_at_once_on_every_instance() {
    let m = mtls_on(|c| c.refresh_interval = Duration::from_secs(600)).await;
    let app = &m.app;
    let mut config = config_for(&app.data_dir, &app.db_url);
    config.refresh_interval = Duration::from_secs(600);
    let other = server::startup::build(config).await.expect("a second instance starts");
    let other_https = format!("https://{}", other.https_addr);
    let client = tls_client(app, Some((m.cert["pem"].as_str().unwrap(), &m.key)));
    assert_eq!(mint(&client, &app.https_base, &m.server_key).await.status(), 200);
    assert_eq!(mint(&client, &other_https, &m.server_key).await.status(), 200);

    // Not without saying so: the active certificate is named, nothing changes.
    let out = app.keyward(&["ca", "rotate", "--overlap", "0s"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"backend\"") && err.contains("--stop-active-certificates"),
        "{err}"
    );
    assert_eq!(mint(&client, &app.https_base, &m.server_key).await.status(), 200);
    assert_eq!(blocks(&public(app, "/api/v1/ca.pem").await, "CERTIFICATE").len(), 1);

    let out = app.keyward(&["ca", "rotate", "--overlap", "0s", "--stop-active-certificates"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(warned.contains("WARNING") && warned.contains("\"backend\""), "{warned}");

    // The very next request, on either instance.
    refused(mint(&client, &app.https_base, &m.server_key).await, "retired").await;
    refused(mint(&client, &other_https, &m.server_key).await, "retired").await;
    // The admin API too (also behind the gate).
    let res = client
        .get(format!("{other_https}/api/v1/admins/me"))
        .bearer_auth(&m.token)
        .send()
        .await
        .unwrap();
    refused(res, "retired").await;
    assert_eq!(blocks(&public(app, "/api/v1/ca.pem").await, "CERTIFICATE").len(), 1);
    assert_eq!(blocks(&public(app, "/api/v1/crl.pem").await, "X509 CRL").len(), 1);

    let out = app.keyward(&["ca", "show"], None);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("CA 2\tcurrent") && shown.contains("CA 1\tretired"),
        "{shown}"
    );
    other.shutdown().await.unwrap();
}

/// Settings > Security: the CA and its expiry, the rotation (super admins
/// only, with the certificates an immediate one stops named and agreed
/// to), a new CA's lifetime, and no certificate outliving its CA.
#[tokio::test]
async fn the_console_rotates_the_ca_with_a_lifetime_and_names_what_stops() {
    let app = TestApp::ready().await;
    let token = crate::certificates::ops_token(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "backend");
    issued(&app, &token, "backend", &csr).await;

    // An admin sees the CA but cannot rotate it.
    let ops = browser(&app.base);
    app.login_with(&ops, "ops", ADMIN_PASSWORD).await;
    let html = app.html_as(&ops, "/settings/security?rotate=ca").await;
    assert!(html.contains("data-testid=\"ca-row\""), "{html}");
    assert!(html.contains("Only a super admin can rotate the CA."), "{html}");
    assert!(!html.contains("data-testid=\"rotate-ca\""), "{html}");

    assert_eq!(app.login().await.status(), 302);
    let html = app.html("/settings/security?rotate=ca").await;
    assert!(html.contains("data-testid=\"rotate-ca\""), "{html}");
    let stops = html.split("data-testid=\"rotate-stops\"").nth(1).unwrap();
    assert!(stops.contains("backend"), "the active certificate is named: {stops}");

    // At once, without ticking the box: refused, and it says which stop.
    let fields = [("overlap_hours", "0"), ("validity_days", "30")];
    let (status, body) = app.call(&app.client, "rotate_ca", &fields).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("backend"), "{body}");
    let (status, body) = app
        .call(
            &app.client,
            "rotate_ca",
            &[("overlap_hours", "0"), ("validity_days", "0")],
        )
        .await;
    assert_eq!(status, 400, "a CA lasts a day at least: {body}");

    let mut ticked = fields.to_vec();
    ticked.push(("stop_active_certificates", "yes"));
    let (status, body) = app.call(&app.client, "rotate_ca", &ticked).await;
    assert_eq!(status, 200, "{body}");
    let html = app.html("/settings/security").await;
    let rows: Vec<&str> = html.split("data-testid=\"ca-row\"").skip(1).collect();
    assert_eq!(rows.len(), 2, "{html}");
    assert!(
        rows[0].contains("current") && rows[0].contains("Acme Chat CA 2"),
        "{}",
        rows[0]
    );
    assert!(rows[1].contains("retired"), "{}", rows[1]);
    assert!(
        rows[0].contains("in 29 days") || rows[0].contains("in 30 days"),
        "30 days: {}",
        rows[0]
    );
    let certificates = html.split("data-testid=\"certificate-row\"").nth(1).unwrap();
    assert!(certificates.contains("ca_retired"), "{certificates}");
    assert!(
        certificates.contains("Renew…"),
        "renewable onto the new CA: {certificates}"
    );

    // The setting holds for the next rotation, shown in the form.
    let html = app.html("/settings/security?rotate=ca").await;
    assert!(html.contains("value=\"30\""), "{html}");

    // No certificate outlives its CA.
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "long");
    let res = create_certificate(&app, &token, json!({ "name": "long", "csr": csr, "validityDays": 365 })).await;
    let message = envelope(res, 400, 400000).await;
    assert!(message.contains("The CA expires on"), "{message}");
    let res = create_certificate(&app, &token, json!({ "name": "long", "csr": csr, "validityDays": 20 })).await;
    assert_eq!(res.status(), 200);

    // A CA near its end is warned of, as a certificate is.
    let html = app.html("/settings/security").await;
    assert!(!html.contains("The CA expires"), "a new CA is not expiring: {html}");
    let now = time::OffsetDateTime::now_utc();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.not_before = now - time::Duration::days(25);
    params.not_after = now + time::Duration::days(5);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let aging = params.self_signed(&key).unwrap().pem();
    sqlx::query("UPDATE certificate_authorities SET cert_pem = $1 WHERE retires_at IS NULL")
        .bind(aging)
        .execute(app.kw().db().write())
        .await
        .unwrap();
    let html = app.html("/settings/security").await;
    assert!(
        html.contains("The CA expires in 4 days") || html.contains("The CA expires in 5 days"),
        "{html}"
    );
}

/// After an immediate rotation a certificate of the retired CA is renewed
/// onto the new one (its key did not leak, the CA's did), within the
/// limit of active certificates and the uniqueness of names, as a new
/// one would be; a certificate's default validity fits in the CA's life.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewing_onto_the_new_ca_keeps_the_limit_and_a_default_fits_the_ca() {
    let app = TestApp::ready().await;
    let token = crate::certificates::ops_token(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "backend");
    let old = issued(&app, &token, "backend", &csr).await;
    let out = app.keyward(
        &[
            "ca",
            "rotate",
            "--overlap",
            "0s",
            "--validity",
            "90d",
            "--stop-active-certificates",
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The default validity (the configured maximum, a year) is cut to the
    // CA's 90 days rather than refused.
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "first");
    let first = issued(&app, &token, "backend", &csr).await;
    let not_after = ms_of(first["notAfter"].as_str().unwrap());
    let ninety = app::domain::clock::now_ms() + 90 * 86_400_000;
    assert!((ninety - not_after).abs() < 120_000, "{first}");
    let renew_over_http = |id: String| {
        let app = &app;
        let token = token.clone();
        async move {
            app.client
                .post(app.url(&format!("/api/v1/certificates/{id}/renew")))
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
        }
    };
    // "backend" is active again under the new CA: a second one of that
    // name is refused.
    let message = envelope(
        renew_over_http(old["id"].as_str().unwrap().to_owned()).await,
        409,
        400900,
    )
    .await;
    assert!(message.contains("already named"), "{message}");

    let (_, csr) = openssl_csr(dir.path(), Key::P256, "second");
    issued(&app, &token, "second", &csr).await;
    let status = revoke(&app.client, &app.base, &token, first["id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "third");
    issued(&app, &token, "third", &csr).await;
    // Two active: the retired CA's certificate cannot come back as a third.
    let message = envelope(
        renew_over_http(old["id"].as_str().unwrap().to_owned()).await,
        409,
        400900,
    )
    .await;
    assert!(message.contains("At most 2"), "{message}");
}

/// A master-key rotation re-seals every CA's key: after it, and a restart
/// with the new key, the old CA (in its overlap) still signs its CRL and
/// the new one still issues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_key_rotation_reseals_every_cas_key() {
    let mut app = TestApp::ready().await;
    let token = crate::certificates::ops_token(&app).await;
    let out = app.keyward(&["ca", "rotate", "--overlap", "24h"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new_key = app.data_dir.join("rotated.key");
    let out = app.keyward(
        &["master-key", "rotate", "--new-key-file", new_key.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.restart_with(|c| c.master_key_file = Some(new_key.clone())).await;
    let cas = blocks(&public(&app, "/api/v1/ca.pem").await, "CERTIFICATE");
    assert_eq!(cas.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    crls_signed_by(dir.path(), &public(&app, "/api/v1/crl.pem").await, &cas);
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "after");
    let cert = issued(&app, &token, "after", &csr).await;
    assert!(verifies(dir.path(), &cas[0], cert["pem"].as_str().unwrap()));
}

/// A rotation's overlap is a year at most, a CA's lifetime 1 to 36,500
/// days: anything else is refused with the bounds, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overlap_and_the_lifetime_are_bounded() {
    let app = TestApp::ready().await;
    let refused = |args: &[&str], said: &str| {
        let out = app.keyward(args, None);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains(said), "{args:?}: {err}");
    };
    refused(&["ca", "rotate", "--overlap", "366d"], "365 days");
    refused(
        &["ca", "rotate", "--overlap", "1d", "--validity", "36501d"],
        "36500 days",
    );
    refused(&["ca", "rotate", "--overlap", "1d", "--validity", "36h"], "whole days");
    let out = app.keyward(&["ca", "show"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("CA 1\tcurrent"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("CA 2"));

    let out = app.keyward(&["ca", "rotate", "--overlap", "365d", "--validity", "36500d"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8_lossy(&app.keyward(&["ca", "show"], None).stdout).into_owned();
    assert!(
        shown.contains("CA 2\tcurrent") && shown.contains("CA 1\tretiring"),
        "{shown}"
    );
    assert!(shown.contains("the next CA lasts 36500 days"), "{shown}");
}

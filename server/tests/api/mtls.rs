//! mTLS with real TLS: reqwest (rustls) clients presenting certificates
//! issued from openssl CSRs, from another CA, revoked and expired ones,
//! against the HTTPS listener; and the trusted-proxy header.

use reqwest::{Certificate, Client, Identity};
use serde_json::{json, Value};
use std::path::Path;

use crate::certificates::{issued, openssl, openssl_csr, ops_token, Key};
use crate::helpers::*;
use reqwest::Method;

/// An HTTPS client that trusts the listener's self-signed certificate and
/// presents `identity` (PEM certificate chain + PEM key), if any.
pub fn tls_client(app: &TestApp, identity: Option<(&str, &Path)>) -> Client {
    trusting(&app.data_dir.join("tls-cert.pem"), identity, Client::builder())
}

/// A rustls client trusting only the server certificate in `server_cert`,
/// presenting `identity` (a certificate's PEM and its key file) if given.
fn trusting(server_cert: &Path, identity: Option<(&str, &Path)>, builder: reqwest::ClientBuilder) -> Client {
    let server_cert = std::fs::read(server_cert).expect("the server's certificate");
    let mut builder = builder
        .use_rustls_tls()
        .add_root_certificate(Certificate::from_pem(&server_cert).unwrap())
        .tls_built_in_root_certs(false);
    if let Some((cert_pem, key_path)) = identity {
        let mut pem = cert_pem.as_bytes().to_vec();
        pem.extend_from_slice(&std::fs::read(key_path).unwrap());
        builder = builder.identity(Identity::from_pem(&pem).expect("identity"));
    }
    builder.build().unwrap()
}

pub async fn mint(client: &Client, base: &str, server_key: &str) -> reqwest::Response {
    client
        .post(format!("{base}/api/v4/authentication/token"))
        .header("x-server-key", server_key)
        .json(&json!({ "userId": "alice" }))
        .send()
        .await
        .unwrap()
}

pub(crate) async fn refused(res: reqwest::Response, why: &str) {
    let msg = envelope(res, 403, 400300).await;
    assert!(msg.contains(why), "expected {why:?} in {msg:?}");
}

pub struct Mtls {
    pub app: TestApp,
    pub token: String,
    pub server_key: String,
    pub cert: Value,
    pub key: std::path::PathBuf,
    pub dir: tempfile::TempDir,
}

/// Secure mode on, one certificate (P-256) issued, mTLS on.
pub async fn mtls_on(tweak: impl FnOnce(&mut server::config::Config)) -> Mtls {
    let app = TestApp::spawn_with(tweak).await;
    let res = app.setup(app.setup_token.clone().unwrap().as_str(), PASSWORD).await;
    assert_eq!(res.status(), 302);
    let token = ops_token(&app).await;
    let server_key = app.server_key(&token, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let (key, csr) = openssl_csr(dir.path(), Key::P256, "backend");
    let cert = issued(&app, &token, "backend", &csr).await;
    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&token)
        .json(&json!({ "secureMode": true, "mtls": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    Mtls {
        app,
        token,
        server_key,
        cert,
        key,
        dir,
    }
}

#[tokio::test]
async fn while_mtls_is_on_only_an_issued_certificate_over_https_mints_tokens() {
    let m = mtls_on(|_| {}).await;
    let app = &m.app;
    let good = tls_client(app, Some((m.cert["pem"].as_str().unwrap(), &m.key)));

    // The issued certificate, over HTTPS: tokens and the admin API work.
    let res = mint(&good, &app.https_base, &m.server_key).await;
    assert_eq!(res.status(), 200);
    let auth_token = res.text().await.unwrap();
    let res = good
        .get(format!("{}/api/v1/admins/me", app.https_base))
        .bearer_auth(&m.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = good
        .get(format!("{}/api/v3/authentication/token?userId=bob", app.https_base))
        .header("x-server-key", &m.server_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Plain HTTP, and HTTPS without a certificate, are refused with the reason.
    refused(mint(&app.client, &app.base, &m.server_key).await, "plain HTTP").await;
    let res = app.bearer(Method::GET, "/api/v1/admins/me", &m.token).await;
    refused(res, "plain HTTP").await;
    let bare = tls_client(app, None);
    refused(
        mint(&bare, &app.https_base, &m.server_key).await,
        "no client certificate",
    )
    .await;
    // Checked before the credential: a bad key learns nothing more.
    refused(
        mint(&bare, &app.https_base, "kwsk_wrong").await,
        "no client certificate",
    )
    .await;

    // A certificate from another CA (self-signed by openssl).
    let other_key = m.dir.path().join("other.key");
    let other = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=backend",
        "-keyout",
        other_key.to_str().unwrap(),
    ]);
    let stranger = tls_client(app, Some((&other, &other_key)));
    refused(mint(&stranger, &app.https_base, &m.server_key).await, "unknown issuer").await;

    // Sessions (client SDKs) and the console are not affected: the auth
    // token minted over mTLS is redeemed over plain HTTP.
    let res = app
        .session(json!({ "userId": "alice", "deviceId": "d1", "authToken": auth_token }))
        .await;
    assert_eq!(res.status(), 200);
    let res = app.client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_from_the_next_request_on() {
    let m = mtls_on(|_| {}).await;
    let app = &m.app;
    let (key_b, csr_b) = openssl_csr(m.dir.path(), Key::Rsa(2048), "backend-b");
    // Issued through mTLS itself (the admin API is guarded now).
    let first = tls_client(app, Some((m.cert["pem"].as_str().unwrap(), &m.key)));
    let res = first
        .post(format!("{}/api/v1/certificates", app.https_base))
        .bearer_auth(&m.token)
        .json(&json!({ "name": "backend-b", "csr": csr_b }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cert_b: Value = res.json().await.unwrap();
    let second = tls_client(app, Some((cert_b["pem"].as_str().unwrap(), &key_b)));
    assert_eq!(mint(&first, &app.https_base, &m.server_key).await.status(), 200);

    let res = second
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
    // Same client, likely the same kept-alive connection: refused now.
    refused(mint(&first, &app.https_base, &m.server_key).await, "revoked").await;
    assert_eq!(mint(&second, &app.https_base, &m.server_key).await.status(), 200);

    // mTLS off: everything as before, plain HTTP included.
    let res = second
        .patch(format!("{}/api/v1/settings", app.https_base))
        .bearer_auth(&m.token)
        .json(&json!({ "mtls": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(mint(&app.client, &app.base, &m.server_key).await.status(), 200);
    assert_eq!(mint(&first, &app.https_base, &m.server_key).await.status(), 200);
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let m = mtls_on(|_| {}).await;
    let app = &m.app;
    let (key, csr) = openssl_csr(m.dir.path(), Key::Ed25519, "short");
    let good = tls_client(app, Some((m.cert["pem"].as_str().unwrap(), &m.key)));
    let res = good
        .post(format!("{}/api/v1/certificates", app.https_base))
        .bearer_auth(&m.token)
        .json(&json!({ "name": "short", "csr": csr, "validitySeconds": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let short: Value = res.json().await.unwrap();
    let client = tls_client(app, Some((short["pem"].as_str().unwrap(), &key)));
    assert_eq!(mint(&client, &app.https_base, &m.server_key).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    refused(mint(&client, &app.https_base, &m.server_key).await, "expired").await;
}

/// Client certificates may come in `x-client-cert` from the proxy at `ip`.
pub fn behind_proxy(c: &mut server::config::Config, ip: &str) {
    c.client_cert_header = Some(server::config::ClientCertHeader {
        name: "x-client-cert".parse().unwrap(),
        proxies: vec![ip.parse().unwrap()],
    })
}

#[tokio::test]
async fn a_trusted_proxy_may_pass_the_client_certificate_in_a_header() {
    let m = mtls_on(|c| behind_proxy(c, "127.0.0.1")).await;
    let app = &m.app;
    // nginx's $ssl_client_escaped_cert: the PEM, URL-encoded.
    let leaf = m.cert["pem"]
        .as_str()
        .unwrap()
        .split_inclusive("-----END CERTIFICATE-----")
        .next()
        .unwrap();
    let escaped: String = leaf
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let via_proxy = |cert: Option<&str>| {
        let mut req = app
            .client
            .post(app.url("/api/v4/authentication/token"))
            .header("x-server-key", &m.server_key)
            .json(&json!({ "userId": "alice" }));
        if let Some(c) = cert {
            req = req.header("x-client-cert", c);
        }
        req.send()
    };
    assert_eq!(via_proxy(Some(&escaped)).await.unwrap().status(), 200);
    refused(via_proxy(None).await.unwrap(), "no client certificate").await;
    refused(via_proxy(Some("garbage")).await.unwrap(), "unknown issuer").await;
}

#[tokio::test]
async fn the_header_is_ignored_from_anyone_but_the_trusted_proxies() {
    let m = mtls_on(|c| behind_proxy(c, "10.9.9.9")).await;
    let app = &m.app;
    let res = app
        .client
        .post(app.url("/api/v4/authentication/token"))
        .header("x-server-key", &m.server_key)
        .header("x-client-cert", m.cert["pem"].as_str().unwrap().replace('\n', "%0A"))
        .json(&json!({ "userId": "alice" }))
        .send()
        .await
        .unwrap();
    refused(res, "plain HTTP").await;
}

/// A real nginx in front: it terminates TLS, asks for an optional client
/// certificate without checking it (`optional_no_ca`), and passes it
/// escaped in a header with the client's address; Keyward believes both
/// from it alone. Started by the test as a child process on a free port.
struct Nginx {
    child: std::process::Child,
    base: String,
    cert: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_in_front_of(upstream: &str) -> Nginx {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nginx is installed (the test command installs Debian's nginx)");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = (d.join("nginx-cert.pem"), d.join("nginx-key.pem"));
    // A server (not CA) certificate for 127.0.0.1, as rustls requires.
    let req = d.join("req.cnf");
    std::fs::write(
        &req,
        "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n[dn]\nCN = 127.0.0.1\n\
         [ext]\nbasicConstraints = critical,CA:FALSE\nsubjectAltName = IP:127.0.0.1\n\
         keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
        .args(["-nodes", "-days", "1", "-config"])
        .arg(&req)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = |name: &str| d.join(name).display().to_string();
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid {pid}; error_log {log} warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
           access_log off;\n\
           client_body_temp_path {t}/body; proxy_temp_path {t}/proxy; fastcgi_temp_path {t}/fcgi;\n\
           uwsgi_temp_path {t}/uwsgi; scgi_temp_path {t}/scgi;\n\
           server {{\n\
             listen 127.0.0.1:{port} ssl;\n\
             ssl_certificate {cert}; ssl_certificate_key {key};\n\
             ssl_verify_client optional_no_ca;\n\
             location / {{\n\
               proxy_pass http://{upstream};\n\
               proxy_set_header Host $host;\n\
               proxy_set_header X-Client-Cert $ssl_client_escaped_cert;\n\
               proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             }}\n\
           }}\n\
         }}\n",
        pid = p("nginx.pid"),
        log = p("error.log"),
        t = d.display(),
        cert = cert.display(),
        key = key.display(),
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let mut child = std::process::Command::new(nginx)
        .arg("-p")
        .arg(d)
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        // An nginx that stopped (the port taken in between, a bad config) says why.
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "nginx exited ({status}): {}",
                std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nginx listens within 10 s: {}",
            std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Nginx {
        child,
        base: format!("https://127.0.0.1:{port}"),
        cert,
        _dir: dir,
    }
}

/// A client of nginx from 127.0.0.2 (another loopback address than
/// nginx's own), with Keyward's client certificate if given.
fn nginx_client(nginx: &Nginx, identity: Option<(&str, &Path)>) -> Client {
    let from = Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap());
    trusting(&nginx.cert, identity, from)
}

#[tokio::test]
async fn behind_a_real_nginx_certificates_and_addresses_come_through() {
    let m = mtls_on(|c| behind_proxy(c, "127.0.0.1")).await;
    let app = &m.app;
    let upstream = app.base.trim_start_matches("http://").to_string();
    let nginx = nginx_in_front_of(&upstream);
    let with_cert = nginx_client(&nginx, Some((m.cert["pem"].as_str().unwrap(), &m.key)));

    // The issued certificate passes the mTLS gate through nginx.
    let res = mint(&with_cert, &nginx.base, &m.server_key).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // Without one, nginx still answers (optional), and Keyward refuses.
    let res = mint(&nginx_client(&nginx, None), &nginx.base, &m.server_key).await;
    refused(res, "mTLS is on").await;

    // A second certificate, revoked: refused from the next request on.
    let (key2, csr2) = openssl_csr(m.dir.path(), Key::P256, "spare");
    let res = with_cert
        .post(format!("{}/api/v1/certificates", nginx.base))
        .bearer_auth(&m.token)
        .json(&json!({ "name": "spare", "csr": csr2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let spare: Value = res.json().await.unwrap();
    let spare_client = nginx_client(&nginx, Some((spare["pem"].as_str().unwrap(), &key2)));
    assert_eq!(mint(&spare_client, &nginx.base, &m.server_key).await.status(), 200);
    let res = with_cert
        .delete(format!(
            "{}/api/v1/certificates/{}",
            nginx.base,
            spare["id"].as_str().unwrap()
        ))
        .bearer_auth(&m.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    refused(mint(&spare_client, &nginx.base, &m.server_key).await, "revoked").await;

    // The audit log names the client's address, not nginx's.
    let events = app::domain::audit::recent(app.kw().db(), 1).await.unwrap();
    let revoke = &events[0];
    assert_eq!(revoke.action, "certificate.revoke");
    assert_eq!(revoke.source, "127.0.0.2 (admin API)", "{revoke:?}");
}

/// A certificate whose validity has not begun (a clock set wrong where it
/// was issued, or a row restored from elsewhere) is refused, and says so.
#[tokio::test]
async fn a_certificate_not_valid_yet_is_refused() {
    let m = mtls_on(|_| {}).await;
    let app = &m.app;
    let client = tls_client(app, Some((m.cert["pem"].as_str().unwrap(), &m.key)));
    assert_eq!(mint(&client, &app.https_base, &m.server_key).await.status(), 200);
    let in_an_hour = app::domain::clock::now_ms() + 3_600_000;
    sqlx::query("UPDATE certificates SET not_before = $1 WHERE id = $2")
        .bind(in_an_hour)
        .bind(m.cert["id"].as_str().unwrap())
        .execute(app.kw().db().write())
        .await
        .unwrap();
    app.settle().await;
    refused(mint(&client, &app.https_base, &m.server_key).await, "not valid yet").await;
}

//! Connections an attacker cannot hold: half a request, an idle
//! keep-alive, one connection too many — on both listeners.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Reads until the server closes the connection; how long that took.
async fn closed_within(stream: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

fn with_limits(c: &mut server::config::Config) {
    c.connections.header_read_timeout = Duration::from_millis(800);
    c.connections.idle_timeout = Duration::from_millis(800);
    c.connections.request_timeout = Duration::from_millis(1500);
    c.connections.max_per_listener = 8;
}

#[tokio::test]
async fn a_request_whose_headers_never_end_is_closed() {
    let app = TestApp::spawn_with(with_limits).await;
    let mut plain = TcpStream::connect(app.running.as_ref().unwrap().http_addr)
        .await
        .unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(
        closed_within(&mut plain, Duration::from_secs(5)).await.is_some(),
        "HTTP"
    );

    let mut tls = tls_connect(&app).await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    tls.flush().await.unwrap();
    assert!(closed_within(&mut tls, Duration::from_secs(5)).await.is_some(), "HTTPS");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::spawn_with(with_limits).await;
    let mut plain = TcpStream::connect(app.running.as_ref().unwrap().http_addr)
        .await
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = plain.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut plain, Duration::from_secs(5)).await.is_some());
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_politely() {
    let app = TestApp::spawn_with(|c| {
        with_limits(c);
        c.connections.header_read_timeout = Duration::from_secs(30);
        c.connections.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = app.running.as_ref().unwrap().http_addr;
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    // One closes; a new connection is served again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = reqwest::get(app.url("/healthz")).await;
        if res.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "not served again after a connection closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn tls_connect(app: &TestApp) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls::pki_types::{CertificateDer, ServerName};
    let pem = std::fs::read(app.data_dir.join("tls-cert.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in <CertificateDer as rustls::pki_types::pem::PemObject>::pem_slice_iter(&pem) {
        let cert: CertificateDer = cert.unwrap();
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(server::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(app.running.as_ref().unwrap().https_addr)
        .await
        .unwrap();
    connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// A body trickled a byte at a time: the request's time runs out and its
/// connection is dropped (it would otherwise hold a place for ever).
#[tokio::test]
async fn a_request_whose_body_never_ends_is_dropped() {
    let app = TestApp::spawn_with(with_limits).await;
    app.setup(app.setup_token.clone().unwrap().as_str(), PASSWORD).await;
    app.settle().await;
    // A valid API key, so the handler waits to read the whole body.
    let head = format!(
        "POST /api/v3/sessions HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
        app.api_key().await
    );
    let mut plain = TcpStream::connect(app.running.as_ref().unwrap().http_addr)
        .await
        .unwrap();
    plain.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if plain.write_all(b" ").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(1), plain.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => panic!("answered before its body: {}", String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
    assert!(closed, "a trickled body kept its connection for 5 s");
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "dropped at its time, not before"
    );
}

/// On HTTPS the place is taken before the handshake: past the cap, a
/// connection is answered 503 (after its handshake, within the refusal
/// budget) instead of being served.
#[tokio::test]
async fn tls_connections_beyond_the_cap_are_refused_politely() {
    let app = TestApp::spawn_with(|c| {
        with_limits(c);
        c.connections.header_read_timeout = Duration::from_secs(30);
        c.connections.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut s = tls_connect(&app).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let mut extra = tls_connect(&app).await;
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
}

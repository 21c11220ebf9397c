//! The benchmark's load generator for what wrk cannot do: HTTPS with a
//! client certificate (mTLS). N connections, each a keep-alive loop of
//! requests for a fixed time; prints `requests/s p50 p99 errors` (ms).
//!
//! cargo run --release -p server --example loadgen -- \
//!   --url https://127.0.0.1:3443/api/v1/admins/me --ca tls-cert.pem \
//!   --cert backend.pem --key backend.key --header 'Authorization: Bearer …'

use std::time::{Duration, Instant};

struct Args {
    url: String,
    connections: usize,
    seconds: u64,
    ca: Option<String>,
    identity: Option<(String, String)>,
    headers: Vec<(String, String)>,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        connections: 64,
        seconds: 8,
        ca: None,
        identity: None,
        headers: Vec::new(),
    };
    let mut cert = None;
    let mut key = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value(),
            "--connections" => a.connections = value().parse().expect("--connections N"),
            "--seconds" => a.seconds = value().parse().expect("--seconds N"),
            "--ca" => a.ca = Some(value()),
            "--cert" => cert = Some(value()),
            "--key" => key = Some(value()),
            "--header" => {
                let h = value();
                let (k, v) = h.split_once(':').expect("--header 'Name: value'");
                a.headers.push((k.trim().to_string(), v.trim().to_string()));
            }
            other => panic!("unknown flag {other}"),
        }
    }
    if let (Some(c), Some(k)) = (cert, key) {
        a.identity = Some((c, k));
    }
    assert!(!a.url.is_empty(), "--url is required");
    a
}

fn client(a: &Args) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .pool_max_idle_per_host(1)
        .http1_only();
    if let Some(ca) = &a.ca {
        let pem = std::fs::read(ca).expect("read --ca");
        b = b
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA PEM"))
            .tls_built_in_root_certs(false);
    }
    if let Some((cert, key)) = &a.identity {
        let mut pem = std::fs::read(cert).expect("read --cert");
        pem.extend(std::fs::read(key).expect("read --key"));
        b = b.identity(reqwest::Identity::from_pem(&pem).expect("certificate and key PEM"));
    }
    b.build().expect("client")
}

#[tokio::main]
async fn main() {
    let a = args();
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        let c = client(&a);
        let url = a.url.clone();
        let headers = a.headers.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies_us: Vec<u32> = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let started = Instant::now();
                let mut req = c.get(&url);
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                match req.send().await {
                    Ok(res) => {
                        let ok = res.status().is_success();
                        let _ = res.bytes().await;
                        if !ok {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
                latencies_us.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            (latencies_us, errors)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("connection task");
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64().max(a.seconds as f64);
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        f64::from(all[i]) / 1000.0
    };
    println!(
        "{:.0} {:.2}ms {:.2}ms {}",
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        errors
    );
}

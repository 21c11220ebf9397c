//! The benchmark's logout storm: opens a session and logs it out, again
//! and again, until N tokens are logged out; spread over U users so the
//! per-user logout limit is not what is measured. Prints
//! `logouts seconds logouts/s errors`.
//!
//! cargo run --release -p server --example logout_storm -- \
//!   --base http://127.0.0.1:3900 --api-key kwapi_… --tokens 1000000

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let mut base = String::new();
    let mut api_key = String::new();
    let mut tokens: u64 = 1_000_000;
    let mut users: u64 = 100_000;
    let mut connections: u64 = 64;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--base" => base = value(),
            "--api-key" => api_key = value(),
            "--tokens" => tokens = value().parse().expect("--tokens N"),
            "--users" => users = value().parse().expect("--users N"),
            "--connections" => connections = value().parse().expect("--connections N"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        !base.is_empty() && !api_key.is_empty(),
        "--base and --api-key are required"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let client = reqwest::Client::builder().http1_only().build().unwrap();
        let next = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (client, base, api_key) = (client.clone(), base.clone(), api_key.clone());
            let (next, errors) = (next.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Relaxed);
                    if n >= tokens {
                        break;
                    }
                    let body = format!(r#"{{"userId":"storm-{}","deviceId":"d{n}"}}"#, n % users);
                    let opened = client
                        .post(format!("{base}/api/v3/sessions"))
                        .header("x-api-key", &api_key)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let token = match opened {
                        Ok(res) if res.status() == 200 => {
                            let text = res.text().await.unwrap_or_default();
                            text.split("\"accessToken\":\"")
                                .nth(1)
                                .and_then(|t| t.split('"').next())
                                .map(str::to_string)
                        }
                        _ => None,
                    };
                    let Some(token) = token else {
                        errors.fetch_add(1, Relaxed);
                        continue;
                    };
                    let closed = client
                        .delete(format!("{base}/api/v4/sessions"))
                        .bearer_auth(&token)
                        .send()
                        .await;
                    if !matches!(closed, Ok(ref r) if r.status() == 200) {
                        errors.fetch_add(1, Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{tokens} {secs:.1} {:.0} {}",
            tokens as f64 / secs,
            errors.load(Relaxed)
        );
    });
}

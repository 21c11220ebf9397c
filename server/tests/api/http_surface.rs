use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ready");
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_a_nonce_policy() {
    let app = TestApp::ready().await;
    let res = app.client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"));
    assert!(!csp.contains("unsafe-inline"));
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap()
        .to_string();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries this response's nonce"
    );
    // A new response, a new nonce.
    let again = app.client.get(app.url("/login")).send().await.unwrap();
    assert!(!again.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains(&nonce));
}

#[tokio::test]
async fn unknown_api_routes_get_the_json_error_envelope() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/api/v9/nothing")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "error", "code": 400400, "message": "Not found"})
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = TestApp::ready().await;
    let big = "x".repeat(server::http::BODY_LIMIT + 1);
    let res = app
        .client
        .post(app.url("/console/fn/login"))
        .header("accept", "application/json")
        .form(&[("username", big.as_str()), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn unknown_pages_are_404() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn graceful_shutdown_keeps_the_data() {
    let mut app = TestApp::ready().await;
    app.stop().await;
    let running = server::startup::build(config_for(&app.data_dir, &app.db_url))
        .await
        .unwrap();
    assert!(running.setup_token.is_none(), "the application survived the restart");
    running.shutdown().await.unwrap();
}

/// The Prometheus exposition: `name{labels} value` lines under HELP/TYPE.
pub(crate) async fn scrape(app: &TestApp) -> std::collections::HashMap<String, f64> {
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let kind = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let body = res.text().await.unwrap();
    assert!(!body.contains(&app.api_key().await), "no secret in the metrics");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("a sample line: {l}"));
            let value = value.parse().unwrap_or_else(|_| panic!("a number: {l}"));
            (series.to_string(), value)
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_responses_and_the_writers_commits() {
    let app = TestApp::ready().await;
    let before = scrape(&app).await;
    assert_eq!(before["keyward_writer_writes_total{kind=\"user\"}"], 0.0);
    assert!(before.contains_key("keyward_http_request_duration_seconds_bucket{le=\"+Inf\"}"));

    let res = app.session(json!({"userId": "metered", "deviceId": "d"})).await;
    assert_eq!(res.status(), 200);
    let after_new = scrape(&app).await;
    assert_eq!(after_new["keyward_writer_writes_total{kind=\"user\"}"], 1.0);
    assert!(after_new["keyward_writer_commit_seconds_count"] >= 1.0);
    assert_eq!(
        after_new["keyward_writer_commit_seconds_count"],
        after_new["keyward_writer_commit_seconds_bucket{le=\"+Inf\"}"]
    );
    assert_eq!(after_new["keyward_writer_failed_statements_total"], 0.0);
    // The first scrape and the session answered 2xx before this scrape.
    let ok = |m: &std::collections::HashMap<String, f64>| m["keyward_http_responses_total{class=\"2xx\"}"];
    assert!(ok(&after_new) >= ok(&before) + 2.0);

    // A user just created is kept in memory (the cache's policy keeps
    // those who come back): a known user's session writes nothing before
    // answering (SPEC §8).
    for _ in 0..2 {
        let res = app.session(json!({"userId": "metered", "deviceId": "d"})).await;
        assert_eq!(res.status(), 200);
    }
    let second = scrape(&app).await;
    assert_eq!(second["keyward_writer_writes_total{kind=\"user\"}"], 1.0);
    assert_eq!(second["keyward_known_user_lookups_total{result=\"hit\"}"], 2.0);
    let res = app.session(json!({"userId": "metered", "deviceId": "d"})).await;
    assert_eq!(res.status(), 200);
    let res = app.client.get(app.url("/no-such-page")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let after_known = scrape(&app).await;
    assert_eq!(after_known["keyward_writer_writes_total{kind=\"user\"}"], 1.0);
    assert_eq!(
        after_known["keyward_writer_commit_seconds_count"],
        second["keyward_writer_commit_seconds_count"]
    );
    assert!(after_known["keyward_http_responses_total{class=\"4xx\"}"] >= 1.0);
}

/// The console's bundle is built into the binary: the page names it by
/// content hash, it is cached for a year and gzipped for whoever accepts
/// it, and no other name (an old release's, an unhashed one, a path into
/// the disk) answers.
#[tokio::test]
async fn the_console_bundle_is_built_in_hashed_and_cached() {
    let app = TestApp::spawn().await;
    let html = app.html("/login").await;
    let name = |suffix: &str| {
        let end = html.find(suffix).unwrap_or_else(|| panic!("no {suffix} in the page"));
        let start = html[..end].rfind("/pkg/").unwrap();
        html[start..end + suffix.len()].to_string()
    };
    let (js, wasm, css) = (name(".js\""), name("_bg.wasm\""), name(".css\""));
    let (js, wasm, css) = (
        js.trim_end_matches('"'),
        wasm.trim_end_matches('"'),
        css.trim_end_matches('"'),
    );
    let hash = js.strip_prefix("/pkg/keyward-").unwrap().strip_suffix(".js").unwrap();
    assert_eq!(hash.len(), 16);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    assert_eq!(wasm, format!("/pkg/keyward-{hash}_bg.wasm"));
    assert_eq!(css, format!("/pkg/keyward-{hash}.css"));

    let client = anonymous();
    for (path, content_type, magic) in [
        (wasm, "application/wasm", &b"\0asm"[..]),
        (js, "text/javascript; charset=utf-8", &b""[..]),
        (css, "text/css; charset=utf-8", &b""[..]),
    ] {
        let plain = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        let h = plain.headers().clone();
        assert_eq!(h["content-type"], content_type, "{path}");
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        assert!(h.get("content-encoding").is_none(), "{path}: not asked for gzip");
        let body = plain.bytes().await.unwrap();
        assert!(body.starts_with(magic) && body.len() > 1000, "{path}");

        let gzipped = client
            .get(app.url(path))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(gzipped.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(gzipped.headers()["vary"], "accept-encoding");
        let etag = gzipped.headers()["etag"].clone();
        let packed = gzipped.bytes().await.unwrap();
        assert!(packed.starts_with(&[0x1f, 0x8b]) && packed.len() < body.len(), "{path}");

        let again = client
            .get(app.url(path))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    for path in [
        "/pkg/keyward.js".to_string(),
        "/pkg/keyward_bg.wasm".to_string(),
        "/pkg/keyward-0123456789abcdef.js".to_string(),
        format!("/pkg/keyward-{hash}.map"),
        "/Cargo.toml".to_string(),
        "/pkg/../Cargo.toml".to_string(),
    ] {
        let res = client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
}

/// Each page names itself, and in the console the application too; the
/// product has an icon.
#[tokio::test]
async fn pages_have_their_own_titles_and_the_product_an_icon() {
    let app = TestApp::ready().await;
    let title = |html: &str| {
        let start = html.find("<title>").expect("a title") + "<title>".len();
        html[start..start + html[start..].find("</title>").unwrap()].to_string()
    };
    assert_eq!(title(&app.html("/login").await), "Sign in · Keyward");
    assert_eq!(title(&app.html("/no-such-page").await), "Not found · Keyward");
    app.login().await;
    for (path, name) in [
        ("/settings/integrations", "Integrations"),
        ("/settings/security", "Security"),
        ("/settings/admin-users", "Admin Users"),
        ("/settings/audit-log", "Audit log"),
        ("/settings/api", "API reference"),
    ] {
        assert_eq!(
            title(&app.html(path).await),
            format!("{name} · Acme Chat · Keyward"),
            "{path}"
        );
    }
    for path in ["/favicon.ico", "/favicon.svg"] {
        let res = anonymous().get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "image/svg+xml");
        assert!(res.text().await.unwrap().starts_with("<svg"));
    }
    assert!(app.html("/login").await.contains(r#"rel="icon" href="/favicon.svg""#));
}

use crate::helpers::*;

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

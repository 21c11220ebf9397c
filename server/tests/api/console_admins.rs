use crate::helpers::*;
use reqwest::Method;

async fn signed_in_admin(app: &TestApp, username: &str) -> reqwest::Client {
    let out = app.keyward(
        &["admin", "create", "--username", username, "--password-stdin"],
        Some("a long enough password\n"),
    );
    assert!(out.status.success());
    let client = browser(&app.base);
    let res = app.login_with(&client, username, "a long enough password").await;
    assert_eq!(location(&res), "/settings/integrations");
    client
}

#[tokio::test]
async fn an_admin_gets_a_token_at_sign_in_and_retrieves_it_with_the_password() {
    let app = TestApp::ready().await;
    let ops = signed_in_admin(&app, "ops").await;
    let (status, body) = app
        .call(&ops, "retrieve_token", &[("password", "wrong password!!")])
        .await;
    assert_eq!(status, 401);
    assert!(body.contains("not correct"), "{body}");
    let (status, body) = app
        .call(&ops, "retrieve_token", &[("password", "a long enough password")])
        .await;
    assert_eq!(status, 200, "{body}");
    let shown: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = shown["token"].as_str().unwrap();
    assert!(token.starts_with("kwadm_"));
    let me = app.bearer(Method::GET, "/api/v1/admins/me", token).await;
    assert_eq!(me.status(), 200);
    // Showing a secret again is audited (the wrong password showed nothing).
    let events = app::domain::audit::recent(app.kw().db(), 10).await.unwrap();
    let shown: Vec<_> = events.iter().filter(|e| e.action == "admin_token.retrieve").collect();
    assert_eq!(shown.len(), 1);
    assert_eq!((shown[0].actor.as_str(), shown[0].target.as_str()), ("ops", "ops"));
    assert!(!shown[0].detail.contains(token), "never the token itself");
}

#[tokio::test]
async fn without_javascript_a_generated_token_is_shown_on_exactly_one_render() {
    let app = TestApp::ready().await;
    let ops = signed_in_admin(&app, "ops").await;
    let res = app
        .form(
            &ops,
            "generate_token",
            "/settings/admin-users?do=generate",
            &[("password", "a long enough password")],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/settings/admin-users");
    let first = app.html_as(&ops, "/settings/admin-users").await;
    assert!(first.contains("kwadm_"), "the new token is on the page it redirects to");
    assert!(first.contains("keeps working until"), "with the switch-over notice");
    let second = app.html_as(&ops, "/settings/admin-users").await;
    assert!(!second.contains("kwadm_"), "and never again");
    assert!(
        second.contains("stops working at"),
        "the frame tells its owner when the old token dies"
    );
}

#[tokio::test]
async fn revoking_your_own_token_signs_you_out_everywhere() {
    let app = TestApp::ready().await;
    let ops = signed_in_admin(&app, "ops").await;
    let other_browser = browser(&app.base);
    app.login_with(&other_browser, "ops", "a long enough password").await;
    let token = app
        .call(&ops, "retrieve_token", &[("password", "a long enough password")])
        .await
        .1;
    let token: serde_json::Value = serde_json::from_str(&token).unwrap();
    let res = app
        .form(
            &ops,
            "revoke_token",
            "/settings/admin-users?do=revoke",
            &[("username", "ops")],
        )
        .await;
    assert_eq!(location(&res), "/login?reason=revoked");
    for client in [&ops, &other_browser] {
        let res = client.get(app.url("/settings/admin-users")).send().await.unwrap();
        assert_eq!(res.status(), 302);
        assert!(location(&res).starts_with("/login"));
    }
    let me = app
        .bearer(Method::GET, "/api/v1/admins/me", token["token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 401);
    // Signing in again issues a fresh token.
    app.login_with(&ops, "ops", "a long enough password").await;
    let (status, _) = app
        .call(&ops, "retrieve_token", &[("password", "a long enough password")])
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn only_super_admins_manage_admins_and_revoke_others() {
    let app = TestApp::ready().await;
    let ops = signed_in_admin(&app, "ops").await;
    let _bob = signed_in_admin(&app, "bobby").await;
    let (_, body) = app.call(&ops, "revoke_token", &[("username", "bobby")]).await;
    assert!(body.contains("Forbidden"), "{body}");
    let (_, body) = app
        .call(
            &ops,
            "create_admin",
            &[
                ("username", "eve"),
                ("password", "a long password!"),
                ("role", "super_admin"),
            ],
        )
        .await;
    assert!(body.contains("Forbidden"), "{body}");
    let (_, body) = app
        .call(
            &ops,
            "set_admin_disabled",
            &[("username", "bobby"), ("disabled", "true")],
        )
        .await;
    assert!(body.contains("Forbidden"), "{body}");

    app.login().await;
    let (status, body) = app.call(&app.client, "revoke_token", &[("username", "ghost")]).await;
    assert_eq!(status, 400);
    assert!(body.contains("no admin with that username"), "{body}");
    let (status, body) = app
        .call(
            &app.client,
            "create_admin",
            &[("username", "eve"), ("password", "a long password!"), ("role", "admin")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.call(&app.client, "revoke_token", &[("username", "ops")]).await;
    assert_eq!(status, 200);
    let res = ops.get(app.url("/settings/integrations")).send().await.unwrap();
    assert_eq!(res.status(), 302, "the revoked admin is signed out at once");
    let (status, _) = app
        .call(
            &app.client,
            "set_admin_disabled",
            &[("username", "bobby"), ("disabled", "true")],
        )
        .await;
    assert_eq!(status, 200);
    let (_, body) = app
        .call(
            &app.client,
            "set_admin_disabled",
            &[("username", ADMIN), ("disabled", "true")],
        )
        .await;
    assert!(body.contains("cannot disable yourself"), "{body}");
}

#[tokio::test]
async fn the_admin_list_pages_and_searches_a_thousand_admins() {
    let app = TestApp::ready().await;
    // Seeded straight into the database: a thousand argon2 hashes would only slow the test.
    let db = &app.kw().db();
    let mut tx = db.write().begin().await.unwrap();
    for i in 0..1000 {
        sqlx::query(
            "INSERT INTO admin_users (id, username, password_hash, role, disabled, session_epoch, created_at, updated_at) \
             VALUES ($1, $2, 'x', 'admin', 0, 0, 0, 0)",
        )
        .bind(format!("seed{i}"))
        .bind(format!("user_{i:04}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    app.login().await;
    let (_, body) = app.call(&app.client, "admins", &[("query", ""), ("page", "1")]).await;
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 1001);
    assert_eq!(page["pages"], 41);
    assert_eq!(page["rows"].as_array().unwrap().len(), 25);
    let (_, body) = app
        .call(&app.client, "admins", &[("query", "user_099"), ("page", "1")])
        .await;
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 10, "user_0990 … user_0999");
    // '_' is matched literally, not as a wildcard.
    let (_, body) = app
        .call(&app.client, "admins", &[("query", "r_0"), ("page", "1")])
        .await;
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 1000);
    let (_, body) = app
        .call(&app.client, "admins", &[("query", "rx0"), ("page", "1")])
        .await;
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 0);
    let html = app.html("/settings/admin-users?q=user_0999").await;
    assert!(html.contains("user_0999") && !html.contains("user_0998"));
}

#[tokio::test]
async fn admins_are_warned_before_their_token_expires() {
    for (days, expect) in [(20, "within 30 days"), (5, "within 7 days"), (0, "within a day")] {
        let ttl = std::time::Duration::from_secs(days * 86_400 + 3_600);
        let app = TestApp::spawn_with(|c| c.lifetimes.admin_token_ttl = ttl).await;
        app.setup(app.setup_token.clone().unwrap().as_str(), PASSWORD).await;
        // Signing in issues the token with the server's configured lifetime.
        let ops = signed_in_admin(&app, "ops").await;
        let html = app.html_as(&ops, "/settings/integrations").await;
        assert!(html.contains(expect), "{days} days: {expect:?} missing");
    }
    // With a full year ahead, no warning.
    let app = TestApp::ready().await;
    let ops = signed_in_admin(&app, "ops").await;
    let html = app.html_as(&ops, "/settings/integrations").await;
    assert!(!html.contains("expires within"));
}

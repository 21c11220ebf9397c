use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::*;
use reqwest::Method;

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.bearer(Method::GET, "/api/v1/admins/me", token).await
}

async fn rotate(app: &TestApp, token: &str) -> reqwest::Response {
    app.bearer(Method::POST, "/api/v1/admin-token", token).await
}

#[tokio::test]
async fn admins_me_describes_the_token_and_its_one_year_life() {
    let app = TestApp::ready().await;
    let token = app.admin_with_token("ops");
    assert!(token.starts_with("kwadm_"));
    app.settle().await;
    let res = me(&app, &token).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["username"], "ops");
    assert_eq!(body["role"], "admin");
    assert_eq!(body["tokenStatus"], "active");
    let exp = time::OffsetDateTime::parse(
        body["tokenExpiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = exp - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::days(364) && left <= time::Duration::days(365),
        "{left}"
    );
}

#[tokio::test]
async fn rotation_keeps_the_old_token_for_the_switch_over_then_kills_it() {
    let app = TestApp::spawn_with(|c| c.lifetimes.admin_token_grace = Duration::from_millis(1500)).await;
    app.setup(app.setup_token.clone().unwrap().as_str(), PASSWORD).await;
    let old = app.admin_with_token("ops");
    app.settle().await;
    let res = rotate(&app, &old).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let new = body["adminToken"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(
        me(&app, &old).await.status(),
        200,
        "old token works during the switch-over"
    );
    let during: Value = me(&app, &old).await.json().await.unwrap();
    assert_eq!(during["tokenStatus"], "switching");
    assert_eq!(me(&app, &new).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(envelope(me(&app, &old).await, 401, 400100).await, "Invalid token");
    assert_eq!(me(&app, &new).await.status(), 200);
}

#[tokio::test]
async fn an_expired_token_says_so_and_unknown_ones_are_invalid() {
    let app = TestApp::spawn_with(|c| c.lifetimes.admin_token_ttl = Duration::from_millis(800)).await;
    app.setup(app.setup_token.clone().unwrap().as_str(), PASSWORD).await;
    app.admin_with_token("ops");
    // Issued by the server itself, so with its short configured lifetime.
    let kw = app.kw();
    let issued = kw
        .issue_admin_token(&app::domain::Principal::operator(), "ops")
        .await
        .unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&issued.token).to_string();
    app.settle().await;
    assert_eq!(me(&app, &token).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(envelope(me(&app, &token).await, 401, 400100).await, "token expired");
    for bad in ["kwadm_unknownunknownunknownunknown12", "garbage", ""] {
        let res = app
            .client
            .get(app.url("/api/v1/admins/me"))
            .header("authorization", format!("Bearer {bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(envelope(res, 401, 400100).await, "Invalid token");
    }
    let res = app.client.get(app.url("/api/v1/admins/me")).send().await.unwrap();
    assert_eq!(envelope(res, 401, 400100).await, "Invalid token");
}

#[tokio::test]
async fn self_revocation_kills_every_token_at_once() {
    let app = TestApp::ready().await;
    let old = app.admin_with_token("ops");
    app.settle().await;
    let new: Value = rotate(&app, &old).await.json().await.unwrap();
    let new = new["adminToken"].as_str().unwrap().to_string();
    let res = app
        .bearer(Method::DELETE, "/api/v1/admin-token?username=ops", &new)
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    assert_eq!(envelope(me(&app, &new).await, 401, 400100).await, "Invalid token");
    assert_eq!(
        envelope(me(&app, &old).await, 401, 400100).await,
        "Invalid token",
        "also the one in switch-over"
    );
}

#[tokio::test]
/// Through the API an admin naming anyone but themselves gets 403, for a
/// username that does not exist too: a 404 would let any admin enumerate
/// usernames.
async fn an_admin_may_not_revoke_another_and_unknown_names_get_the_same_403() {
    let app = TestApp::ready().await;
    let a = app.admin_with_token("alice");
    let b = app.admin_with_token("bobby");
    app.settle().await;
    let res = app
        .bearer(Method::DELETE, "/api/v1/admin-token?username=bobby", &a)
        .await;
    envelope(res, 403, 400301).await;
    assert_eq!(me(&app, &b).await.status(), 200, "bobby's token is untouched");
    let res = app
        .bearer(Method::DELETE, "/api/v1/admin-token?username=ghost", &a)
        .await;
    envelope(res, 403, 400301).await;
    let res = app.bearer(Method::DELETE, "/api/v1/admin-token", &a).await;
    envelope(res, 400, 400000).await;
    let events = app::domain::audit::recent(app.kw().db(), 5).await.unwrap();
    let refused = events
        .iter()
        .find(|e| e.action == "admin_token.revoke_refused" && e.target == "bobby")
        .expect("the refusal is audited");
    // From where (SPEC §3): the caller's address, through the admin API.
    assert_eq!(refused.source, "127.0.0.1 (admin API)");
    // A name no username can be is recorded without its control characters.
    let res = app
        .client
        .delete(app.url("/api/v1/admin-token"))
        .query(&[("username", "phan\u{7}tom")])
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    envelope(res, 403, 400301).await;
    let events = app::domain::audit::recent(app.kw().db(), 5).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "admin_token.revoke_refused" && e.target == "phantom"),
        "{events:?}"
    );
}

#[tokio::test]
async fn super_admin_revokes_by_username_through_the_cli_and_disabled_admins_are_refused() {
    let app = TestApp::ready().await;
    let token = app.admin_with_token("ops");
    app.settle().await;
    let out = app.keyward(&["admin", "revoke-token", "--username", "ops"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.settle().await;
    assert_eq!(envelope(me(&app, &token).await, 401, 400100).await, "Invalid token");
    let out = app.keyward(&["admin", "revoke-token", "--username", "ghost"], None);
    assert!(!out.status.success());

    let token = app.issue_token("ops");
    app.settle().await;
    assert_eq!(me(&app, &token).await.status(), 200);
    app.keyward(&["admin", "disable", "--username", "ops"], None);
    app.settle().await;
    assert_eq!(envelope(me(&app, &token).await, 401, 400100).await, "Invalid token");
    // Super admins have no token of their own.
    let out = app.keyward(&["admin", "issue-token", "--username", ADMIN], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not available for Super Admin"));
}

#[tokio::test]
async fn concurrent_rotations_leave_exactly_one_current_token() {
    let app = TestApp::ready().await;
    let token = app.admin_with_token("ops");
    app.settle().await;
    // Only the current token may rotate: the first rotation wins, and the
    // others, presenting what is now the superseded token, are refused.
    let mut results = futures_join(&app, &token, 8).await;
    results.sort_unstable();
    assert_eq!(results, [200, 401, 401, 401, 401, 401, 401, 401]);
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM admin_tokens t JOIN admin_users a ON a.id = t.admin_id WHERE a.username = 'ops' AND t.state = 'current'",
    )
    .fetch_one(app.kw().db().read())
    .await
    .unwrap();
    assert_eq!(n, 1);
}

async fn futures_join(app: &TestApp, token: &str, n: usize) -> Vec<u16> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let client = app.client.clone();
        let url = app.url("/api/v1/admin-token");
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn settings_through_the_api_follow_the_console_rules() {
    let app = TestApp::ready().await;
    let token = app.admin_with_token("ops");
    app.settle().await;
    let body: Value = app.bearer_json("/api/v1/settings", &token).await;
    assert_eq!(body["apiKey"], app.api_key().await);
    assert_eq!(body["region"], "eu");
    assert_eq!(body["secureMode"], false);
    assert_eq!(body["mtls"], false);
    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&token)
        .json(&json!({"mtls": true}))
        .send()
        .await
        .unwrap();
    assert!(envelope(res, 409, 400900).await.contains("secure mode"));
    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&token)
        .json(&json!({"secureMode": "yes"}))
        .send()
        .await
        .unwrap();
    envelope(res, 400, 400000).await;
    let res = app.client.get(app.url("/api/v1/settings")).send().await.unwrap();
    envelope(res, 401, 400100).await;
    let events = app::domain::audit::recent(app.kw().db(), 50).await.unwrap();
    for e in events {
        assert!(
            !e.detail.contains("kwadm_") && !e.detail.contains("kwsk_") && !e.target.contains("kwadm_"),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn server_keys_and_the_audit_log_are_listed_without_secrets() {
    let app = TestApp::ready().await;
    let token = app.admin_with_token("alice");
    app.settle().await;
    let old = app.server_key(&token, 0).await;
    let new = app.server_key(&token, 0).await;

    let res = app.bearer(Method::GET, "/api/v1/server-keys", &token).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(!text.contains(&old) && !text.contains(&new), "a key is shown once only");
    let body: Value = serde_json::from_str(&text).unwrap();
    let keys = body["serverKeys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(new.starts_with(keys[0]["prefix"].as_str().unwrap()), "newest first");
    assert_eq!(keys[0]["status"], "active");
    assert_eq!(keys[1]["status"], "retired", "no overlap asked: retired at once");

    // The audit log, filtered and paged as the console's page does.
    let (app_ref, t) = (&app, token.clone());
    let page = move |query: String| {
        let t = t.clone();
        async move { app_ref.bearer_json(&format!("/api/v1/audit-events{query}"), t).await }
    };
    let first = page("?action=server_key&limit=1".into()).await;
    let events = first["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "server_key.generate");
    assert_eq!(events[0]["actor"], "alice");
    assert_eq!(events[0]["source"], "127.0.0.1 (admin API)");
    assert_eq!(events[0]["detail"]["overlap_seconds"], 0);
    let before = first["nextBefore"].as_i64().expect("an older page");
    let second = page(format!("?action=server_key&before={before}")).await;
    assert_eq!(second["events"].as_array().unwrap().len(), 1);
    assert!(second["nextBefore"].is_null());
    // A page that ends exactly at the oldest match says there is no older.
    let both = page("?action=server_key&limit=2".into()).await;
    assert_eq!(both["events"].as_array().unwrap().len(), 2);
    assert!(both["nextBefore"].is_null(), "{both}");
    let all = page(String::new()).await;
    let actions: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"admin.create") && actions.contains(&"application.setup"),
        "{actions:?}"
    );
    assert!(!all.to_string().contains(&new), "never a secret");

    let res = app.bearer(Method::GET, "/api/v1/audit-events?limit=0", &token).await;
    envelope(res, 400, 400000).await;
    let res = app.bearer(Method::GET, "/api/v1/audit-events?colour=red", &token).await;
    envelope(res, 400, 400000).await;
    // The console's limit on a filter field holds on the API too: one rule.
    let long = "a".repeat(201);
    let res = app
        .bearer(Method::GET, &format!("/api/v1/audit-events?actor={long}"), &token)
        .await;
    assert_eq!(
        envelope(res, 400, 400000).await,
        "Actor must be at most 200 characters."
    );
    // Counted once trimmed, as it is searched: 200 between spaces pass.
    let padded = format!("%20{long}%20", long = "a".repeat(200));
    for field in ["actor", "action", "target"] {
        let res = app
            .bearer(Method::GET, &format!("/api/v1/audit-events?{field}={padded}"), &token)
            .await;
        assert_eq!(res.status(), 200, "{field} of 200 characters between spaces");
    }
    let res = anonymous().get(app.url("/api/v1/server-keys")).send().await.unwrap();
    envelope(res, 401, 400100).await;
}

/// Super admins hold no admin token: a token found for one (the role
/// changed in the database by hand, say) opens nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_found_for_a_super_admin_opens_nothing() {
    let app = TestApp::ready().await;
    let token = app.admin_with_token("ops");
    app.settle().await;
    let res = app.bearer(Method::GET, "/api/v1/server-keys", &token).await;
    assert_eq!(res.status(), 200);
    sqlx::query("UPDATE admin_users SET role = 'super_admin' WHERE username = 'ops'")
        .execute(app.kw().db().write())
        .await
        .unwrap();
    app.settle().await;
    let res = app.bearer(Method::GET, "/api/v1/server-keys", &token).await;
    envelope(res, 401, 400100).await;
}

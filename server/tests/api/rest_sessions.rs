use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::*;
use reqwest::Method;

#[tokio::test]
async fn unsecure_sessions_create_then_update_users_at_every_version() {
    let app = TestApp::ready().await;
    for version in ["v3", "v4", "v5"] {
        let res = app
            .client
            .post(app.url(&format!("/api/{version}/sessions")))
            .header("X-API-KEY", app.api_key().await)
            .json(&json!({ "userId": "alice", "deviceId": "phone-1", "displayName": format!("Alice {version}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{version}");
        let body: Value = res.json().await.unwrap();
        assert!(body["accessToken"].as_str().unwrap().starts_with("kwat_"));
        assert!(body["issuedAt"].as_str().unwrap().ends_with('Z'));
        assert!(body["expiresAt"].as_str().unwrap() > body["issuedAt"].as_str().unwrap());
        let user = &body["users"][0];
        assert_eq!(user["userId"], "alice");
        assert_eq!(user["displayName"], format!("Alice {version}"));
        assert!(user["_id"].as_str().is_some_and(|s| !s.is_empty()));
    }
    // Without a displayName, the stored one stays.
    let body: Value = app
        .session(json!({"userId": "alice", "deviceId": "d"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["users"][0]["displayName"], "Alice v5");
}

#[tokio::test]
async fn access_tokens_last_thirty_days_and_can_be_used() {
    let app = TestApp::ready().await;
    let body: Value = app
        .session(json!({"userId": "bob", "deviceId": "laptop"}))
        .await
        .json()
        .await
        .unwrap();
    let token = body["accessToken"].as_str().unwrap();
    let issued = time::OffsetDateTime::parse(
        body["issuedAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires = time::OffsetDateTime::parse(
        body["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires - issued, time::Duration::days(30));

    let current: Value = app.bearer_json("/api/v3/sessions/current", token).await;
    assert_eq!(current["userId"], "bob");
    assert_eq!(current["deviceId"], "laptop");
    let chat: Value = app.bearer_json("/api/v3/network-settings/chat", token).await;
    assert_eq!(
        chat,
        json!({"messagePreview": {"enabled": false, "isIncludeDeleted": false}})
    );
}

#[tokio::test]
async fn every_session_rule_is_enforced() {
    let app = TestApp::ready().await;
    let long = |n: usize| "x".repeat(n);
    let big_info: serde_json::Map<String, Value> = (0..200).map(|i| (format!("k{i}"), json!("vvvvvvvv"))).collect();
    let cases = [
        (json!({"userId": "", "deviceId": "d"}), "userId"),
        (json!({"userId": long(51), "deviceId": "d"}), "userId"),
        (json!({"userId": "ADMIN_x", "deviceId": "d"}), "ADMIN_"),
        (json!({"userId": "DELETED_x", "deviceId": "d"}), "DELETED_"),
        (json!({"userId": "u", "deviceId": ""}), "deviceId"),
        (json!({"userId": "u", "deviceId": long(151)}), "deviceId"),
        (
            json!({"userId": "u", "deviceId": "d", "displayName": long(101)}),
            "displayName",
        ),
        (
            json!({"userId": "u", "deviceId": "d", "authToken": long(101)}),
            "authToken",
        ),
        (
            json!({"userId": "u", "deviceId": "d", "deviceInfo": "phone"}),
            "deviceInfo",
        ),
        (
            json!({"userId": "u", "deviceId": "d", "deviceInfo": big_info}),
            "deviceInfo",
        ),
        (json!({"userId": 5, "deviceId": "d"}), "userId"),
        (json!({"deviceId": "d"}), "userId"),
    ];
    for (body, word) in cases {
        let msg = envelope(app.session(body.clone()).await, 400, 400000).await;
        assert!(msg.contains(word), "{body}: {msg}");
    }
    // Boundaries are accepted.
    let ok = app
        .session(json!({"userId": long(50), "deviceId": long(150), "displayName": long(100)}))
        .await;
    assert_eq!(ok.status(), 200);
    // deviceInfo of exactly 2 KiB as JSON, and an empty authToken, which
    // is no token (this application is not in secure mode).
    let info = json!({ "k": long(2040) });
    assert_eq!(info.to_string().len(), 2048);
    let ok = app
        .session(json!({"userId": "u", "deviceId": "d", "deviceInfo": info, "authToken": ""}))
        .await;
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap());
    // An authToken of 100 characters is not refused for its length: it is
    // checked (and this one is not valid).
    let msg = envelope(
        app.session(json!({"userId": "u", "deviceId": "d", "authToken": long(100)}))
            .await,
        401,
        400100,
    )
    .await;
    assert!(msg.contains("Invalid authToken"), "{msg}");
}

#[tokio::test]
async fn malformed_requests_get_the_envelope() {
    let app = TestApp::ready().await;
    let url = app.url("/api/v3/sessions");
    let res = app
        .client
        .post(&url)
        .header("x-api-key", app.api_key().await)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    envelope(res, 400, 400000).await;
    let res = app
        .client
        .post(&url)
        .header("x-api-key", app.api_key().await)
        .body("userId=x")
        .send()
        .await
        .unwrap();
    envelope(res, 400, 400000).await;
    let res = app
        .client
        .post(&url)
        .json(&json!({"userId": "u", "deviceId": "d"}))
        .send()
        .await
        .unwrap();
    assert!(envelope(res, 401, 400100).await.contains("X-API-Key"));
    let res = app
        .client
        .post(&url)
        .header("x-api-key", "kwapi_wrong")
        .json(&json!({"userId": "u", "deviceId": "d"}))
        .send()
        .await
        .unwrap();
    envelope(res, 401, 400100).await;
    let huge = json!({"userId": "u", "deviceId": "d", "displayName": "x".repeat(server::http::BODY_LIMIT)});
    let res = app
        .client
        .post(&url)
        .header("x-api-key", app.api_key().await)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert!(envelope(res, 400, 400000).await.contains("64 KiB"));
    let res = app
        .client
        .get(app.url("/api/v3/sessions/current"))
        .send()
        .await
        .unwrap();
    envelope(res, 401, 400100).await;
    let res = app
        .bearer(Method::GET, "/api/v3/sessions/current", "kwat_forged.token")
        .await;
    envelope(res, 401, 400100).await;
    let res = app.client.put(&url).send().await.unwrap();
    envelope(res, 404, 400400).await;
}

#[tokio::test]
async fn secure_mode_needs_a_fresh_single_use_auth_token_for_the_same_user() {
    let app = TestApp::ready().await;
    let admin = app.admin_with_token("ops");
    app.settle().await;
    let key = app.server_key(&admin, 0).await;

    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&admin)
        .json(&json!({"secureMode": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["secureMode"], true);

    let msg = envelope(
        app.session(json!({"userId": "carol", "deviceId": "d"})).await,
        401,
        400100,
    )
    .await;
    assert!(msg.contains("authToken"), "{msg}");

    let res = app.mint(&key, "carol").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let token = res.text().await.unwrap();
    assert!(token.starts_with("kwauth_"));

    // Bound to its user.
    envelope(
        app.session(json!({"userId": "mallory", "deviceId": "d", "authToken": token}))
            .await,
        401,
        400100,
    )
    .await;
    let res = app
        .session(json!({"userId": "carol", "deviceId": "d", "authToken": token}))
        .await;
    assert_eq!(res.status(), 200);
    // Single use.
    let msg = envelope(
        app.session(json!({"userId": "carol", "deviceId": "d", "authToken": token}))
            .await,
        401,
        400100,
    )
    .await;
    assert!(msg.contains("already been used"), "{msg}");
    envelope(
        app.session(json!({"userId": "carol", "deviceId": "d", "authToken": "kwauth_garbage"}))
            .await,
        401,
        400100,
    )
    .await;

    // v3 GET returns a JSON string, and works too.
    let res = app
        .client
        .get(app.url("/api/v3/authentication/token?userId=carol"))
        .header("x-server-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v3: String = res.json().await.unwrap();
    assert_eq!(
        app.session(json!({"userId": "carol", "deviceId": "d", "authToken": v3}))
            .await
            .status(),
        200
    );

    // Turning secure mode off lets sessions without tokens in again.
    app.client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&admin)
        .json(&json!({"secureMode": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.session(json!({"userId": "carol", "deviceId": "d"})).await.status(),
        200
    );
}

#[tokio::test]
async fn auth_tokens_expire() {
    let app_ = TestApp::spawn_with(|c| c.lifetimes.auth_token_ttl = Duration::from_millis(800)).await;
    let res = app_.setup(app_.setup_token.clone().unwrap().as_str(), PASSWORD).await;
    assert_eq!(res.status(), 302);
    let admin = app_.admin_with_token("ops");
    app_.settle().await;
    let key = app_.server_key(&admin, 0).await;
    let token = app_.mint(&key, "dan").await.text().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let msg = envelope(
        app_.session(json!({"userId": "dan", "deviceId": "d", "authToken": token}))
            .await,
        401,
        400100,
    )
    .await;
    assert!(msg.contains("expired"), "{msg}");
}

#[tokio::test]
async fn a_redeemed_auth_token_stays_used_across_a_restart() {
    let mut app = TestApp::ready().await;
    let admin = app.admin_with_token("ops");
    app.settle().await;
    let key = app.server_key(&admin, 0).await;
    let token = app.mint(&key, "erin").await.text().await.unwrap();
    assert_eq!(
        app.session(json!({"userId": "erin", "deviceId": "d", "authToken": token}))
            .await
            .status(),
        200
    );
    let api_key = app.api_key().await;
    app.stop().await;
    let running = server::startup::build(config_for(&app.data_dir, &app.db_url))
        .await
        .unwrap();
    let base = format!("http://{}", running.http_addr);
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v3/sessions"))
        .header("x-api-key", api_key)
        .json(&json!({"userId": "erin", "deviceId": "d", "authToken": token}))
        .send()
        .await
        .unwrap();
    assert!(envelope(res, 401, 400100).await.contains("already been used"));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn server_key_rotation_with_and_without_overlap() {
    let app = TestApp::ready().await;
    let admin = app.admin_with_token("ops");
    app.settle().await;
    let first = app.server_key(&admin, 0).await;
    assert!(first.starts_with("kwsk_"));
    assert_eq!(app.mint(&first, "u").await.status(), 200);
    // No overlap: the first key dies at once.
    let second = app.server_key(&admin, 0).await;
    envelope(app.mint(&first, "u").await, 401, 400100).await;
    assert_eq!(app.mint(&second, "u").await.status(), 200);
    // One second of overlap: both work, then only the new one.
    let third = app.server_key(&admin, 1).await;
    assert_eq!(app.mint(&second, "u").await.status(), 200);
    assert_eq!(app.mint(&third, "u").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    envelope(app.mint(&second, "u").await, 401, 400100).await;
    assert_eq!(app.mint(&third, "u").await.status(), 200);
    // Bad inputs.
    let res = app
        .client
        .post(app.url("/api/v1/server-keys"))
        .bearer_auth(&admin)
        .json(&json!({"overlapSeconds": 86401}))
        .send()
        .await
        .unwrap();
    envelope(res, 400, 400000).await;
    envelope(app.mint("kwsk_nope", "u").await, 401, 400100).await;
    let res = app
        .client
        .post(app.url("/api/v4/authentication/token"))
        .json(&json!({"userId": "u"}))
        .send()
        .await
        .unwrap();
    envelope(res, 401, 400100).await;
    envelope(app.mint(&third, "ADMIN_root").await, 400, 400000).await;
    // Only a digest is stored.
    let stored: Vec<(Vec<u8>, String)> = sqlx::query_as("SELECT digest, prefix FROM server_keys")
        .fetch_all(app.kw().db().read())
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    for (digest, prefix) in stored {
        assert_eq!(digest.len(), 32);
        assert!(!third.is_empty() && (prefix.len() < 16));
    }
}

#[tokio::test]
async fn logout_and_admin_revocation_kill_access_tokens_at_once() {
    let app = TestApp::ready().await;
    let admin = app.admin_with_token("ops");
    app.settle().await;
    let open = |device: &'static str| {
        let app = &app;
        async move {
            let body: Value = app
                .session(json!({"userId": "frank", "deviceId": device}))
                .await
                .json()
                .await
                .unwrap();
            body["accessToken"].as_str().unwrap().to_string()
        }
    };
    let a = open("a").await;
    let b = open("b").await;
    let current = |t: String| {
        let app = &app;
        async move {
            app.bearer(Method::GET, "/api/v3/sessions/current", t)
                .await
                .status()
                .as_u16()
        }
    };
    let res = app.bearer(Method::DELETE, "/api/v4/sessions", &a).await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    assert_eq!(
        current(a.clone()).await,
        401,
        "logged-out token is dead on the next request"
    );
    assert_eq!(current(b.clone()).await, 200, "other sessions live on");

    let res = app.bearer(Method::DELETE, "/api/v4/users/frank/sessions", &admin).await;
    assert_eq!(res.status(), 200);
    assert_eq!(current(b).await, 401);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let c = open("c").await;
    assert_eq!(current(c).await, 200, "new sessions after the revocation work");

    let res = app
        .bearer(Method::DELETE, "/api/v4/users/nobody/sessions", &admin)
        .await;
    envelope(res, 404, 400400).await;
    let res = app
        .client
        .delete(app.url("/api/v4/users/frank/sessions"))
        .send()
        .await
        .unwrap();
    envelope(res, 401, 400100).await;
}

#[tokio::test]
async fn access_tokens_expire_with_a_short_lifetime() {
    let app = TestApp::spawn_with(|c| c.lifetimes.access_token_ttl = Duration::from_millis(700)).await;
    app.setup(app.setup_token.clone().unwrap().as_str(), PASSWORD).await;
    app.settle().await;
    let token = app.session_token("gus").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let res = app.bearer(Method::GET, "/api/v3/sessions/current", token).await;
    assert!(envelope(res, 401, 400100).await.contains("expired"));
}

#[tokio::test]
async fn access_token_use_is_recorded_in_the_background() {
    let app = TestApp::ready().await;
    let token = app.session_token("hana").await;
    let last_seen = || async {
        let (seen,): (Option<i64>,) = sqlx::query_as("SELECT last_seen_at FROM end_users WHERE user_id = 'hana'")
            .fetch_one(app.kw().db().read())
            .await
            .unwrap();
        seen
    };
    app.kw().flush_usage().await.unwrap();
    let first = last_seen().await.expect("the session itself counts as use");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let res = app.bearer(Method::GET, "/api/v3/sessions/current", token).await;
    assert_eq!(res.status(), 200);
    app.kw().flush_usage().await.unwrap();
    let second = last_seen().await.unwrap();
    assert!(second > first);
    // A returning user's new session is use too (the warm-up at a start
    // loads the users seen last).
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.session_token("hana").await;
    app.kw().flush_usage().await.unwrap();
    assert!(last_seen().await.unwrap() > second, "a session is use");
    // A user whose row id is not one Keyward makes (imported by hand) is
    // kept apart in memory, and their use recorded all the same.
    sqlx::query(
        "INSERT INTO end_users (id, user_id, display_name, created_at, updated_at) \
         VALUES ('Imported-0001', 'imported', 'imported', 1, 1)",
    )
    .execute(app.kw().db().write())
    .await
    .unwrap();
    app.session_token("imported").await;
    app.kw().flush_usage().await.unwrap();
    let (seen,): (Option<i64>,) = sqlx::query_as("SELECT last_seen_at FROM end_users WHERE id = 'Imported-0001'")
        .fetch_one(app.kw().db().read())
        .await
        .unwrap();
    assert!(seen.is_some(), "an imported user's session is use");
}

/// The clean-up deletes a token's record only once the token is dead on
/// every instance (five minutes past its expiry, for clocks that run
/// behind), and a user revocation lives as long as the tokens it kills.
#[tokio::test]
async fn token_records_outlive_their_tokens_by_the_clock_margin() {
    let mut app = TestApp::ready().await;
    let admin = app.admin_with_token("ops");
    app.settle().await;
    let token = app.session_token("gina").await;
    let res = app.bearer(Method::DELETE, "/api/v4/users/gina/sessions", &admin).await;
    assert_eq!(res.status(), 200);

    let now = app::domain::clock::now_ms();
    let db = app.kw().db().write();
    for (nonce, expired_ago) in [(b"recent".to_vec(), 4 * 60_000i64), (b"old".to_vec(), 6 * 60_000)] {
        sqlx::query("INSERT INTO redeemed_auth_tokens (nonce, expires_at) VALUES ($1, $2)")
            .bind(nonce)
            .bind(now - expired_ago)
            .execute(db)
            .await
            .unwrap();
    }
    for (sid, expired_ago) in [("recent-sid", 4 * 60_000i64), ("old-sid", 6 * 60_000)] {
        sqlx::query("INSERT INTO revocations (kind, subject, at, expires_at) VALUES ('session', $1, $2, $3)")
            .bind(sid)
            .bind(now - 30 * 86_400_000)
            .bind(now - expired_ago)
            .execute(db)
            .await
            .unwrap();
    }
    app.kw().delete_expired_token_records().await.unwrap();

    let nonces: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT nonce FROM redeemed_auth_tokens")
        .fetch_all(db)
        .await
        .unwrap();
    assert_eq!(
        nonces,
        vec![(b"recent".to_vec(),)],
        "the old record goes, the recent one stays"
    );
    let mut kept: Vec<(String, String, i64)> = sqlx::query_as("SELECT kind, subject, expires_at FROM revocations")
        .fetch_all(db)
        .await
        .unwrap();
    kept.sort();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!((kept[0].0.as_str(), kept[0].1.as_str()), ("session", "recent-sid"));
    assert_eq!(kept[1].0, "user", "{kept:?}");
    assert!(
        kept[1].2 >= now + 29 * 86_400_000,
        "a user revocation lasts as long as an access token: {kept:?}"
    );

    // And so the revoked token stays dead on an instance started now,
    // which takes another user's token as before.
    let other = app.session_token("ivy").await;
    app.stop().await;
    let running = server::startup::build(config_for(&app.data_dir, &app.db_url))
        .await
        .unwrap();
    let current = |token: String| {
        reqwest::Client::new()
            .get(format!("http://{}/api/v3/sessions/current", running.http_addr))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(current(other).await.unwrap().status(), 200, "a live token lives on");
    assert_eq!(
        current(token).await.unwrap().status(),
        401,
        "revoked before the restart"
    );
    running.shutdown().await.unwrap();
}

/// Keyward's own id for a user (`isPublic=false`) is checked like any
/// field: empty, too long or with control characters is a 400, not a
/// lookup.
#[tokio::test]
async fn an_internal_user_id_is_checked_before_it_is_looked_up() {
    let app = TestApp::ready().await;
    let admin = app.admin_with_token("ops");
    app.settle().await;
    let revoke = |id: String| {
        let app = &app;
        let admin = admin.clone();
        async move {
            app.client
                .delete(app.url("/api/v4/sessions"))
                .query(&[("userId", id.as_str()), ("isPublic", "false")])
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
        }
    };
    for bad in [String::new(), "x".repeat(65), "a\u{7}b".to_string()] {
        let msg = envelope(revoke(bad.clone()).await, 400, 400000).await;
        assert!(msg.contains("internal id"), "{bad:?}: {msg}");
    }
    envelope(revoke("x".repeat(64)).await, 404, 400400).await;
}

/// A user's id begins with its creation time (as the session answers it),
/// so memory need not hold that time twice: every user Keyward creates
/// fits the known-user cache's short form.
#[tokio::test]
async fn a_new_users_id_begins_with_its_creation_time() {
    let app = TestApp::ready().await;
    for n in 0..30 {
        let body: Value = app
            .session(json!({"userId": format!("fresh-{n}"), "deviceId": "d"}))
            .await
            .json()
            .await
            .unwrap();
        let user = &body["users"][0];
        let id = user["_id"].as_str().unwrap();
        let head = i64::from_str_radix(&id[..12], 16).unwrap();
        let created = time::OffsetDateTime::parse(
            user["createdAt"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let created_ms = (created.unix_timestamp_nanos() / 1_000_000) as i64;
        assert_eq!(head, created_ms, "user {n}: id {id}, created {}", user["createdAt"]);
    }
}

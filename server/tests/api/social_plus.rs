//! The paths of Social Plus's published API (AmityCo/apidocs) that clients
//! and customer backends written for Social Plus call, beside Keyward's own
//! names for them; and its error envelope.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::mtls::{mint, mtls_on, tls_client};

/// `GET /api/v3/sessions` verifies an access token.
#[tokio::test]
async fn get_v3_sessions_verifies_an_access_token() {
    let app = TestApp::ready().await;
    let token = app.session_token("alice").await;
    let res = app.bearer(Method::GET, "/api/v3/sessions", &token).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["userId"], "alice");
    assert_eq!(body["deviceId"], "d");
    assert!(body["lastCachePurge"].is_string(), "{body}");
    assert!(body["expiresAt"].is_string(), "{body}");

    let res = app.bearer(Method::GET, "/api/v3/sessions", "not-a-token").await;
    envelope(res, 401, 400100).await;
    let res = app.client.get(app.url("/api/v3/sessions")).send().await.unwrap();
    envelope(res, 401, 400100).await;
    // Logged out: invalid from then on.
    let res = app.bearer(Method::DELETE, "/api/v4/sessions", &token).await;
    assert_eq!(res.status(), 200);
    let res = app.bearer(Method::GET, "/api/v3/sessions", &token).await;
    envelope(res, 401, 400100).await;
}

/// An admin revokes every access token of a user: by
/// `DELETE /api/v4/sessions?userId=`, `DELETE /api/v4/sessions/users/{userId}`
/// and Keyward's `DELETE /api/v4/users/{userId}/sessions`.
#[tokio::test]
async fn an_admin_revokes_all_of_a_users_tokens_by_each_path() {
    let app = TestApp::ready().await;
    let admin = app.admin_with_token("ops");
    app.settle().await;
    for (user, path) in [
        ("alice", "/api/v4/sessions?userId=alice"),
        ("bob", "/api/v4/sessions/users/bob"),
        ("carol", "/api/v4/users/carol/sessions"),
    ] {
        let tokens = [app.session_token(user).await, app.session_token(user).await];
        let bystander = app.session_token("dave").await;
        let res = app.bearer(Method::DELETE, path, &admin).await;
        assert_eq!(res.status(), 200, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body, json!({ "success": true }), "{path}");
        for token in &tokens {
            let res = app.bearer(Method::GET, "/api/v3/sessions", token).await;
            envelope(res, 401, 400100).await;
        }
        let res = app.bearer(Method::GET, "/api/v3/sessions", &bystander).await;
        assert_eq!(res.status(), 200, "{path}: only {user}'s tokens die");
    }
    // isPublic=false: the user named by Keyward's own id (`_id`).
    let body: Value = app
        .session(json!({ "userId": "frank", "deviceId": "d" }))
        .await
        .json()
        .await
        .unwrap();
    let (frank, internal) = (
        body["accessToken"].as_str().unwrap().to_string(),
        body["users"][0]["_id"].as_str().unwrap().to_string(),
    );
    let res = app
        .bearer(Method::DELETE, "/api/v4/sessions/users/frank?isPublic=false", &admin)
        .await;
    envelope(res, 404, 400400).await;
    let res = app
        .bearer(
            Method::DELETE,
            &format!("/api/v4/sessions?userId={internal}&isPublic=false"),
            &admin,
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app.bearer(Method::GET, "/api/v3/sessions", &frank).await;
    envelope(res, 401, 400100).await;

    // An unknown user: Social Plus's UserIdNotFound.
    for path in [
        "/api/v4/sessions?userId=nobody",
        "/api/v4/sessions/users/nobody",
        "/api/v4/users/nobody/sessions",
    ] {
        let res = app.bearer(Method::DELETE, path, &admin).await;
        let message = envelope(res, 404, 400400).await;
        assert_eq!(message, "userId Not Found.", "{path}");
    }
    // Revoking someone else's tokens takes an admin token: a user's own
    // access token does not, and is not spent by trying.
    let erin = app.session_token("erin").await;
    let res = app.bearer(Method::DELETE, "/api/v4/sessions?userId=erin", &erin).await;
    envelope(res, 401, 400100).await;
    let res = app.bearer(Method::GET, "/api/v3/sessions", &erin).await;
    assert_eq!(res.status(), 200);
}

/// `POST /admin/v1/token` and `DELETE /admin/v1/token` beside Keyward's
/// `/api/v1/admin-token`, with the same rules.
#[tokio::test]
async fn admin_tokens_by_social_plus_paths() {
    let app = TestApp::ready().await;
    let ops = app.admin_with_token("ops");
    let other = app.admin_with_token("other");
    app.settle().await;

    let res = app.bearer(Method::POST, "/admin/v1/token", &ops).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let fresh = body["adminToken"].as_str().unwrap().to_string();
    assert!(fresh.starts_with("kwadm_"));
    assert!(body["issuedAt"].is_string() && body["expiresAt"].is_string(), "{body}");
    let me = app.bearer(Method::GET, "/api/v1/admins/me", &fresh).await;
    assert_eq!(me.status(), 200);
    let me = app.bearer(Method::GET, "/api/v1/admins/me", &ops).await;
    assert_eq!(me.status(), 200, "the old one keeps working for the switch-over");

    let revoke = |token: String, body: Value| {
        let app = &app;
        async move {
            app.client
                .delete(app.url("/admin/v1/token"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // Someone else's: not allowed (400301). A username that does not exist
    // gets the same answer: an admin cannot learn who else is an admin by
    // trying names (Social Plus documents 400400 there; that would tell).
    let someone = envelope(revoke(fresh.clone(), json!({ "username": "other" })).await, 403, 400301).await;
    let nobody = envelope(
        revoke(fresh.clone(), json!({ "username": "nobody" })).await,
        403,
        400301,
    )
    .await;
    assert_eq!(someone, nobody);
    let me = app.bearer(Method::GET, "/api/v1/admins/me", &other).await;
    assert_eq!(me.status(), 200, "other's token lives");
    // No username: a validation error naming the field.
    let res = revoke(fresh.clone(), json!({})).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    let detail = body["data"]["detail"]
        .as_array()
        .expect("data.detail lists the problems");
    assert!(
        detail.iter().any(|d| d.as_str().unwrap().contains("username")),
        "{body}"
    );
    // One's own: revoked, with the switch-over one.
    let res = revoke(fresh.clone(), json!({ "username": "ops" })).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({ "success": true }));
    for token in [&fresh, &ops] {
        let me = app.bearer(Method::GET, "/api/v1/admins/me", token).await;
        envelope(me, 401, 400100).await;
    }
    // Errors on these paths are the API's envelope too.
    let res = app.bearer(Method::POST, "/admin/v1/token", "kwadm_wrong").await;
    envelope(res, 401, 400100).await;
    let res = app.client.get(app.url("/admin/v1/nothing")).send().await.unwrap();
    envelope(res, 404, 400400).await;
}

/// While mTLS is on, the paths that take an admin token are behind it like
/// Keyward's own; sessions (client SDKs) are not.
#[tokio::test]
async fn the_admin_paths_are_behind_the_mtls_gate() {
    let m = mtls_on(|_| {}).await;
    let app = &m.app;
    let good = tls_client(app, Some((m.cert["pem"].as_str().unwrap(), &m.key)));
    // Secure mode is on: a session needs an auth token, minted over mTLS.
    let session = || async {
        let auth_token = mint(&good, &app.https_base, &m.server_key).await.text().await.unwrap();
        let body: Value = app
            .session(json!({ "userId": "alice", "deviceId": "d", "authToken": auth_token }))
            .await
            .json()
            .await
            .unwrap();
        body["accessToken"].as_str().expect("an access token").to_string()
    };
    let user = session().await;
    for (method, path) in [
        (Method::POST, "/admin/v1/token"),
        (Method::DELETE, "/api/v4/sessions?userId=alice"),
        (Method::DELETE, "/api/v4/sessions/users/alice"),
    ] {
        let res = app.bearer(method.clone(), path, &m.token).await;
        let message = envelope(res, 403, 400300).await;
        assert!(message.contains("plain HTTP"), "{path}: {message}");
    }
    let res = good
        .delete(format!("{}/api/v4/sessions/users/alice", app.https_base))
        .bearer_auth(&m.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "with the issued certificate");
    let res = app.bearer(Method::GET, "/api/v3/sessions", &user).await;
    envelope(res, 401, 400100).await;
    let fresh = session().await;
    let res = app.bearer(Method::GET, "/api/v3/sessions", &fresh).await;
    assert_eq!(res.status(), 200, "sessions need no certificate");
}

/// Validation errors list what is wrong in `data.detail`, as Social Plus's
/// envelope does; other errors keep the plain envelope.
#[tokio::test]
async fn validation_errors_carry_data_detail() {
    let app = TestApp::ready().await;
    let key = app.api_key().await;
    let res = app
        .client
        .post(app.url("/api/v4/sessions"))
        .header("x-api-key", &key)
        .json(&json!({ "userId": 5, "deviceId": "d" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (&body["status"], &body["code"]),
        (&json!("error"), &json!(400000)),
        "{body}"
    );
    let detail = body["data"]["detail"].as_array().expect("data.detail");
    assert!(detail.iter().all(Value::is_string) && !detail.is_empty(), "{body}");
    assert!(detail[0].as_str().unwrap().contains("userId"), "{body}");

    let res = app
        .client
        .post(app.url("/api/v4/sessions"))
        .header("x-api-key", &key)
        .json(&json!({ "userId": "", "deviceId": "d" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    let detail = body["data"]["detail"].as_array().expect("data.detail");
    assert!(detail[0].as_str().unwrap().contains("userId"), "{body}");
}

/// The official SDK takes code 400100 as final and ends the client: on the
/// session path it is the answer to a bad credential and to nothing else.
#[tokio::test]
async fn only_a_bad_credential_is_400100_on_the_session_path() {
    let app = TestApp::ready().await;
    let key = app.api_key().await;
    let post = |api_key: Option<&str>, body: &str| {
        let mut req = app
            .client
            .post(app.url("/api/v4/sessions"))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(k) = api_key {
            req = req.header("x-api-key", k);
        }
        req.send()
    };
    let ok = r#"{"userId":"alice","deviceId":"d"}"#;
    // Recoverable, or the caller's own mistake: never 400100.
    for (why, res) in [
        ("malformed JSON", post(Some(&key), "{").await.unwrap()),
        (
            "a missing field",
            post(Some(&key), r#"{"userId":"alice"}"#).await.unwrap(),
        ),
        (
            "a bad userId",
            post(Some(&key), r#"{"userId":"","deviceId":"d"}"#).await.unwrap(),
        ),
        (
            "an oversized body",
            post(
                Some(&key),
                &format!(r#"{{"userId":"{}","deviceId":"d"}}"#, "a".repeat(70_000)),
            )
            .await
            .unwrap(),
        ),
    ] {
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_ne!(body["code"], 400100, "{why}: {body}");
        assert!(status.is_client_error(), "{why}: {status}");
    }
    // A bad credential: 400100.
    for (why, res) in [
        ("no API key", post(None, ok).await.unwrap()),
        ("a wrong API key", post(Some("kwapi_wrong"), ok).await.unwrap()),
    ] {
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], 400100, "{why}: {body}");
    }
}

/// A control character (NUL among them, which PostgreSQL refuses in text)
/// in an id is bad input: a 400, never a 500, on either database.
#[tokio::test]
async fn control_characters_in_ids_are_refused_as_bad_input() {
    let app = TestApp::ready().await;
    let admin = app.admin_with_token("ops");
    app.settle().await;
    for body in [
        json!({ "userId": "a\u{0}b", "deviceId": "d" }),
        json!({ "userId": "a\nb", "deviceId": "d" }),
        json!({ "userId": "alice", "deviceId": "d\u{0}" }),
        json!({ "userId": "alice", "deviceId": "d", "displayName": "A\u{0}" }),
    ] {
        let res = app.session(body.clone()).await;
        envelope(res, 400, 400000).await;
    }
    for path in [
        "/api/v4/sessions/users/a%00b",
        "/api/v4/sessions/users/a%00b?isPublic=false",
        "/api/v4/sessions?userId=a%00b",
        "/api/v4/sessions?userId=a%00b&isPublic=false",
        "/api/v4/users/a%00b/sessions",
    ] {
        let res = app.bearer(Method::DELETE, path, &admin).await;
        envelope(res, 400, 400000).await;
    }
    // Elsewhere in the admin API: no such thing, or bad input; never a 500.
    let res = app.bearer(Method::GET, "/api/v1/certificates/a%00b", &admin).await;
    envelope(res, 404, 400400).await;
    let res = app
        .bearer(Method::GET, "/api/v1/audit-events?actor=a%00b", &admin)
        .await;
    envelope(res, 400, 400000).await;
    let res = app
        .client
        .delete(app.url("/admin/v1/token"))
        .bearer_auth(&admin)
        .json(&json!({ "username": "a\u{0}b" }))
        .send()
        .await
        .unwrap();
    envelope(res, 403, 400301).await;
    let res = app
        .client
        .get(app.url("/api/v3/authentication/token?userId=a%00b"))
        .header("x-server-key", app.server_key(&admin, 0).await)
        .send()
        .await
        .unwrap();
    envelope(res, 400, 400000).await;
}

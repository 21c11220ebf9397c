use crate::helpers::*;

#[tokio::test]
async fn login_succeeds_and_shows_the_console() {
    let app = TestApp::ready().await;
    let res = app.login().await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/settings/integrations");
    let res = app.client.get(app.url("/settings/integrations")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Acme Chat"), "application name in the frame");
    assert!(html.contains("kwapi_"), "the API key is shown");
    assert!(html.contains(ADMIN));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = TestApp::ready().await;
    let wrong = app
        .call(
            &app.client,
            "login",
            &[("username", ADMIN), ("password", "wrong password!!")],
        )
        .await;
    let unknown = app
        .call(
            &app.client,
            "login",
            &[("username", "nobody-here"), ("password", "wrong password!!")],
        )
        .await;
    assert_eq!(wrong, unknown);
    assert!(wrong.1.contains("Incorrect username or password"), "{}", wrong.1);
    let res = app.client.get(app.url("/settings/integrations")).send().await.unwrap();
    assert_eq!(res.status(), 302, "still signed out");
}

#[tokio::test]
async fn repeated_failures_are_throttled_even_for_the_right_password() {
    let app = TestApp::ready().await;
    for _ in 0..5 {
        let (_, body) = app
            .call(
                &app.client,
                "login",
                &[("username", ADMIN), ("password", "wrong password!!")],
            )
            .await;
        assert!(body.contains("Incorrect"), "{body}");
    }
    let (_, body) = app
        .call(&app.client, "login", &[("username", ADMIN), ("password", PASSWORD)])
        .await;
    assert!(body.contains("RateLimited"), "{body}");
    // The same lock-out for a username that does not exist: nothing to learn.
    for _ in 0..5 {
        app.call(
            &app.client,
            "login",
            &[("username", "ghost-user"), ("password", "wrong password!!")],
        )
        .await;
    }
    let (_, body) = app
        .call(
            &app.client,
            "login",
            &[("username", "ghost-user"), ("password", "wrong password!!")],
        )
        .await;
    assert!(body.contains("RateLimited"), "{body}");
}

#[tokio::test]
async fn session_id_changes_at_login_and_the_old_one_is_dead() {
    let app = TestApp::ready().await;
    let first = session_cookie(&app.login().await).expect("a session cookie");
    // Sign in again carrying the first session: a new id replaces it.
    let second = session_cookie(&app.login().await).expect("a new session cookie");
    assert_ne!(first, second);
    let replay = anonymous();
    let res = replay
        .get(app.url("/settings/integrations"))
        .header("cookie", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302, "the pre-login session id is worthless");
    let res = replay
        .get(app.url("/settings/integrations"))
        .header("cookie", &second)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn session_cookie_is_httponly_and_samesite_strict() {
    let app = TestApp::ready().await;
    let res = app.login().await;
    let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = TestApp::ready().await;
    let cookie = session_cookie(&app.login().await).unwrap();
    let res = app.form(&app.client, "logout", "/settings/integrations", &[]).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/login");
    // Even a copy of the cookie taken before logout no longer works.
    let replay = anonymous();
    let res = replay
        .get(app.url("/settings/integrations"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
}

#[tokio::test]
async fn signed_out_calls_to_server_functions_are_refused() {
    let app = TestApp::ready().await;
    let calls: [(&str, &[(&str, &str)]); 7] = [
        ("admins", &[("query", ""), ("page", "1")]),
        ("integrations", &[]),
        ("frame", &[]),
        ("generate_token", &[("password", PASSWORD)]),
        ("revoke_token", &[("username", ADMIN)]),
        (
            "create_admin",
            &[
                ("username", "eve"),
                ("password", "a long password!"),
                ("role", "super_admin"),
            ],
        ),
        ("set_secure_mode", &[("enabled", "true")]),
    ];
    for (function, fields) in calls {
        let (status, body) = app.call(&app.client, function, fields).await;
        assert_eq!(status, 401, "{function}: {body}");
        assert!(body.contains("Unauthorized"), "{function}: {body}");
        assert!(!body.contains("kwapi_"));
    }
}

#[tokio::test]
async fn cross_origin_posts_are_refused() {
    let app = TestApp::ready().await;
    app.login().await;
    let evil = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for origin in ["http://evil.example", "null"] {
        let res = evil
            .post(app.url("/console/fn/logout"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "origin {origin}");
    }
    let res = evil
        .post(app.url("/console/fn/login"))
        .form(&[("username", ADMIN), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "no Origin and no Referer");
}

#[tokio::test]
async fn a_disabled_admin_cannot_sign_in_and_is_signed_out() {
    let app = TestApp::ready().await;
    let out = app.keyward(
        &[
            "admin",
            "create",
            "--username",
            "bob",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("bob's long password\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bob = browser(&app.base);
    let res = app.login_with(&bob, "bob", "bob's long password").await;
    assert_eq!(location(&res), "/settings/integrations");

    let out = app.keyward(&["admin", "disable", "--username", "bob"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let res = bob.get(app.url("/settings/admin-users")).send().await.unwrap();
    assert_eq!(res.status(), 302, "the running session ended");
    let (_, body) = app
        .call(
            &bob,
            "login",
            &[("username", "bob"), ("password", "bob's long password")],
        )
        .await;
    assert!(
        body.contains("Incorrect username or password"),
        "same answer as a wrong password: {body}"
    );
}

#[tokio::test]
async fn admin_users_page_lists_admins_with_roles() {
    let app = TestApp::ready().await;
    let out = app.keyward(
        &["admin", "create", "--username", "carol", "--password-stdin"],
        Some("carol's long password\n"),
    );
    assert!(out.status.success());
    app.login().await;
    let html = app.html("/settings/admin-users").await;
    assert!(html.contains("carol"), "{html}");
    assert!(html.contains("Super Admin"));
    assert!(html.contains("(you)"));
}

#[tokio::test]
async fn failures_count_across_instances_and_restarts() {
    let mut app = TestApp::ready().await;
    let other = server::startup::build(config_for(&app.data_dir, &app.db_url))
        .await
        .unwrap();
    let other_base = format!("http://{}", other.http_addr);
    // Twelve guesses at once, half on each instance: the two share one
    // count, so five are checked and the rest refused unchecked.
    let mut guesses = Vec::new();
    for i in 0..12 {
        let base = if i % 2 == 0 {
            app.base.clone()
        } else {
            other_base.clone()
        };
        guesses.push(tokio::spawn(async move {
            let res = browser(&base)
                .post(format!("{base}/console/fn/login"))
                .header("accept", "application/json")
                .form(&[("username", ADMIN), ("password", "wrong password!!")])
                .send()
                .await
                .unwrap();
            res.text().await.unwrap()
        }));
    }
    let mut checked = 0;
    for guess in guesses {
        let body = guess.await.unwrap();
        if body.contains("Incorrect") {
            checked += 1;
        } else {
            assert!(body.contains("RateLimited"), "{body}");
        }
    }
    assert_eq!(checked, 5, "one allowance for both instances");

    // A restart forgets nothing: still locked out, even with the password.
    app.stop().await;
    let restarted = server::startup::build(config_for(&app.data_dir, &app.db_url))
        .await
        .unwrap();
    let base = format!("http://{}", restarted.http_addr);
    let res = browser(&base)
        .post(format!("{base}/console/fn/login"))
        .header("accept", "application/json")
        .form(&[("username", ADMIN), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("RateLimited"));
}

/// A visitor sent to sign in comes back to the page they asked for, and
/// only to a page of the console; a first visit is not told that a
/// session ended, a visit with an ended session is.
#[tokio::test]
async fn sign_in_returns_to_the_page_asked_for_and_only_to_a_console_page() {
    let app = TestApp::ready().await;
    let res = anonymous()
        .get(app.url("/settings/audit-log?actor=ops"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let login = location(&res);
    assert_eq!(login, "/login?next=%2Fsettings%2Faudit-log%3Factor%3Dops");
    let client = browser(&app.base);
    let html = app.html_as(&client, &login).await;
    assert!(
        html.contains("name=\"next\" value=\"/settings/audit-log?actor=ops\""),
        "the form carries it"
    );
    assert!(!html.contains("Your session has ended"), "nobody's session ended");
    let fields = |next: &'static str| [("username", ADMIN), ("password", PASSWORD), ("next", next)];
    let res = app
        .form(&client, "login", &login, &fields("/settings/audit-log?actor=ops"))
        .await;
    assert_eq!(location(&res), "/settings/audit-log?actor=ops");

    // Anywhere else: the console's first page instead.
    for next in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "/login",
        "/settings/../setup",
    ] {
        let res = app.form(&browser(&app.base), "login", "/login", &fields(next)).await;
        assert_eq!(location(&res), "/settings/integrations", "{next}");
    }
    let html = app
        .html_as(&browser(&app.base), "/login?next=https%3A%2F%2Fevil.example%2F")
        .await;
    assert!(!html.contains("evil.example"), "never put in the form");

    // A cookie whose session is gone: told it ended, and where it was.
    let res = anonymous()
        .get(app.url("/settings/security"))
        .header("cookie", "keyward=an-ended-session")
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/login?next=%2Fsettings%2Fsecurity&reason=signed-out");
}

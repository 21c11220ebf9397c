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
    // The count reads as English, and a search that finds nobody says so.
    let count = |html: &str| {
        let at = html.find("data-testid=\"admin-count\"").expect("the count");
        let rest = &html[at..];
        let text = &rest[rest.find('>').unwrap() + 1..rest.find("</span>").unwrap()];
        text.replace("<!-- -->", "")
    };
    assert_eq!(count(&html), "1 admin");
    let html = app.html("/settings/admin-users?q=user_099").await;
    assert_eq!(count(&html), "10 admins");
    let html = app.html("/settings/admin-users").await;
    assert_eq!(count(&html), "1001 admins · page 1 of 41");
    let html = app.html("/settings/admin-users?q=rx0").await;
    assert_eq!(count(&html), "No admin matches “rx0”.");
    assert!(!html.contains("page 1 of"), "no pages of nothing");
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

/// A new admin token lasts 30, 90 or 365 days, as its admin chooses,
/// never longer than the server allows; without a choice, the longest.
#[tokio::test]
async fn a_new_admin_token_lasts_the_days_chosen_within_the_longest() {
    use time::format_description::well_known::Rfc3339;
    let days_left = |iso: &str| {
        let at = time::OffsetDateTime::parse(iso, &Rfc3339).unwrap();
        (at - time::OffsetDateTime::now_utc()).as_seconds_f64() / 86_400.0
    };
    let app = TestApp::ready().await;
    let ops = signed_in_admin(&app, "ops").await;
    let html = app.html_as(&ops, "/settings/admin-users?do=generate").await;
    for days in ["30", "90", "365"] {
        assert!(
            html.contains(&format!("<option value=\"{days}\"")),
            "{days} days offered"
        );
    }
    assert!(html.contains("value=\"365\" selected"), "the longest is chosen");
    let (status, body) = app
        .call(&ops, "generate_token", &[("password", ADMIN_PASSWORD), ("days", "30")])
        .await;
    assert_eq!(status, 200, "{body}");
    let shown: serde_json::Value = serde_json::from_str(&body).unwrap();
    let me = app
        .bearer_json("/api/v1/admins/me", shown["token"].as_str().unwrap())
        .await;
    let left = days_left(me["tokenExpiresAt"].as_str().unwrap());
    assert!((29.99..=30.0).contains(&left), "{left} days");
    for bad in ["0", "366", "4294967295"] {
        let (status, body) = app
            .call(&ops, "generate_token", &[("password", ADMIN_PASSWORD), ("days", bad)])
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("1 to 365 days"), "{bad}: {body}");
    }
    // Past any u32: the form itself is refused.
    let (status, body) = app
        .call(
            &ops,
            "generate_token",
            &[("password", ADMIN_PASSWORD), ("days", "4294967296")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // The admin API's rotation gives the longest.
    let res = app
        .bearer(
            reqwest::Method::POST,
            "/api/v1/admin-token",
            shown["token"].as_str().unwrap(),
        )
        .await;
    let rotated: serde_json::Value = res.json().await.unwrap();
    assert!(days_left(rotated["expiresAt"].as_str().unwrap()) > 364.9);
    // The longest itself, chosen in the form, is allowed.
    let (status, body) = app
        .call(&ops, "generate_token", &[("password", ADMIN_PASSWORD), ("days", "365")])
        .await;
    assert_eq!(status, 200, "365 days: {body}");
    let shown: serde_json::Value = serde_json::from_str(&body).unwrap();
    let me = app
        .bearer_json("/api/v1/admins/me", shown["token"].as_str().unwrap())
        .await;
    assert!(days_left(me["tokenExpiresAt"].as_str().unwrap()) > 364.99);

    // A server that allows 60 days offers only 30.
    let short =
        TestApp::ready_with(|c| c.lifetimes.admin_token_ttl = std::time::Duration::from_secs(60 * 86_400)).await;
    let ops = signed_in_admin(&short, "ops").await;
    let html = short.html_as(&ops, "/settings/admin-users?do=generate").await;
    assert!(html.contains("<option value=\"30\"") && !html.contains("<option value=\"90\""));
    let (status, body) = short
        .call(&ops, "generate_token", &[("password", ADMIN_PASSWORD), ("days", "90")])
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("1 to 60 days"), "{body}");
}

/// An admin changes their own password with the current one: this session
/// goes on, their others end, the old password stops working, and it is on
/// record (a wrong current password too) without either password.
#[tokio::test]
async fn admins_change_their_own_password_and_their_other_sessions_end() {
    const NEW: &str = "a brand new passphrase";
    let app = TestApp::ready().await;
    let here = signed_in_admin(&app, "ops").await;
    let there = browser(&app.base);
    assert_eq!(app.login_with(&there, "ops", ADMIN_PASSWORD).await.status(), 302);
    let change = |current: &'static str, new: &'static str, again: &'static str| {
        let here = here.clone();
        let app = &app;
        async move {
            app.call(
                &here,
                "change_password",
                &[("current", current), ("password", new), ("password_confirm", again)],
            )
            .await
        }
    };
    let (status, body) = change("not my password at all", NEW, NEW).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("not correct"), "{body}");
    let (status, body) = change(ADMIN_PASSWORD, NEW, "a brand new passphrasf").await;
    assert_eq!(status, 400);
    assert!(body.contains("do not match"), "{body}");
    let (status, body) = change(ADMIN_PASSWORD, "short", "short").await;
    assert_eq!(status, 400);
    assert!(body.contains("at least"), "{body}");
    let page = |client: &reqwest::Client| client.get(app.url("/settings/admin-users")).send();
    assert_eq!(page(&there).await.unwrap().status(), 200, "nothing ended yet");

    // Without JavaScript: the form lands on the list, which says so once.
    let res = app
        .form(
            &here,
            "change_password",
            "/settings/admin-users?do=password",
            &[
                ("current", ADMIN_PASSWORD),
                ("password", NEW),
                ("password_confirm", NEW),
            ],
        )
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/settings/admin-users");
    let html = app.html_as(&here, "/settings/admin-users").await;
    assert!(
        html.contains("Your password was changed"),
        "this session goes on, and is told"
    );
    let html = app.html_as(&here, "/settings/admin-users").await;
    assert!(!html.contains("Your password was changed"), "said once");
    let res = page(&there).await.unwrap();
    assert_eq!(res.status(), 302, "the other session ended");
    let (_, body) = app
        .call(
            &browser(&app.base),
            "login",
            &[("username", "ops"), ("password", ADMIN_PASSWORD)],
        )
        .await;
    assert!(body.contains("Incorrect"), "the old password is dead: {body}");
    assert_eq!(app.login_with(&browser(&app.base), "ops", NEW).await.status(), 302);

    // The menu offers it; a link cannot make the page say it happened.
    let html = app.html_as(&here, "/settings/admin-users").await;
    assert!(html.contains("?do=password"));
    let html = app.html_as(&here, "/settings/admin-users?changed=password").await;
    assert!(!html.contains("Your password was changed"));
    // Signed out, the function is refused before it looks at anything.
    let (status, _) = app
        .call(
            &browser(&app.base),
            "change_password",
            &[("current", "x"), ("password", "a"), ("password_confirm", "b")],
        )
        .await;
    assert_eq!(status, 401);

    let operator = app::domain::Principal::operator();
    let (_, page) = app
        .kw()
        .audit_page(&operator, Default::default(), None, Some(20))
        .await
        .unwrap();
    let actions: Vec<&str> = page.events.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"admin.change_password"), "{actions:?}");
    assert!(actions.contains(&"admin.reauthenticate_refused"), "{actions:?}");
    for e in &page.events {
        let all = format!("{} {} {}", e.target, e.detail, e.source);
        assert!(!all.contains(NEW) && !all.contains(ADMIN_PASSWORD), "{all}");
    }
}

/// The row of `username` in the admin list's HTML.
fn row_of<'a>(html: &'a str, username: &str) -> &'a str {
    let start = html
        .find(&format!("data-username=\"{username}\""))
        .unwrap_or_else(|| panic!("no row for {username}"));
    let rest = &html[start..];
    &rest[..rest.find("</tr>").unwrap()]
}

/// Disabling asks first; revoking says it does not keep anyone out; a
/// locked-out admin does not look "Active".
#[tokio::test]
async fn disabling_is_confirmed_and_states_read_true() {
    let app = TestApp::ready().await;
    app.create_admin("ops");
    app.create_admin("locky");
    for _ in 0..5 {
        app.call(
            &browser(&app.base),
            "login",
            &[("username", "locky"), ("password", "wrong password!!")],
        )
        .await;
    }
    app.login().await;
    let html = app.html("/settings/admin-users").await;
    let ops = row_of(&html, "ops");
    assert!(ops.contains("?do=disable&amp;username=ops"), "{ops}");
    assert!(!ops.contains("value=\"true\""), "no one-click disable: {ops}");
    assert!(ops.contains(">Active<"), "{ops}");
    let locky = row_of(&html, "locky");
    assert!(locky.contains("Locked out") && !locky.contains(">Active<"), "{locky}");

    let step = app.html("/settings/admin-users?do=disable&username=ops").await;
    assert!(
        step.contains("cannot sign in until a super admin enables them again"),
        "{step}"
    );
    let res = app
        .form(
            &app.client,
            "set_admin_disabled",
            "/settings/admin-users?do=disable&username=ops",
            &[("username", "ops"), ("disabled", "true")],
        )
        .await;
    assert_eq!(res.status(), 302);
    let html = app.html("/settings/admin-users").await;
    let ops = row_of(&html, "ops");
    assert!(ops.contains(">Disabled<") && ops.contains(">Enable<"), "{ops}");

    let step = app.html("/settings/admin-users?do=revoke-other&username=locky").await;
    assert!(step.contains("their next sign-in gives them a new token"), "{step}");
}

/// A super admin gives an admin who forgot their password a temporary one:
/// the admin's sessions end; at sign-in they are sent to choose their own,
/// and nothing else in the console answers until they have.
#[tokio::test]
async fn a_temporary_password_is_changed_before_anything_else() {
    const TEMP: &str = "a temporary passphrase";
    const OWN: &str = "ops chose this one";
    let app = TestApp::ready().await;
    app.create_admin("ops");
    app.settle().await;
    let ops = browser(&app.base);
    assert_eq!(app.login_with(&ops, "ops", ADMIN_PASSWORD).await.status(), 302);
    assert_eq!(app.login().await.status(), 302);
    let temporary = |name: &'static str| [("username", name), ("password", TEMP), ("password_confirm", TEMP)];

    // Not an admin's to give, nor for yourself.
    let (status, body) = app.call(&ops, "set_temporary_password", &temporary(ADMIN)).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app.call(&app.client, "set_temporary_password", &temporary(ADMIN)).await;
    assert_eq!(status, 409, "{body}");

    // Nor for another super admin (the host resets theirs), nor a name
    // nobody can have.
    let out = app.keyward(
        &[
            "admin",
            "create",
            "--username",
            "boss",
            "--role",
            "super-admin",
            "--password-stdin",
        ],
        Some(&format!("{ADMIN_PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, body) = app
        .call(&app.client, "set_temporary_password", &temporary("boss"))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("reset from the host"), "{body}");
    let (status, body) = app
        .call(&app.client, "set_temporary_password", &temporary("o\u{0}ps"))
        .await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = app.call(&app.client, "set_temporary_password", &temporary("ops")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ops has a temporary password"), "{body}");
    let (status, _) = app.call(&ops, "integrations", &[]).await;
    assert_eq!(status, 401, "their session ended");

    // Signed in with it: sent to choose their own; nothing else answers.
    let res = app.login_with(&ops, "ops", TEMP).await;
    assert_eq!(location(&res), "/settings/password");
    let (status, body) = app.call(&ops, "integrations", &[]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("PasswordChangeRequired"), "{body}");
    let res = ops.get(app.url("/settings/integrations")).send().await.unwrap();
    assert_eq!(location(&res), "/settings/password", "a page sends them on");
    let res = ops
        .get(app.url("/console/audit-log/export?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/settings/password", "so does a download");
    let html = app.html_as(&ops, "/settings/password").await;
    assert!(html.contains("A super admin gave you a temporary password"), "{html}");

    // Keeping the temporary one is not choosing.
    let same = [("current", TEMP), ("password", TEMP), ("password_confirm", TEMP)];
    let (status, body) = app.call(&ops, "change_password", &same).await;
    assert_eq!(status, 400, "{body}");
    let own = [("current", TEMP), ("password", OWN), ("password_confirm", OWN)];
    let (status, body) = app.call(&ops, "change_password", &own).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.call(&ops, "integrations", &[]).await;
    assert_eq!(status, 200, "{body}");

    let operator = app::domain::Principal::operator();
    let (_, page) = app
        .kw()
        .audit_page(&operator, Default::default(), None, Some(50))
        .await
        .unwrap();
    let set = page
        .events
        .iter()
        .find(|e| e.action == "admin.set_temporary_password")
        .expect("on record");
    assert_eq!((set.actor.as_str(), set.target.as_str()), (ADMIN, "ops"));
    for e in &page.events {
        let all = format!("{} {} {}", e.target, e.detail, e.source);
        assert!(!all.contains(TEMP) && !all.contains(OWN), "{all}");
    }
}

/// The admin list says each admin's token as it stands: none yet, active,
/// switching over, expired or revoked (a mutation run found the expired
/// and revoked states untested).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_list_says_where_each_token_stands() {
    let app = TestApp::ready().await;
    app.create_admin("nora");
    for name in ["ada", "eve", "rex", "sam"] {
        app.admin_with_token(name);
    }
    app.issue_token("sam");
    sqlx::query(
        "UPDATE admin_tokens SET expires_at = $1 \
         WHERE admin_id = (SELECT id FROM admin_users WHERE username = 'eve')",
    )
    .bind(app::domain::clock::now_ms() - 1_000)
    .execute(app.kw().db().write())
    .await
    .unwrap();
    let operator = app::domain::Principal::operator();
    app.kw().revoke_admin_token(&operator, "rex").await.unwrap();
    app.settle().await;

    assert_eq!(app.login().await.status(), 302);
    let (status, body) = app.call(&app.client, "admins", &[("query", ""), ("page", "1")]).await;
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let state = |name: &str| {
        let row = page["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["username"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {body}"));
        row["token_status"].as_str().unwrap().to_string()
    };
    assert_eq!(state("nora"), "none");
    assert_eq!(state("ada"), "active");
    assert_eq!(state("eve"), "expired");
    assert_eq!(state("rex"), "revoked");
    assert!(state("sam").starts_with("switching over until "), "{}", state("sam"));

    // Eve, signed in, is told; a revoked admin signing in gets a new token.
    let eve = browser(&app.base);
    assert_eq!(app.login_with(&eve, "eve", ADMIN_PASSWORD).await.status(), 302);
    let html = app.html_as(&eve, "/settings/integrations").await;
    assert!(html.contains("Your admin token has expired"), "{html}");
    let rex = browser(&app.base);
    assert_eq!(app.login_with(&rex, "rex", ADMIN_PASSWORD).await.status(), 302);
    let (_, body) = app
        .call(&app.client, "admins", &[("query", "rex"), ("page", "1")])
        .await;
    assert!(body.contains("\"token_status\":\"active\""), "{body}");
}

/// A retrievable token is sealed for its own row: one admin's sealed token
/// copied into another's row (a database edited by hand) opens nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_token_moved_to_another_row_does_not_open() {
    let app = TestApp::ready().await;
    let eve_token = app.admin_with_token("eve");
    let ops = signed_in_admin(&app, "ops").await;
    let moved = sqlx::query(
        "UPDATE admin_tokens SET sealed = (SELECT t.sealed FROM admin_tokens t JOIN admin_users u \
         ON u.id = t.admin_id WHERE u.username = 'eve' AND t.state = 'current') \
         WHERE state = 'current' AND admin_id = (SELECT id FROM admin_users WHERE username = 'ops')",
    )
    .execute(app.kw().db().write())
    .await
    .unwrap();
    assert_eq!(moved.rows_affected(), 1);
    let (status, body) = app
        .call(&ops, "retrieve_token", &[("password", "a long enough password")])
        .await;
    assert_eq!(status, 500, "{body}");
    assert!(!body.contains(&eve_token) && !body.contains("kwadm_"), "{body}");
}

/// A token replaced keeps working until the switch-over ends or it
/// expires, whichever is first; one already expired gets no switch-over.
/// The new token's notice and the admin list both say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_token_works_until_the_switch_over_ends_or_it_expires() {
    use app::domain::clock::{display, now_ms};
    let app = TestApp::ready().await;
    let ops = signed_in_admin(&app, "ops").await;
    assert_eq!(app.login().await.status(), 302);
    let previous_stops = || async {
        let (status, body) = app
            .call(&ops, "generate_token", &[("password", ADMIN_PASSWORD), ("days", "30")])
            .await;
        assert_eq!(status, 200, "{body}");
        let shown: serde_json::Value = serde_json::from_str(&body).unwrap();
        shown["previous_stops"].clone()
    };
    // The current token expires at `expires_at`; earlier switch-overs end.
    let app = &app;
    let set_expiry = |expires_at: i64| async move {
        sqlx::query(
            "UPDATE admin_tokens SET expires_at = CASE WHEN state = 'current' THEN $1 ELSE expires_at END, \
             valid_until = CASE WHEN state = 'superseded' THEN $2 ELSE valid_until END \
             WHERE admin_id = (SELECT id FROM admin_users WHERE username = 'ops')",
        )
        .bind(expires_at)
        .bind(now_ms() - 1_000)
        .execute(app.kw().db().write())
        .await
        .unwrap();
        app.settle().await;
    };
    let listed = || async {
        let (_, body) = app
            .call(&app.client, "admins", &[("query", "ops"), ("page", "1")])
            .await;
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        page["rows"][0]["token_status"].as_str().unwrap().to_string()
    };

    let stops = previous_stops().await;
    assert!(stops.is_string(), "a live token replaced: {stops}");
    assert_eq!(
        listed().await,
        format!("switching over until {}", stops.as_str().unwrap())
    );

    let in_an_hour = now_ms() + 3_600_000;
    set_expiry(in_an_hour).await;
    assert_eq!(
        previous_stops().await,
        display(in_an_hour),
        "its own expiry comes first"
    );
    assert_eq!(listed().await, format!("switching over until {}", display(in_an_hour)));

    set_expiry(now_ms() - 1_000).await;
    let stops = previous_stops().await;
    assert!(stops.is_null(), "an expired token replaced: {stops}");
    assert_eq!(listed().await, "active", "no switch-over");
    let html = app.html_as(&ops, "/settings/integrations").await;
    assert!(!html.contains("Your previous admin token stops working"), "{html}");
}

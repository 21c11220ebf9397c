//! Two-factor sign-in with an authenticator app (TOTP) and recovery codes,
//! through the console's own forms and functions, with real codes
//! computed here as an app computes them.

use hmac::{Hmac, Mac};

use crate::helpers::*;

/// The code an authenticator app shows at `unix_ms` for `secret` (base32,
/// as the page shows it, spaces and all).
pub(crate) fn app_code(secret: &str, unix_ms: i64) -> String {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret.replace(' ', "").as_bytes())
        .expect("the page shows base32");
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&key).unwrap();
    mac.update(&(unix_ms / 30_000).to_be_bytes());
    let d = mac.finalize().into_bytes();
    let o = usize::from(d[19] & 0x0f);
    let n = u32::from_be_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]) & 0x7fff_ffff;
    format!("{:06}", n % 1_000_000)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The setup key shown on the two-factor page.
fn shown_secret(page: &str) -> String {
    let at = page.find(r#"data-testid="totp-secret""#).expect("a setup key is shown");
    let value = &page[at..][page[at..].find("value=\"").unwrap() + 7..];
    value[..value.find('"').unwrap()].to_owned()
}

/// Turns two-factor sign-in on for the signed-in `client` (password
/// `password`); the setup key and the recovery codes.
pub(crate) async fn enrol(app: &TestApp, client: &reqwest::Client, password: &str) -> (String, Vec<String>) {
    let (status, body) = app.call(client, "begin_totp", &[("password", password)]).await;
    assert_eq!(status, 200, "{body}");
    let page = app.html_as(client, "/settings/two-factor").await;
    assert!(page.contains("<svg"), "no QR code");
    let secret = shown_secret(&page);
    // One step of clock skew back is accepted. Not computed in a step's
    // last seconds: the server would be a step further on, and the code
    // two steps back.
    let into_step = now_ms() % 30_000;
    if into_step > 27_000 {
        tokio::time::sleep(std::time::Duration::from_millis((30_000 - into_step + 100) as u64)).await;
    }
    let code = app_code(&secret, now_ms() - 30_000);
    let (status, body) = app.call(client, "confirm_totp", &[("code", &code)]).await;
    assert_eq!(status, 200, "{body}");
    let codes: serde_json::Value = serde_json::from_str(&body).unwrap();
    let codes: Vec<String> = codes["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

/// Password, then code, in a fresh browser; where the code sent it.
async fn sign_in_with(app: &TestApp, password: &str, code: &str) -> (reqwest::Client, String) {
    let client = browser(&app.base);
    let res = app.login_with(&client, ADMIN, password).await;
    assert_eq!(location(&res), "/login/second-factor", "the password alone signed in");
    let res = app
        .form(&client, "second_factor", "/login/second-factor", &[("code", code)])
        .await;
    (client, location(&res))
}

async fn actions(app: &TestApp) -> Vec<(String, String)> {
    let operator = app::domain::Principal::operator();
    let (_, page) = app
        .kw()
        .audit_page(&operator, Default::default(), None, Some(100))
        .await
        .unwrap();
    page.events.into_iter().map(|e| (e.action, e.detail)).collect()
}

#[tokio::test]
async fn an_admin_turns_on_an_authenticator_app_and_each_code_signs_in_once() {
    let app = TestApp::ready().await;
    app.login().await;

    // The password again first; a wrong one starts nothing.
    let (status, _) = app
        .call(&app.client, "begin_totp", &[("password", "not my password")])
        .await;
    assert_eq!(status, 401);
    let page = app.html("/settings/two-factor").await;
    assert!(page.contains("data-testid=\"two-factor-off\""));

    // A wrong first code does not turn it on.
    app.call(&app.client, "begin_totp", &[("password", PASSWORD)]).await;
    let secret = shown_secret(&app.html("/settings/two-factor").await);
    let wrong = if app_code(&secret, now_ms()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, body) = app.call(&app.client, "confirm_totp", &[("code", wrong)]).await;
    assert_eq!(status, 400, "{body}");
    let res = app.login_with(&browser(&app.base), ADMIN, PASSWORD).await;
    assert_eq!(
        location(&res),
        "/settings/integrations",
        "asked for a code before it was on"
    );

    // The admin list says who has a second factor (a super admin checks
    // before requiring it).
    let state = |page: &str| {
        let at = page
            .find(r#"data-testid="two-factor-state""#)
            .expect("the list shows it");
        page[at..][..120].to_owned()
    };
    assert!(state(&app.html("/settings/admin-users").await).contains(">Off<"));

    let (secret, recovery) = enrol(&app, &app.client, PASSWORD).await;
    assert_eq!(recovery.len(), 10);
    assert!(state(&app.html("/settings/admin-users").await).contains(">On<"));
    let page = app.html("/settings/two-factor").await;
    assert!(page.contains("data-testid=\"two-factor-on\""));
    assert!(page.contains("You have 10 recovery codes left."), "{page}");
    assert!(!page.contains(&recovery[0]), "a recovery code is shown again");

    // The password alone is not a session.
    let half = browser(&app.base);
    let res = app.login_with(&half, ADMIN, PASSWORD).await;
    assert_eq!(location(&res), "/login/second-factor");
    let res = half.get(app.url("/settings/integrations")).send().await.unwrap();
    assert!(location(&res).starts_with("/login"), "signed in without a code");
    let (status, _) = app.call(&half, "integrations", &[]).await;
    assert_eq!(status, 401);

    // A wrong code is refused; one step of skew ahead is accepted.
    let wrong = if app_code(&secret, now_ms()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let res = app
        .form(&half, "second_factor", "/login/second-factor", &[("code", wrong)])
        .await;
    assert!(location(&res).contains("__err="), "{}", location(&res));
    let ahead = app_code(&secret, now_ms() + 30_000);
    let res = app
        .form(&half, "second_factor", "/login/second-factor", &[("code", &ahead)])
        .await;
    assert_eq!(location(&res), "/settings/integrations");
    let res = half.get(app.url("/settings/integrations")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the code did not sign in");

    // The same code again: refused (a code works once); two steps off: refused.
    let (_, to) = sign_in_with(&app, PASSWORD, &ahead).await;
    assert!(to.contains("__err="), "a code was taken twice: {to}");
    let (_, to) = sign_in_with(&app, PASSWORD, &app_code(&secret, now_ms() + 90_000)).await;
    assert!(to.contains("__err="), "a code 90 s ahead was taken: {to}");

    // A recovery code, typed in capitals with spaces: once.
    let typed = recovery[3].to_uppercase().replace('-', " ");
    let (client, to) = sign_in_with(&app, PASSWORD, &typed).await;
    assert_eq!(to, "/settings/integrations");
    let page = app.html_as(&client, "/settings/two-factor").await;
    assert!(page.contains("You have 9 recovery codes left."));
    let (_, to) = sign_in_with(&app, PASSWORD, &recovery[3]).await;
    assert!(to.contains("__err="), "a recovery code was taken twice: {to}");

    let events = actions(&app).await;
    let has = |action: &str, detail: &str| events.iter().any(|(a, d)| a == action && d.contains(detail));
    assert!(has("admin.second_factor.enrol", "totp"));
    assert!(has("admin.sign_in", "\"factor\":\"totp\""));
    assert!(has("admin.sign_in", "\"factor\":\"recovery_code\""));
    assert!(has("admin.second_factor_refused", "client"));
    assert!(
        has("admin.sign_in_code_asked", "client"),
        "a right password waiting for its code is not on record"
    );
    for (_, detail) in &events {
        assert!(
            !detail.contains(&ahead) && !detail.contains(&recovery[3]),
            "a code is on record: {detail}"
        );
    }
}

#[tokio::test]
async fn wrong_codes_count_in_the_sign_in_throttle() {
    let app = TestApp::ready().await;
    app.login().await;
    let (secret, _) = enrol(&app, &app.client, PASSWORD).await;
    let client = browser(&app.base);
    let res = app.login_with(&client, ADMIN, PASSWORD).await;
    assert_eq!(location(&res), "/login/second-factor");
    let wrong = if app_code(&secret, now_ms()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let mut limited = false;
    for _ in 0..10 {
        let (status, body) = app.call(&client, "second_factor", &[("code", wrong)]).await;
        if status == 429 {
            limited = true;
            break;
        }
        assert_eq!(status, 400, "{body}");
    }
    assert!(limited, "ten wrong codes in a row were all answered");
    // Throttled means throttled: the right code waits too.
    let (status, _) = app
        .call(&client, "second_factor", &[("code", &app_code(&secret, now_ms()))])
        .await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn recovery_codes_are_made_anew_and_the_factor_is_removed_with_a_code() {
    let app = TestApp::ready().await;
    app.login().await;
    let (secret, old) = enrol(&app, &app.client, PASSWORD).await;

    // Each needs a code from the factor: a wrong one changes nothing.
    let (status, _) = app
        .call(&app.client, "regenerate_recovery_codes", &[("code", "nonsense-code")])
        .await;
    assert_eq!(status, 400);
    let (status, body) = app
        .call(&app.client, "regenerate_recovery_codes", &[("code", &old[0])])
        .await;
    assert_eq!(status, 200, "{body}");
    let new: serde_json::Value = serde_json::from_str(&body).unwrap();
    let new = new["codes"][0].as_str().unwrap().to_owned();
    let (_, to) = sign_in_with(&app, PASSWORD, &old[1]).await;
    assert!(to.contains("__err="), "an old recovery code still works");
    let (_, to) = sign_in_with(&app, PASSWORD, &new).await;
    assert_eq!(to, "/settings/integrations");

    let (status, body) = app
        .call(
            &app.client,
            "remove_totp",
            &[("code", &app_code(&secret, now_ms() + 30_000))],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let res = app.login_with(&browser(&app.base), ADMIN, PASSWORD).await;
    assert_eq!(location(&res), "/settings/integrations", "still asked for a code");
    assert!(actions(&app)
        .await
        .iter()
        .any(|(a, _)| a == "admin.second_factor.remove"));
}

/// Break-glass: the operator takes the factor away from the host; the
/// admin's sessions end and their password alone signs in.
#[tokio::test]
async fn the_operator_resets_a_lost_second_factor() {
    let app = TestApp::ready().await;
    app.login().await;
    enrol(&app, &app.client, PASSWORD).await;

    let out = app.keyward(&["admin", "reset-2fa", "--username", "nobody-here"], None);
    assert!(!out.status.success(), "an unknown admin was reset");
    let out = app.keyward(&["admin", "reset-2fa", "--username", ADMIN], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.settle().await;

    let res = app.client.get(app.url("/settings/integrations")).send().await.unwrap();
    assert!(location(&res).starts_with("/login"), "the session outlived the reset");
    let res = app.login_with(&browser(&app.base), ADMIN, PASSWORD).await;
    assert_eq!(location(&res), "/settings/integrations");
    assert!(actions(&app)
        .await
        .iter()
        .any(|(a, d)| a == "admin.second_factor.reset" && d.contains("\"had_totp\":true")));
}

/// A super admin's policy: every admin must have a second factor. One
/// without is sent to set it up and can do nothing else until then; it
/// cannot be turned off while required.
#[tokio::test]
async fn a_required_second_factor_is_set_up_before_anything_else() {
    let app = TestApp::ready().await;
    app.login().await;
    app.create_admin("ops-one");
    let ops = browser(&app.base);
    app.login_with(&ops, "ops-one", ADMIN_PASSWORD).await;

    let (status, _) = app
        .call(&ops, "set_second_factor_policy", &[("required", "true")])
        .await;
    assert_eq!(status, 403, "an admin set the policy");
    let (status, body) = app
        .call(&app.client, "set_second_factor_policy", &[("required", "true")])
        .await;
    assert_eq!(status, 409, "required of others by one without it: {body}");
    let (super_secret, _) = enrol(&app, &app.client, PASSWORD).await;
    let (status, body) = app
        .call(&app.client, "set_second_factor_policy", &[("required", "true")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(actions(&app)
        .await
        .iter()
        .any(|(a, d)| a == "settings.update" && d.contains("require_second_factor")));

    // Signed in already, without one: only setting it up (and the frame).
    let (status, body) = app.call(&ops, "integrations", &[]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("SecondFactorRequired"), "{body}");
    let res = ops
        .get(app.url("/console/audit-log/export?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/settings/two-factor");
    let (status, _) = app.call(&ops, "frame", &[]).await;
    assert_eq!(status, 200);
    // Signing in again goes straight there.
    let fresh = browser(&app.base);
    let res = app.login_with(&fresh, "ops-one", ADMIN_PASSWORD).await;
    assert_eq!(location(&res), "/settings/two-factor");
    let page = app.html_as(&fresh, "/settings/two-factor").await;
    assert!(page.contains("data-testid=\"two-factor-required\""));

    let (secret, _) = enrol(&app, &ops, ADMIN_PASSWORD).await;
    let (status, body) = app.call(&ops, "integrations", &[]).await;
    assert_eq!(status, 200, "still held back once set up: {body}");
    let (status, body) = app
        .call(&ops, "remove_totp", &[("code", &app_code(&secret, now_ms() + 30_000))])
        .await;
    assert_eq!(status, 409, "turned off while required: {body}");

    // Showing a token asks for a code now, and takes it once.
    let (status, body) = app.call(&ops, "retrieve_token", &[("password", ADMIN_PASSWORD)]).await;
    assert_eq!(status, 400, "{body}");
    let code = app_code(&secret, now_ms() + 30_000);
    let with_code = [("password", ADMIN_PASSWORD), ("code", code.as_str())];
    let (status, body) = app.call(&ops, "retrieve_token", &with_code).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("kwadm_"));
    let (status, _) = app.call(&ops, "retrieve_token", &with_code).await;
    assert_eq!(status, 400, "a code was taken twice");

    // Stopping requiring it lowers every admin's guard: a code first.
    let (status, body) = app
        .call(&app.client, "set_second_factor_policy", &[("required", "false")])
        .await;
    assert_eq!(status, 400, "the policy was dropped without a code: {body}");
    let super_code = app_code(&super_secret, now_ms() + 30_000);
    let (status, body) = app
        .call(
            &app.client,
            "set_second_factor_policy",
            &[("required", "false"), ("code", &super_code)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.call(&app.client, "integrations", &[]).await;
    assert_eq!(status, 200);
}

/// For an admin with a second factor, a right password clears nothing in
/// the throttle: signing in again between wrong codes does not start the
/// count afresh, so codes cannot be guessed at the password's pace.
#[tokio::test]
async fn signing_in_again_does_not_reset_the_count_of_wrong_codes() {
    let app = TestApp::ready().await;
    app.login().await;
    let (secret, _) = enrol(&app, &app.client, PASSWORD).await;
    let wrong = if app_code(&secret, now_ms()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let mut limited = false;
    for _ in 0..8 {
        let client = browser(&app.base);
        let (status, _) = app
            .call(&client, "login", &[("username", ADMIN), ("password", PASSWORD)])
            .await;
        if status == 429 {
            limited = true;
            break;
        }
        let (status, body) = app.call(&client, "second_factor", &[("code", wrong)]).await;
        if status == 429 {
            limited = true;
            break;
        }
        assert_eq!(status, 400, "{body}");
    }
    assert!(limited, "eight rounds of password and a wrong code were all answered");
    assert!(
        actions(&app).await.iter().any(|(a, _)| a == "admin.lockout"),
        "the lockout is not on record"
    );
}

/// Turning the app on ends the admin's other console sessions (one opened
/// with a stolen password must not outlive the new factor); this one stays.
#[tokio::test]
async fn turning_the_app_on_ends_the_admins_other_sessions() {
    let app = TestApp::ready().await;
    app.login().await;
    let other = browser(&app.base);
    app.login_with(&other, ADMIN, PASSWORD).await;
    let (status, _) = app.call(&other, "integrations", &[]).await;
    assert_eq!(status, 200);
    enrol(&app, &app.client, PASSWORD).await;
    let (status, _) = app.call(&other, "integrations", &[]).await;
    assert_eq!(status, 401, "the other session outlived the new factor");
    let (status, _) = app.call(&app.client, "integrations", &[]).await;
    assert_eq!(status, 200, "the session that turned it on ended");
}

/// A set-up left unconfirmed is not shown again, nor confirmed, after 15
/// minutes: its secret was on a screen someone walked away from.
#[tokio::test]
async fn an_abandoned_set_up_expires() {
    let app = TestApp::ready().await;
    app.login().await;
    app.call(&app.client, "begin_totp", &[("password", PASSWORD)]).await;
    let secret = shown_secret(&app.html("/settings/two-factor").await);
    sqlx::query("UPDATE admin_totp SET created_at = created_at - 16 * 60000")
        .execute(app.kw().db().write())
        .await
        .unwrap();
    let page = app.html("/settings/two-factor").await;
    assert!(!page.contains(&secret), "an abandoned set-up's key is shown");
    assert!(page.contains("data-testid=\"two-factor-off\""));
    let (status, body) = app
        .call(&app.client, "confirm_totp", &[("code", &app_code(&secret, now_ms()))])
        .await;
    assert_eq!(status, 409, "{body}");
}

/// Passkeys sit beside the app: offered once it is on, with the relying
/// party a loopback address is served as (`localhost`); a made-up answer
/// is refused. (The ceremony itself runs in Chromium: the Playwright spec.)
#[tokio::test]
async fn a_passkey_is_added_only_beside_the_app_and_only_with_a_real_answer() {
    let app = TestApp::ready().await;
    app.login().await;
    let (status, body) = app
        .call(
            &app.client,
            "begin_add_passkey",
            &[("name", "Laptop"), ("code", "123456")],
        )
        .await;
    assert_eq!(status, 409, "a passkey without the app: {body}");

    let (secret, _) = enrol(&app, &app.client, PASSWORD).await;
    let code = app_code(&secret, now_ms() + 30_000);
    let (status, body) = app
        .call(&app.client, "begin_add_passkey", &[("name", ""), ("code", &code)])
        .await;
    assert_eq!(status, 400, "{body}");
    // A stolen session alone adds no factor of its own: a code comes too.
    let (status, body) = app
        .call(&app.client, "begin_add_passkey", &[("name", "Laptop"), ("code", "")])
        .await;
    assert_eq!(status, 400, "added without a code: {body}");
    let (status, body) = app
        .call(&app.client, "begin_add_passkey", &[("name", "Laptop"), ("code", &code)])
        .await;
    assert_eq!(status, 200, "{body}");
    let options: serde_json::Value = serde_json::from_str(&serde_json::from_str::<String>(&body).unwrap()).unwrap();
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost", "{options}");
    assert_eq!(options["publicKey"]["user"]["name"], ADMIN);

    let (status, body) = app
        .call(
            &app.client,
            "finish_add_passkey",
            &[("credential", "{\"id\":\"made-up\"}")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let page = app.html("/settings/two-factor").await;
    assert!(page.contains("data-testid=\"passkeys\""));
    assert!(
        !page.contains("data-testid=\"passkey-list\""),
        "a made-up passkey was kept"
    );
}

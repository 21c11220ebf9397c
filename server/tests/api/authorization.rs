//! Every gated server function, one table: refused from another site,
//! refused signed out, refused to an admin where it is a super admin's —
//! with the right status, and with nothing changed in the database.

use crate::helpers::*;

type Call = (&'static str, &'static [(&'static str, &'static str)]);

/// Every server function behind a sign-in, with arguments that would act.
const GATED: &[Call] = &[
    ("admins", &[("query", ""), ("page", "1")]),
    ("retrieve_token", &[("password", PASSWORD)]),
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
    ("set_admin_disabled", &[("username", ADMIN), ("disabled", "true")]),
    ("unlock_admin", &[("username", ADMIN)]),
    (
        "change_password",
        &[
            ("current", PASSWORD),
            ("password", "a brand new passphrase"),
            ("password_confirm", "a brand new passphrase"),
        ],
    ),
    ("audit_events", &[("actor", ""), ("action", ""), ("target", "")]),
    ("integrations", &[]),
    ("set_secure_mode", &[("enabled", "true")]),
    ("set_region", &[("region", "us")]),
    (
        "rotate_ca",
        &[
            ("overlap_hours", "0"),
            ("validity_days", "30"),
            ("stop_active_certificates", "yes"),
        ],
    ),
    ("generate_server_key", &[("overlap_hours", "0")]),
    ("security", &[]),
    (
        "create_certificate",
        &[("name", "x"), ("csr", "not a csr"), ("validity_days", "30")],
    ),
    ("revoke_certificate", &[("id", "no-such-id")]),
    ("set_mtls", &[("enabled", "false")]),
    ("frame", &[]),
    ("api_reference", &[]),
    ("remove_server_key", &[("id", "no-such-key")]),
    (
        "set_temporary_password",
        &[
            ("username", ADMIN),
            ("password", "a long password!"),
            ("password_confirm", "a long password!"),
        ],
    ),
    ("two_factor", &[]),
    ("begin_totp", &[("password", PASSWORD)]),
    ("confirm_totp", &[("code", "123456")]),
    ("regenerate_recovery_codes", &[("code", "123456")]),
    ("remove_totp", &[("code", "123456")]),
    ("set_second_factor_policy", &[("required", "true")]),
    ("begin_add_passkey", &[("name", "x"), ("code", "123456")]),
    ("finish_add_passkey", &[("credential", "{}")]),
    ("remove_passkey", &[("id", "x"), ("code", "123456")]),
];

/// A super admin's alone: an admin's session is refused.
const SUPER_ONLY: &[Call] = &[
    (
        "create_admin",
        &[
            ("username", "eve"),
            ("password", "a long password!"),
            ("role", "super_admin"),
        ],
    ),
    ("set_admin_disabled", &[("username", ADMIN), ("disabled", "true")]),
    ("unlock_admin", &[("username", ADMIN)]),
    ("revoke_token", &[("username", ADMIN)]),
    ("set_region", &[("region", "us")]),
    (
        "rotate_ca",
        &[
            ("overlap_hours", "0"),
            ("validity_days", "30"),
            ("stop_active_certificates", "yes"),
        ],
    ),
    (
        "set_temporary_password",
        &[
            ("username", ADMIN),
            ("password", "a long password!"),
            ("password_confirm", "a long password!"),
        ],
    ),
    ("set_second_factor_policy", &[("required", "true")]),
];

/// What an action would change: admins, tokens, keys, certificates,
/// settings (the audit log is left out: refusals are audited on purpose).
async fn state(app: &TestApp) -> Vec<String> {
    let db = app.kw().db().read();
    let mut out = Vec::new();
    let admins: Vec<(String, i64, i64, String)> =
        sqlx::query_as("SELECT username, disabled, session_epoch, password_hash FROM admin_users ORDER BY username")
            .fetch_all(db)
            .await
            .unwrap();
    out.push(format!("{admins:?}"));
    let tokens: Vec<(String, String)> = sqlx::query_as("SELECT id, state FROM admin_tokens ORDER BY id")
        .fetch_all(db)
        .await
        .unwrap();
    out.push(format!("{tokens:?}"));
    for table in ["server_keys", "certificates", "certificate_authorities"] {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(db)
            .await
            .unwrap();
        out.push(format!("{table} {n}"));
    }
    let app_row: (i64, i64, String, Option<String>) =
        sqlx::query_as("SELECT secure_mode, mtls, region, region_url FROM application")
            .fetch_one(db)
            .await
            .unwrap();
    out.push(format!("{app_row:?}"));
    out
}

#[tokio::test]
async fn every_gated_server_function_refuses_other_sites_and_the_signed_out() {
    let app = TestApp::ready().await;
    let before = state(&app).await;
    for (function, fields) in GATED {
        // No Origin: another site's form, refused before anything else.
        let (status, body) = app.call(&anonymous(), function, fields).await;
        assert_eq!(status, 403, "{function} cross-origin: {body}");
        assert!(body.contains("Cross-origin"), "{function}: {body}");
        // This site, signed out: the sign-in check refuses.
        let (status, body) = app.call(&browser(&app.base), function, fields).await;
        assert_eq!(status, 401, "{function} signed out: {body}");
        assert!(body.contains("Unauthorized"), "{function}: {body}");
    }
    assert_eq!(state(&app).await, before, "nothing changed");
}

#[tokio::test]
async fn super_admin_functions_refuse_an_admin() {
    let app = TestApp::ready().await;
    app.create_admin("ops");
    let ops = browser(&app.base);
    let res = app.login_with(&ops, "ops", "a long enough password").await;
    assert_eq!(location(&res), "/settings/integrations");
    let before = state(&app).await;
    for (function, fields) in SUPER_ONLY {
        let (status, body) = app.call(&ops, function, fields).await;
        assert_eq!(status, 403, "{function}: {body}");
        assert!(body.contains("Forbidden"), "{function}: {body}");
    }
    assert_eq!(state(&app).await, before, "nothing changed");
}

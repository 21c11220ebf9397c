//! What is stored: after a tour of every feature that handles a secret,
//! no column of any table holds one in clear; and the audit log refuses
//! edits, and `audit verify` catches what got past the database.

use crate::certificates::{issued, openssl_csr, ops_token, Key};
use crate::helpers::*;

/// Every value of every column of every table, hex-encoded (lower case),
/// so text and bytes are searched alike.
async fn every_value_as_hex(app: &TestApp) -> Vec<(String, String)> {
    let db = app.kw().db().read();
    let postgres = app.kw().db().backend() == app::domain::storage::db::Backend::Postgres;
    let columns: Vec<(String, String, String)> = if postgres {
        sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = 'public'",
        )
        .fetch_all(db)
        .await
        .unwrap()
    } else {
        sqlx::query_as(
            "SELECT m.name, p.name, p.type FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table'",
        )
        .fetch_all(db)
        .await
        .unwrap()
    };
    assert!(columns.len() > 30, "the schema was read: {} columns", columns.len());
    let mut values = Vec::new();
    for (table, column, kind) in columns {
        let expr = match (postgres, kind.as_str()) {
            (false, _) => format!("hex(\"{column}\")"),
            (true, "bytea") => format!("encode(\"{column}\", 'hex')"),
            (true, _) => format!("encode(convert_to(\"{column}\"::text, 'UTF8'), 'hex')"),
        };
        let rows: Vec<(Option<String>,)> = sqlx::query_as(&format!("SELECT {expr} FROM \"{table}\""))
            .fetch_all(db)
            .await
            .unwrap();
        for v in rows.into_iter().filter_map(|(v,)| v) {
            values.push((format!("{table}.{column}"), v.to_lowercase()));
        }
    }
    values
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// `s` as a JSON list of its bytes, the way bytes put in a console session
/// are stored: a secret kept there unsealed would read like this.
fn as_byte_list(s: &str) -> String {
    s.bytes().map(|b| b.to_string()).collect::<Vec<_>>().join(",")
}

#[tokio::test]
async fn no_secret_is_stored_in_clear() {
    let app = TestApp::ready().await;
    // A console session (its cookie must be stored only as a digest).
    let res = app.login().await;
    let cookie = session_cookie(&res).expect("a session cookie");
    let cookie_value = cookie.split_once('=').unwrap().1.to_string();
    // An admin with a token; a server key; a certificate (the CA's key).
    let token = ops_token(&app).await;
    let server_key = app.server_key(&token, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, csr) = openssl_csr(dir.path(), Key::P256, "at-rest");
    issued(&app, &token, "at-rest", &csr).await;
    // A token generated without JavaScript waits, for its one render, in
    // the console session: it must wait sealed.
    let ops = browser(&app.base);
    app.login_with(&ops, "ops", "a long enough password").await;
    let res = app
        .form(
            &ops,
            "generate_token",
            "/settings/admin-users?do=generate",
            &[("password", "a long enough password")],
        )
        .await;
    assert_eq!(res.status(), 302);
    // An authenticator app and its recovery codes.
    let (totp_secret, recovery) = crate::two_factor::enrol(&app, &app.client, PASSWORD).await;
    let totp_raw = data_encoding::BASE32_NOPAD
        .decode(totp_secret.replace(' ', "").as_bytes())
        .unwrap();

    let stored = every_value_as_hex(&app).await;
    let needles = [
        ("an admin token", hex("kwadm_")),
        ("an admin token (as bytes)", hex(&as_byte_list("kwadm_"))),
        ("the server key", hex(&server_key)),
        ("a private key", hex("PRIVATE KEY")),
        ("the session cookie", hex(&cookie_value)),
        ("a password", hex(PASSWORD)),
        ("a password", hex("a long enough password")),
        ("the TOTP secret", totp_raw.iter().map(|b| format!("{b:02x}")).collect()),
        ("the TOTP secret (base32)", hex(&totp_secret.replace(' ', ""))),
        ("a recovery code", hex(&recovery[0].replace('-', ""))),
        ("a recovery code", hex(&recovery[0])),
    ];
    for (what, needle) in &needles {
        for (place, value) in &stored {
            assert!(!value.contains(needle.as_str()), "{what} in clear in {place}");
        }
    }
    // And the scan would have seen them: the key's shown prefix is stored.
    let shown = hex(&server_key[..8]);
    assert!(
        stored.iter().any(|(_, v)| v.contains(&shown)),
        "the scan reads the tables"
    );
}

#[tokio::test]
async fn the_database_refuses_audit_edits_and_verify_catches_a_removed_event() {
    let app = TestApp::ready().await;
    app.admin_with_token("ops");
    let db = app.kw().db().clone();
    for sql in [
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1",
        "UPDATE audit_events SET hash = hash WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
    ] {
        let refused = sqlx::query(sql).execute(db.write()).await;
        let err = refused.expect_err(sql).to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    let ok = app.keyward(&["audit", "verify"], None);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    // Past the triggers (as the database's owner could), an event goes.
    let postgres = db.backend() == app::domain::storage::db::Backend::Postgres;
    let mut tx = db.write().begin().await.unwrap();
    set_audit_triggers_aside(&mut tx, postgres).await;
    sqlx::query("DELETE FROM audit_events WHERE seq = 2")
        .execute(&mut *tx)
        .await
        .unwrap();
    restore_audit_triggers(&mut tx, postgres).await;
    tx.commit().await.unwrap();
    let out = app.keyward(&["audit", "verify"], None);
    assert!(!out.status.success(), "a removed event passed");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("event 2 is missing"), "{said}");
}

/// `audit verify` checks the chain's head against its newest event: the
/// newest event removed, or the head's number or hash changed alone, is
/// each caught.
#[tokio::test]
async fn audit_verify_catches_a_head_that_does_not_match_the_newest_event() {
    let app = TestApp::ready().await;
    app.admin_with_token("ops");
    let db = app.kw().db().clone();
    let (seq, hash): (i64, Vec<u8>) = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(db.read())
        .await
        .unwrap();
    let set_head =
        |seq: i64, hash: Vec<u8>| tamper(&db, "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", seq, hash);
    let cases = [
        ("the head's hash changed", (seq, vec![7u8; 32])),
        ("the head's number moved back", (seq - 1, hash.clone())),
    ];
    for (edit, (s, h)) in cases {
        set_head(s, h).await;
        let out = app.keyward(&["audit", "verify"], None);
        assert!(!out.status.success(), "{edit} passed");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("the newest events were removed"), "{edit}: {said}");
        set_head(seq, hash.clone()).await;
        let ok = app.keyward(&["audit", "verify"], None);
        assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    }
    tamper(&db, "DELETE FROM audit_events WHERE seq = $1 AND hash = $2", seq, hash).await;
    let out = app.keyward(&["audit", "verify"], None);
    assert!(!out.status.success(), "the newest event removed passed");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("the newest events were removed"), "{said}");
}

/// Runs `sql` (binding `seq` and `hash`) past the audit log's triggers, as
/// the database's owner could.
async fn tamper(db: &app::domain::storage::db::Db, sql: &str, seq: i64, hash: Vec<u8>) {
    let postgres = db.backend() == app::domain::storage::db::Backend::Postgres;
    let mut tx = db.write().begin().await.unwrap();
    set_audit_triggers_aside(&mut tx, postgres).await;
    let done = sqlx::query(sql).bind(seq).bind(hash).execute(&mut *tx).await.unwrap();
    assert_eq!(done.rows_affected(), 1, "{sql}");
    restore_audit_triggers(&mut tx, postgres).await;
    tx.commit().await.unwrap();
}

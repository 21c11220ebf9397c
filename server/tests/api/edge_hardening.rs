//! The edges an attacker leans on: client addresses behind a proxy, the
//! console's answers to mistakes, text smuggled into a page by its URL,
//! absurd page numbers, file modes, and the keyed audit chain.

use base64::Engine;

use crate::helpers::*;

/// The audited "from where" of a server-key generation sent with these
/// `X-Forwarded-For` lines, with `trusted` as the trusted proxy (if any).
async fn audited_source(trusted: Option<&str>, forwarded: &[&str]) -> String {
    let app = TestApp::spawn_with(|c| {
        if let Some(ip) = trusted {
            crate::mtls::behind_proxy(c, ip)
        }
    })
    .await;
    app.setup(app.setup_token.clone().unwrap().as_str(), PASSWORD).await;
    let token = app.admin_with_token("ops");
    app.settle().await;
    let mut req = app.client.post(app.url("/api/v1/server-keys")).bearer_auth(&token);
    for line in forwarded {
        req = req.header("x-forwarded-for", *line);
    }
    assert_eq!(req.send().await.unwrap().status(), 200);
    let events = app::domain::audit::recent(app.kw().db(), 5).await.unwrap();
    let generated = events.iter().find(|e| e.action == "server_key.generate").unwrap();
    generated.source.clone()
}

/// A client may put its own `X-Forwarded-For` line before the proxy's:
/// only the proxy's own entry (the last value of the last line) counts.
#[tokio::test]
async fn behind_a_proxy_the_client_address_is_the_proxys_entry() {
    let lines = ["203.0.113.66", "203.0.113.67, 198.51.100.7"];
    assert_eq!(
        audited_source(Some("127.0.0.1"), &lines).await,
        "198.51.100.7 (admin API)"
    );
}

/// From a peer that is not a trusted proxy, `X-Forwarded-For` is the
/// client's own say-so and is ignored: the audit's "from where" (and the
/// sign-in limits) use the TCP peer.
#[tokio::test]
async fn a_forwarded_for_from_an_untrusted_peer_is_ignored() {
    for trusted in [None, Some("10.9.9.9")] {
        let source = audited_source(trusted, &["203.0.113.5"]).await;
        assert_eq!(source, "127.0.0.1 (admin API)", "trusted proxy: {trusted:?}");
    }
}

/// A user's mistake is a 4xx from a server function, never a 500.
#[tokio::test]
async fn console_mistakes_are_answered_with_4xx() {
    let app = TestApp::ready().await;
    let (status, body) = app
        .call(
            &app.client,
            "login",
            &[("username", ADMIN), ("password", "wrong password!!")],
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Incorrect username or password"), "{body}");

    app.login().await;
    let (status, body) = app
        .call(
            &app.client,
            "create_admin",
            &[
                ("username", "x"),
                ("password", "a long enough password"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(status, 400, "a bad username: {body}");
    let fields = [
        ("username", "ops"),
        ("password", "a long enough password"),
        ("role", "admin"),
    ];
    assert_eq!(app.call(&app.client, "create_admin", &fields).await.0, 200);
    let (status, body) = app.call(&app.client, "create_admin", &fields).await;
    assert_eq!(status, 409, "a duplicate username: {body}");
    let (status, body) = app
        .call(
            &app.client,
            "set_admin_disabled",
            &[("username", "nobody"), ("disabled", "true")],
        )
        .await;
    assert_eq!(status, 400, "an unknown username: {body}");

    let ops = browser(&app.base);
    app.login_with(&ops, "ops", "a long enough password").await;
    let (status, _) = app
        .call(
            &ops,
            "create_admin",
            &[("username", "eve"), ("password", "x"), ("role", "admin")],
        )
        .await;
    assert_eq!(status, 403, "only super admins create admins");
    let (status, _) = app.call(&anonymous(), "admins", &[("query", ""), ("page", "1")]).await;
    assert!(status == 401 || status == 403, "signed out: {status}");
}

fn smuggled_error(text: &str) -> String {
    let err = serde_json::json!({ "Invalid": text }).to_string();
    let encoded = base64::engine::general_purpose::URL_SAFE.encode(err);
    format!("/login?__path=%2Fconsole%2Ffn%2Flogin&__err={encoded}")
}

/// A form error shown after a post without JavaScript comes from the
/// server, once; text put into the URL by someone else is never shown.
#[tokio::test]
async fn the_sign_in_page_shows_no_error_text_from_its_url() {
    let app = TestApp::ready().await;
    let phish = "Your password expired. Mail it to help@evil.example";
    let res = anonymous().get(app.url(&smuggled_error(phish))).send().await.unwrap();
    let status = res.status().as_u16();
    let page = if status == 200 {
        res.text().await.unwrap()
    } else {
        assert!((300..400).contains(&status), "{status}");
        let next = location(&res);
        assert!(!next.contains("__err"), "{next}");
        anonymous()
            .get(app.url(&next))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(!page.contains("evil.example"), "the attacker's sentence is on the page");
    // Nor with the parameter's name percent-encoded.
    let encoded = smuggled_error(phish).replace("&__err=", "&%5F%5Ferr=");
    let res = anonymous().get(app.url(&encoded)).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert!(!location(&res).contains("err"), "{}", location(&res));

    // A real failed sign-in without JavaScript still shows its message, once.
    let res = app.login_with(&app.client, ADMIN, "wrong password!!").await;
    assert_eq!(res.status(), 302);
    let back = location(&res);
    let shown = app.client.get(&back).send().await.unwrap().text().await.unwrap();
    assert!(shown.contains("Incorrect username or password"), "{shown}");
    let again = app.client.get(&back).send().await.unwrap();
    let again = if again.status().is_redirection() {
        app.client.get(app.url(&location(&again))).send().await.unwrap()
    } else {
        again
    };
    assert!(!again.text().await.unwrap().contains("Incorrect username or password"));
}

#[tokio::test]
async fn absurd_page_numbers_are_clamped() {
    let app = TestApp::ready().await;
    app.login().await;
    for page in ["9223372036854775807", "-9223372036854775808", "0"] {
        let res = app
            .client
            .get(app.url(&format!("/settings/admin-users?page={page}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "page {page}");
        assert!(
            res.text().await.unwrap().contains(ADMIN),
            "page {page} lists the admins"
        );
        let (status, body) = app.call(&app.client, "admins", &[("query", ""), ("page", page)]).await;
        assert_eq!(status, 200, "page {page}: {body}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let sqlite = backend() == "sqlite";
    let app = TestApp::spawn_with(|c| {
        c.data_dir = data.clone();
        if sqlite {
            c.database_url = format!("sqlite://{}?mode=rwc", data.join("keyward.db").display()).into();
        }
    })
    .await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("master.key")), 0o600);
    if sqlite {
        app.setup(app.setup_token.clone().unwrap().as_str(), PASSWORD).await;
        for file in ["keyward.db", "keyward.db-wal", "keyward.db-shm"] {
            let path = data.join(file);
            if path.exists() {
                assert_eq!(mode(&path), 0o600, "{file}");
            }
        }
    }
}

/// The sign-in throttle keeps no typed username (people type passwords
/// into that field) in clear.
#[tokio::test]
async fn the_throttle_keeps_no_typed_username() {
    let app = TestApp::ready().await;
    let typed = "my-secret-password-typed-here";
    app.call(
        &app.client,
        "login",
        &[("username", typed), ("password", "wrong password!!")],
    )
    .await;
    let rows: Vec<(String,)> = sqlx::query_as("SELECT subject FROM login_failures")
        .fetch_all(app.kw().db().read())
        .await
        .unwrap();
    assert!(!rows.is_empty(), "the failure was counted");
    for (subject,) in rows {
        assert!(!subject.contains(typed), "{subject}");
    }
}

/// Length-prefixed fields, as the chain used to hash them: what someone
/// with write access to the database would recompute after an edit.
fn unkeyed_hash(prev: &[u8], fields: &[String]) -> Vec<u8> {
    use sha2::Digest;
    let mut buf = prev.to_vec();
    for f in fields {
        buf.extend_from_slice(&(f.len() as u64).to_be_bytes());
        buf.extend_from_slice(f.as_bytes());
    }
    sha2::Sha256::digest(&buf).to_vec()
}

/// Editing an event and recomputing every later hash and the head, the way
/// the chain was built before it was keyed, is caught by `audit verify`.
#[tokio::test]
async fn an_edited_audit_chain_is_caught_even_when_rehashed() {
    let app = TestApp::ready().await;
    app.admin_with_token("ops");
    let ok = app.keyward(&["audit", "verify"], None);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    rewrite_unkeyed(app.kw().db(), |actor, action| {
        if action == "admin.create" {
            "someone-else".to_string()
        } else {
            actor
        }
    })
    .await;

    let out = app.keyward(&["audit", "verify"], None);
    assert!(
        !out.status.success(),
        "a rehashed edit passed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("audit chain broken"), "{said}");
}

/// Generate in the console asks for the password again, as Retrieve does:
/// an unattended session is not a year-long API token.
#[tokio::test]
async fn generating_a_token_in_the_console_asks_for_the_password() {
    let app = TestApp::ready().await;
    app.create_admin("ops");
    let ops = browser(&app.base);
    app.login_with(&ops, "ops", "a long enough password").await;
    let (status, body) = app.call(&ops, "generate_token", &[]).await;
    assert_ne!(status, 200, "generated without a password: {body}");
    let (status, body) = app
        .call(&ops, "generate_token", &[("password", "not the password!")])
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("That password is not correct"), "{body}");
    let (status, body) = app
        .call(&ops, "generate_token", &[("password", "a long enough password")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("kwadm_"), "{body}");
}

/// Rewrites the audit chain as someone with write access to the database
/// (and no master key) would: `edit` may change each event's actor, and
/// every hash and the head are recomputed the unkeyed way.
async fn rewrite_unkeyed(db: &app::domain::storage::db::Db, edit: impl Fn(String, &str) -> String) {
    let postgres = db.backend() == app::domain::storage::db::Backend::Postgres;
    let mut tx = db.write().begin().await.unwrap();
    // Whoever can write the database can also set its triggers aside.
    set_audit_triggers_aside(&mut tx, postgres).await;
    type Row = (i64, i64, String, String, String, String, String);
    let rows: Vec<Row> =
        sqlx::query_as("SELECT seq, at, actor, action, target, detail, source FROM audit_events ORDER BY seq")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert!(rows.len() >= 2);
    let mut prev = vec![0u8; 32];
    for (seq, at, actor, action, target, detail, source) in rows {
        let actor = edit(actor, &action);
        let fields = [
            seq.to_string(),
            at.to_string(),
            actor.clone(),
            action,
            target,
            detail,
            source,
        ];
        let hash = unkeyed_hash(&prev, &fields);
        sqlx::query("UPDATE audit_events SET actor = $1, hash = $2 WHERE seq = $3")
            .bind(&actor)
            .bind(&hash)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .unwrap();
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(&mut *tx)
        .await
        .unwrap();
    restore_audit_triggers(&mut tx, postgres).await;
    tx.commit().await.unwrap();
}

/// A chain from before it was keyed: the server will not start on it until
/// the operator runs `audit rekey`, once; putting a keyed chain back into
/// the old form (to have an edit blessed by a second rekey) is refused.
#[tokio::test]
async fn an_unkeyed_chain_is_keyed_once_by_the_operator() {
    let mut app = TestApp::ready().await;
    app.admin_with_token("ops");
    let db = app.kw().db().clone();
    rewrite_unkeyed(&db, |actor, _| actor).await;
    sqlx::query("UPDATE audit_head SET keyed = 0")
        .execute(db.write())
        .await
        .unwrap();
    app.stop().await;

    let refused = server::startup::build(config_for(&app.data_dir, &app.db_url)).await;
    let err = refused.err().expect("the server refuses an unkeyed chain").to_string();
    assert!(err.contains("keyward audit rekey"), "{err}");
    let out = app.keyward(&["audit", "verify"], None);
    assert!(!out.status.success());

    let out = app.keyward(&["audit", "rekey"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("the old chain was intact"));
    let out = app.keyward(&["audit", "verify"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = app.keyward(&["audit", "rekey"], None);
    assert!(!again.status.success(), "keyed twice");

    // Back into the old form, with an edit, to have it blessed again.
    let tool = app::domain::storage::db::Db::connect(&app.db_url).await.unwrap();
    rewrite_unkeyed(&tool, |actor, action| {
        if action == "admin.create" {
            "nobody".into()
        } else {
            actor
        }
    })
    .await;
    sqlx::query("UPDATE audit_head SET keyed = 0")
        .execute(tool.write())
        .await
        .unwrap();
    tool.close().await;
    let out = app.keyward(&["audit", "rekey"], None);
    assert!(!out.status.success(), "a tampered chain was keyed again");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("tampered"), "{said}");
}

/// Commands other than `serve` and `init` never make a master key: a new
/// one would write an audit chain the server cannot verify. And another
/// key than the server's is refused outright.
#[tokio::test]
async fn tools_never_make_a_master_key_nor_use_another() {
    let app = TestApp::ready().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let out = run_keyward(
        elsewhere.path(),
        &app.db_url,
        &["admin", "disable", "--username", ADMIN],
        None,
    );
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no master key"), "{said}");
    assert!(!elsewhere.path().join("master.key").exists());

    let other = elsewhere.path().join("other.key");
    let (_, encoded) = app::domain::secrets::MasterKey::generate();
    std::fs::write(&other, secrecy::ExposeSecret::expose_secret(&encoded)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(["audit", "verify"])
        .env("KEYWARD_DATA_DIR", elsewhere.path())
        .env("DATABASE_URL", &app.db_url)
        .env("KEYWARD_MASTER_KEY_FILE", &other)
        .env("KEYWARD_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("this master key does not open this database"), "{said}");
}

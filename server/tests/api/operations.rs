//! What an operator does around the server: backups, restores, master-key
//! rotation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

/// A backup taken while new users open sessions and server keys rotate,
/// restored into a new data directory: its audit chain verifies, the
/// server key live in it mints, and every user answered before the backup
/// began keeps their id. (PostgreSQL: `keyward backup` says to use pg_dump.)
#[tokio::test]
async fn a_backup_taken_under_load_restores_whole() {
    let app = TestApp::ready().await;
    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("keyward-backup.db");
    if backend() == "postgres" {
        let out = app.keyward(&["backup", "--to", backup.to_str().unwrap()], None);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("pg_dump") && err.contains("master key"), "{err}");
        assert!(!backup.exists(), "nothing written");
        return;
    }
    let admin = app.admin_with_token("ops");
    app.settle().await;
    let app = Arc::new(app);
    let stop = Arc::new(AtomicBool::new(false));
    // (user_id, _id, answered at) and (key, asked at), as answered.
    let users: Arc<Mutex<Vec<(String, String, Instant)>>> = Default::default();
    let keys: Arc<Mutex<Vec<(String, Instant)>>> = Default::default();
    let sessions = {
        let (app, stop, users) = (app.clone(), stop.clone(), users.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let user_id = format!("user-{i}");
                let body: Value = app
                    .session(json!({ "userId": user_id, "deviceId": "d" }))
                    .await
                    .json()
                    .await
                    .unwrap();
                let id = body["users"][0]["_id"].as_str().expect("a session").to_string();
                users.lock().unwrap().push((user_id, id, Instant::now()));
                i += 1;
            }
        })
    };
    let rotations = {
        let (app, stop, keys, admin) = (app.clone(), stop.clone(), keys.clone(), admin.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // When it was asked for: a key in the backup was asked for
                // before the backup ended (its answer may come later).
                let asked = Instant::now();
                let key = app.server_key(&admin, 0).await;
                keys.lock().unwrap().push((key, asked));
            }
        })
    };
    // Under way before the backup starts.
    while users.lock().unwrap().len() < 20 || keys.lock().unwrap().len() < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let out = {
        let (app, to) = (app.clone(), backup.to_str().unwrap().to_string());
        tokio::task::spawn_blocking(move || app.keyward(&["backup", "--to", &to], None))
            .await
            .unwrap()
    };
    let finished = Instant::now();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("master key"), "the backup reminds of the key: {text}");
    // The load goes on a little after the backup, then stops.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    sessions.await.unwrap();
    rotations.await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup is its owner's alone");
    }

    // Restore into a new data directory, with the server's key.
    let new_dir = tempfile::tempdir().unwrap();
    let new_url = format!("sqlite://{}?mode=rwc", new_dir.path().join("keyward.db").display());
    let key = app.data_dir.join("master.key");
    let restore = |dir: &std::path::Path| {
        run_keyward(
            dir,
            &new_url,
            &[
                "restore",
                "--from",
                backup.to_str().unwrap(),
                "--master-key",
                key.to_str().unwrap(),
            ],
            None,
        )
    };
    // With another master key: refused, and nothing is left behind.
    let wrong = tempfile::tempdir().unwrap();
    let wrong_key = wrong.path().join("other.key");
    let (_, encoded) = app::domain::secrets::MasterKey::generate();
    std::fs::write(&wrong_key, secrecy::ExposeSecret::expose_secret(&encoded)).unwrap();
    let out = run_keyward(
        new_dir.path(),
        &new_url,
        &[
            "restore",
            "--from",
            backup.to_str().unwrap(),
            "--master-key",
            wrong_key.to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("master key"), "{err}");
    let left: Vec<_> = std::fs::read_dir(new_dir.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "a refused restore leaves the directory empty: {left:?}"
    );

    let out = restore(new_dir.path());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("audit chain is intact"), "{text}");
    // A second restore into the (now full) directory is refused.
    let out = restore(new_dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let out = run_keyward(new_dir.path(), &new_url, &["audit", "verify"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The restored Keyward: the one live server key mints, answered
    // before the backup returned; the users answered before it began keep
    // their ids.
    let dir = new_dir.path().to_path_buf();
    let restored = TestApp::spawn_with(move |c| {
        c.data_dir = dir;
        c.database_url = new_url.clone().into();
    })
    .await;
    let keys = keys.lock().unwrap().clone();
    let mut live = Vec::new();
    for (key, at) in &keys {
        if restored.mint(key, "someone").await.status() == 200 {
            live.push(*at);
        }
    }
    assert_eq!(live.len(), 1, "exactly one of {} rotated keys is live", keys.len());
    assert!(
        live[0] <= finished,
        "the live key was answered before the backup returned"
    );
    assert!(
        keys.iter().any(|(_, at)| *at <= started),
        "keys were answered before the backup began"
    );
    let before: Vec<_> = users
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, at)| *at < started)
        .cloned()
        .collect();
    assert!(before.len() >= 20);
    for (user_id, id, _) in before {
        let body: Value = restored
            .session(json!({ "userId": user_id, "deviceId": "d" }))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["users"][0]["_id"], id.as_str(), "{user_id} keeps their id");
    }
}

/// `keyward master-key rotate` re-seals every sealed secret under a new
/// key in one audited transaction, while Keyward serves: the instance
/// still holding the old key refuses to change anything until restarted
/// (it keeps answering sign-ins), the old key no longer opens the
/// database, and restarted with the new key everything sealed before —
/// the token-signing key, admin tokens, the CA's key, a secret waiting to
/// be shown once — opens as before, and the audit chain verifies across
/// the rotation.
#[tokio::test]
async fn rotating_the_master_key_reseals_everything_and_retires_the_old_key() {
    let mut app = TestApp::ready().await;
    let admin = app.admin_with_token("ops");
    app.settle().await;
    let server_key = app.server_key(&admin, 0).await;
    assert_eq!(app.mint(&server_key, "alice").await.status(), 200);
    // A token generated without JavaScript waits, sealed in the console
    // session, for the page the form redirects to.
    let ops = browser(&app.base);
    let res = app.login_with(&ops, "ops", ADMIN_PASSWORD).await;
    assert_eq!(location(&res), "/settings/integrations");
    let res = app
        .form(
            &ops,
            "generate_token",
            "/settings/admin-users?do=generate",
            &[("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(location(&res), "/settings/admin-users");
    let old_key = std::fs::read_to_string(app.data_dir.join("master.key")).unwrap();

    let keys = tempfile::tempdir().unwrap();
    let new_key = keys.path().join("new.key");
    let new_key_arg = new_key.to_str().unwrap().to_string();
    // A file that is not a key is refused, and nothing changes.
    std::fs::write(&new_key, "not a key").unwrap();
    let out = app.keyward(&["master-key", "rotate", "--new-key-file", &new_key_arg], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("new.key") && err.contains("base64"), "{err}");
    std::fs::remove_file(&new_key).unwrap();

    // No file: one is made (the owner's alone), then everything is re-sealed.
    let out = app.keyward(&["master-key", "rotate", "--new-key-file", &new_key_arg], None);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&new_key_arg), "it names the new key file: {text}");
    let made = std::fs::read_to_string(&new_key).unwrap();
    assert_ne!(made.trim(), old_key.trim());
    assert!(app::domain::secrets::MasterKey::from_encoded(&made).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&new_key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the new key is its owner's alone");
    }

    // The instance still on the old key: changes are refused, and say why;
    // what it answers from memory (minting with a live key) goes on.
    let res = app
        .client
        .post(app.url("/api/v1/server-keys"))
        .bearer_auth(&admin)
        .json(&json!({ "overlapSeconds": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("restart"), "{body}");
    assert_eq!(app.mint(&server_key, "bob").await.status(), 200);

    // The old key no longer opens the database; rotating again to the key
    // now in use is refused.
    let out = app.keyward(&["audit", "verify"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("master key") && err.contains("rotate"), "{err}");
    let with_new = ["--master-key-file", new_key_arg.as_str()];
    let out = app.keyward(
        &[&with_new[..], &["master-key", "rotate", "--new-key-file", &new_key_arg]].concat(),
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already"));

    // Restarted with the new key: everything sealed before opens.
    let key_file = new_key.clone();
    app.restart_with(move |c| c.master_key_file = Some(key_file)).await;
    assert_eq!(app.mint(&server_key, "carol").await.status(), 200, "the signing key");
    let me = app.bearer(reqwest::Method::GET, "/api/v1/admins/me", &admin).await;
    assert_eq!(me.status(), 200, "an admin token issued before");
    let crl = app.bearer(reqwest::Method::GET, "/api/v1/crl.pem", &admin).await;
    assert_eq!(crl.status(), 200, "the CA's key signs the CRL");
    assert!(crl.text().await.unwrap().contains("BEGIN X509 CRL"));
    let page = app.html_as(&ops, "/settings/admin-users").await;
    let shown = page
        .split("kwadm_")
        .nth(1)
        .map(|rest| {
            format!(
                "kwadm_{}",
                rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                    .next()
                    .unwrap()
            )
        })
        .expect("the token waiting to be shown once is shown");
    let ops = browser(&app.base);
    app.login_with(&ops, "ops", ADMIN_PASSWORD).await;
    let (status, body) = app.call(&ops, "retrieve_token", &[("password", ADMIN_PASSWORD)]).await;
    assert_eq!(status, 200, "{body}");
    let retrieved: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(retrieved["token"], shown.as_str(), "the sealed copy of the token opens");

    // Changes work again, and the chain verifies across the rotation.
    app.server_key(&admin, 0).await;
    let events = app::domain::audit::recent(app.kw().db(), 50).await.unwrap();
    let rotated = events
        .iter()
        .find(|e| e.action == "master_key.rotated")
        .expect("the rotation is audited");
    assert_eq!(rotated.source, "cli");
    assert!(!rotated.detail.contains(made.trim()) && !rotated.detail.contains(old_key.trim()));
    let out = app.keyward(&[&with_new[..], &["audit", "verify"]].concat(), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The epochs are sealed with the keys: a head moved back to the old
    // epoch, as someone holding the old key would, is found.
    app.stop().await;
    let db = app::domain::storage::db::Db::connect(&app.db_url).await.unwrap();
    sqlx::query("UPDATE audit_head SET key_epoch = 0")
        .execute(db.write())
        .await
        .unwrap();
    db.close().await;
    let out = app.keyward(&[&with_new[..], &["audit", "verify"]].concat(), None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("key epochs"));
}

/// A database from a release before the keys were sealed (migration
/// 0008) has none in `sealed_keys`: tools use the keys derived from the
/// master key, as that release did, and the first server to start seals
/// them for good; the chain written before verifies throughout.
#[tokio::test]
async fn a_database_from_before_sealed_keys_keeps_its_chain() {
    let mut app = TestApp::ready().await;
    app.admin_with_token("ops");
    app.stop().await;
    let db = app::domain::storage::db::Db::connect(&app.db_url).await.unwrap();
    sqlx::query("DELETE FROM sealed_keys")
        .execute(db.write())
        .await
        .unwrap();
    // Nor a record of the key its chain was written with (older still).
    sqlx::query("UPDATE audit_head SET key_check = NULL WHERE id = 1")
        .execute(db.write())
        .await
        .unwrap();
    let out = app.keyward(&["audit", "verify"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A tool records no key: the first to run on a database like this
    // could hold another than the server's.
    let (check,): (Option<Vec<u8>>,) = sqlx::query_as("SELECT key_check FROM audit_head WHERE id = 1")
        .fetch_one(db.read())
        .await
        .unwrap();
    assert!(check.is_none(), "a tool recorded its key");
    db.close().await;

    app.restart_with(|_| {}).await;
    let (sealed,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sealed_keys")
        .fetch_one(app.kw().db().read())
        .await
        .unwrap();
    assert_eq!(sealed, 1, "the audit and throttle keys are sealed at start");
    app.admin_with_token("ops2");
    let out = app.keyward(&["audit", "verify"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Unsealed again, the key check the server recorded at that start
    // lets its own key in, and no other.
    app.stop().await;
    let db = app::domain::storage::db::Db::connect(&app.db_url).await.unwrap();
    sqlx::query("DELETE FROM sealed_keys")
        .execute(db.write())
        .await
        .unwrap();
    let (check,): (Option<Vec<u8>>,) = sqlx::query_as("SELECT key_check FROM audit_head WHERE id = 1")
        .fetch_one(db.read())
        .await
        .unwrap();
    let check = check.expect("the server recorded its key's check");
    let out = app.keyward(&["audit", "verify"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let other: Vec<u8> = check.iter().map(|b| b ^ 1).collect();
    sqlx::query("UPDATE audit_head SET key_check = $1 WHERE id = 1")
        .bind(other)
        .execute(db.write())
        .await
        .unwrap();
    db.close().await;
    let out = app.keyward(&["audit", "verify"], None);
    assert!(!out.status.success(), "a database written with another key was opened");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("the audit log was written with another"), "{said}");
}

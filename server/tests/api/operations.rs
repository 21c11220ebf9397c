//! What an operator does around the server: backups and restores.

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

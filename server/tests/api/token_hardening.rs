//! Admin tokens against a thief: a replaced token cannot mint a new one,
//! a revoke wins over rotations in flight, and a disable is for good.

use reqwest::Method;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::*;

async fn rotate(app: &TestApp, token: &str) -> reqwest::Response {
    app.bearer(Method::POST, "/api/v1/admin-token", token).await
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.bearer(Method::GET, "/api/v1/admins/me", token).await
}

async fn new_token(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["adminToken"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_token_in_its_switch_over_cannot_rotate() {
    let app = TestApp::ready().await;
    let t1 = app.admin_with_token("ops");
    app.settle().await;
    let t2 = new_token(rotate(&app, &t1).await).await;

    assert_eq!(envelope(rotate(&app, &t1).await, 401, 400100).await, "Invalid token");
    // Elsewhere the old token keeps working until its switch-over ends…
    assert_eq!(me(&app, &t1).await.status(), 200);
    // …and the owner's new token is still the current one.
    let body: Value = me(&app, &t2).await.json().await.unwrap();
    assert_eq!(body["tokenStatus"], "active", "{body}");
    assert_eq!(new_token(rotate(&app, &t2).await).await.len(), t2.len());
}

#[tokio::test]
async fn a_revoke_wins_over_a_thief_rotating_in_a_loop() {
    let app = Arc::new(TestApp::ready().await);
    let owner = app.admin_with_token("ops");
    app.settle().await;
    // The thief holds a token of the same admin and rotates with the newest.
    let newest = Arc::new(Mutex::new(new_token(rotate(&app, &owner).await).await));
    let minted = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut thieves = Vec::new();
    for _ in 0..4 {
        let (app, newest, minted, stop) = (app.clone(), newest.clone(), minted.clone(), stop.clone());
        thieves.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let token = newest.lock().unwrap().clone();
                let res = rotate(&app, &token).await;
                if res.status() != 200 {
                    continue;
                }
                let fresh = new_token(res).await;
                minted.lock().unwrap().push(fresh.clone());
                *newest.lock().unwrap() = fresh;
            }
        }));
    }
    // Let the thief get going, then the owner revokes with their own token.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while minted.lock().unwrap().len() < 20 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let res = app
        .bearer(Method::DELETE, "/api/v1/admin-token?username=ops", &owner)
        .await;
    assert_eq!(res.status(), 200);
    // Rotations still in flight finish (or fail) now; the thief keeps trying.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in thieves {
        t.await.unwrap();
    }
    let minted = minted.lock().unwrap().clone();
    assert!(minted.len() >= 20, "the thief rotated {} times", minted.len());
    // Past the propagation time, no token of that admin works.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut alive = Vec::new();
    for token in minted.iter().chain([&owner]) {
        if me(&app, token).await.status() != 401 {
            alive.push(token.clone());
        }
    }
    assert!(
        alive.is_empty(),
        "{} of {} tokens outlived the revoke",
        alive.len(),
        minted.len()
    );
}

#[tokio::test]
async fn disabling_an_admin_revokes_their_tokens_for_good() {
    let app = TestApp::ready().await;
    let token = app.admin_with_token("ops");
    app.settle().await;
    assert_eq!(me(&app, &token).await.status(), 200);

    for command in ["disable", "enable"] {
        let out = app.keyward(&["admin", command, "--username", "ops"], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    app.settle().await;
    assert_eq!(envelope(me(&app, &token).await, 401, 400100).await, "Invalid token");

    let events = app::domain::audit::recent(app.kw().db(), 10).await.unwrap();
    let disable = events.iter().find(|e| e.action == "admin.disable").expect("audited");
    let detail: Value = serde_json::from_str(&disable.detail).unwrap();
    assert_eq!(detail["tokens_revoked"], 1, "{detail}");
}

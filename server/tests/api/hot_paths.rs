//! The guarantees the fast paths must keep (SPEC §8): the batching writer
//! answers only after its commit and loses nothing on graceful shutdown,
//! stores a user created by many requests at once once, a token redeemed
//! by many requests at once is redeemed once, and known
//! users kept in memory see a rename made by another instance.

use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::*;
use crate::two_instances::within;

fn session_body(user_id: &str) -> Value {
    json!({ "userId": user_id, "deviceId": "d" })
}

/// Opens a session from a task of its own, so that many run at once.
fn spawn_session(app: &TestApp, api_key: &str, body: Value) -> tokio::task::JoinHandle<reqwest::Response> {
    let (client, url, api_key) = (app.client.clone(), app.url("/api/v3/sessions"), api_key.to_string());
    tokio::spawn(async move {
        client
            .post(url)
            .header("x-api-key", api_key)
            .json(&body)
            .send()
            .await
            .unwrap()
    })
}

#[tokio::test]
async fn the_batching_writer_loses_nothing_on_graceful_shutdown() {
    let mut app = TestApp::ready().await;
    let api_key = app.api_key().await;
    let url = app.url("/api/v3/sessions");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Each request: its HTTP status if it was answered at all (a request
    // sent after the listener closed gets no answer, which is fine).
    let burst: Vec<_> = (0..300)
        .map(|i| {
            let (client, url, api_key, done) = (reqwest::Client::new(), url.clone(), api_key.clone(), done.clone());
            tokio::spawn(async move {
                let res = client
                    .post(url)
                    .header("x-api-key", api_key)
                    .json(&session_body(&format!("burst-{i}")))
                    .send()
                    .await;
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                res.ok().map(|r| r.status().as_u16())
            })
        })
        .collect();
    // Stop while the burst is in flight (some answered, most not yet):
    // listeners close, requests already taken finish, the writer commits
    // what is queued, then the database closes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while done.load(std::sync::atomic::Ordering::SeqCst) < 10 {
        assert!(std::time::Instant::now() < deadline, "the burst never got going");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let done_at_stop = done.load(std::sync::atomic::Ordering::SeqCst);
    app.stop().await;
    let mut answered = Vec::new();
    for (i, task) in burst.into_iter().enumerate() {
        match task.await.unwrap() {
            Some(200) => answered.push(format!("burst-{i}")),
            // Dropping a request instead of draining it shows up here.
            Some(other) => panic!("burst-{i} was answered {other} during the shutdown"),
            None => {}
        }
    }
    assert!(answered.len() >= done_at_stop.min(10), "answered before the stop");

    let db = app::domain::storage::db::Db::connect(&app.db_url).await.unwrap();
    let stored: std::collections::HashSet<String> =
        sqlx::query_as::<_, (String,)>("SELECT user_id FROM end_users WHERE user_id LIKE 'burst-%'")
            .fetch_all(db.read())
            .await
            .unwrap()
            .into_iter()
            .map(|(u,)| u)
            .collect();
    db.close().await;
    // Every answered user is stored…
    for user_id in &answered {
        assert!(stored.contains(user_id), "{user_id} was answered 200 but is not stored");
    }
    // …and every stored user was answered: a request taken in, whose user
    // was written, was finished, not dropped with its connection.
    let unanswered: Vec<&String> = stored.iter().filter(|u| !answered.contains(*u)).collect();
    assert!(unanswered.is_empty(), "stored but never answered: {unanswered:?}");
    assert!(
        stored.len() > done_at_stop,
        "requests in flight at the stop were finished ({} stored, {done_at_stop} done before it)",
        stored.len()
    );
}

/// The same new users created by many requests at once, in every order
/// (overlapping batches on PostgreSQL): all answered, one row each.
#[tokio::test]
async fn the_same_new_users_created_at_once_are_stored_once() {
    let app = TestApp::ready().await;
    let names = ["ann", "bob", "cid", "dee", "eve"];
    let api_key = app.api_key().await;
    let requests: Vec<_> = (0..200)
        .map(|i| {
            // Each request names a user; neighbours name them in opposite orders.
            let user_id = if i % 2 == 0 { names[i % 5] } else { names[4 - i % 5] };
            (user_id, spawn_session(&app, &api_key, session_body(user_id)))
        })
        .collect();
    let mut ids: std::collections::HashMap<&str, std::collections::HashSet<String>> = Default::default();
    for (user_id, request) in requests {
        let res = request.await.unwrap();
        assert_eq!(res.status(), 200, "a session for {user_id} failed");
        let body: Value = res.json().await.unwrap();
        let id = body["users"][0]["_id"].as_str().expect("the session names its user");
        ids.entry(user_id).or_default().insert(id.to_string());
    }
    assert_eq!(ids.len(), 5);
    for (user_id, seen) in &ids {
        assert_eq!(seen.len(), 1, "{user_id} was answered as different users: {seen:?}");
    }

    let db = app::domain::storage::db::Db::connect(&app.db_url).await.unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM end_users")
        .fetch_one(db.read())
        .await
        .unwrap();
    db.close().await;
    assert_eq!(rows, 5);
}

#[tokio::test]
async fn an_auth_token_redeemed_by_many_requests_at_once_opens_one_session() {
    let app = TestApp::ready().await;
    let admin = app.admin_with_token("ops");
    app.settle().await;
    let key = app.server_key(&admin, 0).await;
    let token = app.mint(&key, "frank").await.text().await.unwrap();
    let api_key = app.api_key().await;
    let attempts: Vec<_> = (0..24)
        .map(|_| {
            spawn_session(
                &app,
                &api_key,
                json!({ "userId": "frank", "deviceId": "d", "authToken": token }),
            )
        })
        .collect();
    let mut statuses = Vec::new();
    for a in attempts {
        statuses.push(a.await.unwrap().status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 23, "{statuses:?}");
}

#[tokio::test]
async fn a_rename_on_another_instance_reaches_this_one_within_a_second() {
    let app = TestApp::ready().await;
    let api_key = app.api_key().await;
    let first = app
        .session(json!({ "userId": "carol", "deviceId": "d", "displayName": "Carol" }))
        .await;
    assert_eq!(first.status(), 200);
    // Known now: kept in memory by this instance.
    let again: Value = app.session(session_body("carol")).await.json().await.unwrap();
    assert_eq!(again["users"][0]["displayName"], "Carol");

    // A second instance on the same database renames her.
    let other = server::startup::build(config_for(&app.data_dir, &app.db_url))
        .await
        .unwrap();
    let res = reqwest::Client::new()
        .post(format!("http://{}/api/v3/sessions", other.http_addr))
        .header("x-api-key", &api_key)
        .json(&json!({ "userId": "carol", "deviceId": "d", "displayName": "Caroline" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let mut seen = String::new();
    for _ in 0..20 {
        let body: Value = app.session(session_body("carol")).await.json().await.unwrap();
        seen = body["users"][0]["displayName"].as_str().unwrap().to_string();
        if seen == "Caroline" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, "Caroline", "the rename reached the first instance");
    other.shutdown().await.unwrap();
}

/// Sessions whose user was certainly not stored: no read before the write.
const NEW: &str = "keyward_known_user_lookups_total{result=\"new\"}";
const MISSES: &str = "keyward_known_user_lookups_total{result=\"miss\"}";
const USER_WRITES: &str = "keyward_writer_writes_total{kind=\"user\"}";

/// One sample of `/metrics`, by its name and labels.
async fn sample(app: &TestApp, series: &str) -> f64 {
    let samples = crate::http_surface::scrape(app).await;
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("{series} is not in /metrics: {samples:?}"))
}

/// A restarted server loads the users seen most recently into memory
/// (beside the traffic, at start): their next sessions read nothing.
#[tokio::test]
async fn a_restarted_server_has_its_recent_users_in_memory() {
    let mut app = TestApp::ready().await;
    for user in ["dora", "eve"] {
        assert_eq!(app.session(session_body(user)).await.status(), 200);
    }
    app.restart_with(|_| {}).await;
    within(
        "the stored users loaded into memory",
        Duration::from_secs(10),
        || async { sample(&app, "keyward_known_users").await >= 2.0 },
    )
    .await;
    let first: Value = app.session(session_body("dora")).await.json().await.unwrap();
    assert_eq!(first["users"][0]["userId"], "dora");
    assert_eq!(first["users"][0]["displayName"], "dora");
    assert_eq!(
        sample(&app, "keyward_known_user_lookups_total{result=\"hit\"}").await,
        1.0
    );
    assert_eq!(
        sample(&app, "keyward_known_user_lookups_total{result=\"miss\"}").await,
        0.0
    );
}

/// A stored user who is not in memory (evicted from a full cache) costs
/// one read, never a write through the batching writer, and is in memory
/// for the next session.
#[tokio::test]
async fn a_stored_user_not_in_memory_is_read_not_written() {
    let mut app = TestApp::ready().await;
    assert_eq!(app.session(session_body("dora")).await.status(), 200);
    // A cache with room for a few users.
    app.restart_with(|c| c.user_cache_memory = 1024).await;
    let writes = "keyward_writer_writes_total{kind=\"user\"}";
    let (hits, misses) = (
        "keyward_known_user_lookups_total{result=\"hit\"}",
        "keyward_known_user_lookups_total{result=\"miss\"}",
    );
    within("dora loaded into memory", Duration::from_secs(10), || async {
        sample(&app, "keyward_known_users").await >= 1.0
    })
    .await;
    assert_eq!(sample(&app, writes).await, 0.0);

    // Twenty new users: each a miss (or, once the filter of stored ids has
    // loaded, certainly new), then stored by the writer; the first ones
    // are evicted.
    for n in 0..20 {
        assert_eq!(app.session(session_body(&format!("user-{n}"))).await.status(), 200);
    }
    assert_eq!(sample(&app, writes).await, 20.0);
    assert_eq!(sample(&app, misses).await + sample(&app, NEW).await, 20.0);
    assert!(sample(&app, "keyward_known_users").await < 10.0);
    assert!(sample(&app, "keyward_known_user_bytes").await <= 1024.0);

    // An evicted user is read again, not written, and is in memory after.
    // Which users the policy kept is its own business (the first ones may
    // have been admitted to its main part): the first of them that misses.
    let mut evicted = None;
    for n in 0..20 {
        let misses_before = sample(&app, misses).await;
        let body: Value = app
            .session(session_body(&format!("user-{n}")))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["users"][0]["userId"], format!("user-{n}"));
        if sample(&app, misses).await > misses_before {
            evicted = Some((n, body));
            break;
        }
    }
    let (n, first) = evicted.expect("fewer than ten of the twenty are held: some were evicted");
    assert_eq!(
        sample(&app, writes).await,
        20.0,
        "a stored user went through the writer"
    );
    let (hits_before, misses_before) = (sample(&app, hits).await, sample(&app, misses).await);
    let again: Value = app
        .session(session_body(&format!("user-{n}")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["users"][0]["_id"], first["users"][0]["_id"]);
    assert_eq!(sample(&app, hits).await, hits_before + 1.0, "the user is in memory now");
    assert_eq!(sample(&app, misses).await, misses_before);
}

/// Opens sessions for new users until one is counted certainly new: the
/// filter of stored user ids has loaded (beside the traffic, at start).
async fn wait_for_the_stored_ids(app: &TestApp) {
    let probes = std::sync::atomic::AtomicU32::new(0);
    within("the stored user ids loaded", Duration::from_secs(10), || {
        let n = probes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            assert_eq!(app.session(session_body(&format!("probe-{n}"))).await.status(), 200);
            sample(app, NEW).await >= 1.0
        }
    })
    .await;
}

/// What a session did: the user it answered, and how many look-ups were
/// certainly new, how many read, how many users written.
async fn counted_session(app: &TestApp, body: Value) -> (Value, f64, f64, f64) {
    let (new, misses, writes) = (
        sample(app, NEW).await,
        sample(app, MISSES).await,
        sample(app, USER_WRITES).await,
    );
    let res = app.session(body).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    (
        body["users"][0].clone(),
        sample(app, NEW).await - new,
        sample(app, MISSES).await - misses,
        sample(app, USER_WRITES).await - writes,
    )
}

/// A new user's session is written without a read first (the filter of
/// stored ids says the user is certainly new); a stored user the cache
/// does not hold is read, never written, whether stored before the start
/// (the filter loaded them all, past its first page) or since.
#[tokio::test]
async fn a_new_user_is_written_without_a_read_and_a_stored_one_is_read() {
    let mut app = TestApp::ready().await;
    assert_eq!(app.session(session_body("dora")).await.status(), 200);
    // More users than the load reads in one page, stored behind the
    // server's back: "seeded-9999" sorts last, onto the last page.
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < 10050) \
         INSERT INTO end_users (id, user_id, display_name, created_at, updated_at) \
         SELECT 'seeded-' || i, 'seeded-' || i, 'seeded', 1, 1 FROM n",
    )
    .execute(app.kw().db().write())
    .await
    .unwrap();
    // No room for anyone in memory: every session looks a user up.
    app.restart_with(|c| c.user_cache_memory = 1).await;
    wait_for_the_stored_ids(&app).await;

    let (_, new, read, written) = counted_session(&app, session_body("frank")).await;
    assert_eq!((new, read, written), (1.0, 0.0, 1.0), "a new user: written, not read");
    for stored in ["dora", "seeded-9999", "seeded-0", "frank"] {
        let (user, new, read, written) = counted_session(&app, session_body(stored)).await;
        assert_eq!((new, read, written), (0.0, 1.0, 0.0), "{stored}: read, not written");
        if stored.starts_with("seeded") {
            assert_eq!(user["_id"], stored, "the stored row");
            assert_eq!(user["displayName"], "seeded");
        }
    }
}

/// A user another instance stored after this one loaded its filter is
/// taken for new once: the writer finds the row and answers it, no second
/// user is made, and from then on the user is read.
#[tokio::test]
async fn a_user_stored_by_another_instance_is_answered_as_stored() {
    let app = TestApp::ready_with(|c| c.user_cache_memory = 1).await;
    wait_for_the_stored_ids(&app).await;
    let other = server::startup::build(config_for(&app.data_dir, &app.db_url))
        .await
        .unwrap();
    let res = reqwest::Client::new()
        .post(format!("http://{}/api/v3/sessions", other.http_addr))
        .header("x-api-key", app.api_key().await)
        .json(&json!({ "userId": "gina", "deviceId": "d", "displayName": "Gina" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let theirs: Value = res.json().await.unwrap();

    // The row the other instance stored, her name included (not the one
    // this instance would have written: her user id).
    let stored_id = theirs["users"][0]["_id"].as_str().unwrap();
    let (user, new, read, _) = counted_session(&app, session_body("gina")).await;
    assert_eq!((new, read), (1.0, 0.0), "this instance had not seen her");
    assert_eq!(user["_id"], stored_id, "the user stored, not another");
    assert_eq!(user["displayName"], "Gina");
    let (user, new, read, written) = counted_session(&app, session_body("gina")).await;
    assert_eq!((new, read, written), (0.0, 1.0, 0.0), "known to the filter now: read");
    assert_eq!(user["_id"], stored_id);
    other.shutdown().await.unwrap();
}

//! The audit log out (issue 19): streamed as JSON Lines from any event,
//! the same from the API and the CLI, and an exported copy checked
//! offline by `keyward audit verify --file`, which finds a missing event
//! and an edited one.

use serde_json::{json, Value};

use crate::helpers::*;

async fn export(app: &TestApp, token: &str, query: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/audit-events/export{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// Audited changes: secure mode switched on and off, `n` times.
async fn changes(app: &TestApp, token: &str, n: usize) {
    for i in 0..n {
        let res = app
            .client
            .patch(app.url("/api/v1/settings"))
            .bearer_auth(token)
            .json(&json!({ "secureMode": i % 2 == 0 }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
}

async fn stored_events(app: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events")
        .fetch_one(app.kw().db().read())
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn the_audit_log_streams_as_json_lines_from_any_event() {
    let app = TestApp::ready().await;
    let token = app.admin_with_token("ops");
    app.settle().await;
    // More events than the export reads at once (500).
    changes(&app, &token, 510).await;
    let total = stored_events(&app).await;
    assert!(total > 510, "{total} events");

    let res = export(&app, &token, "").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let all = lines(&res.text().await.unwrap());
    assert_eq!(all.len() as i64, total, "every event, once");
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e["seq"], i as i64 + 1, "oldest first, none missing");
        for field in ["time", "actor", "action", "target", "source", "prevHash", "hash"] {
            assert!(e[field].is_string(), "{field} in {e}");
        }
        assert!(e["at"].is_i64() && e.get("detail").is_some(), "{e}");
        let before = if i == 0 {
            "0".repeat(64)
        } else {
            all[i - 1]["hash"].as_str().unwrap().to_string()
        };
        assert_eq!(e["prevHash"], before.as_str(), "each line names the hash before it");
    }
    let switched = all
        .iter()
        .filter(|e| e["action"] == "settings.update" && e["detail"].to_string().contains("secure_mode"))
        .count();
    assert_eq!(
        switched,
        510,
        "the secure-mode switches, their detail as JSON: {:?}",
        all.last()
    );

    // Resumed from any event.
    let after = total - 3;
    let tail = lines(
        &export(&app, &token, &format!("?after={after}"))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(tail.len(), 3);
    assert_eq!(tail[0], all[after as usize]);
    assert_eq!(tail[2], all[total as usize - 1]);
    let past = export(&app, &token, &format!("?after={total}")).await;
    assert_eq!(past.status(), 200);
    assert_eq!(past.text().await.unwrap(), "");

    // Bad input: the JSON envelope, a 400; no token: a 401.
    for query in ["?after=-1", "?after=three", "?since=1"] {
        let res = export(&app, &token, query).await;
        assert_eq!(res.status(), 400, "{query}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "error", "{query}: {body}");
    }
    let anonymous = app
        .client
        .get(app.url("/api/v1/audit-events/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn an_exported_copy_is_checked_offline_and_a_gap_or_an_edit_is_found() {
    let app = TestApp::ready().await;
    let token = app.admin_with_token("ops");
    app.settle().await;
    changes(&app, &token, 6).await;
    let total = stored_events(&app).await;

    let cli = app.keyward(&["audit", "export"], None);
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let copy = String::from_utf8(cli.stdout).unwrap();
    let api = export(&app, &token, "").await.text().await.unwrap();
    assert_eq!(copy, api, "the CLI and the API export the same lines");
    assert_eq!(copy.lines().count() as i64, total);

    let check = |name: &str, text: &str| {
        let file = app.data_dir.join(name);
        std::fs::write(&file, text).unwrap();
        app.keyward(&["audit", "verify", "--file", file.to_str().unwrap()], None)
    };
    let intact = check("all.jsonl", &copy);
    assert!(intact.status.success(), "{}", String::from_utf8_lossy(&intact.stderr));
    assert!(
        String::from_utf8_lossy(&intact.stdout).contains(&format!("intact: {total} events (1 to {total})")),
        "{}",
        String::from_utf8_lossy(&intact.stdout)
    );
    let resumed = app.keyward(&["audit", "export", "--after", "3"], None);
    let resumed = check("resumed.jsonl", &String::from_utf8(resumed.stdout).unwrap());
    assert!(
        String::from_utf8_lossy(&resumed.stdout).contains(&format!("intact: {} events (4 to {total})", total - 3)),
        "{}",
        String::from_utf8_lossy(&resumed.stdout)
    );

    let originals: Vec<&str> = copy.lines().collect();
    let refused = |name: &str, text: String, expected: &str| {
        let out = check(name, &text);
        assert!(!out.status.success(), "{name} passed");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(expected), "{name}: {said}");
    };
    // A missing event.
    let mut gap = originals.clone();
    gap.remove(4);
    refused("gap.jsonl", gap.join("\n"), "event 5 is missing");
    // An edited event: its actor, its time as chained, its time as shown.
    for (field, value, expected) in [
        ("actor", json!("mallory"), "at event 6: its content was changed"),
        ("at", json!(0), "at event 6: its content was changed"),
        (
            "time",
            json!("2020-01-01T00:00:00.000Z"),
            "at event 6: its time was changed",
        ),
    ] {
        let mut edited = originals.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        let mut event: Value = serde_json::from_str(&edited[5]).unwrap();
        event[field] = value;
        edited[5] = event.to_string();
        refused("edited.jsonl", edited.join("\n"), expected);
    }
    // An edited event given a hash of its own, the next line chained on to
    // it: without the key the hash cannot be right.
    let mut rechained = originals.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    let mut event: Value = serde_json::from_str(&rechained[5]).unwrap();
    event["actor"] = json!("mallory");
    event["hash"] = json!("ab".repeat(32));
    rechained[5] = event.to_string();
    let mut next: Value = serde_json::from_str(&rechained[6]).unwrap();
    next["prevHash"] = json!("ab".repeat(32));
    rechained[6] = next.to_string();
    refused(
        "rechained.jsonl",
        rechained.join("\n"),
        "at event 6: its content was changed",
    );
    // A line twice, two lines swapped, no event at all, not an event.
    let mut doubled = originals.clone();
    doubled.insert(3, originals[3]);
    refused("doubled.jsonl", doubled.join("\n"), "event 4 comes after event 4");
    let mut swapped = originals.clone();
    swapped.swap(2, 3);
    refused("swapped.jsonl", swapped.join("\n"), "event 3 is missing");
    refused("empty.jsonl", "\n \n".into(), "it holds no event");
    refused(
        "garbage.jsonl",
        format!("{}\nnot json\n", originals[0]),
        "line 2 is not an exported event",
    );
}

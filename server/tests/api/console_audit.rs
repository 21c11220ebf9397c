use crate::helpers::*;

/// The audit log page's HTML for `query`, as a signed-in browser sees it.
async fn audit_page(app: &TestApp, query: &str) -> String {
    let res = app
        .client
        .get(app.url(&format!("/settings/audit-log{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// The `data-action` of each row, in page order.
fn actions(html: &str) -> Vec<String> {
    html.split("<tr data-action=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_audit_log_lists_filters_and_pages_events_for_signed_in_admins() {
    let app = TestApp::ready().await;
    let res = anonymous().get(app.url("/settings/audit-log")).send().await.unwrap();
    assert_eq!(res.status(), 302, "signed-out visitors are sent to sign in");
    assert!(location(&res).starts_with("/login"));

    let token = app.admin_with_token("alice");
    app.settle().await;
    // Signed in first: a sign-in is on record too.
    app.login().await;
    let mut keys = Vec::new();
    for _ in 0..50 {
        keys.push(app.server_key(&token, 0).await);
    }

    // Newest first: the 50 server keys fill the first page, and a link
    // leads to the older events (setup, alice's creation and token).
    let first = audit_page(&app, "").await;
    assert!(first.contains("Audit log"));
    let rows = actions(&first);
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|a| a == "server_key.generate"), "{rows:?}");
    assert!(first.contains("127.0.0.1 (admin API)"), "where each came from");
    // A key is named by its prefix, never shown whole.
    assert!(keys.iter().all(|k| !first.contains(k.as_str())), "never a secret");
    let older = first
        .split("href=\"")
        .map(|s| s.split('"').next().unwrap())
        .find(|h| h.contains("before="))
        .expect("a link to older events")
        .replace("&amp;", "&");
    let second = audit_page(&app, older.trim_start_matches("/settings/audit-log")).await;
    let rows = actions(&second);
    assert!(rows.contains(&"admin.create".to_string()), "{rows:?}");
    assert!(rows.contains(&"application.setup".to_string()), "{rows:?}");
    // The 50 keys filled the first page exactly: none is left for this one.
    assert!(!rows.contains(&"server_key.generate".to_string()), "{rows:?}");
    assert!(!second.contains("before="), "the oldest page has no older link");

    // Filters: by action, actor and target.
    let tokens = actions(&audit_page(&app, "?action=admin_token").await);
    assert!(!tokens.is_empty());
    assert!(tokens.iter().all(|a| a.starts_with("admin_token")), "{tokens:?}");
    let by_operator = audit_page(&app, "?actor=operator").await;
    assert!(actions(&by_operator).contains(&"admin.create".to_string()));
    assert!(!actions(&by_operator).contains(&"server_key.generate".to_string()));
    let alice = actions(&audit_page(&app, "?target=alice").await);
    assert!(alice.contains(&"admin.create".to_string()), "{alice:?}");
    let none = audit_page(&app, "?actor=nobody").await;
    assert!(none.contains("No events match."));
    // Any part, in any case: "REVOKE" finds revocations, "LIC" alice's
    // events, "OPERAT" the CLI's; LIKE's own characters are taken literally.
    app.keyward(&["admin", "revoke-token", "--username", "alice"], None);
    let revokes = actions(&audit_page(&app, "?action=REVOKE").await);
    assert!(
        !revokes.is_empty() && revokes.iter().all(|a| a.contains("revoke")),
        "{revokes:?}"
    );
    let lic = actions(&audit_page(&app, "?target=LIC").await);
    assert!(lic.contains(&"admin.create".to_string()), "{lic:?}");
    let operat = actions(&audit_page(&app, "?actor=OPERAT").await);
    assert!(operat.contains(&"admin.create".to_string()), "{operat:?}");
    let wild = audit_page(&app, "?action=admin%25create").await;
    assert!(wild.contains("No events match."), "% is a character, not a wildcard");
    let under = actions(&audit_page(&app, "?action=e_e").await);
    assert!(under.is_empty(), "_ is a character, not a wildcard: {under:?}");

    // A filter nothing could match is refused with a readable message.
    let long = "a".repeat(201);
    let refused = audit_page(&app, &format!("?target={long}")).await;
    assert!(refused.contains("Target must be at most 200 characters."), "{refused}");
}

/// Sign-ins, refused passwords (at sign-in for an admin's name, and when
/// re-entered), the token given at sign-in and sign-outs are on record; a
/// typed password never is, and a name nobody has is not kept.
#[tokio::test]
async fn sign_ins_refusals_and_sign_outs_are_on_record_without_the_password() {
    let app = TestApp::ready().await;
    app.create_admin("alice");
    let stranger = browser(&app.base);
    let refused = |username: &'static str| {
        let client = stranger.clone();
        let app = &app;
        async move {
            let (_, body) = app
                .call(
                    &client,
                    "login",
                    &[("username", username), ("password", "pw-typo-s3cret")],
                )
                .await;
            assert!(body.contains("Incorrect username or password"), "{body}");
        }
    };
    refused("nobody-x9").await;
    refused("alice").await;
    // A refusal is recorded after its answer: wait for it (bounded).
    let operator = app::domain::Principal::operator();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, page) = app
            .kw()
            .audit_page(&operator, Default::default(), None, Some(5))
            .await
            .unwrap();
        if page.events.iter().any(|e| e.action == "admin.sign_in_refused") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the refusal was never recorded");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let alice = browser(&app.base);
    assert_eq!(app.login_with(&alice, "alice", ADMIN_PASSWORD).await.status(), 302);
    let (status, body) = app
        .call(&alice, "retrieve_token", &[("password", "pw-typo-s3cret")])
        .await;
    assert_ne!(status, 200, "{body}");
    let (status, _) = app.call(&alice, "logout", &[]).await;
    assert!(status < 400, "signed out");
    // A second sign-out, with the session gone, names nobody.
    app.call(&alice, "logout", &[]).await;

    let (_, page) = app
        .kw()
        .audit_page(&operator, Default::default(), None, Some(10))
        .await
        .unwrap();
    let events: Vec<_> = page.events.iter().take(6).collect();
    // (The sixth is older: alice's creation.)
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("alice", "admin.sign_out", "alice"),
            ("alice", "admin.reauthenticate_refused", "alice"),
            ("alice", "admin.sign_in", "alice"),
            ("alice", "admin_token.issue_at_sign_in", "alice"),
            ("anonymous", "admin.sign_in_refused", "alice"),
            ("operator", "admin.create", "alice"),
        ],
        "newest first"
    );
    for e in &page.events {
        let all = format!("{} {} {} {} {}", e.actor, e.action, e.target, e.detail, e.source);
        assert!(!all.contains("pw-typo-s3cret"), "a typed password is on record: {all}");
        assert!(!all.contains("nobody-x9"), "an unknown name is kept: {all}");
    }
    assert!(events[0].source.contains("127.0.0.1"), "{:?}", events[0].source);
}

/// Details read as fields with human times, a settings change as before →
/// after; a time range narrows the list; a bad date is a readable refusal.
#[tokio::test]
async fn the_audit_log_reads_plainly_and_narrows_by_time() {
    let app = TestApp::ready().await;
    app.login().await;
    let (status, body) = app.call(&app.client, "set_secure_mode", &[("enabled", "true")]).await;
    assert_eq!(status, 200, "{body}");

    let html = audit_page(&app, "?action=settings").await;
    assert_eq!(actions(&html), ["settings.update"], "{html}");
    assert!(html.contains("secure mode: off → on"), "before → after: {html}");
    assert!(!html.contains("mtls"), "only what changed: {html}");
    // A token's issue carries its expiry: a time, not a number.
    app.admin_with_token("ops");
    let html = audit_page(&app, "?action=admin_token.generate").await;
    assert!(!actions(&html).is_empty(), "{html}");
    assert!(!html.contains("\"expires_at\""), "no raw JSON: {html}");
    assert!(html.contains("expires at: ") && html.contains(" UTC"), "{html}");

    let today = time::OffsetDateTime::now_utc().date().to_string();
    assert!(!actions(&audit_page(&app, &format!("?from={today}&to={today}")).await).is_empty());
    let html = audit_page(&app, "?from=2001-01-01&to=2001-01-31").await;
    assert!(html.contains("data-testid=\"audit-empty\""), "{html}");
    let html = audit_page(&app, "?from=yesterday").await;
    assert!(html.contains("a date like 2026-11-28"), "{html}");
    // The actions on record are offered for the action filter.
    assert!(html.contains("<option value=\"settings.update\""), "{html}");
}

/// The filtered view leaves as CSV or JSON Lines, for signed-in admins
/// only; a cell a spreadsheet would run as a formula is defused.
#[tokio::test]
async fn the_filtered_audit_log_exports_as_csv_and_json_lines() {
    let app = TestApp::ready().await;
    let res = anonymous()
        .get(app.url("/console/audit-log/export?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed out: to the sign-in page");
    app.login().await;
    app.call(&app.client, "set_secure_mode", &[("enabled", "true")]).await;
    // A name a spreadsheet would take for a formula.
    app.call(
        &app.client,
        "generate_server_key",
        &[("overlap_hours", "0"), ("name", "=HYPERLINK(\"x\")")],
    )
    .await;

    let res = app
        .client
        .get(app.url("/console/audit-log/export?format=csv&action=server_key"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".csv\""));
    let csv = res.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("seq,at,actor,action,target,detail,source"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert!(rows[0].contains(",server_key.generate,"), "{csv}");

    let res = app
        .client
        .get(app.url("/console/audit-log/export?format=jsonl"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let body = res.text().await.unwrap();
    let events: Vec<serde_json::Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.len() >= 3, "{body}");
    let update = events
        .iter()
        .find(|e| e["action"] == "settings.update")
        .expect("the settings change");
    assert_eq!(update["detail"]["secure_mode"]["to"], true, "{update}");
    assert!(update["at"].as_str().unwrap().ends_with('Z'), "{update}");

    let res = app
        .client
        .get(app.url("/console/audit-log/export?format=xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[test]
fn a_csv_cell_that_would_run_as_a_formula_is_quoted_as_text() {
    assert_eq!(server::http::csv_cell("=1+1"), "\"'=1+1\"");
    assert_eq!(server::http::csv_cell("a,\"b\""), "\"a,\"\"b\"\"\"");
    assert_eq!(server::http::csv_cell("plain"), "plain");
}

/// The console's Audit log page offers the same stream as the admin API's
/// export: the whole log, oldest first, each event with its chain hash,
/// which `keyward audit verify --file` checks; resumable with `after`.
#[tokio::test]
async fn the_console_downloads_the_verifiable_stream() {
    let app = TestApp::ready().await;
    let res = anonymous()
        .get(app.url("/console/audit-log/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "signed out: to the sign-in page");
    app.login().await;
    assert!(app
        .html("/settings/audit-log")
        .await
        .contains("/console/audit-log/stream"));
    app.call(&app.client, "set_secure_mode", &[("enabled", "true")]).await;
    let res = app
        .client
        .get(app.url("/console/audit-log/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".jsonl\""));
    let body = res.text().await.unwrap();
    let events: Vec<serde_json::Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "every event, oldest first"
    );
    assert!(events.iter().all(|e| e["hash"].as_str().is_some_and(|h| h.len() == 64)));
    let file = app.data_dir.join("console-stream.jsonl");
    std::fs::write(&file, &body).unwrap();
    let out = app.keyward(&["audit", "verify", "--file", file.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let res = app
        .client
        .get(app.url("/console/audit-log/stream?after=2"))
        .send()
        .await
        .unwrap();
    let rest = res.text().await.unwrap();
    assert_eq!(rest.lines().count(), events.len() - 2, "resumed after event 2");
    let res = app
        .client
        .get(app.url("/console/audit-log/stream?after=-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

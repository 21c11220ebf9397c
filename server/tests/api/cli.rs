use crate::helpers::*;

#[tokio::test]
async fn init_sets_up_without_a_browser_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path()).await;
    let init = |pw: &str| {
        run_keyward(
            dir.path(),
            &db.url,
            &[
                "init",
                "--app-name",
                "Acme CLI",
                "--region",
                "sg",
                "--admin-username",
                "ops",
                "--admin-password-stdin",
            ],
            Some(pw),
        )
    };
    let out = init("an operator password\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let again = init("an operator password\n");
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already set up"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line reason: {err}");

    // The server starts with setup closed, and the operator can sign in.
    let running = server::startup::build(config_for(dir.path(), &db.url)).await.unwrap();
    assert!(running.setup_token.is_none());
    let base = format!("http://{}", running.http_addr);
    let client = browser(&base);
    let res = client
        .post(format!("{base}/console/fn/login"))
        .header("referer", format!("{base}/login"))
        .form(&[("username", "ops"), ("password", "an operator password")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/settings/integrations");
    let html = client
        .get(format!("{base}/settings/integrations"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Acme CLI") && html.contains("SG"), "{html}");
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn passwords_only_come_from_stdin_and_are_checked() {
    let app = TestApp::ready().await;
    let out = app.keyward(&["admin", "create", "--username", "dave"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));
    let out = app.keyward(
        &["admin", "create", "--username", "dave", "--password-stdin"],
        Some("short\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("12 characters"));
    let out = app.keyward(
        &["admin", "create", "--username", ADMIN, "--password-stdin"],
        Some("a long enough password\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[tokio::test]
async fn reset_password_replaces_the_old_one() {
    let app = TestApp::ready().await;
    let out = app.keyward(
        &["admin", "reset-password", "--username", ADMIN, "--password-stdin"],
        Some("a brand new password\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, body) = app
        .call(&app.client, "login", &[("username", ADMIN), ("password", PASSWORD)])
        .await;
    assert!(body.contains("Incorrect"), "{body}");
    let res = app.login_with(&app.client, ADMIN, "a brand new password").await;
    assert_eq!(location(&res), "/settings/integrations");
    let out = app.keyward(&["admin", "disable", "--username", "nobody-at-all"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such admin"));
}

#[tokio::test]
async fn audit_chain_verifies_and_records_changes_without_secrets() {
    let app = TestApp::ready().await;
    app.keyward(
        &["admin", "create", "--username", "erin", "--password-stdin"],
        Some("erin's long password\n"),
    );
    let out = app.keyward(&["audit", "verify"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact: 3 events"));
    let events = app::domain::audit::recent(app.running.as_ref().unwrap().keyward.db(), 10)
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["admin.create", "application.setup", "signing_key.create"]);
    for e in &events {
        assert!(!e.detail.contains(PASSWORD), "{}", e.detail);
        assert!(!e.detail.contains("kwapi_") && !e.detail.contains("erin's long password"));
    }
}

#[tokio::test]
async fn config_errors_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"));
        cmd.args(args)
            .env("KEYWARD_DATA_DIR", dir.path())
            .env_remove("DATABASE_URL");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // SPEC §9: scripts rely on a non-zero exit and a one-line reason.
    let one_line = |out: &std::process::Output| {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    };
    let out = run(&[("KEYWARD_HTTP_ADDR", "not-an-address")], &["migrate"]);
    assert!(one_line(&out).contains("http-addr"));

    let out = run(&[("KEYWARD_ADMIN_TOKEN_GRACE", "a day")], &["migrate"]);
    assert!(one_line(&out).contains("admin-token-grace"));

    let out = run(&[], &["admin", "create", "--password-stdin"]);
    assert!(one_line(&out).contains("--username"));
    let out = run(&[], &["no-such-command"]);
    assert!(one_line(&out).contains("no-such-command"));
    // Help is not a failure, and keeps its layout.
    let out = run(&[], &["admin", "--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() > 3);

    let out = run(&[("DATABASE_URL", "mysql://x")], &["migrate"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));

    let file = dir.path().join("keyward.toml");
    std::fs::write(&file, "public_url = \"ftp://nowhere\"\n").unwrap();
    let out = run(&[("KEYWARD_CONFIG", file.to_str().unwrap())], &["migrate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("public_url"));

    let out = run(
        &[("KEYWARD_MASTER_KEY_FILE", "/nonexistent/master.key")],
        &[
            "init",
            "--app-name",
            "A",
            "--region",
            "eu",
            "--admin-username",
            "ops",
            "--admin-password-stdin",
        ],
    );
    assert!(!out.status.success());
}

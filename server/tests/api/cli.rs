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

/// `keyward config check`: every setting with its effective value and
/// where it came from, the database password redacted; non-zero when a
/// file it names cannot be read.
#[tokio::test]
async fn config_check_shows_each_value_with_its_source_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keyward.toml");
    std::fs::write(&file, "idle_timeout = \"2m\"\nmax_connections = 64\n").unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
            .args(args)
            .env("KEYWARD_DATA_DIR", dir.path())
            .env("KEYWARD_CONFIG", &file)
            .env("KEYWARD_HTTP_ADDR", "127.0.0.1:4100")
            .env("DATABASE_URL", "postgres://kw:hunter2-secret@127.0.0.1:5432/kw")
            .output()
            .unwrap()
    };
    let out = run(&["config", "check", "--admin-token-ttl", "30d"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let line = |key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("{key} missing: {text}"))
            .to_string()
    };
    assert!(
        line("http_addr").contains("127.0.0.1:4100")
            && line("http_addr").ends_with("[environment (KEYWARD_HTTP_ADDR)]")
    );
    assert!(line("idle_timeout").contains("2m") && line("idle_timeout").ends_with("[file]"));
    assert!(line("max_connections").contains("64") && line("max_connections").ends_with("[file]"));
    assert!(line("admin_token_ttl").contains("30d") && line("admin_token_ttl").ends_with("[flag]"));
    assert!(line("auth_token_ttl").contains("10m") && line("auth_token_ttl").ends_with("[default]"));
    assert!(line("database_url").contains("kw:redacted@"), "{text}");
    assert!(!text.contains("hunter2-secret"), "the password is never printed");
    assert!(text.contains("configuration OK"));
    // A password given as a parameter is hidden too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(["config", "check"])
        .env("KEYWARD_DATA_DIR", dir.path())
        .env(
            "DATABASE_URL",
            "postgres://kw@127.0.0.1:5432/kw?sslmode=disable&password=hunter3-secret",
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains("hunter3-secret") && text.contains("password=redacted"),
        "{text}"
    );

    // A file named but unreadable is a problem: non-zero, and it is named.
    let out = run(&[
        "config",
        "check",
        "--tls-cert",
        "/nowhere/cert.pem",
        "--tls-key",
        "/nowhere/key.pem",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("KEYWARD_TLS_CERT") && err.contains("/nowhere/cert.pem"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("configuration OK"));

    // A mistyped OTLP endpoint is refused without being repeated: it may
    // hold a token (flag, environment or file alike).
    for endpoint in [
        "http://otel:hunter4-secret@collector:4318",
        "https://collector/?key=hunter4-secret",
    ] {
        let out = run(&["config", "check", "--otlp-endpoint", endpoint]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("KEYWARD_OTLP_ENDPOINT"), "{err}");
        assert!(!err.contains("hunter4-secret"), "{err}");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
            .args(["config", "check"])
            .env("KEYWARD_DATA_DIR", dir.path())
            .env("KEYWARD_OTLP_ENDPOINT", endpoint)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let both = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!both.contains("hunter4-secret"), "{both}");
    }
    let toml = dir.path().join("otlp.toml");
    std::fs::write(&toml, "otlp_endpoint = \"http://otel:hunter4-secret@collector:4318\"\n").unwrap();
    let out = run(&["config", "check", "--config", toml.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter4-secret"));
    let out = run(&["config", "check", "--otlp-endpoint", "http://127.0.0.1:4318"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("http://127.0.0.1:4318/v1/traces"));
}

/// An older binary meeting a newer release's database stops, naming the
/// migration it does not know, and applies nothing (README: Upgrading).
#[tokio::test]
async fn an_older_binary_refuses_a_newer_database() {
    let app = TestApp::spawn().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99999, 'from a newer release', true, $1, 0)",
    )
    .bind(vec![0u8; 48])
    .execute(app.kw().db().write())
    .await
    .unwrap();
    let out = app.keyward(&["migrate"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("99999") && err.contains("newer Keyward"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

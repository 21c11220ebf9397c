use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::redirect::Policy;
use reqwest::{Client, Response};
use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use server::config::Config;
use server::startup::{self, Running};

pub const ADMIN: &str = "root-admin";
pub const PASSWORD: &str = "correct horse battery";
/// The password of admins the tests create (`TestApp::create_admin`).
pub const ADMIN_PASSWORD: &str = "a long enough password";

/// Sets the audit log's append-only triggers aside inside `tx`, as the
/// database's owner could (PostgreSQL: disabled until
/// `restore_audit_triggers`; SQLite: dropped).
pub async fn set_audit_triggers_aside(tx: &mut sqlx::AnyConnection, postgres: bool) {
    if postgres {
        sqlx::query("ALTER TABLE audit_events DISABLE TRIGGER USER")
            .execute(&mut *tx)
            .await
            .unwrap();
    } else {
        for t in ["audit_events_no_update", "audit_events_no_delete"] {
            sqlx::query(&format!("DROP TRIGGER IF EXISTS {t}"))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
    }
}

pub async fn restore_audit_triggers(tx: &mut sqlx::AnyConnection, postgres: bool) {
    if postgres {
        sqlx::query("ALTER TABLE audit_events ENABLE TRIGGER USER")
            .execute(&mut *tx)
            .await
            .unwrap();
    }
}

/// Which database the suite runs on.
/// Which database the suite runs on: `sqlite` (the default) or `postgres`;
/// anything else is a mistake, not SQLite.
pub fn backend() -> String {
    match std::env::var("KEYWARD_TEST_DATABASE").as_deref() {
        Err(_) | Ok("sqlite") => "sqlite".into(),
        Ok("postgres") => "postgres".into(),
        Ok(other) => panic!("KEYWARD_TEST_DATABASE={other:?}: use sqlite or postgres"),
    }
}

/// A fresh, empty database for one test, dropped when the test ends.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
}

fn pg_admin_url() -> String {
    std::env::var("KEYWARD_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    pub async fn new(dir: &Path) -> TestDb {
        if backend() != "postgres" {
            let url = format!("sqlite://{}?mode=rwc", dir.join("keyward.db").display());
            return TestDb { url, pg_name: None };
        }
        use sqlx::Connection;
        let name = format!("keyward_test_{}", hex_id());
        let admin = pg_admin_url();
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL is reachable");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
        TestDb {
            url: format!("{base}/{name}"),
            pg_name: Some(name),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else { return };
        // Drop runs outside async: a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

fn hex_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub struct TestApp {
    pub base: String,
    /// The HTTPS listener, `https://127.0.0.1:PORT`.
    pub https_base: String,
    pub client: Client,
    pub setup_token: Option<String>,
    pub running: Option<Running>,
    pub data_dir: PathBuf,
    pub db_url: String,
    // Field order: the server stops before its database is dropped.
    _db: TestDb,
    _dir: tempfile::TempDir,
}

pub fn config_for(dir: &Path, db_url: &str) -> Config {
    let mut config = Config::with_data_dir(dir);
    config.http_addr = "127.0.0.1:0".parse().unwrap();
    config.https_addr = "127.0.0.1:0".parse().unwrap();
    config.database_url = db_url.to_string().into();
    config
}

/// With `KEYWARD_TEST_LOG=<file>`, the servers of every test log there at
/// debug level (or as `KEYWARD_TEST_LOG_FILTER` says), each line naming
/// its test (the thread's name): for finding what a stuck or failing
/// test's server was doing.
fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let Ok(path) = std::env::var("KEYWARD_TEST_LOG") else {
        return;
    };
    ONCE.call_once(|| {
        let file = std::fs::File::create(&path).expect("the test log can be created");
        let filter = std::env::var("KEYWARD_TEST_LOG_FILTER")
            .unwrap_or_else(|_| "debug,sqlx=info,hyper=info,hyper_util=info,h2=info,rustls=info".into());
        let filter = tracing_subscriber::EnvFilter::new(filter);
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_thread_names(true)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    });
}

/// A browser-like client: keeps cookies, does not follow redirects (tests
/// look at them), and sends the Origin a same-site page would.
pub fn browser(base: &str) -> Client {
    let mut headers = HeaderMap::new();
    headers.insert("origin", HeaderValue::from_str(base.trim_end_matches('/')).unwrap());
    // What a browser asks for when it navigates; it decides how redirects are sent.
    headers.insert("accept", HeaderValue::from_static("text/html"));
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

impl TestApp {
    /// A fresh server with setup still open.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        init_logs();
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(dir.path()).await;
        let mut config = config_for(dir.path(), &db.url);
        tweak(&mut config);
        let running = startup::build(config).await.expect("server starts");
        let base = format!("http://{}", running.http_addr);
        let https_base = format!("https://{}", running.https_addr);
        TestApp {
            https_base,
            client: browser(&base),
            setup_token: running.setup_token.as_ref().map(|t| t.expose_secret().to_string()),
            data_dir: dir.path().to_path_buf(),
            db_url: db.url.clone(),
            base,
            running: Some(running),
            _db: db,
            _dir: dir,
        }
    }

    /// A fresh server, set up, with the super admin ADMIN signed out.
    pub async fn ready() -> TestApp {
        Self::ready_with(|_| {}).await
    }

    /// As [`TestApp::ready`], configured as `tweak` says.
    pub async fn ready_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        let app = Self::spawn_with(tweak).await;
        let res = app.setup(app.setup_token.clone().unwrap().as_str(), PASSWORD).await;
        assert_eq!(res.status(), 302, "setup redirects to sign-in");
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Calls a server function the way a page without JavaScript does: a
    /// form post with `Accept: text/html` from the page at `referer`.
    pub async fn form(&self, client: &Client, function: &str, referer: &str, fields: &[(&str, &str)]) -> Response {
        client
            .post(self.url(&format!("/console/fn/{function}")))
            .header("accept", "text/html")
            .header("referer", self.url(referer))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Calls a server function the way the hydrated page does; the body is
    /// the JSON result or the JSON-encoded error.
    pub async fn call(&self, client: &Client, function: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let res = client
            .post(self.url(&format!("/console/fn/{function}")))
            .header("accept", "application/json")
            .form(fields)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    pub async fn setup(&self, token: &str, password: &str) -> Response {
        self.form(
            &self.client,
            "setup",
            &format!("/setup?token={token}"),
            &[
                ("token", token),
                ("app_name", "Acme Chat"),
                ("region", "eu"),
                ("username", ADMIN),
                ("password", password),
                ("password_confirm", password),
            ],
        )
        .await
    }

    pub async fn login_with(&self, client: &Client, username: &str, password: &str) -> Response {
        self.form(
            client,
            "login",
            "/login",
            &[("username", username), ("password", password)],
        )
        .await
    }

    pub async fn login(&self) -> Response {
        self.login_with(&self.client, ADMIN, PASSWORD).await
    }

    /// Stops the server (gracefully) and keeps the data for a restart.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.unwrap();
        }
    }

    /// Stops the server and starts it again on the same data and database,
    /// configured as `tweak` says (a new port: use [`TestApp::url`]).
    pub async fn restart_with(&mut self, tweak: impl FnOnce(&mut Config)) {
        self.stop().await;
        let mut config = config_for(&self.data_dir, &self.db_url);
        tweak(&mut config);
        let running = startup::build(config).await.expect("server starts again");
        self.base = format!("http://{}", running.http_addr);
        self.https_base = format!("https://{}", running.https_addr);
        self.client = browser(&self.base);
        self.running = Some(running);
    }

    /// Runs the real `keyward` binary against this test's data.
    pub fn keyward(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_keyward(&self.data_dir, &self.db_url, args, stdin)
    }
}

pub fn run_keyward(data_dir: &Path, db_url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .env("KEYWARD_DATA_DIR", data_dir)
        .env("DATABASE_URL", db_url)
        .env("KEYWARD_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keyward binary runs");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// The session cookie the server set on a response, if any.
pub fn session_cookie(res: &Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("keyward="))
        .map(|v| v.split(';').next().unwrap().to_string())
}

pub fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A client with no cookies and no Origin, navigating like a browser.
pub fn anonymous() -> Client {
    let mut headers = HeaderMap::new();
    headers.insert("accept", HeaderValue::from_static("text/html"));
    Client::builder()
        .redirect(Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

impl TestApp {
    pub fn kw(&self) -> &app::domain::Keyward {
        &self.running.as_ref().expect("server running").keyward
    }

    pub async fn api_key(&self) -> String {
        let operator = app::domain::Principal::operator();
        self.kw().application(&operator).await.expect("set up").api_key
    }

    /// Creates an admin (password `ADMIN_PASSWORD`) through the CLI.
    pub fn create_admin(&self, username: &str) {
        let out = self.keyward(
            &["admin", "create", "--username", username, "--password-stdin"],
            Some(&format!("{ADMIN_PASSWORD}\n")),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Creates an admin through the CLI and gives them a token.
    pub fn admin_with_token(&self, username: &str) -> String {
        self.create_admin(username);
        self.issue_token(username)
    }

    pub fn issue_token(&self, username: &str) -> String {
        let out = self.keyward(&["admin", "issue-token", "--username", username], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Waits (bounded) until the server's views reflect changes made by
    /// another process, as a second instance would see them.
    pub async fn settle(&self) {
        self.kw().refresh().await.unwrap();
    }

    /// A server key through the admin API.
    pub async fn server_key(&self, admin_token: &str, overlap: i64) -> String {
        let res = self
            .client
            .post(self.url("/api/v1/server-keys"))
            .bearer_auth(admin_token)
            .json(&serde_json::json!({ "overlapSeconds": overlap }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        body["serverKey"].as_str().unwrap().to_string()
    }

    pub async fn mint(&self, server_key: &str, user_id: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v4/authentication/token"))
            .header("x-server-key", server_key)
            .json(&serde_json::json!({ "userId": user_id }))
            .send()
            .await
            .unwrap()
    }

    /// A request without a body, authenticated with a bearer token.
    pub async fn bearer(&self, method: reqwest::Method, path: &str, token: impl std::fmt::Display) -> Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` with a bearer token, as JSON.
    pub async fn bearer_json(&self, path: &str, token: impl std::fmt::Display) -> serde_json::Value {
        self.bearer(reqwest::Method::GET, path, token)
            .await
            .json()
            .await
            .unwrap()
    }

    /// A page's HTML, fetched with this app's own client.
    pub async fn html(&self, path: &str) -> String {
        self.html_as(&self.client, path).await
    }

    /// A page's HTML, fetched with `client` (another admin's cookies).
    pub async fn html_as(&self, client: &reqwest::Client, path: &str) -> String {
        client.get(self.url(path)).send().await.unwrap().text().await.unwrap()
    }

    /// Opens a session for `user_id` (device "d") and returns its access token.
    pub async fn session_token(&self, user_id: &str) -> String {
        let body: serde_json::Value = self
            .session(serde_json::json!({ "userId": user_id, "deviceId": "d" }))
            .await
            .json()
            .await
            .unwrap();
        body["accessToken"].as_str().expect("an access token").to_string()
    }

    pub async fn session(&self, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/v3/sessions"))
            .header("x-api-key", self.api_key().await)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

/// Asserts the JSON error envelope and returns its message.
pub async fn envelope(res: reqwest::Response, status: u16, code: u64) -> String {
    assert_eq!(res.status().as_u16(), status);
    let body: serde_json::Value = res.json().await.expect("a JSON error body");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["code"], code, "{body}");
    body["message"].as_str().unwrap().to_string()
}

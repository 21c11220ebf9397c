//! Start-up: data directory, master key, database, migrations, listeners
//! (plain HTTP, and HTTPS with optional client certificates).
//! `build` binds and returns the address, so tests run the real app on
//! port 0 exactly as `keyward serve` does.

use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use app::domain::admins::throttle::ThrottlePolicy;
use app::domain::secrets::MasterKey;
use app::domain::storage::db::Db;
use app::domain::traces::Traces;
use app::domain::{Keyward, Mode, Settings};

use crate::config::Config;
use crate::error::ServerError;
use crate::http;
use crate::serve::{serve, Places, PlainListener};
use crate::tls::{self, TlsListener};

/// A running server.
pub struct Running {
    pub http_addr: SocketAddr,
    pub https_addr: SocketAddr,
    pub public_url: String,
    /// Present while setup is open: the one-time token for the setup page.
    pub setup_token: Option<SecretString>,
    pub keyward: Keyward,
    /// Sends spans, when an OTLP endpoint is configured.
    spans: Option<crate::telemetry::traces::Exporter>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    tls_server: JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub fn setup_url(&self) -> Option<String> {
        self.setup_token
            .as_ref()
            .map(|t| format!("{}setup?token={}", self.public_url, t.expose_secret()))
    }

    /// Stops accepting, lets requests in flight finish, closes the database.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        let _ = self.shutdown.send(true);
        let spans = self.spans.take();
        let served = self
            .server
            .await
            .map_err(|e| ServerError::Domain(format!("server task: {e}")))?;
        let served_tls = self
            .tls_server
            .await
            .map_err(|e| ServerError::Domain(format!("HTTPS server task: {e}")))?;
        self.keyward.stop().await;
        // After the domain has stopped: the writer's last batches are spans too.
        if let Some(spans) = spans {
            spans.shutdown().await;
        }
        served.map_err(ServerError::io("HTTP server"))?;
        served_tls.map_err(ServerError::io("HTTPS server"))
    }
}

/// Who opens the database: the server (and `init`), whose master key is
/// the chain's and is created on first start; or another command, which
/// must find the server's key and never makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    Server,
    Tool,
}

/// The database, opened, with the master key it was opened with and the
/// state of its audit chain.
pub struct Opened {
    pub db: Db,
    pub master_key: MasterKey,
    pub chain: app::domain::audit::ChainState,
}

/// Opens the database named by the configuration, brings its schema up to
/// date, and opens its keys with the master key (refused if it is not
/// the one they were sealed with).
pub async fn open_database(config: &Config, opener: Opener) -> Result<Opened, ServerError> {
    ensure_dir(&config.data_dir)?;
    let url = config.database_url.expose_secret();
    create_private_sqlite_file(url)?;
    let master = match opener {
        Opener::Server => load_master_key(config)?,
        Opener::Tool => existing_master_key(config)?,
    };
    let db = Db::connect(url)
        .await
        .map_err(|e| ServerError::Config(format!("DATABASE_URL (--database-url): cannot open the database: {e}")))?;
    // Closed on every refusal: SQLite then folds its log back and removes
    // its -wal/-shm files (a restore that fails leaves nothing behind).
    if let Err(e) = db.migrate().await {
        db.close().await;
        let detail = match e {
            app::domain::DomainError::Internal(detail) => detail,
            other => other.to_string(),
        };
        return Err(ServerError::Config(format!(
            "DATABASE_URL (--database-url): cannot bring the schema up to date \
             (if a newer Keyward migrated it, run that release): {detail}"
        )));
    }
    let opened = async {
        let keys = app::domain::keyring::open(&db, &master, opener == Opener::Server).await?;
        let chain = app::domain::audit::chain_state(&db).await?;
        Ok::<_, app::domain::DomainError>((keys, chain))
    };
    let (keys, chain) = match opened.await {
        Ok(opened) => opened,
        Err(e) => {
            db.close().await;
            return Err(e.into());
        }
    };
    Ok(Opened {
        db: db.with_keys(keys),
        master_key: master,
        chain,
    })
}

/// SQLite creates a new database file with the process's umask (0644 as a
/// rule): readable by every local user. Created here first, 0600; its
/// journal files take the same mode from it.
fn create_private_sqlite_file(url: &str) -> Result<(), ServerError> {
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return Ok(());
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = Path::new(path);
    // Only where the URL asks SQLite to create the file: a mistyped path
    // without `mode=rwc` must fail, not start an empty Keyward.
    let creates = query.split('&').any(|kv| kv == "mode=rwc");
    if !creates || path.as_os_str().is_empty() || rest.starts_with(":memory:") || path.exists() {
        return Ok(());
    }
    match crate::files::create_private(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(ServerError::Config(format!(
            "DATABASE_URL (--database-url): cannot create {}: {e}",
            path.display()
        ))),
    }
}

/// The file of a SQLite database URL (`None` for PostgreSQL or memory).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

/// The master key file the configuration names, or the data directory's.
pub fn master_key_path(config: &Config) -> PathBuf {
    config
        .master_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("master.key"))
}

/// The domain's settings from the configuration.
fn settings(config: &Config, public_url: String, https_url: String, traces: Traces) -> Settings {
    Settings {
        lifetimes: config.lifetimes,
        public_url,
        https_url,
        throttle: ThrottlePolicy::default(),
        revocation_memory: config.revocation_memory,
        user_cache_memory: config.user_cache_memory,
        refresh_interval: config.refresh_interval,
        traces,
        webhook_allow_private: config.webhook_allow_private,
    }
}

/// The domain for a one-shot command (`init`, `admin …`): the database
/// opened as `opener`, no background work. Stop it when done.
pub async fn open_domain(config: &Config, opener: Opener) -> Result<Keyward, ServerError> {
    let Opened { db, master_key, .. } = open_database(config, opener).await?;
    let public_url = config.public_url_for(config.http_addr);
    // A one-shot command sends no spans.
    let https_url = config.https_url_for(config.https_addr);
    let settings = settings(config, public_url, https_url, Traces::default());
    match Keyward::start(db.clone(), master_key, settings, Mode::Tool).await {
        Ok(kw) => Ok(kw),
        Err(e) => {
            db.close().await;
            Err(e.into())
        }
    }
}

pub async fn build(config: Config) -> Result<Running, ServerError> {
    let Opened { db, master_key, chain } = open_database(&config, Opener::Server).await?;
    if chain == app::domain::audit::ChainState::NotYetKeyed {
        db.close().await;
        return Err(ServerError::Config(
            "the audit log was written before Keyward keyed its chain: stop every instance, \
             run `keyward audit rekey` once, then start again"
                .into(),
        ));
    }
    warn_if_open(&config.data_dir);
    let listener = TcpListener::bind(config.http_addr)
        .await
        .map_err(|e| ServerError::Config(format!("KEYWARD_HTTP_ADDR (--http-addr) {}: {e}", config.http_addr)))?;
    let http_addr = listener.local_addr().map_err(ServerError::io("HTTP listener"))?;
    let public_url = config.public_url_for(http_addr);
    let tls_config = tls::server_config(&config)?;
    let tls_tcp = TcpListener::bind(config.https_addr)
        .await
        .map_err(|e| ServerError::Config(format!("KEYWARD_HTTPS_ADDR (--https-addr) {}: {e}", config.https_addr)))?;
    let limits = config.connections;
    let tls_places = Places::new(limits.max_per_listener);
    let tls_listener =
        TlsListener::new(tls_tcp, tls_config, tls_places.clone()).map_err(ServerError::io("HTTPS listener"))?;
    let https_addr = tls_listener.local_addr();

    let (traces, spans) = crate::telemetry::traces::start(config.otlp_endpoint.as_deref())?;
    let keyward = Keyward::start(
        db,
        master_key,
        settings(&config, public_url.clone(), config.https_url_for(https_addr), traces),
        Mode::Server,
    )
    .await?;
    let setup_token = keyward.open_setup_if_needed().await?;

    let (shutdown, _) = watch::channel(false);
    let router = http::router(http::Parts {
        keyward: keyward.clone(),
        store: keyward.console_session_store(),
        site_root: config.site_root.clone(),
        client_cert_header: config.client_cert_header.clone(),
    });
    let plain_places = Places::new(limits.max_per_listener);
    let plain = PlainListener::new(listener, plain_places.clone());
    let server = tokio::spawn(serve(plain, router.clone(), limits, plain_places, shutdown.subscribe()));
    let tls_server = tokio::spawn(serve(tls_listener, router, limits, tls_places, shutdown.subscribe()));
    Ok(Running {
        http_addr,
        https_addr,
        public_url,
        setup_token,
        keyward,
        spans,
        shutdown,
        server,
        tls_server,
    })
}

/// The data directory holds the master key and (by default) the database:
/// created 0700. One that already exists is left as the operator made it
/// (the server warns if other users may read it).
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), ServerError> {
    let fail = |e: std::io::Error| ServerError::Config(format!("KEYWARD_DATA_DIR (--data-dir) {}: {e}", dir.display()));
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(fail)
}

/// At `serve`: say so if other users may look into the data directory.
fn warn_if_open(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(dir) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %dir.display(), mode = format!("{:o}", mode & 0o777), "the data directory is open to other users; chmod 700 it");
            }
        }
    }
}

/// The server's master key for a command other than `serve` and `init`:
/// it must exist (a new one would write what the server cannot read).
pub fn existing_master_key(config: &Config) -> Result<MasterKey, ServerError> {
    let path = config
        .master_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("master.key"));
    if !path.exists() {
        return Err(ServerError::Config(format!(
            "KEYWARD_MASTER_KEY_FILE (--master-key-file) {}: no master key there; \
             use the server's key file (only `serve` and `init` create one)",
            path.display()
        )));
    }
    load_master_key(config)
}

/// Reads the configured master key file, or creates one (mode 0600) in the
/// data directory on first start.
pub fn load_master_key(config: &Config) -> Result<MasterKey, ServerError> {
    let (path, configured): (PathBuf, bool) = match &config.master_key_file {
        Some(p) => (p.clone(), true),
        None => (config.data_dir.join("master.key"), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => MasterKey::from_encoded(&text)
            .map_err(|e| ServerError::Config(format!("KEYWARD_MASTER_KEY_FILE {}: the key {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !configured => {
            let (key, encoded) = MasterKey::generate();
            crate::files::write_private(&path, encoded.expose_secret())?;
            tracing::info!(path = %path.display(), "generated a new master key; back it up with the database");
            Ok(key)
        }
        Err(e) => Err(ServerError::Config(format!(
            "KEYWARD_MASTER_KEY_FILE (--master-key-file) {}: {e}",
            path.display()
        ))),
    }
}

//! Configuration: flags, then `KEYWARD_*` environment variables, then an
//! optional TOML file, then defaults. A bad or missing value stops start-up
//! with a message that names the setting.

use clap::Args;
use secrecy::SecretString;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use app::domain::Lifetimes;

use crate::error::ServerError;

/// Every setting (SPEC §9), in one struct that clap fills from flags and
/// `KEYWARD_*` variables and serde fills from the TOML file; [`Config::load`]
/// lays the first over the second. No Debug: the database URL may hold a
/// password. Unknown keys in the file are an error, so a typo is not
/// silently ignored.
#[derive(Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigArgs {
    /// TOML file with any of the settings below (flags and environment win).
    #[arg(long, env = "KEYWARD_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Where the embedded database, master key and TLS files live.
    #[arg(long, env = "KEYWARD_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Address of the plain-HTTP listener (console and API).
    #[arg(long, env = "KEYWARD_HTTP_ADDR", global = true, value_parser = parse_addr)]
    #[serde(deserialize_with = "file::addr")]
    pub http_addr: Option<SocketAddr>,
    /// Address of the HTTPS listener (asks for an optional client certificate).
    #[arg(long, env = "KEYWARD_HTTPS_ADDR", global = true, value_parser = parse_addr)]
    #[serde(deserialize_with = "file::addr")]
    pub https_addr: Option<SocketAddr>,
    /// PEM certificate chain of the HTTPS listener (self-signed in the data directory if unset).
    #[arg(long, env = "KEYWARD_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the HTTPS listener.
    #[arg(long, env = "KEYWARD_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Longest validity of an issued client certificate.
    #[arg(long, env = "KEYWARD_CERT_MAX_VALIDITY", global = true, value_parser = parse_duration)]
    #[serde(deserialize_with = "file::duration")]
    pub cert_max_validity: Option<Duration>,
    /// Header in which a trusted TLS-terminating proxy passes the client
    /// certificate (URL-encoded PEM, e.g. nginx's $ssl_client_escaped_cert).
    #[arg(long, env = "KEYWARD_CLIENT_CERT_HEADER", global = true)]
    pub client_cert_header: Option<String>,
    /// Comma-separated IP addresses of the proxies whose header is believed.
    #[arg(long, env = "KEYWARD_TRUSTED_PROXIES", global = true, value_delimiter = ',', value_parser = parse_ip)]
    #[serde(deserialize_with = "file::ips")]
    pub trusted_proxies: Vec<IpAddr>,
    /// Public URL shown in the console (defaults to the HTTP listener's).
    #[arg(long, env = "KEYWARD_PUBLIC_URL", global = true, value_parser = parse_public_url)]
    #[serde(deserialize_with = "file::public_url")]
    pub public_url: Option<String>,
    /// sqlite:… or postgres://… (defaults to SQLite in the data directory).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// File holding the master key (generated in the data directory if unset).
    #[arg(long, env = "KEYWARD_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
    /// Serve the console's browser bundle from this folder (its `pkg/`
    /// subfolder) instead of the one built into the binary: for development.
    #[arg(long, env = "KEYWARD_SITE_ROOT", global = true)]
    pub site_root: Option<PathBuf>,
    /// How long a superseded admin token keeps working.
    #[arg(long, env = "KEYWARD_ADMIN_TOKEN_GRACE", global = true, value_parser = parse_duration)]
    #[serde(deserialize_with = "file::duration")]
    pub admin_token_grace: Option<Duration>,
    /// Lifetime of a new admin token.
    #[arg(long, env = "KEYWARD_ADMIN_TOKEN_TTL", global = true, value_parser = parse_duration)]
    #[serde(deserialize_with = "file::duration")]
    pub admin_token_ttl: Option<Duration>,
    /// Lifetime of an access token.
    #[arg(long, env = "KEYWARD_ACCESS_TOKEN_TTL", global = true, value_parser = parse_duration)]
    #[serde(deserialize_with = "file::duration")]
    pub access_token_ttl: Option<Duration>,
    /// Lifetime of an auth token.
    #[arg(long, env = "KEYWARD_AUTH_TOKEN_TTL", global = true, value_parser = parse_duration)]
    #[serde(deserialize_with = "file::duration")]
    pub auth_token_ttl: Option<Duration>,
    /// A request whose headers have not all arrived after this long is closed.
    #[arg(long, env = "KEYWARD_HEADER_READ_TIMEOUT", global = true, value_parser = parse_duration)]
    #[serde(deserialize_with = "file::duration")]
    pub header_read_timeout: Option<Duration>,
    /// A keep-alive connection with no request for this long is closed.
    #[arg(long, env = "KEYWARD_IDLE_TIMEOUT", global = true, value_parser = parse_duration)]
    #[serde(deserialize_with = "file::duration")]
    pub idle_timeout: Option<Duration>,
    /// A request not answered this long after it began has its connection dropped.
    #[arg(long, env = "KEYWARD_REQUEST_TIMEOUT", global = true, value_parser = parse_duration)]
    #[serde(deserialize_with = "file::duration")]
    pub request_timeout: Option<Duration>,
    /// Open connections per listener; beyond it a connection gets 503.
    #[arg(long, env = "KEYWARD_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Memory for logged-out access tokens, in bytes (default 32 MiB).
    #[arg(long, env = "KEYWARD_REVOCATION_MEMORY", global = true, value_parser = parse_bytes)]
    #[serde(deserialize_with = "file::bytes")]
    pub revocation_memory: Option<usize>,
    /// Memory for end users kept in memory, in bytes (default 128 MiB,
    /// about a million users): a session for one of them reads nothing.
    #[arg(long, env = "KEYWARD_USER_CACHE_MEMORY", global = true, value_parser = parse_bytes)]
    #[serde(deserialize_with = "file::bytes")]
    pub user_cache_memory: Option<usize>,
    /// How often each instance re-reads what other instances changed, in
    /// any case (default 250ms, at most 10s): how long a revocation takes
    /// to reach the others on SQLite. On PostgreSQL changes are also
    /// pushed at once (LISTEN/NOTIFY); this catches what a dropped
    /// connection missed.
    #[arg(long, env = "KEYWARD_REFRESH_INTERVAL", global = true, value_parser = parse_duration)]
    #[serde(deserialize_with = "file::duration")]
    pub refresh_interval: Option<Duration>,
    /// OTLP/HTTP collector to send request and batch spans to (e.g.
    /// http://127.0.0.1:4318; `/v1/traces` is added to a base URL). Unset,
    /// no span is made. Checked in `Config::load`, not by the argument
    /// parser, whose refusal would quote the value (a mistyped one may
    /// hold a token).
    #[arg(long, env = "KEYWARD_OTLP_ENDPOINT", global = true, hide_env_values = true)]
    pub otlp_endpoint: Option<String>,
    /// Let webhooks point at loopback and private addresses (receivers
    /// inside your network). Link-local addresses (cloud metadata) stay
    /// refused.
    #[arg(long, env = "KEYWARD_WEBHOOK_ALLOW_PRIVATE", global = true, num_args = 0..=1, default_missing_value = "true")]
    pub webhook_allow_private: Option<bool>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "KEYWARD_LOG_JSON", global = true)]
    #[serde(skip)]
    pub log_json: bool,
}

impl ConfigArgs {
    /// These settings laid over `under`: a setting given here wins.
    fn over(self, under: ConfigArgs) -> ConfigArgs {
        macro_rules! layered {
            ($($field:ident),* $(,)?) => {
                ConfigArgs {
                    $($field: self.$field.or(under.$field),)*
                    trusted_proxies: if self.trusted_proxies.is_empty() {
                        under.trusted_proxies
                    } else {
                        self.trusted_proxies
                    },
                    config: self.config,
                    log_json: self.log_json,
                }
            };
        }
        layered!(
            data_dir,
            http_addr,
            https_addr,
            tls_cert,
            tls_key,
            cert_max_validity,
            client_cert_header,
            public_url,
            database_url,
            master_key_file,
            site_root,
            admin_token_grace,
            admin_token_ttl,
            access_token_ttl,
            auth_token_ttl,
            header_read_timeout,
            idle_timeout,
            request_timeout,
            max_connections,
            revocation_memory,
            user_cache_memory,
            refresh_interval,
            otlp_endpoint,
            webhook_allow_private,
        )
    }
}

/// The file's values go through the same parsers as the flags'.
mod file {
    use serde::de::{Deserialize, Deserializer, Error};
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;

    fn parsed<'de, D: Deserializer<'de>, T>(d: D, parse: fn(&str) -> Result<T, String>) -> Result<Option<T>, D::Error> {
        let raw = String::deserialize(d)?;
        parse(&raw).map(Some).map_err(D::Error::custom)
    }

    pub fn addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        parsed(d, super::parse_addr)
    }

    pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        parsed(d, super::parse_duration)
    }

    pub fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        parsed(d, super::parse_bytes)
    }

    pub fn public_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        parsed(d, super::parse_public_url)
    }

    pub fn ips<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpAddr>, D::Error> {
        let raw = Vec::<String>::deserialize(d)?;
        raw.iter()
            .map(|r| super::parse_ip(r))
            .collect::<Result<_, _>>()
            .map_err(D::Error::custom)
    }
}

/// How long a connection may dawdle, and how many a listener holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_per_listener: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_per_listener: 10_000,
        }
    }
}

/// The default memory for logged-out access tokens: a filter that still
/// answers "surely live" for all but a few in ten thousand at 10 million.
pub const DEFAULT_REVOCATION_MEMORY: usize = 32 * 1024 * 1024;

/// The default memory for known end users: all of a million of them (about 120 bytes each, measured).
pub const DEFAULT_USER_CACHE_MEMORY: usize = 128 * 1024 * 1024;

/// The default interval of the refresh that picks up other instances'
/// changes: a revocation is in force everywhere within it, on SQLite.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_millis(250);

/// Resolved configuration.
#[derive(Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    pub https_addr: SocketAddr,
    /// Certificate chain and key files of the HTTPS listener, if configured.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// A trusted proxy's client-certificate header, and the proxies.
    pub client_cert_header: Option<ClientCertHeader>,
    pub public_url: Option<String>,
    pub database_url: SecretString,
    pub master_key_file: Option<PathBuf>,
    pub site_root: Option<PathBuf>,
    pub lifetimes: Lifetimes,
    pub connections: ConnectionLimits,
    /// Bytes of memory for logged-out access tokens.
    pub revocation_memory: usize,
    /// Bytes of memory for known end users.
    pub user_cache_memory: usize,
    /// How often other instances' changes are re-read in any case.
    pub refresh_interval: Duration,
    /// The OTLP/HTTP traces URL spans go to, if any.
    pub otlp_endpoint: Option<String>,
    /// Webhooks may point at loopback and private addresses.
    pub webhook_allow_private: bool,
}

impl Config {
    /// Defaults for everything, with the data in `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        let data_dir = data_dir.into();
        Config {
            database_url: SecretString::from(default_database_url(&data_dir)),
            data_dir,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            https_addr: SocketAddr::from(([127, 0, 0, 1], 3443)),
            tls: None,
            client_cert_header: None,
            public_url: None,
            master_key_file: None,
            site_root: None,
            lifetimes: Lifetimes::default(),
            connections: ConnectionLimits::default(),
            revocation_memory: DEFAULT_REVOCATION_MEMORY,
            user_cache_memory: DEFAULT_USER_CACHE_MEMORY,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            otlp_endpoint: None,
            webhook_allow_private: false,
        }
    }

    /// Flags and environment, over the file named by `--config`, over the
    /// defaults; checked as a whole, each refusal naming its setting.
    pub fn load(args: &ConfigArgs) -> Result<Config, ServerError> {
        let s = match &args.config {
            Some(path) => args.clone().over(read_file(path)?),
            None => args.clone(),
        };
        let mut config = Config::with_data_dir(s.data_dir.unwrap_or_else(|| PathBuf::from("./data")));
        if let Some(addr) = s.http_addr {
            config.http_addr = addr;
        }
        if let Some(addr) = s.https_addr {
            config.https_addr = addr;
        }
        config.tls = match (s.tls_cert, s.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(ServerError::Config(
                    "KEYWARD_TLS_CERT (--tls-cert) and KEYWARD_TLS_KEY (--tls-key) must be set together".into(),
                ))
            }
        };
        config.client_cert_header = match (s.client_cert_header, s.trusted_proxies.is_empty()) {
            (None, true) => None,
            (Some(name), false) => {
                let name = axum::http::HeaderName::try_from(name.trim()).map_err(|_| {
                    ServerError::Config(format!(
                        "KEYWARD_CLIENT_CERT_HEADER (--client-cert-header): {name:?} is not a header name"
                    ))
                })?;
                Some(ClientCertHeader {
                    name,
                    proxies: s.trusted_proxies,
                })
            }
            _ => {
                return Err(ServerError::Config(
                    "KEYWARD_CLIENT_CERT_HEADER (--client-cert-header) and KEYWARD_TRUSTED_PROXIES \
                     (--trusted-proxies) must be set together: the header is believed only from those proxies"
                        .into(),
                ))
            }
        };
        config.public_url = s.public_url;
        if let Some(url) = s.database_url {
            if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ServerError::Config(
                    "DATABASE_URL (--database-url): must start with sqlite:, postgres:// or postgresql://".into(),
                ));
            }
            config.database_url = SecretString::from(url);
        }
        config.master_key_file = s.master_key_file;
        config.site_root = s.site_root;
        let d = Lifetimes::default();
        config.lifetimes = Lifetimes {
            admin_token_grace: s.admin_token_grace.unwrap_or(d.admin_token_grace),
            admin_token_ttl: s.admin_token_ttl.unwrap_or(d.admin_token_ttl),
            access_token_ttl: s.access_token_ttl.unwrap_or(d.access_token_ttl),
            auth_token_ttl: s.auth_token_ttl.unwrap_or(d.auth_token_ttl),
            cert_max_validity: s.cert_max_validity.unwrap_or(d.cert_max_validity),
            ..d
        };
        let c = ConnectionLimits::default();
        config.connections = ConnectionLimits {
            header_read_timeout: s.header_read_timeout.unwrap_or(c.header_read_timeout),
            idle_timeout: s.idle_timeout.unwrap_or(c.idle_timeout),
            request_timeout: s.request_timeout.unwrap_or(c.request_timeout),
            max_per_listener: s.max_connections.unwrap_or(c.max_per_listener),
        };
        if config.connections.max_per_listener == 0 {
            return Err(ServerError::Config(
                "KEYWARD_MAX_CONNECTIONS (--max-connections): must be at least 1".into(),
            ));
        }
        config.revocation_memory = s.revocation_memory.unwrap_or(DEFAULT_REVOCATION_MEMORY);
        config.user_cache_memory = s.user_cache_memory.unwrap_or(DEFAULT_USER_CACHE_MEMORY);
        config.refresh_interval = s.refresh_interval.unwrap_or(DEFAULT_REFRESH_INTERVAL);
        config.webhook_allow_private = s.webhook_allow_private.unwrap_or(false);
        // It bounds how long a revocation takes to reach the other
        // instances on SQLite, or without notifications: kept short.
        if config.refresh_interval < Duration::from_millis(10) || config.refresh_interval > Duration::from_secs(10) {
            return Err(ServerError::Config(
                "KEYWARD_REFRESH_INTERVAL (--refresh-interval): must be between 10ms and 10s".into(),
            ));
        }
        config.otlp_endpoint = s
            .otlp_endpoint
            .as_deref()
            .map(parse_otlp_endpoint)
            .transpose()
            .map_err(|e| ServerError::Config(format!("KEYWARD_OTLP_ENDPOINT (--otlp-endpoint): {e}")))?;
        Ok(config)
    }

    /// The URL shown to people: configured, or the HTTP listener's own.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None => format!("http://{bound}/"),
        }
    }

    /// Where backends reach the HTTPS (mTLS) listener bound at `bound`:
    /// the public URL's host on that port, or the address itself.
    pub fn https_url_for(&self, bound: SocketAddr) -> String {
        match self.public_url.as_deref().and_then(host_of) {
            Some(host) => format!("https://{host}:{}/", bound.port()),
            // Every interface: only the operator knows the name to use.
            None if bound.ip().is_unspecified() => format!("https://<this server>:{}/", bound.port()),
            None => format!("https://{bound}/"),
        }
    }
}

/// A URL's host, without scheme, port or path (`[…]` kept for IPv6).
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    // Never a user name or password, if the URL carried one.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if authority.starts_with('[') {
        &authority[..=authority.find(']')?]
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// Where a setting's effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Environment,
    Flag,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Environment => "environment",
            Source::Flag => "flag",
        }
    }
}

/// One line of `keyward config check`: a setting, its effective value
/// (secrets redacted) and where it came from.
#[derive(Debug)]
pub struct Effective {
    /// The key in the TOML file (the flag is `--` and the same with dashes).
    pub key: &'static str,
    /// Its environment variable, as clap knows it.
    pub env: Option<String>,
    pub value: String,
    pub source: Source,
}

impl Config {
    /// The effective configuration, each value with its source. `matches`
    /// are the command line's (clap knows flag from environment) and
    /// `command` its definition (each setting's variable); the file is read
    /// again for its keys.
    pub fn explain(
        args: &ConfigArgs,
        command: &clap::Command,
        matches: &clap::ArgMatches,
    ) -> Result<(Config, Vec<Effective>), ServerError> {
        let config = Config::load(args)?;
        let file_keys: Vec<String> = match &args.config {
            Some(path) => std::fs::read_to_string(path)
                .ok()
                .and_then(|text| text.parse::<toml::Table>().ok())
                .map(|table| table.keys().cloned().collect())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let source = |id: &str| {
            use clap::parser::ValueSource;
            // A global flag may be given before or after the subcommand.
            let mut level = Some(matches);
            let mut found = None;
            while let Some(m) = level {
                match m.try_get_raw(id).ok().flatten().and(m.value_source(id)) {
                    Some(ValueSource::CommandLine) => found = Some(Source::Flag),
                    Some(ValueSource::EnvVariable) if found.is_none() => found = Some(Source::Environment),
                    _ => {}
                }
                level = m.subcommand().map(|(_, sub)| sub);
            }
            found.unwrap_or(if file_keys.iter().any(|k| k == id) {
                Source::File
            } else {
                Source::Default
            })
        };
        let c = &config;
        let path = |p: &Path| p.display().to_string();
        let unset = || "(unset)".to_string();
        let rows: Vec<(&'static str, String)> = vec![
            ("data_dir", path(&c.data_dir)),
            ("http_addr", c.http_addr.to_string()),
            ("https_addr", c.https_addr.to_string()),
            (
                "tls_cert",
                c.tls
                    .as_ref()
                    .map_or_else(|| "(self-signed, in the data directory)".into(), |(cert, _)| path(cert)),
            ),
            ("tls_key", c.tls.as_ref().map_or_else(unset, |(_, key)| path(key))),
            (
                "client_cert_header",
                c.client_cert_header.as_ref().map_or_else(unset, |h| h.name.to_string()),
            ),
            (
                "trusted_proxies",
                c.client_cert_header.as_ref().map_or_else(unset, |h| {
                    h.proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
                }),
            ),
            (
                "public_url",
                c.public_url
                    .clone()
                    .unwrap_or_else(|| "(the HTTP listener's address)".into()),
            ),
            (
                "database_url",
                redact_url(secrecy::ExposeSecret::expose_secret(&c.database_url)),
            ),
            (
                "master_key_file",
                c.master_key_file
                    .as_deref()
                    .map_or_else(|| path(&c.data_dir.join("master.key")), path),
            ),
            (
                "site_root",
                c.site_root.as_deref().map_or_else(|| "(built in)".to_owned(), path),
            ),
            ("admin_token_grace", show_duration(c.lifetimes.admin_token_grace)),
            ("admin_token_ttl", show_duration(c.lifetimes.admin_token_ttl)),
            ("access_token_ttl", show_duration(c.lifetimes.access_token_ttl)),
            ("auth_token_ttl", show_duration(c.lifetimes.auth_token_ttl)),
            ("cert_max_validity", show_duration(c.lifetimes.cert_max_validity)),
            ("header_read_timeout", show_duration(c.connections.header_read_timeout)),
            ("idle_timeout", show_duration(c.connections.idle_timeout)),
            ("request_timeout", show_duration(c.connections.request_timeout)),
            ("max_connections", c.connections.max_per_listener.to_string()),
            ("revocation_memory", show_bytes(c.revocation_memory)),
            ("user_cache_memory", show_bytes(c.user_cache_memory)),
            ("refresh_interval", show_duration(c.refresh_interval)),
            (
                "otlp_endpoint",
                c.otlp_endpoint.clone().unwrap_or_else(|| "(no traces)".into()),
            ),
            ("webhook_allow_private", c.webhook_allow_private.to_string()),
        ];
        let effective = rows
            .into_iter()
            .map(|(key, value)| Effective {
                key,
                env: command
                    .get_arguments()
                    .find(|a| a.get_id() == key)
                    .and_then(|a| a.get_env())
                    .map(|e| e.to_string_lossy().into_owned()),
                value,
                source: source(key),
            })
            .collect();
        Ok((config, effective))
    }

    /// What would stop `serve` that loading the settings cannot see:
    /// files named but missing, a data directory that is a file.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.data_dir.exists() && !self.data_dir.is_dir() {
            problems.push(format!(
                "KEYWARD_DATA_DIR (--data-dir) {}: not a directory",
                self.data_dir.display()
            ));
        }
        let mut must_read = |setting: &str, file: &Path| {
            if let Err(e) = std::fs::File::open(file) {
                problems.push(format!("{setting} {}: {e}", file.display()));
            }
        };
        if let Some((cert, key)) = &self.tls {
            must_read("KEYWARD_TLS_CERT (--tls-cert)", cert);
            must_read("KEYWARD_TLS_KEY (--tls-key)", key);
        }
        if let Some(file) = &self.master_key_file {
            must_read("KEYWARD_MASTER_KEY_FILE (--master-key-file)", file);
        }
        problems
    }
}

/// A database URL with its password (if any) replaced.
fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return "(not a URL)".into();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("redacted"));
    }
    // PostgreSQL also takes the password (and client keys) as parameters.
    let secret = |k: &str| {
        let k = k.to_ascii_lowercase();
        k.contains("password") || k.contains("passwd") || k.contains("sslkey")
    };
    if url.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) {
                    "redacted".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// A duration the way the settings take it (`24h`, `30s`, `250ms`).
fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A size the way the settings take it (`32MiB`, `4096`).
fn show_bytes(n: usize) -> String {
    for (unit, size) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n.is_multiple_of(size) {
            return format!("{}{unit}", n / size);
        }
    }
    n.to_string()
}

/// Client certificates passed by a TLS-terminating proxy (off by default).
#[derive(Debug, Clone)]
pub struct ClientCertHeader {
    pub name: axum::http::HeaderName,
    pub proxies: Vec<IpAddr>,
}

fn parse_ip(raw: &str) -> Result<IpAddr, String> {
    raw.trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not an IP address like 10.0.0.5"))
}

fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("keyward.db").display())
}

/// A refusal is one line (SPEC §9): toml's syntax errors say what was
/// found, then what was expected, on two.
fn as_one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The TOML file; a refusal is one line naming the key and the file.
fn read_file(path: &Path) -> Result<ConfigArgs, ServerError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ServerError::Config(format!("KEYWARD_CONFIG (--config) {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        // A bad value's error points at it: name the key on its line.
        let key = e
            .span()
            .map(|span| &text[..span.start])
            .filter(|before| !before.is_empty() && !before.ends_with('\n'))
            .and_then(|before| before.lines().last())
            .and_then(|line| line.split_once('='))
            .map(|(key, _)| key.trim())
            .filter(|key| !key.is_empty());
        match key {
            Some(key) => ServerError::Config(format!("{key} in {}: {}", path.display(), as_one_line(e.message()))),
            None => ServerError::Config(format!("{}: {}", path.display(), as_one_line(e.message()))),
        }
    })
}

fn parse_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not an address like 127.0.0.1:3000"))
}

fn parse_public_url(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{raw:?} must be an http:// or https:// URL"));
    }
    let mut s = url.to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    Ok(s)
}

/// An OTLP/HTTP collector: its base URL, to which the traces path is
/// added as OpenTelemetry's own settings do, or the full traces URL.
/// Plain HTTP: the collector runs beside Keyward (an agent or sidecar)
/// and forwards over its own TLS. No credentials in the URL: they would
/// be shown by `keyward config`; the exporter reads OpenTelemetry's
/// `OTEL_EXPORTER_OTLP_HEADERS` for a collector that wants a token.
pub fn parse_otlp_endpoint(raw: &str) -> Result<String, String> {
    // The value is never echoed: a mistyped one may hold a token.
    let mut url = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if url.scheme() == "https" {
        return Err("Keyward sends spans over plain HTTP to a collector beside it \
             (e.g. http://127.0.0.1:4318), which forwards them over TLS"
            .into());
    }
    if url.scheme() != "http" || url.host_str().is_none() {
        return Err("must be an http:// URL, e.g. http://127.0.0.1:4318".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("no credentials in the URL (set OTEL_EXPORTER_OTLP_HEADERS instead)".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("no query or fragment in the URL".into());
    }
    if !url.path().ends_with("/v1/traces") {
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}/v1/traces"));
    }
    Ok(url.to_string())
}

/// Sizes read like `32MiB`, `512KiB`, `1GiB` or a number of bytes.
pub fn parse_bytes(raw: &str) -> Result<usize, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{raw:?} is not a size like 32MiB, 512KiB or 1048576"))?;
    let unit_bytes: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "{raw:?} is not a size like 32MiB, 512KiB or 1048576 (units: B, KiB, MiB, GiB)"
            ))
        }
    };
    let total = n
        .checked_mul(unit_bytes)
        .ok_or_else(|| format!("{raw:?} is too large"))?;
    if total < 1024 {
        return Err(format!("{raw:?} is too small: at least 1KiB"));
    }
    Ok(total)
}

/// Durations read like `24h`, `3s`, `365d`, `10m`, `500ms`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 24h, 3s or 365d"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{raw:?} is not a duration like 24h, 3s or 365d (units: ms, s, m, h, d)"
            ))
        }
    };
    let total = n.checked_mul(secs).ok_or_else(|| format!("{raw:?} is too long"))?;
    if total == 0 {
        return Err(format!("{raw:?} must be longer than zero"));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_https_url_is_the_public_hosts_on_the_bound_port() {
        let bound: SocketAddr = "0.0.0.0:3443".parse().unwrap();
        let mut config = Config::with_data_dir("/nonexistent");
        assert_eq!(config.https_url_for(bound), "https://<this server>:3443/");
        assert_eq!(
            config.https_url_for("127.0.0.1:3443".parse().unwrap()),
            "https://127.0.0.1:3443/"
        );
        for (public, want) in [
            ("https://keyward.example.com/", "https://keyward.example.com:3443/"),
            (
                "http://keyward.example.com:8080/base",
                "https://keyward.example.com:3443/",
            ),
            ("http://[2001:db8::1]:8080/", "https://[2001:db8::1]:3443/"),
            ("https://ops:pw@kw.example.com/", "https://kw.example.com:3443/"),
            ("https://u@[::1]/", "https://[::1]:3443/"),
        ] {
            config.public_url = Some(public.into());
            assert_eq!(config.https_url_for(bound), want, "{public}");
        }
    }

    #[test]
    fn durations_parse_in_every_unit_and_reject_nonsense() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("365d").unwrap(), Duration::from_secs(365 * 86_400));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        for bad in ["", "h", "10", "10x", "-1h", "0s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn otlp_endpoints_name_the_traces_path_and_carry_no_credentials() {
        assert_eq!(
            parse_otlp_endpoint("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            parse_otlp_endpoint("http://collector:4318/otlp/").unwrap(),
            "http://collector:4318/otlp/v1/traces"
        );
        assert_eq!(
            parse_otlp_endpoint("http://collector/v1/traces").unwrap(),
            "http://collector/v1/traces"
        );
        for bad in [
            "",
            "collector:4318",
            "ftp://collector/",
            "https://collector:4318",
            "http://user:secret@collector:4318",
            "http://collector:4318/?token=x",
        ] {
            let err = parse_otlp_endpoint(bad).expect_err(bad);
            assert!(!err.contains("secret") && !err.contains("token="), "{err}");
        }
    }

    #[test]
    fn sizes_parse_and_limits_come_from_the_file() {
        assert_eq!(parse_bytes("32MiB").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("1GiB").unwrap(), 1 << 30);
        for bad in ["", "12", "1MB", "-1KiB", "KiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} should be refused");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(
            &path,
            "header_read_timeout = \"5s\"\nidle_timeout = \"2m\"\nmax_connections = 64\nrevocation_memory = \"8MiB\"\n\
             user_cache_memory = \"16MiB\"\nrefresh_interval = \"1s\"\n",
        )
        .unwrap();
        let c = Config::load(&ConfigArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            c.connections,
            ConnectionLimits {
                header_read_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(120),
                request_timeout: Duration::from_secs(30),
                max_per_listener: 64,
            }
        );
        assert_eq!(c.revocation_memory, 8 << 20);
        assert_eq!(c.user_cache_memory, 16 << 20);
        assert_eq!(c.refresh_interval, Duration::from_secs(1));
        let defaults = Config::load(&ConfigArgs::default()).unwrap();
        assert_eq!(defaults.user_cache_memory, 128 << 20);
        assert_eq!(defaults.refresh_interval, Duration::from_millis(250));
        for (bad, named) in [
            ("max_connections = 0\n", "MAX_CONNECTIONS"),
            ("refresh_interval = \"5ms\"\n", "REFRESH_INTERVAL"),
            ("refresh_interval = \"1m\"\n", "REFRESH_INTERVAL"),
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = Config::load(&ConfigArgs {
                config: Some(path.clone()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.to_string().contains(named), "{bad}: {err}");
        }
    }

    #[test]
    fn file_settings_apply_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(&path, "http_addr = \"127.0.0.1:4000\"\nadmin_token_grace = \"2h\"\n").unwrap();
        let args = ConfigArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.http_addr.port(), 4000);
        assert_eq!(c.lifetimes.admin_token_grace, Duration::from_secs(7200));
        let args = ConfigArgs {
            config: Some(path),
            http_addr: Some("127.0.0.1:5000".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(Config::load(&args).unwrap().http_addr.port(), 5000);
    }

    #[test]
    fn bad_file_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(&path, "auth_token_ttl = \"soon\"\n").unwrap();
        let err = Config::load(&ConfigArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("auth_token_ttl"), "{err}");
        std::fs::write(&path, "htp_addr = \"x\"\n").unwrap();
        let err = Config::load(&ConfigArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("htp_addr"), "{err}");
        let err = Config::load(&ConfigArgs {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
    }
}

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

/// The settings every command shares (SPEC §9). No Debug: the database
/// URL may hold a password.
#[derive(Clone, Default, Args)]
pub struct ConfigArgs {
    /// TOML file with any of the settings below (flags and environment win).
    #[arg(long, env = "KEYWARD_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Where the embedded database, master key and TLS files live.
    #[arg(long, env = "KEYWARD_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Address of the plain-HTTP listener (console and API).
    #[arg(long, env = "KEYWARD_HTTP_ADDR", global = true, value_parser = parse_addr)]
    pub http_addr: Option<SocketAddr>,
    /// Address of the HTTPS listener (asks for an optional client certificate).
    #[arg(long, env = "KEYWARD_HTTPS_ADDR", global = true, value_parser = parse_addr)]
    pub https_addr: Option<SocketAddr>,
    /// PEM certificate chain of the HTTPS listener (self-signed in the data directory if unset).
    #[arg(long, env = "KEYWARD_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the HTTPS listener.
    #[arg(long, env = "KEYWARD_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Longest validity of an issued client certificate.
    #[arg(long, env = "KEYWARD_CERT_MAX_VALIDITY", global = true, value_parser = parse_duration)]
    pub cert_max_validity: Option<Duration>,
    /// Header in which a trusted TLS-terminating proxy passes the client
    /// certificate (URL-encoded PEM, e.g. nginx's $ssl_client_escaped_cert).
    #[arg(long, env = "KEYWARD_CLIENT_CERT_HEADER", global = true)]
    pub client_cert_header: Option<String>,
    /// Comma-separated IP addresses of the proxies whose header is believed.
    #[arg(long, env = "KEYWARD_TRUSTED_PROXIES", global = true, value_delimiter = ',', value_parser = parse_ip)]
    pub trusted_proxies: Vec<IpAddr>,
    /// Public URL shown in the console (defaults to the HTTP listener's).
    #[arg(long, env = "KEYWARD_PUBLIC_URL", global = true, value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// sqlite:… or postgres://… (defaults to SQLite in the data directory).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// File holding the master key (generated in the data directory if unset).
    #[arg(long, env = "KEYWARD_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
    /// Directory of the console's built assets (the `pkg/` folder's parent).
    #[arg(long, env = "KEYWARD_SITE_ROOT", global = true)]
    pub site_root: Option<PathBuf>,
    /// How long a superseded admin token keeps working.
    #[arg(long, env = "KEYWARD_ADMIN_TOKEN_GRACE", global = true, value_parser = parse_duration)]
    pub admin_token_grace: Option<Duration>,
    /// Lifetime of a new admin token.
    #[arg(long, env = "KEYWARD_ADMIN_TOKEN_TTL", global = true, value_parser = parse_duration)]
    pub admin_token_ttl: Option<Duration>,
    /// Lifetime of an access token.
    #[arg(long, env = "KEYWARD_ACCESS_TOKEN_TTL", global = true, value_parser = parse_duration)]
    pub access_token_ttl: Option<Duration>,
    /// Lifetime of an auth token.
    #[arg(long, env = "KEYWARD_AUTH_TOKEN_TTL", global = true, value_parser = parse_duration)]
    pub auth_token_ttl: Option<Duration>,
    /// A request whose headers have not all arrived after this long is closed.
    #[arg(long, env = "KEYWARD_HEADER_READ_TIMEOUT", global = true, value_parser = parse_duration)]
    pub header_read_timeout: Option<Duration>,
    /// A keep-alive connection with no request for this long is closed.
    #[arg(long, env = "KEYWARD_IDLE_TIMEOUT", global = true, value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// A request not answered this long after it began has its connection dropped.
    #[arg(long, env = "KEYWARD_REQUEST_TIMEOUT", global = true, value_parser = parse_duration)]
    pub request_timeout: Option<Duration>,
    /// Open connections per listener; beyond it a connection gets 503.
    #[arg(long, env = "KEYWARD_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Memory for logged-out access tokens, in bytes (default 32 MiB).
    #[arg(long, env = "KEYWARD_REVOCATION_MEMORY", global = true, value_parser = parse_bytes)]
    pub revocation_memory: Option<usize>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "KEYWARD_LOG_JSON", global = true)]
    pub log_json: bool,
}

/// The same settings in the TOML file. Unknown keys are an error, so a
/// typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct FileConfig {
    data_dir: Option<PathBuf>,
    http_addr: Option<String>,
    https_addr: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    cert_max_validity: Option<String>,
    client_cert_header: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    public_url: Option<String>,
    database_url: Option<String>,
    master_key_file: Option<PathBuf>,
    site_root: Option<PathBuf>,
    admin_token_grace: Option<String>,
    admin_token_ttl: Option<String>,
    access_token_ttl: Option<String>,
    auth_token_ttl: Option<String>,
    header_read_timeout: Option<String>,
    idle_timeout: Option<String>,
    request_timeout: Option<String>,
    max_connections: Option<usize>,
    revocation_memory: Option<String>,
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
    pub site_root: PathBuf,
    pub lifetimes: Lifetimes,
    pub connections: ConnectionLimits,
    /// Bytes of memory for logged-out access tokens.
    pub revocation_memory: usize,
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
            site_root: PathBuf::from("target/site"),
            lifetimes: Lifetimes::default(),
            connections: ConnectionLimits::default(),
            revocation_memory: DEFAULT_REVOCATION_MEMORY,
        }
    }

    pub fn load(args: &ConfigArgs) -> Result<Config, ServerError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let in_file = |key: &str| match &args.config {
            Some(p) => format!("{key} in {}", p.display()),
            None => key.to_string(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let mut config = Config::with_data_dir(data_dir);

        if let Some(addr) = args.http_addr {
            config.http_addr = addr;
        } else if let Some(raw) = &file.http_addr {
            config.http_addr =
                parse_addr(raw).map_err(|e| ServerError::Config(format!("{}: {e}", in_file("http_addr"))))?;
        }
        if let Some(addr) = args.https_addr {
            config.https_addr = addr;
        } else if let Some(raw) = &file.https_addr {
            config.https_addr =
                parse_addr(raw).map_err(|e| ServerError::Config(format!("{}: {e}", in_file("https_addr"))))?;
        }
        let tls_cert = args.tls_cert.clone().or(file.tls_cert);
        let tls_key = args.tls_key.clone().or(file.tls_key);
        config.tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(ServerError::Config(
                    "KEYWARD_TLS_CERT (--tls-cert) and KEYWARD_TLS_KEY (--tls-key) must be set together".into(),
                ))
            }
        };
        let header = args.client_cert_header.clone().or(file.client_cert_header);
        let proxies = if args.trusted_proxies.is_empty() {
            let mut parsed = Vec::new();
            for raw in file.trusted_proxies.iter().flatten() {
                parsed.push(
                    parse_ip(raw).map_err(|e| ServerError::Config(format!("{}: {e}", in_file("trusted_proxies"))))?,
                );
            }
            parsed
        } else {
            args.trusted_proxies.clone()
        };
        config.client_cert_header = match (header, proxies.is_empty()) {
            (None, true) => None,
            (Some(name), false) => {
                let name = axum::http::HeaderName::try_from(name.trim()).map_err(|_| {
                    ServerError::Config(format!(
                        "KEYWARD_CLIENT_CERT_HEADER (--client-cert-header): {name:?} is not a header name"
                    ))
                })?;
                Some(ClientCertHeader { name, proxies })
            }
            _ => {
                return Err(ServerError::Config(
                    "KEYWARD_CLIENT_CERT_HEADER (--client-cert-header) and KEYWARD_TRUSTED_PROXIES \
                     (--trusted-proxies) must be set together: the header is believed only from those proxies"
                        .into(),
                ))
            }
        };
        if let Some(url) = args.public_url.clone() {
            config.public_url = Some(url);
        } else if let Some(raw) = &file.public_url {
            config.public_url = Some(
                parse_public_url(raw).map_err(|e| ServerError::Config(format!("{}: {e}", in_file("public_url"))))?,
            );
        }
        if let Some(url) = args.database_url.clone().or(file.database_url) {
            if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ServerError::Config(
                    "DATABASE_URL (--database-url): must start with sqlite:, postgres:// or postgresql://".into(),
                ));
            }
            config.database_url = SecretString::from(url);
        }
        config.master_key_file = args.master_key_file.clone().or(file.master_key_file);
        if let Some(root) = args.site_root.clone().or(file.site_root) {
            config.site_root = root;
        }

        let pick = |flag: Option<Duration>,
                    raw: &Option<String>,
                    key: &str,
                    default: Duration|
         -> Result<Duration, ServerError> {
            match (flag, raw) {
                (Some(d), _) => Ok(d),
                (None, Some(raw)) => {
                    parse_duration(raw).map_err(|e| ServerError::Config(format!("{}: {e}", in_file(key))))
                }
                (None, None) => Ok(default),
            }
        };
        let d = Lifetimes::default();
        config.lifetimes = Lifetimes {
            admin_token_grace: pick(
                args.admin_token_grace,
                &file.admin_token_grace,
                "admin_token_grace",
                d.admin_token_grace,
            )?,
            admin_token_ttl: pick(
                args.admin_token_ttl,
                &file.admin_token_ttl,
                "admin_token_ttl",
                d.admin_token_ttl,
            )?,
            access_token_ttl: pick(
                args.access_token_ttl,
                &file.access_token_ttl,
                "access_token_ttl",
                d.access_token_ttl,
            )?,
            auth_token_ttl: pick(
                args.auth_token_ttl,
                &file.auth_token_ttl,
                "auth_token_ttl",
                d.auth_token_ttl,
            )?,
            cert_max_validity: pick(
                args.cert_max_validity,
                &file.cert_max_validity,
                "cert_max_validity",
                d.cert_max_validity,
            )?,
            ..d
        };
        let c = ConnectionLimits::default();
        config.connections = ConnectionLimits {
            header_read_timeout: pick(
                args.header_read_timeout,
                &file.header_read_timeout,
                "header_read_timeout",
                c.header_read_timeout,
            )?,
            idle_timeout: pick(args.idle_timeout, &file.idle_timeout, "idle_timeout", c.idle_timeout)?,
            request_timeout: pick(
                args.request_timeout,
                &file.request_timeout,
                "request_timeout",
                c.request_timeout,
            )?,
            max_per_listener: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(c.max_per_listener),
        };
        if config.connections.max_per_listener == 0 {
            return Err(ServerError::Config(
                "KEYWARD_MAX_CONNECTIONS (--max-connections): must be at least 1".into(),
            ));
        }
        config.revocation_memory = match (args.revocation_memory, &file.revocation_memory) {
            (Some(n), _) => n,
            (None, Some(raw)) => {
                parse_bytes(raw).map_err(|e| ServerError::Config(format!("{}: {e}", in_file("revocation_memory"))))?
            }
            (None, None) => DEFAULT_REVOCATION_MEMORY,
        };
        Ok(config)
    }

    /// The URL shown to people: configured, or the HTTP listener's own.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None => format!("http://{bound}/"),
        }
    }
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

fn read_file(path: &Path) -> Result<FileConfig, ServerError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ServerError::Config(format!("KEYWARD_CONFIG (--config) {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ServerError::Config(format!("{}: {}", path.display(), e.message())))
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
            "header_read_timeout = \"5s\"\nidle_timeout = \"2m\"\nmax_connections = 64\nrevocation_memory = \"8MiB\"\n",
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
        std::fs::write(&path, "max_connections = 0\n").unwrap();
        let err = Config::load(&ConfigArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("MAX_CONNECTIONS"), "{err}");
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

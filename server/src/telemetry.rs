//! Structured logs. Secrets never reach them: secret types redact
//! themselves, and handlers log identities, not credentials.

use tracing_subscriber::{fmt, EnvFilter};

pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_env("KEYWARD_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

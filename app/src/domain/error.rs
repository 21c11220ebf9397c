//! The domain's one error type. Internal carries the detail for the log;
//! each layer above maps the rest to its own wire format (the console's
//! `AppError`, the REST envelope, the CLI's line) and decides what
//! (little) the client sees.

/// What a lookup did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Admin,
    Certificate,
    /// An end user of the application (by their `userId`).
    EndUser,
    ServerKey,
    Webhook,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Admin => "admin",
            Entity::Certificate => "certificate",
            Entity::EndUser => "user",
            Entity::ServerKey => "server key",
            Entity::Webhook => "webhook endpoint",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("no such {}", .0.as_str())]
    NotFound(Entity),
    /// Bad input; `field` names the input at fault where there is one.
    #[error("{message}")]
    Invalid {
        field: Option<&'static str>,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("invalid credentials")]
    BadCredentials,
    #[error("forbidden")]
    Forbidden,
    /// A missing or bad credential on the API; the text is safe to show.
    #[error("{0}")]
    Unauthorized(String),
    #[error("rate limited for {0}s")]
    RateLimited(u64),
    #[error("setup required")]
    SetupRequired,
    #[error("internal: {0}")]
    Internal(String),
}

impl DomainError {
    pub fn invalid(message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field: None,
            message: message.into(),
        }
    }

    pub fn invalid_field(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field: Some(field),
            message: message.into(),
        }
    }
}

pub type DomainResult<T> = Result<T, DomainError>;

impl From<sqlx::Error> for DomainError {
    fn from(e: sqlx::Error) -> Self {
        DomainError::Internal(format!("database: {e}"))
    }
}

impl From<sqlx::migrate::MigrateError> for DomainError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        DomainError::Internal(format!("migration: {e}"))
    }
}

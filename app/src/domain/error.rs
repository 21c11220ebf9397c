//! The domain's one error type. Internal carries the detail for the log;
//! the layers above decide what (little) the client sees.

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
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

impl From<DomainError> for crate::error::AppError {
    fn from(e: DomainError) -> Self {
        use crate::error::AppError;
        match e {
            DomainError::NotFound => AppError::Invalid("Not found.".into()),
            DomainError::Invalid(m) => AppError::Invalid(m),
            DomainError::Conflict(m) => AppError::Conflict(m),
            DomainError::BadCredentials => AppError::WrongPassword("Incorrect username or password.".into()),
            DomainError::Forbidden => AppError::Forbidden,
            DomainError::Unauthorized(_) => AppError::Unauthorized,
            DomainError::RateLimited(s) => AppError::RateLimited(s),
            DomainError::SetupRequired => AppError::SetupRequired,
            DomainError::Internal(detail) => {
                // The detail goes to the log, never to the browser.
                tracing::error!(error = %detail, "internal error in a server function");
                AppError::Internal
            }
        }
    }
}

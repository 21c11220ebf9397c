//! Errors of start-up and the command line: each prints as one line that
//! says what is wrong and, where it applies, which setting.

use app::domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Domain(String),
    #[error("{0}")]
    Usage(String),
}

impl ServerError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
        let context = context.into();
        move |source| ServerError::Io { context, source }
    }
}

impl From<DomainError> for ServerError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound(entity) => ServerError::Domain(format!("no such {}", entity.as_str())),
            other => ServerError::Domain(other.to_string()),
        }
    }
}

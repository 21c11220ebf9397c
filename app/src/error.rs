//! The typed error every server function returns. It crosses the wire, so it
//! carries only what the person at the browser may read: never internals.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in to continue.")]
    Unauthorized,
    /// A wrong username or password typed into a form (sign-in, or the
    /// password asked again before a secret is shown or made).
    #[error("{0}")]
    WrongPassword(String),
    #[error("You are not allowed to do that.")]
    Forbidden,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    /// How many seconds to wait.
    #[error("Too many attempts. Try again in {}.", wait_phrase(*.0))]
    RateLimited(u64),
    #[error("Keyward has not been set up yet.")]
    SetupRequired,
    /// Signed in with a temporary password: choose your own first.
    #[error("Choose your own password first: the one you signed in with was temporary.")]
    PasswordChangeRequired,
    /// Every admin must have a second factor, and this one has none yet.
    #[error("Set up two-factor sign-in first: it is required for every admin.")]
    SecondFactorRequired,
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// The request never reached the function (network, encoding).
    #[error("The request could not be completed: {0}")]
    Transport(String),
}

/// A wait as people say it: seconds under a minute, else whole minutes
/// (rounded up, so nobody comes back too early).
pub fn wait_phrase(seconds: u64) -> String {
    match seconds {
        0 | 1 => "a second".into(),
        2..=59 => format!("{seconds} seconds"),
        _ => match seconds.div_ceil(60) {
            1 => "a minute".into(),
            minutes => format!("{minutes} minutes"),
        },
    }
}

impl AppError {
    /// The HTTP status a server function answers with: a person's mistake
    /// is a 4xx; only a fault on our side is a 500.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthorized | AppError::WrongPassword(_) => 401,
            AppError::Forbidden | AppError::PasswordChangeRequired | AppError::SecondFactorRequired => 403,
            AppError::Invalid(_) | AppError::Transport(_) => 400,
            AppError::Conflict(_) | AppError::SetupRequired => 409,
            AppError::RateLimited(_) => 429,
            AppError::Internal => 500,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // Arguments that fail to decode are the caller's mistake.
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => {
                AppError::Invalid("The form was incomplete or malformed.".into())
            }
            ServerFnErrorErr::Request(e) => AppError::Transport(e),
            _ => AppError::Internal,
        }
    }
}

/// The domain's errors as the console says them.
#[cfg(feature = "ssr")]
impl From<crate::domain::DomainError> for AppError {
    fn from(e: crate::domain::DomainError) -> Self {
        use crate::domain::{DomainError, Entity};
        match e {
            DomainError::NotFound(Entity::Admin) => AppError::Invalid("There is no admin with that username.".into()),
            DomainError::NotFound(Entity::Certificate) => AppError::Invalid("There is no such certificate.".into()),
            DomainError::NotFound(Entity::EndUser) => AppError::Invalid("There is no user with that user id.".into()),
            DomainError::NotFound(Entity::ServerKey) => AppError::Invalid("There is no such server key.".into()),
            DomainError::NotFound(Entity::Webhook) => AppError::Invalid("There is no such webhook endpoint.".into()),
            DomainError::Invalid { message, .. } => AppError::Invalid(message),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_reads_in_seconds_or_whole_minutes() {
        assert_eq!(
            AppError::RateLimited(891).to_string(),
            "Too many attempts. Try again in 15 minutes."
        );
        assert_eq!(wait_phrase(1), "a second");
        assert_eq!(wait_phrase(45), "45 seconds");
        assert_eq!(wait_phrase(60), "a minute");
        assert_eq!(wait_phrase(61), "2 minutes");
    }
}

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
    #[error("Too many attempts. Try again in {0} seconds.")]
    RateLimited(u64),
    #[error("Keyward has not been set up yet.")]
    SetupRequired,
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// The request never reached the function (network, encoding).
    #[error("The request could not be completed: {0}")]
    Transport(String),
}

impl AppError {
    /// The HTTP status a server function answers with: a person's mistake
    /// is a 4xx; only a fault on our side is a 500.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthorized | AppError::WrongPassword(_) => 401,
            AppError::Forbidden => 403,
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

//! Who is acting: the one identity every domain operation is given.
//! Built once per request by the layer that checked the credential (the
//! console session, an admin token) or by the CLI for the host operator;
//! the operation decides from it what is allowed, audits it as its actor,
//! and re-checks its credential inside the transaction that acts on it.

use sqlx::AnyConnection;

use crate::domain::clock::now_ms;
use crate::domain::{DomainError, DomainResult};

/// An admin's role. The domain's own: the browser's copy in `model` is
/// converted at the console's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    SuperAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::SuperAdmin => "super_admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim() {
            "admin" => Some(Role::Admin),
            "super_admin" | "super-admin" => Some(Role::SuperAdmin),
            _ => None,
        }
    }
}

/// The way in a principal came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Console,
    AdminApi,
    /// The host's command line.
    Cli,
}

/// The credential a principal presented. A request may wait for the change
/// lock while its credential is revoked, so [`Db::change_as`] checks it
/// again inside the transaction that acts on it, not from the view the
/// request was admitted by.
///
/// [`Db::change_as`]: crate::domain::storage::db::Db::change_as
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An admin token (the admin API), by its id.
    AdminToken { token_id: String },
    /// A console session of this admin, started at this session epoch.
    Console { admin_id: String, epoch: i64 },
    /// The host operator (CLI): holds the database and the master key.
    Operator,
}

/// Who acts, with which role, through which channel and from where.
/// Read-only outside the domain: a caller cannot raise a role or change
/// a channel (which would skip the console's password-again).
#[derive(Debug, Clone)]
pub struct Principal {
    /// The admin's username, or "operator".
    pub(in crate::domain) name: String,
    pub(in crate::domain) role: Role,
    /// The admin's id; `None` for the operator.
    pub(in crate::domain) admin_id: Option<String>,
    pub(in crate::domain) channel: Channel,
    /// The client's address, as the HTTP layer determined it.
    address: Option<String>,
    pub(crate) credential: Credential,
}

/// The audit log's "from where" for the host's command line.
pub const CLI_SOURCE: &str = "cli";

impl Principal {
    /// A signed-in console admin (built by the console session check).
    pub(crate) fn console(name: &str, admin_id: &str, role: Role, epoch: i64, address: &str) -> Principal {
        Principal {
            name: name.to_string(),
            role,
            admin_id: Some(admin_id.to_string()),
            channel: Channel::Console,
            address: Some(address.to_string()),
            credential: Credential::Console {
                admin_id: admin_id.to_string(),
                epoch,
            },
        }
    }

    /// The holder of a live admin token (built by the token check).
    pub(crate) fn admin_api(name: &str, admin_id: &str, role: Role, token_id: &str, address: &str) -> Principal {
        Principal {
            name: name.to_string(),
            role,
            admin_id: Some(admin_id.to_string()),
            channel: Channel::AdminApi,
            address: Some(address.to_string()),
            credential: Credential::AdminToken {
                token_id: token_id.to_string(),
            },
        }
    }

    /// The host operator: only the CLI, which holds the database and the
    /// master key, acts as this. A super admin's reach, and the only
    /// principal for break-glass operations (issuing a token for someone,
    /// resetting a password). Never built from a request.
    pub fn operator() -> Principal {
        Principal {
            name: "operator".into(),
            role: Role::SuperAdmin,
            admin_id: None,
            channel: Channel::Cli,
            address: None,
            credential: Credential::Operator,
        }
    }

    /// "From where", as the audit log records it: the client's address,
    /// marked as the admin API's so it reads apart from the console's.
    pub fn source(&self) -> Option<String> {
        match (self.channel, &self.address) {
            (Channel::Cli, _) => Some(CLI_SOURCE.into()),
            (Channel::AdminApi, Some(a)) => Some(format!("{a} (admin API)")),
            (_, a) => a.clone(),
        }
    }

    /// The admin's username, or "operator".
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The admin's id; `None` for the operator.
    pub fn admin_id(&self) -> Option<&str> {
        self.admin_id.as_deref()
    }

    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// The client's address (for the sign-in throttle), if any.
    pub fn address(&self) -> &str {
        self.address.as_deref().unwrap_or("unknown")
    }

    pub fn is_super_admin(&self) -> bool {
        self.role == Role::SuperAdmin
    }

    pub(crate) fn require_super_admin(&self) -> DomainResult<()> {
        if self.is_super_admin() {
            Ok(())
        } else {
            Err(DomainError::Forbidden)
        }
    }

    /// Is this principal the admin named `username` (already normalised)?
    pub(crate) fn is_admin_named(&self, username: &str) -> bool {
        self.admin_id.is_some() && self.name == username
    }
}

/// Is `credential` still good, read inside `conn`'s transaction?
pub(crate) async fn credential_holds(conn: &mut AnyConnection, credential: &Credential) -> DomainResult<()> {
    let now = now_ms();
    match credential {
        Credential::Operator => Ok(()),
        Credential::AdminToken { token_id } => {
            let row: Option<(String, Option<i64>, i64, i64)> = sqlx::query_as(
                "SELECT t.state, t.valid_until, t.expires_at, a.disabled \
                 FROM admin_tokens t JOIN admin_users a ON a.id = t.admin_id WHERE t.id = $1",
            )
            .bind(token_id)
            .fetch_optional(&mut *conn)
            .await?;
            let live = row.is_some_and(|(state, valid_until, expires_at, disabled)| {
                disabled == 0
                    && expires_at > now
                    && (state == "current" || (state == "superseded" && valid_until.is_some_and(|t| t > now)))
            });
            if live {
                Ok(())
            } else {
                Err(DomainError::Unauthorized("Invalid token".into()))
            }
        }
        Credential::Console { admin_id, epoch } => {
            let row: Option<(i64, i64)> =
                sqlx::query_as("SELECT disabled, session_epoch FROM admin_users WHERE id = $1")
                    .bind(admin_id)
                    .fetch_optional(&mut *conn)
                    .await?;
            if row.is_some_and(|(disabled, e)| disabled == 0 && e == *epoch) {
                Ok(())
            } else {
                Err(DomainError::Unauthorized("Your session has ended.".into()))
            }
        }
    }
}

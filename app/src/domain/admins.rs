//! Admin users of the console: creation, lookup, sign-in, disabling.

use rand::RngCore;
use secrecy::SecretString;
use sqlx::AnyConnection;

use super::audit::AuditEvent;
use super::clock::now_ms;
use super::db::{on_unique, Db};
use super::password::{self, Hasher};
use super::throttle::LoginThrottle;
use super::{DomainError, DomainResult};
use crate::model::Role;

#[derive(Clone)]
pub struct Admin {
    pub id: String,
    pub username: String,
    password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub session_epoch: i64,
    pub created_at: i64,
}

// Hand-written so the password hash never reaches a log line.
impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// The host operator (CLI), who acts with a super admin's reach.
    pub fn operator() -> Admin {
        Admin {
            id: String::new(),
            username: "operator".into(),
            password_hash: String::new(),
            role: Role::SuperAdmin,
            disabled: false,
            session_epoch: 0,
            created_at: 0,
        }
    }
}

type AdminRow = (String, String, String, String, i64, i64, i64);
const COLUMNS: &str = "id, username, password_hash, role, disabled, session_epoch, created_at";

fn from_row((id, username, password_hash, role, disabled, session_epoch, created_at): AdminRow) -> DomainResult<Admin> {
    let role = Role::parse(&role).ok_or_else(|| DomainError::Internal(format!("unknown role {role:?}")))?;
    Ok(Admin {
        id,
        username,
        password_hash,
        role,
        disabled: disabled != 0,
        session_epoch,
        created_at,
    })
}

/// Usernames are case-insensitive: stored lower-case.
pub fn validate_username(raw: &str) -> DomainResult<String> {
    let name = raw.trim().to_lowercase();
    let ok_len = (3..=64).contains(&name.chars().count());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok_len && ok_chars {
        Ok(name)
    } else {
        Err(DomainError::Invalid(
            "A username is 3 to 64 characters: letters, digits, '.', '_', '-' or '@'.".into(),
        ))
    }
}

pub struct NewAdmin {
    pub username: String,
    pub password_hash: String,
    pub role: Role,
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub(super) async fn insert(conn: &mut AnyConnection, admin: &NewAdmin) -> DomainResult<String> {
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO admin_users (id, username, password_hash, role, disabled, session_epoch, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 0, 0, $5, $5)",
    )
    .bind(&id)
    .bind(&admin.username)
    .bind(&admin.password_hash)
    .bind(admin.role.as_str())
    .bind(now)
    .execute(conn)
    .await
    .map_err(|e| on_unique(e, "An admin with that username already exists."))?;
    Ok(id)
}

pub async fn by_id(db: &Db, id: &str) -> DomainResult<Option<Admin>> {
    let row: Option<AdminRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM admin_users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.read())
        .await?;
    row.map(from_row).transpose()
}

pub async fn by_username(db: &Db, username: &str) -> DomainResult<Option<Admin>> {
    let row: Option<AdminRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM admin_users WHERE username = $1"))
        .bind(username.trim().to_lowercase())
        .fetch_optional(db.read())
        .await?;
    row.map(from_row).transpose()
}

pub async fn list(db: &Db) -> DomainResult<Vec<Admin>> {
    let rows: Vec<AdminRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM admin_users ORDER BY username"))
        .fetch_all(db.read())
        .await?;
    rows.into_iter().map(from_row).collect()
}

/// Who is acting (for the audit log) and what they proved to act with.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub source: Option<String>,
    pub credential: Credential,
}

/// The credential an actor presented. A request may wait for the change
/// lock while its credential is revoked, so [`Db::change_as`] checks it
/// again inside the transaction that acts on it, not from the view the
/// request was admitted by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An admin token (the admin API), by its id.
    AdminToken { token_id: String },
    /// A console session of this admin, started at this session epoch.
    Console { admin_id: String, epoch: i64 },
    /// The host operator (CLI): holds the database and the master key.
    Operator,
}

/// Is `credential` still good, read inside `conn`'s transaction?
pub(super) async fn credential_holds(conn: &mut AnyConnection, credential: &Credential) -> DomainResult<()> {
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

pub async fn create(
    db: &Db,
    hasher: &Hasher,
    actor: &Actor,
    username: &str,
    pw: SecretString,
    role: Role,
) -> DomainResult<()> {
    let username = validate_username(username)?;
    password::check_policy(&pw)?;
    let password_hash = hasher.hash(pw).await?;
    let mut change = db.change_as(actor).await?;
    insert(
        change.conn(),
        &NewAdmin {
            username: username.clone(),
            password_hash,
            role,
        },
    )
    .await?;
    change
        .commit(
            AuditEvent::new(&actor.name, "admin.create", &username)
                .detail(serde_json::json!({ "role": role.as_str() }))
                .source(actor.source.clone()),
        )
        .await
}

/// Disabling ends every console session of that admin and revokes their
/// admin tokens for good: enabling them again brings no token back (they
/// get a new one at their next sign-in).
pub async fn set_disabled(db: &Db, actor: &Actor, username: &str, disabled: bool) -> DomainResult<()> {
    let username = username.trim().to_lowercase();
    let now = now_ms();
    let mut change = db.change_as(actor).await?;
    let id: Option<(String,)> = sqlx::query_as(
        "UPDATE admin_users SET disabled = $1, session_epoch = session_epoch + 1, updated_at = $2 \
         WHERE username = $3 RETURNING id",
    )
    .bind(i64::from(disabled))
    .bind(now)
    .bind(&username)
    .fetch_optional(change.conn())
    .await?;
    let Some((id,)) = id else {
        return Err(DomainError::NotFound);
    };
    let event = if disabled {
        let revoked = super::admin_tokens::revoke_all(change.conn(), &id, now).await?;
        AuditEvent::new(&actor.name, "admin.disable", &username)
            .detail(serde_json::json!({ "tokens_revoked": revoked }))
    } else {
        AuditEvent::new(&actor.name, "admin.enable", &username)
    };
    change.commit(event.source(actor.source.clone())).await
}

/// A new password also ends every console session of that admin.
pub async fn reset_password(
    db: &Db,
    hasher: &Hasher,
    actor: &Actor,
    username: &str,
    pw: SecretString,
) -> DomainResult<()> {
    let username = username.trim().to_lowercase();
    password::check_policy(&pw)?;
    let hash = hasher.hash(pw).await?;
    let mut change = db.change_as(actor).await?;
    let done = sqlx::query(
        "UPDATE admin_users SET password_hash = $1, session_epoch = session_epoch + 1, updated_at = $2 WHERE username = $3",
    )
    .bind(&hash)
    .bind(now_ms())
    .bind(&username)
    .execute(change.conn())
    .await?;
    if done.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    change
        .commit(AuditEvent::new(&actor.name, "admin.reset_password", &username).source(actor.source.clone()))
        .await
}

/// Checks a username and password. Unknown user, wrong password and
/// disabled admin all give `BadCredentials` after the same argon2 work;
/// throttled attempts are refused before any work is done.
pub async fn authenticate(
    db: &Db,
    hasher: &Hasher,
    throttle: &LoginThrottle,
    username: &str,
    pw: SecretString,
    client: &str,
) -> DomainResult<Admin> {
    let key = username.trim().to_lowercase();
    throttle.attempt(db, &key, client).await?;
    let admin = by_username(db, &key).await?;
    let stored = admin.as_ref().filter(|a| !a.disabled).map(|a| a.password_hash.clone());
    if hasher.verify(pw, stored).await? {
        throttle.success(db, &key, client).await?;
        // `verify` is only true when a stored hash was used.
        return admin.ok_or(DomainError::BadCredentials);
    }
    // An admin's lockout is audited, once, when it starts. (A name nobody
    // has is not: it may be a password typed into the wrong field.)
    if let Some(admin) = &admin {
        if let Some(until) = throttle.just_locked(db, &key, client).await? {
            db.change()
                .await?
                .commit(
                    AuditEvent::new("keyward", "admin.lockout", &admin.username)
                        .detail(serde_json::json!({ "client": client, "until": super::clock::iso(until) }))
                        .source(Some(client.to_string())),
                )
                .await?;
        }
    }
    Err(DomainError::BadCredentials)
}

/// Ends every sign-in lockout and backoff of `username`, at once. Super
/// admins only (and the operator).
pub async fn unlock(
    db: &Db,
    throttle: &LoginThrottle,
    actor: &Actor,
    actor_role: Role,
    username: &str,
) -> DomainResult<()> {
    if actor_role != Role::SuperAdmin {
        return Err(DomainError::Forbidden);
    }
    let admin = by_username(db, username).await?.ok_or(DomainError::NotFound)?;
    let mut change = db.change_as(actor).await?;
    let cleared = throttle.unlock(change.conn(), &admin.username).await?;
    change
        .commit(
            AuditEvent::new(&actor.name, "admin.unlock", &admin.username)
                .detail(serde_json::json!({ "failures_cleared": cleared }))
                .source(actor.source.clone()),
        )
        .await
}

/// One page of admins whose username contains `query`, and how many match.
pub async fn search(db: &Db, query: &str, offset: i64, limit: i64) -> DomainResult<(Vec<Admin>, i64)> {
    // Usernames hold '_' (a LIKE wildcard) and nothing stranger: escape it.
    let needle: String = query
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let pattern = format!(
        "%{}%",
        needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    );
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM admin_users WHERE username LIKE $1 ESCAPE '\\'")
        .bind(&pattern)
        .fetch_one(db.read())
        .await?;
    let rows: Vec<AdminRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM admin_users WHERE username LIKE $1 ESCAPE '\\' ORDER BY username LIMIT $2 OFFSET $3"
    ))
    .bind(&pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(db.read())
    .await?;
    Ok((rows.into_iter().map(from_row).collect::<DomainResult<_>>()?, total))
}

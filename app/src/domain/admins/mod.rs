//! Admin users of the console: creation, lookup, sign-in, disabling; and,
//! beside them, their passwords, the sign-in throttle and console sessions.

pub mod console_sessions;
pub mod listing;
pub mod passkeys;
pub mod password;
pub mod second_factor;
mod sign_in;
pub mod throttle;
pub mod totp;

pub use sign_in::SignInStep;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sqlx::AnyConnection;

use crate::domain::audit::AuditEvent;
use crate::domain::clock::now_ms;
use crate::domain::principal::{Principal, Role};
use crate::domain::storage::db::{on_unique, Db};
use crate::domain::{DomainError, DomainResult, Keyward};
use password::Hasher;
use throttle::LoginThrottle;

#[derive(Clone)]
pub struct Admin {
    pub id: String,
    pub username: String,
    password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub session_epoch: i64,
    pub created_at: i64,
    /// Signed in with a temporary password a super admin set: the console
    /// asks for a new one before anything else.
    pub must_change_password: bool,
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

type AdminRow = (String, String, String, String, i64, i64, i64, i64);
const COLUMNS: &str = "id, username, password_hash, role, disabled, session_epoch, created_at, must_change_password";

fn from_row(
    (id, username, password_hash, role, disabled, session_epoch, created_at, must_change): AdminRow,
) -> DomainResult<Admin> {
    let role = Role::parse(&role).ok_or_else(|| DomainError::Internal(format!("unknown role {role:?}")))?;
    Ok(Admin {
        id,
        username,
        password_hash,
        role,
        disabled: disabled != 0,
        session_epoch,
        created_at,
        must_change_password: must_change != 0,
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
        Err(DomainError::invalid_field(
            "username",
            "A username is 3 to 64 characters: letters, digits, '.', '_', '-' or '@'.",
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

pub(crate) async fn insert(conn: &mut AnyConnection, admin: &NewAdmin) -> DomainResult<String> {
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

pub(crate) async fn by_id(db: &Db, id: &str) -> DomainResult<Option<Admin>> {
    let row: Option<AdminRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM admin_users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.read())
        .await?;
    row.map(from_row).transpose()
}

/// The admin named `username`, if any. A name no username can be (control
/// characters among them, which PostgreSQL refuses in text) is nobody's,
/// found without a query.
pub(crate) async fn by_username(db: &Db, username: &str) -> DomainResult<Option<Admin>> {
    let Ok(username) = validate_username(username) else {
        return Ok(None);
    };
    let row: Option<AdminRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM admin_users WHERE username = $1"))
        .bind(username.trim().to_lowercase())
        .fetch_optional(db.read())
        .await?;
    row.map(from_row).transpose()
}

async fn create(
    db: &Db,
    hasher: &Hasher,
    actor: &Principal,
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
                .source(actor.source()),
        )
        .await
}

/// Disabling ends every console session of that admin and revokes their
/// admin tokens for good: enabling them again brings no token back (they
/// get a new one at their next sign-in).
/// Says how many tokens a disable revoked.
async fn set_disabled(db: &Db, actor: &Principal, username: &str, disabled: bool) -> DomainResult<u64> {
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
        return Err(DomainError::NotFound(crate::domain::Entity::Admin));
    };
    let (event, revoked) = if disabled {
        let revoked = crate::domain::credentials::admin_tokens::revoke_all(change.conn(), &id, now).await?;
        let event = AuditEvent::new(&actor.name, "admin.disable", &username)
            .detail(serde_json::json!({ "tokens_revoked": revoked }));
        (event, revoked)
    } else {
        (AuditEvent::new(&actor.name, "admin.enable", &username), 0)
    };
    change.commit(event.source(actor.source())).await?;
    Ok(revoked)
}

/// Whose choice a new password set for an admin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NewPassword {
    /// Set from the host (break-glass): theirs to keep.
    Reset,
    /// Given by a super admin: replaced by its holder at their next sign-in.
    Temporary,
}

/// A new password for `username`; it also ends every console session of
/// that admin.
async fn reset_password(
    db: &Db,
    hasher: &Hasher,
    actor: &Principal,
    username: &str,
    pw: SecretString,
    kind: NewPassword,
) -> DomainResult<()> {
    // A name no username can be is nobody's (and never reaches the database).
    let Ok(username) = validate_username(username) else {
        return Err(DomainError::NotFound(crate::domain::Entity::Admin));
    };
    let username = username.trim().to_lowercase();
    password::check_policy(&pw)?;
    let hash = hasher.hash(pw).await?;
    let (must_change, action) = match kind {
        NewPassword::Reset => (0_i64, "admin.reset_password"),
        NewPassword::Temporary => (1, "admin.set_temporary_password"),
    };
    let mut change = db.change_as(actor).await?;
    let done = sqlx::query(
        "UPDATE admin_users SET password_hash = $1, must_change_password = $2, session_epoch = session_epoch + 1, \
         updated_at = $3 WHERE username = $4 AND ($2 = 0 OR role = 'admin')",
    )
    .bind(&hash)
    .bind(must_change)
    .bind(now_ms())
    .bind(&username)
    .execute(change.conn())
    .await?;
    if done.rows_affected() == 0 {
        // A temporary password is for admins: a super admin who forgot
        // theirs is helped from the host, so no super admin can take over
        // another's account (and act under their name).
        let exists: Option<(String,)> = sqlx::query_as("SELECT role FROM admin_users WHERE username = $1")
            .bind(&username)
            .fetch_optional(change.conn())
            .await?;
        return Err(match exists {
            Some(_) => DomainError::Conflict(
                "A super admin's password is reset from the host: `keyward admin reset-password`.".into(),
            ),
            None => DomainError::NotFound(crate::domain::Entity::Admin),
        });
    }
    change
        .commit(AuditEvent::new(&actor.name, action, &username).source(actor.source()))
        .await
}

/// Checks a username and password. Unknown user, wrong password and
/// disabled admin all give `BadCredentials` after the same argon2 work;
/// throttled attempts are refused before any work is done. Says, with the
/// admin, whether they have a second factor (asked for next).
pub(super) async fn authenticate(
    db: &Db,
    hasher: &Hasher,
    throttle: &LoginThrottle,
    username: &str,
    pw: SecretString,
    client: &str,
) -> DomainResult<(Admin, bool)> {
    let key = username.trim().to_lowercase();
    let attempt = throttle.attempt(db, &key, client).await?;
    let admin = by_username(db, &key).await?;
    let stored = admin.as_ref().filter(|a| !a.disabled).map(|a| a.password_hash.clone());
    if hasher.verify(pw, stored).await? {
        // `verify` is only true when a stored hash was used.
        let admin = admin.ok_or(DomainError::BadCredentials)?;
        // With a second factor the password alone settles nothing: only
        // its own attempt is taken back, and earlier failures (wrong
        // codes) stay until a right code comes, so signing in again
        // between wrong codes does not start the count afresh.
        let second_factor = second_factor::required(db, &admin.id).await?;
        if second_factor {
            throttle.take_back(db, attempt).await?;
        } else {
            throttle.success(db, &key, client).await?;
        }
        return Ok((admin, second_factor));
    }
    // An admin's lockout is audited, once, when it starts. (A name nobody
    // has is not: it may be a password typed into the wrong field.)
    if let Some(admin) = &admin {
        if let Some(until) = throttle.just_locked(db, &key, client).await? {
            db.change()
                .await?
                .commit(
                    AuditEvent::new("keyward", "admin.lockout", &admin.username)
                        .detail(serde_json::json!({ "client": client, "until": crate::domain::clock::iso(until) }))
                        .source(Some(client.to_string())),
                )
                .await?;
        }
    }
    Err(DomainError::BadCredentials)
}

/// Ends every sign-in lockout and backoff of `username`, at once. Super
/// admins only (and the operator).
async fn unlock(db: &Db, throttle: &LoginThrottle, actor: &Principal, username: &str) -> DomainResult<()> {
    let admin = by_username(db, username)
        .await?
        .ok_or(DomainError::NotFound(crate::domain::Entity::Admin))?;
    let mut change = db.change_as(actor).await?;
    let cleared = throttle.unlock(change.conn(), &admin.username).await?;
    change
        .commit(
            AuditEvent::new(&actor.name, "admin.unlock", &admin.username)
                .detail(serde_json::json!({ "failures_cleared": cleared }))
                .source(actor.source()),
        )
        .await
}

/// One page of admins whose username contains `query`, and how many match.
pub(super) async fn search(db: &Db, query: &str, offset: i64, limit: i64) -> DomainResult<(Vec<Admin>, i64)> {
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

/// A console session that still holds, and whether its admin must choose
/// a new password first.
#[derive(Debug)]
pub struct Resumed {
    pub principal: Principal,
    pub must_change_password: bool,
    /// A second factor is required and this admin has none yet.
    pub must_enrol_second_factor: bool,
}

/// A console session as the console's cookie remembers it.
pub struct ConsoleSession<'a> {
    pub admin_id: &'a str,
    /// The admin's session epoch at sign-in; bumping it ends the session.
    pub epoch: i64,
    pub login_at_ms: i64,
}

impl Keyward {
    /// The principal of a console session that still holds: the admin
    /// exists and is enabled, the session's epoch is theirs, and the
    /// absolute lifetime has not run out. `None` ends the session.
    pub async fn resume_console(&self, session: ConsoleSession<'_>, address: &str) -> DomainResult<Option<Resumed>> {
        let absolute_ms = self.lifetimes.console_absolute.as_millis() as i64;
        let Some(admin) = by_id(&self.db, session.admin_id).await? else {
            return Ok(None);
        };
        let holds =
            !admin.disabled && admin.session_epoch == session.epoch && now_ms() - session.login_at_ms < absolute_ms;
        if !holds {
            return Ok(None);
        }
        Ok(Some(Resumed {
            principal: Principal::console(&admin.username, &admin.id, admin.role, admin.session_epoch, address),
            must_change_password: admin.must_change_password,
            must_enrol_second_factor: second_factor::enrolment_due(&self.db, &admin.id).await?,
        }))
    }

    /// Gives the admin `username` a temporary password (super admins; not
    /// for a super admin, nor yourself): their console sessions end, and at
    /// their next sign-in the console asks them for their own before
    /// anything else.
    pub async fn set_temporary_password(
        &self,
        who: &Principal,
        username: &str,
        password: SecretString,
    ) -> DomainResult<()> {
        who.require_super_admin()?;
        let username = username.trim().to_lowercase();
        if who.is_admin_named(&username) {
            return Err(DomainError::Conflict(
                "Change your own password from your menu instead.".into(),
            ));
        }
        reset_password(&self.db, &self.hasher, who, &username, password, NewPassword::Temporary).await?;
        self.refresh().await
    }

    /// The acting admin, read now (not the operator).
    pub(crate) async fn acting_admin(&self, who: &Principal) -> DomainResult<Admin> {
        let id = who
            .admin_id
            .as_deref()
            .ok_or_else(|| DomainError::invalid("The operator acts on a named admin."))?;
        by_id(&self.db, id)
            .await?
            .ok_or_else(|| DomainError::Unauthorized("Your session has ended.".into()))
    }

    /// Creates an admin (super admins and the operator). `role` is `None`
    /// when the input named none that exists.
    pub async fn create_admin(
        &self,
        who: &Principal,
        username: &str,
        password: SecretString,
        role: Option<Role>,
    ) -> DomainResult<()> {
        who.require_super_admin()?;
        let role = role.ok_or_else(|| DomainError::invalid_field("role", "Choose a role."))?;
        create(&self.db, &self.hasher, who, username, password, role).await
    }

    /// Disables (or enables again) an admin: their sessions end and their
    /// tokens are revoked for good. Super admins and the operator; nobody
    /// disables themselves (a console with no super admin left is locked).
    pub async fn set_admin_disabled(&self, who: &Principal, username: &str, disabled: bool) -> DomainResult<()> {
        who.require_super_admin()?;
        if who.is_admin_named(&username.trim().to_lowercase()) {
            return Err(DomainError::invalid_field("username", "You cannot disable yourself."));
        }
        if set_disabled(&self.db, who, username, disabled).await? > 0 {
            self.metrics.revocation(crate::domain::metrics::Revocation::AdminToken);
        }
        self.refresh().await
    }

    /// Sets a new password; the admin's sessions end. The operator only
    /// (break-glass from the host; in the console a super admin may only
    /// give an admin a temporary one, see `set_temporary_password`).
    pub async fn reset_admin_password(
        &self,
        who: &Principal,
        username: &str,
        password: SecretString,
    ) -> DomainResult<()> {
        if who.credential != crate::domain::principal::Credential::Operator {
            return Err(DomainError::Forbidden);
        }
        reset_password(&self.db, &self.hasher, who, username, password, NewPassword::Reset).await?;
        self.refresh().await
    }

    /// Changes the acting admin's own password, after the current one
    /// (checked and throttled like a sign-in; a wrong one is audited).
    /// Every console session of theirs ends: the caller seats the one it
    /// serves again with the admin returned (its new session epoch).
    pub async fn change_own_password(
        &self,
        who: &Principal,
        current: SecretString,
        new: SecretString,
        code: Option<&str>,
    ) -> DomainResult<Admin> {
        if who.channel != crate::domain::principal::Channel::Console {
            return Err(DomainError::Forbidden);
        }
        password::check_policy(&new)?;
        // Keeping a temporary password someone else knows is not a change.
        if crate::domain::secrets::ct_eq(current.expose_secret().as_bytes(), new.expose_secret().as_bytes()) {
            return Err(DomainError::invalid_field(
                "password",
                "Choose a new password, not the one you have now.",
            ));
        }
        let crate::domain::principal::Credential::Console { epoch: seen, .. } = &who.credential else {
            return Err(DomainError::Forbidden);
        };
        // A temporary password is replaced right after a sign-in that took
        // the second factor: it is not asked for again then.
        let pending = self.acting_admin(who).await?.must_change_password;
        if pending {
            self.reauthenticate_password_only(who, current).await?;
        } else {
            self.reauthenticate(who, Some(current), code).await?;
        }
        let admin = self.acting_admin(who).await?;
        let hash = self.hasher.hash(new).await?;
        let mut change = self.db.change_as(who).await?;
        // Only the session it was asked in: a password set meanwhile (which
        // ended that session) is not overwritten.
        let epoch: Option<(i64,)> = sqlx::query_as(
            "UPDATE admin_users SET password_hash = $1, session_epoch = session_epoch + 1, updated_at = $2, \
             must_change_password = 0 WHERE id = $3 AND session_epoch = $4 RETURNING session_epoch",
        )
        .bind(&hash)
        .bind(now_ms())
        .bind(&admin.id)
        .bind(*seen)
        .fetch_optional(change.conn())
        .await?;
        let Some((epoch,)) = epoch else {
            return Err(DomainError::Unauthorized("Your session has ended.".into()));
        };
        change
            .commit(AuditEvent::new(&who.name, "admin.change_password", &admin.username).source(who.source()))
            .await?;
        self.refresh().await?;
        Ok(Admin {
            session_epoch: epoch,
            must_change_password: false,
            ..admin
        })
    }

    /// Ends every sign-in lockout of `username` at once (super admins and the operator).
    pub async fn unlock_admin(&self, who: &Principal, username: &str) -> DomainResult<()> {
        who.require_super_admin()?;
        unlock(&self.db, &self.throttle, who, username).await
    }
}

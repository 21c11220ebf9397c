//! Admin tokens: the bearer credential of an admin for the admin API.
//! Looked up by SHA-256 digest; also sealed with the master key so the
//! owner can retrieve the current one. Generating a new token leaves the
//! old one working for the switch-over (24 hours by default); revoking
//! kills every token of the admin at once and ends their console sessions.

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

use crate::domain::admins::{self, Admin};
use crate::domain::audit::AuditEvent;
use crate::domain::clock::now_ms;
use crate::domain::metrics::{self, Rotation, TokenKind, Verdict};
use crate::domain::pki::mtls::Transport;
use crate::domain::principal::Role;
use crate::domain::principal::{Credential, Principal};
use crate::domain::secrets::{self, sha256, MasterKey};
use crate::domain::storage::db::Db;
use crate::domain::storage::views::{AdminTokenView, Views};
use crate::domain::{DomainError, DomainResult, Entity, Keyward, Lifetimes};

pub const PREFIX: &str = "kwadm_";

fn seal_context(token_id: &str) -> String {
    format!("admin-token:{token_id}")
}

/// Re-seals every admin token's retrievable copy with `new` (a master-key
/// rotation): revoked and expired ones too, so no row is left that only
/// the old key opens.
pub(in crate::domain) async fn reseal(
    conn: &mut sqlx::AnyConnection,
    old: &MasterKey,
    new: &MasterKey,
) -> DomainResult<usize> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT id, sealed FROM admin_tokens")
        .fetch_all(&mut *conn)
        .await?;
    for (id, sealed) in &rows {
        sqlx::query("UPDATE admin_tokens SET sealed = $1 WHERE id = $2")
            .bind(old.reseal(new, sealed, &seal_context(id))?)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(rows.len())
}

#[derive(Debug)]
pub struct IssuedToken {
    pub token: SecretString,
    pub issued_at: i64,
    pub expires_at: i64,
    /// When the token it replaced stops working, if it was still working.
    pub previous_valid_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    None,
    Active { expires_at: i64 },
    Expired { expired_at: i64 },
    Revoked,
}

#[derive(Debug, Clone)]
pub struct TokenStatus {
    pub state: TokenState,
    pub last_used_at: Option<i64>,
    /// An older token still inside its switch-over, and when it stops.
    pub switching_until: Option<i64>,
}

/// Why a token is issued, as its audit event names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Issue {
    /// An admin (or the operator) asked for one.
    Generate,
    /// Given at sign-in to an admin who had none live.
    AtSignIn,
}

/// The lifetimes the console offers for a new admin token, in days, as
/// GitHub does: those within the configured longest (`admin_token_ttl`).
/// Empty when even the shortest is longer: then a token lives that long.
pub fn lifetime_choices(longest: Duration) -> Vec<u32> {
    [30u32, 90, 365]
        .into_iter()
        .filter(|d| u64::from(*d) * DAY_SECS <= longest.as_secs())
        .collect()
}

const DAY_SECS: u64 = 86_400;

/// A lifetime asked for in days: at least one, at most the configured longest.
fn chosen_lifetime(lifetimes: &Lifetimes, days: Option<u32>) -> DomainResult<Duration> {
    let longest = lifetimes.admin_token_ttl;
    let Some(days) = days else { return Ok(longest) };
    let asked = Duration::from_secs(u64::from(days) * DAY_SECS);
    if days == 0 || asked > longest {
        return Err(DomainError::invalid_field(
            "days",
            format!(
                "A token lasts from 1 to {} days here.",
                (longest.as_secs() / DAY_SECS).max(1)
            ),
        ));
    }
    Ok(asked)
}

/// Issues a new current token for `admin`; the previous one (if any) keeps
/// working until the switch-over ends (or its own expiry, if sooner).
async fn issue(
    db: &Db,
    master: &MasterKey,
    lifetimes: &Lifetimes,
    actor: &Principal,
    admin: &Admin,
    why: Issue,
    lifetime: Duration,
) -> DomainResult<IssuedToken> {
    if admin.role == Role::SuperAdmin {
        return Err(DomainError::invalid("Admin tokens are not available for Super Admin."));
    }
    if admin.disabled {
        return Err(DomainError::invalid("This admin is disabled."));
    }
    let now = now_ms();
    let grace_end = now + lifetimes.admin_token_grace.as_millis() as i64;
    let expires_at = now + lifetime.as_millis() as i64;
    let token = secrets::generate(PREFIX);
    let id = crate::domain::ids::random_id();
    let sealed = master.seal(token.expose_secret().as_bytes(), &seal_context(&id))?;

    let mut change = db.change_as(actor).await?;
    // Decided here, under the change lock, not from the view the request
    // was admitted by: only the current token of an enabled admin may mint
    // its successor (a stolen token in its switch-over must not outlive
    // the owner's rotation by rotating again).
    if let Credential::AdminToken { token_id } = &actor.credential {
        let current: Option<(String,)> =
            sqlx::query_as("SELECT id FROM admin_tokens WHERE id = $1 AND admin_id = $2 AND state = 'current'")
                .bind(token_id)
                .bind(&admin.id)
                .fetch_optional(change.conn())
                .await?;
        if current.is_none() {
            return Err(DomainError::Unauthorized("Invalid token".into()));
        }
    }
    let enabled: Option<(i64,)> = sqlx::query_as("SELECT disabled FROM admin_users WHERE id = $1")
        .bind(&admin.id)
        .fetch_optional(change.conn())
        .await?;
    if enabled.is_none_or(|(disabled,)| disabled != 0) {
        return Err(DomainError::invalid("This admin is disabled."));
    }
    // The previous token works on until the switch-over's end or its own
    // expiry, whichever comes first (one already expired is not working).
    let previous: Option<(i64,)> =
        sqlx::query_as("SELECT expires_at FROM admin_tokens WHERE admin_id = $1 AND state = 'current'")
            .bind(&admin.id)
            .fetch_optional(change.conn())
            .await?;
    sqlx::query(
        "UPDATE admin_tokens SET state = 'superseded', valid_until = $1 \
         WHERE admin_id = $2 AND state = 'current'",
    )
    .bind(grace_end)
    .bind(&admin.id)
    .execute(change.conn())
    .await?;
    sqlx::query(
        "INSERT INTO admin_tokens (id, admin_id, digest, sealed, issued_at, expires_at, state) \
         VALUES ($1, $2, $3, $4, $5, $6, 'current')",
    )
    .bind(&id)
    .bind(&admin.id)
    .bind(sha256(token.expose_secret().as_bytes()).to_vec())
    .bind(sealed)
    .bind(now)
    .bind(expires_at)
    .execute(change.conn())
    .await?;
    change
        .commit(
            AuditEvent::new(
                &actor.name,
                match why {
                    Issue::Generate => "admin_token.generate",
                    Issue::AtSignIn => "admin_token.issue_at_sign_in",
                },
                &admin.username,
            )
            .detail(
                serde_json::json!({ "token_id": id, "expires_at": expires_at, "previous_superseded": previous.is_some() }),
            )
            .source(actor.source()),
        )
        .await?;
    Ok(IssuedToken {
        token,
        issued_at: now,
        expires_at,
        previous_valid_until: previous
            .map(|(expires_at,)| expires_at.min(grace_end))
            .filter(|until| *until > now),
    })
}

/// Revokes every live token of `username` and ends their console sessions.
/// Admins may revoke only their own; super admins anyone's. Refusals are
/// audited too.
async fn revoke(db: &Db, actor: &Principal, username: &str) -> DomainResult<()> {
    // A name no username can be is nobody's; it is recorded without its
    // control characters (PostgreSQL refuses NUL in text).
    let target_name = match admins::validate_username(username) {
        Ok(name) => name,
        Err(_) => username.chars().filter(|c| !c.is_control()).take(64).collect(),
    };
    let target = admins::by_username(db, username).await?;
    let allowed = actor.is_super_admin() || actor.is_admin_named(&target_name);
    let refusal = match (&target, allowed) {
        (_, false) => Some(DomainError::Forbidden),
        (None, true) => Some(DomainError::NotFound(crate::domain::Entity::Admin)),
        _ => None,
    };
    if let Some(err) = refusal {
        let reason = if matches!(err, DomainError::Forbidden) {
            "not permitted"
        } else {
            "no such username"
        };
        let change = db.change_as(actor).await?;
        change
            .commit(
                AuditEvent::new(&actor.name, "admin_token.revoke_refused", &target_name)
                    .detail(serde_json::json!({ "reason": reason }))
                    .source(actor.source()),
            )
            .await?;
        return Err(err);
    }
    let target = target.expect("checked above");
    let now = now_ms();
    let mut change = db.change_as(actor).await?;
    let n = revoke_all(change.conn(), &target.id, now).await?;
    sqlx::query("UPDATE admin_users SET session_epoch = session_epoch + 1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(&target.id)
        .execute(change.conn())
        .await?;
    change
        .commit(
            AuditEvent::new(&actor.name, "admin_token.revoke", &target.username)
                .detail(serde_json::json!({ "tokens_revoked": n }))
                .source(actor.source()),
        )
        .await
}

/// Revokes every live token of the admin `admin_id`, inside the caller's
/// change; returns how many.
pub(crate) async fn revoke_all(conn: &mut sqlx::AnyConnection, admin_id: &str, now: i64) -> DomainResult<u64> {
    Ok(sqlx::query(
        "UPDATE admin_tokens SET state = 'revoked', valid_until = $1 \
         WHERE admin_id = $2 AND (state = 'current' OR valid_until > $1)",
    )
    .bind(now)
    .bind(admin_id)
    .execute(conn)
    .await?
    .rows_affected())
}

/// The current token, decrypted, for its owner to see again. Showing a
/// secret is audited like a change: the event names whose token and which,
/// never the token.
async fn retrieve(
    db: &Db,
    master: &MasterKey,
    actor: &Principal,
    admin_id: &str,
) -> DomainResult<Option<(SecretString, i64)>> {
    let row: Option<(String, Vec<u8>, i64)> =
        sqlx::query_as("SELECT id, sealed, expires_at FROM admin_tokens WHERE admin_id = $1 AND state = 'current'")
            .bind(admin_id)
            .fetch_optional(db.read())
            .await?;
    let Some((id, sealed, expires_at)) = row else {
        return Ok(None);
    };
    let plain = master.open(&sealed, &seal_context(&id))?;
    let token = String::from_utf8(plain).map_err(|_| DomainError::Internal("sealed token is not text".into()))?;
    db.change_as(actor)
        .await?
        .commit(
            AuditEvent::new(&actor.name, "admin_token.retrieve", &actor.name)
                .detail(serde_json::json!({ "token_id": id }))
                .source(actor.source()),
        )
        .await?;
    Ok(Some((SecretString::from(token), expires_at)))
}

pub(crate) async fn status(db: &Db, admin_id: &str) -> DomainResult<TokenStatus> {
    let rows: Vec<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT state, expires_at, valid_until, last_used_at FROM admin_tokens \
         WHERE admin_id = $1 ORDER BY issued_at DESC LIMIT 5",
    )
    .bind(admin_id)
    .fetch_all(db.read())
    .await?;
    let now = now_ms();
    let current = rows.iter().find(|r| r.0 == "current");
    let state = match (current, rows.first()) {
        (Some((_, exp, _, _)), _) if *exp > now => TokenState::Active { expires_at: *exp },
        (Some((_, exp, _, _)), _) => TokenState::Expired { expired_at: *exp },
        (None, Some((s, _, _, _))) if s == "revoked" => TokenState::Revoked,
        _ => TokenState::None,
    };
    // A superseded token works until its switch-over ends or it expires.
    let switching_until = rows
        .iter()
        .filter(|r| r.0 == "superseded")
        .filter_map(|r| r.2.map(|until| until.min(r.1)))
        .filter(|until| *until > now)
        .max();
    Ok(TokenStatus {
        state,
        last_used_at: current.and_then(|r| r.3),
        switching_until,
    })
}

/// Why a presented admin token is refused (the API's two messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Expired,
    Invalid,
}

/// Checks a presented token against the in-memory view: no database, no argon2.
fn verify(views: &Views, presented: &str) -> Result<AdminTokenView, Refusal> {
    if !presented.starts_with(PREFIX) || presented.len() > 128 {
        return Err(Refusal::Invalid);
    }
    let view = views
        .admin_token(&sha256(presented.as_bytes()))
        .ok_or(Refusal::Invalid)?;
    let now = now_ms();
    if view.disabled || view.valid_until.is_some_and(|t| t <= now) {
        return Err(Refusal::Invalid);
    }
    if view.expires_at <= now {
        return Err(Refusal::Expired);
    }
    Ok(view)
}

/// At sign-in, an admin without a live token (new, or revoked) gets one.
pub(crate) async fn ensure_after_login(kw: &Keyward, admin: &Admin, who: &Principal) -> DomainResult<()> {
    if admin.role != Role::Admin {
        return Ok(());
    }
    let status = status(&kw.db, &admin.id).await?;
    if matches!(status.state, TokenState::None | TokenState::Revoked) {
        let lifetime = kw.lifetimes.admin_token_ttl;
        issue(
            &kw.db,
            &kw.master_key,
            &kw.lifetimes,
            who,
            admin,
            Issue::AtSignIn,
            lifetime,
        )
        .await?;
        kw.refresh().await?;
    }
    Ok(())
}

/// Why a presented admin token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminTokenRefusal {
    /// mTLS is on and the request came without a good client certificate.
    Mtls(crate::domain::pki::mtls::Refusal),
    Invalid,
    Expired,
}

/// The holder of a live admin token: who they are, and the token's state.
#[derive(Debug, Clone)]
pub struct TokenHolder {
    pub principal: Principal,
    pub expires_at: i64,
    /// False while the presented token is the superseded one, in its
    /// switch-over.
    pub current: bool,
}

impl Keyward {
    /// Does this request carry a live admin token of an enabled admin (and,
    /// under mTLS, a good client certificate, checked first)? From memory
    /// (under mTLS, after one read of the audit head: see `mtls_gate`),
    /// no argon2; records the token's use.
    pub async fn check_admin_token(
        &self,
        transport: &Transport,
        presented: Option<&str>,
        address: &str,
    ) -> Result<TokenHolder, AdminTokenRefusal> {
        self.mtls_gate(transport).await.map_err(AdminTokenRefusal::Mtls)?;
        // No token is no verification (as for the other credentials).
        let presented = presented.ok_or(AdminTokenRefusal::Invalid)?;
        let counted = |verdict| self.metrics.verification(TokenKind::Admin, verdict);
        match verify(&self.views, presented) {
            // Super admins hold no token; a view that says otherwise is stale.
            Ok(view) if view.role == Role::Admin => {
                counted(Verdict::Ok);
                self.usage.admin_token_used(&view.token_id, now_ms());
                Ok(TokenHolder {
                    principal: Principal::admin_api(&view.username, &view.admin_id, view.role, &view.token_id, address),
                    expires_at: view.expires_at,
                    current: view.current,
                })
            }
            // A revoked token has left the views: it reads as invalid.
            Ok(_) | Err(Refusal::Invalid) => {
                counted(Verdict::Invalid);
                Err(AdminTokenRefusal::Invalid)
            }
            Err(Refusal::Expired) => {
                counted(Verdict::Expired);
                Err(AdminTokenRefusal::Expired)
            }
        }
    }

    /// A new token for the acting admin, lasting `days` (the configured
    /// longest when `None`); the previous one keeps working for the
    /// switch-over (or until it expires, if sooner). In the console, after
    /// their password again (a session left open is not a token), and a
    /// code when they have a second factor.
    pub async fn generate_admin_token(
        &self,
        who: &Principal,
        password: Option<SecretString>,
        code: Option<&str>,
        days: Option<u32>,
    ) -> DomainResult<IssuedToken> {
        let lifetime = chosen_lifetime(&self.lifetimes, days)?;
        self.reauthenticate(who, password, code).await?;
        let admin = self.acting_admin(who).await?;
        self.generate_for(who, &admin, lifetime).await
    }

    /// A token generated on request (not given at sign-in): counted as a
    /// rotation, and in the views before this returns.
    async fn generate_for(&self, who: &Principal, admin: &Admin, lifetime: Duration) -> DomainResult<IssuedToken> {
        let issued = issue(
            &self.db,
            &self.master_key,
            &self.lifetimes,
            who,
            admin,
            Issue::Generate,
            lifetime,
        )
        .await?;
        self.metrics.rotation(Rotation::AdminToken);
        self.refresh().await?;
        Ok(issued)
    }

    /// Break-glass from the host: a new token for the admin `username`.
    /// The operator only.
    pub async fn issue_admin_token(&self, who: &Principal, username: &str) -> DomainResult<IssuedToken> {
        if who.credential != Credential::Operator {
            return Err(DomainError::Forbidden);
        }
        let admin = admins::by_username(&self.db, username)
            .await?
            .ok_or(DomainError::NotFound(Entity::Admin))?;
        self.generate_for(who, &admin, self.lifetimes.admin_token_ttl).await
    }

    /// The acting admin's current token, to see again (after their
    /// password, in the console); `None` when they have none.
    pub async fn retrieve_admin_token(
        &self,
        who: &Principal,
        password: Option<SecretString>,
        code: Option<&str>,
    ) -> DomainResult<Option<(SecretString, i64)>> {
        self.reauthenticate(who, password, code).await?;
        let admin = self.acting_admin(who).await?;
        retrieve(&self.db, &self.master_key, who, &admin.id).await
    }

    /// Revokes every token of `username` and ends their console sessions.
    /// Admins may name only themselves; super admins (and the operator)
    /// anyone. Says whether the acting admin revoked their own.
    pub async fn revoke_admin_token(&self, who: &Principal, username: &str) -> DomainResult<Revoked> {
        revoke(&self.db, who, username).await?;
        self.metrics.revocation(metrics::Revocation::AdminToken);
        self.refresh().await?;
        Ok(Revoked {
            own: who.is_admin_named(&username.trim().to_lowercase()),
        })
    }

    /// The acting admin's token, as their own notices describe it; `None`
    /// for a super admin, who holds none.
    pub async fn own_token_status(&self, who: &Principal) -> DomainResult<Option<TokenStatus>> {
        match (&who.admin_id, who.role) {
            (Some(id), Role::Admin) => Ok(Some(status(&self.db, id).await?)),
            _ => Ok(None),
        }
    }
}

/// What a revocation did.
#[derive(Debug, Clone, Copy)]
pub struct Revoked {
    /// The acting admin's own tokens (and so their own session) ended.
    pub own: bool,
}

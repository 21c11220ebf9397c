//! End-user sessions: the session endpoint's rules (SPEC §5), access-token
//! checks, logout, and revoking all of a user's sessions.

use serde_json::Value;

use crate::domain::audit::AuditEvent;
use crate::domain::clock::now_ms;
use crate::domain::credentials::end_users::EndUser;
use crate::domain::credentials::tokens::{self, AccessClaims};
use crate::domain::metrics::{self, CacheLookup, TokenKind, Verdict};
use crate::domain::principal::Principal;
use crate::domain::storage::db::Db;
use crate::domain::storage::views::Revocation;
use crate::domain::Keyward;
use crate::domain::{DomainError, DomainResult};

#[derive(Clone)]
pub struct SessionRequest {
    pub user_id: String,
    pub device_id: String,
    pub display_name: Option<String>,
    pub device_info: Option<Value>,
    pub auth_token: Option<String>,
}

// Hand-written so the auth token never reaches a log line.
impl std::fmt::Debug for SessionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRequest")
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

pub struct IssuedSession {
    pub access_token: String,
    pub claims: AccessClaims,
    pub user: EndUser,
}

/// A request field at fault, named as the wire names it (the message
/// leads with it too).
fn invalid(m: &str) -> DomainError {
    let field = ["userId", "deviceId", "displayName", "authToken", "deviceInfo"]
        .into_iter()
        .find(|f| m.starts_with(f));
    DomainError::Invalid {
        field,
        message: m.into(),
    }
}

fn validate_user_id(user_id: &str) -> DomainResult<()> {
    let n = user_id.chars().count();
    if n == 0 || n > 50 {
        return Err(invalid("userId must be 1 to 50 characters"));
    }
    if user_id.chars().any(char::is_control) {
        return Err(invalid("userId must not contain control characters"));
    }
    if user_id.starts_with("ADMIN_") || user_id.starts_with("DELETED_") {
        return Err(invalid("userId must not start with ADMIN_ or DELETED_"));
    }
    Ok(())
}

fn validate(req: &SessionRequest) -> DomainResult<()> {
    validate_user_id(&req.user_id)?;
    let n = req.device_id.chars().count();
    if n == 0 || n > 150 {
        return Err(invalid("deviceId must be 1 to 150 characters"));
    }
    if req.device_id.chars().any(char::is_control) {
        return Err(invalid("deviceId must not contain control characters"));
    }
    if req.display_name.as_ref().is_some_and(|d| d.chars().count() > 100) {
        return Err(invalid("displayName must be at most 100 characters"));
    }
    if req
        .display_name
        .as_ref()
        .is_some_and(|d| d.chars().any(char::is_control))
    {
        return Err(invalid("displayName must not contain control characters"));
    }
    if req.auth_token.as_ref().is_some_and(|t| t.chars().count() > 100) {
        return Err(invalid("authToken must be at most 100 characters"));
    }
    match &req.device_info {
        None | Some(Value::Null) => {}
        Some(v @ Value::Object(_)) => {
            if v.to_string().len() > 2048 {
                return Err(invalid("deviceInfo must be at most 2 KiB"));
            }
        }
        Some(_) => return Err(invalid("deviceInfo must be a JSON object")),
    }
    Ok(())
}

/// Opens a session: checks the API key's mode, redeems the auth token in
/// secure mode, creates or updates the user, and signs an access token.
async fn create(kw: &Keyward, req: SessionRequest) -> DomainResult<IssuedSession> {
    validate(&req)?;
    let app = kw.views.app().ok_or(DomainError::SetupRequired)?;
    let now = now_ms();
    match (&req.auth_token, app.secure_mode) {
        (Some(token), _) if !token.is_empty() => redeem_auth_token(kw, &req.user_id, token, now).await?,
        (_, true) => return Err(DomainError::Unauthorized("authToken is required in secure mode".into())),
        (_, false) => kw.usage.unsecured_session(now),
    }
    let user = upsert_user(kw, &req.user_id, req.display_name.as_deref(), now).await?;
    let claims = AccessClaims {
        sid: crate::domain::ids::random_id(),
        uid: user.id.clone(),
        user_id: user.user_id.clone(),
        device_id: req.device_id,
        iat: now,
        exp: now + kw.lifetimes.access_token_ttl.as_millis() as i64,
    };
    let access_token = tokens::sign_access(&kw.signing, &claims);
    // A user this session created was stored as seen now already.
    if user.created_at != now {
        kw.usage.end_user_seen(&user.id, now);
    }
    Ok(IssuedSession {
        access_token,
        claims,
        user,
    })
}

async fn redeem_auth_token(kw: &Keyward, user_id: &str, token: &str, now: i64) -> DomainResult<()> {
    let counted = |verdict| kw.metrics.verification(TokenKind::Auth, verdict);
    let Some(grant) = tokens::verify_auth(&kw.signing, user_id, token) else {
        counted(Verdict::Invalid);
        return Err(DomainError::Unauthorized("Invalid authToken".into()));
    };
    if grant.exp <= now {
        counted(Verdict::Expired);
        return Err(DomainError::Unauthorized("authToken has expired".into()));
    }
    // Durable before answering: the nonce's row makes the token single use.
    match kw.writer.redeem(&grant.nonce, grant.exp).await {
        Ok(true) => {
            counted(Verdict::Ok);
            Ok(())
        }
        Ok(false) => {
            counted(Verdict::Revoked);
            Err(DomainError::Unauthorized("authToken has already been used".into()))
        }
        Err(e) => {
            counted(Verdict::Error);
            Err(e)
        }
    }
}

/// A known user with no new display name costs no read and no write: it
/// comes from memory. A stored user not in memory costs a read (batched
/// with other misses); a new user a write through the batching writer,
/// and the read too unless the filter of stored ids says it is certainly
/// new; a rename is a direct (rare) write.
async fn upsert_user(kw: &Keyward, user_id: &str, display_name: Option<&str>, now: i64) -> DomainResult<EndUser> {
    // The writer inserts the user unless another request (or instance)
    // just did, and answers the stored row either way. The cache's policy
    // decides whether a new user stays in memory: one who comes back does.
    let (mut user, created) = match kw.users.get(user_id) {
        Some(user) => {
            kw.metrics.cache_lookup(CacheLookup::Hit);
            (user, false)
        }
        None => {
            let ticket = kw.users.ticket();
            let stored = if kw.stored_ids.certainly_new(user_id) {
                kw.metrics.cache_lookup(CacheLookup::New);
                None
            } else {
                kw.metrics.cache_lookup(CacheLookup::Miss);
                kw.reader.find(user_id).await?
            };
            let (user, created) = match stored {
                Some(user) => (user, false),
                None => {
                    let written = kw
                        .writer
                        .new_user(user_id, display_name.unwrap_or(user_id), now)
                        .await?;
                    kw.stored_ids.add(user_id);
                    written
                }
            };
            // A row read (here, or back by the writer: stored meanwhile by
            // another request or instance), which a rename may have
            // outdated; one this session created is kept below.
            if !created {
                kw.users.put_read(&user, ticket);
            }
            (user, created)
        }
    };
    let renamed = display_name.filter(|n| user.display_name.as_deref() != Some(*n));
    if let Some(name) = renamed {
        sqlx::query("UPDATE end_users SET display_name = $1, updated_at = $2 WHERE id = $3")
            .bind(name)
            .bind(now)
            .bind(&user.id)
            .execute(kw.db.write())
            .await?;
        user.display_name = Some(name.to_string());
        user.updated_at = now;
        kw.users.renamed(&user);
    } else if created {
        kw.users.put(&user);
    }
    Ok(user)
}

/// Checks an access token: signature, expiry, revocation. No database for
/// a live token (unless the revocation filter mistakes it for a logged-out
/// one: then one indexed read).
async fn verify_access(kw: &Keyward, token: &str) -> DomainResult<AccessClaims> {
    let invalid = || DomainError::Unauthorized("Invalid access token".into());
    let counted = |verdict| kw.metrics.verification(TokenKind::Access, verdict);
    let Some(claims) = tokens::verify_access(&kw.signing, token) else {
        counted(Verdict::Invalid);
        return Err(invalid());
    };
    if claims.exp <= now_ms() {
        counted(Verdict::Expired);
        return Err(DomainError::Unauthorized("Access token expired".into()));
    }
    let revoked = match kw.views.access_revocation(&claims.sid, &claims.uid, claims.iat) {
        Revocation::Live => false,
        Revocation::Revoked => true,
        Revocation::Ask => match crate::domain::storage::views::session_revoked(&kw.db, &claims.sid).await {
            Ok(revoked) => revoked,
            Err(e) => {
                counted(Verdict::Error);
                return Err(e);
            }
        },
    };
    if revoked {
        counted(Verdict::Revoked);
        return Err(invalid());
    }
    counted(Verdict::Ok);
    kw.usage.end_user_seen(&claims.uid, now_ms());
    Ok(claims)
}

/// Logout: this access token is dead, durably before answering (through
/// the batching writer), on this instance at once and on the others at
/// their next poll. Each user may log out a bounded number of times a
/// minute: the record of a logout lives as long as its token.
async fn revoke_session(kw: &Keyward, claims: &AccessClaims) -> DomainResult<()> {
    if !kw.logouts.allow(&claims.uid, now_ms()) {
        return Err(DomainError::RateLimited(60));
    }
    kw.writer.logout(&claims.sid, now_ms(), claims.exp).await?;
    kw.views.note_session_revoked(&claims.sid);
    kw.metrics.revocation(metrics::Revocation::Logout);
    Ok(())
}

/// Every access token of the user issued until now is dead (audited).
/// How an admin names the user whose sessions end.
#[derive(Debug, Clone, Copy)]
pub enum UserRef<'a> {
    /// The public `userId` the client chose.
    UserId(&'a str),
    /// Keyward's own id for the user (`_id` in a session answer).
    InternalId(&'a str),
}

async fn revoke_user_sessions(kw: &Keyward, actor: &Principal, who: UserRef<'_>) -> DomainResult<()> {
    use crate::domain::credentials::end_users::{find_user, find_user_by_id};
    let found = match who {
        UserRef::UserId(user_id) => {
            validate_user_id(user_id)?;
            find_user(&kw.db, user_id).await?
        }
        UserRef::InternalId(id) => {
            if id.is_empty() || id.len() > 64 || id.chars().any(char::is_control) {
                return Err(invalid(
                    "userId (an internal id) must be 1 to 64 characters, no control characters",
                ));
            }
            find_user_by_id(&kw.db, id).await?
        }
    };
    let user = found.ok_or(DomainError::NotFound(crate::domain::Entity::EndUser))?;
    let user_id = user.user_id.as_str();
    let now = now_ms();
    let far = now + kw.lifetimes.access_token_ttl.as_millis() as i64;
    let mut change = kw.db.change_as(actor).await?;
    sqlx::query("INSERT INTO revocations (kind, subject, at, expires_at) VALUES ('user', $1, $2, $3)")
        .bind(&user.id)
        .bind(now)
        .bind(far)
        .execute(change.conn())
        .await?;
    change
        .commit(AuditEvent::new(&actor.name, "end_user.revoke_sessions", user_id).source(actor.source()))
        .await?;
    kw.views.note_user_revoked(&user.id, now, far);
    Ok(())
}

/// Deletes redemption records and revocations of tokens that have expired
/// anyway: a dead token needs no record to stay dead. In batches, so the
/// writer is never held for long however many expire at once.
async fn delete_expired_records(db: &Db) -> DomainResult<()> {
    let now = now_ms();
    // Kept a while past expiry: an instance whose clock runs behind must
    // still find the record.
    const SKEW_MARGIN_MS: i64 = 5 * 60 * 1000;
    const BATCH: i64 = 10_000;
    for sql in [
        "DELETE FROM redeemed_auth_tokens WHERE nonce IN \
         (SELECT nonce FROM redeemed_auth_tokens WHERE expires_at <= $1 LIMIT $2)",
        "DELETE FROM revocations WHERE seq IN (SELECT seq FROM revocations WHERE expires_at <= $1 LIMIT $2)",
    ] {
        loop {
            let done = sqlx::query(sql)
                .bind(now - SKEW_MARGIN_MS)
                .bind(BATCH)
                .execute(db.write())
                .await?
                .rows_affected();
            if done < BATCH as u64 {
                break;
            }
        }
    }
    Ok(())
}

impl Keyward {
    /// Opens a session for an end user: checks the mode, redeems the auth
    /// token in secure mode, creates or updates the user, and signs an
    /// access token. (The API key was checked by `check_api_key`.)
    pub async fn open_session(&self, req: SessionRequest) -> DomainResult<IssuedSession> {
        create(self, req).await
    }

    /// Checks an access token: signature, expiry, revocation.
    pub async fn verify_access_token(&self, token: &str) -> DomainResult<AccessClaims> {
        verify_access(self, token).await
    }

    /// Logout: this access token is dead.
    pub async fn log_out(&self, claims: &AccessClaims) -> DomainResult<()> {
        revoke_session(self, claims).await
    }

    /// Deletes the records of tokens that have expired anyway (redemptions,
    /// logouts, user revocations), a while past their expiry: the
    /// background clean-up's step, each minute.
    pub async fn delete_expired_token_records(&self) -> DomainResult<()> {
        delete_expired_records(&self.db).await
    }

    /// Every access token of the end user issued until now is dead (audited).
    pub async fn revoke_user_sessions(&self, who: &Principal, user: UserRef<'_>) -> DomainResult<()> {
        revoke_user_sessions(self, who, user).await?;
        self.metrics.revocation(metrics::Revocation::EndUserSessions);
        Ok(())
    }

    /// An auth token for `user_id`, minted for a customer backend that
    /// presented a server key; it lives the configured auth-token lifetime.
    pub fn mint_auth_token(&self, user_id: &str) -> DomainResult<String> {
        validate_user_id(user_id)?;
        let exp = now_ms() + self.lifetimes.auth_token_ttl.as_millis() as i64;
        Ok(tokens::mint_auth(&self.signing, user_id, exp))
    }
}

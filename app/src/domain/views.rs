//! In-memory views of what the hot paths check: the application's API key
//! and modes, server keys, admin tokens, client certificates, and
//! access-token revocations.
//! Requests read these, never the database. A change made on this instance
//! refreshes them at once; changes made by other instances are picked up
//! by a poll of the audit-chain head (every change bumps it) and of the
//! revocation log, a few times a second.

use std::collections::HashMap;
use std::sync::RwLock;

use super::clock::now_ms;
use super::db::Db;
use super::DomainResult;
use crate::model::Role;

#[derive(Debug, Clone)]
pub struct AppView {
    pub api_key: String,
    pub secure_mode: bool,
    pub mtls: bool,
}

#[derive(Debug, Clone)]
pub struct ServerKeyView {
    pub id: String,
    pub retires_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct AdminTokenView {
    pub token_id: String,
    pub admin_id: String,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub current: bool,
    pub expires_at: i64,
    /// Set once superseded (end of switch-over) or revoked (the moment).
    pub valid_until: Option<i64>,
}

/// An issued client certificate, keyed by the SHA-256 of its DER.
#[derive(Debug, Clone)]
pub struct CertView {
    pub id: String,
    pub name: String,
    pub not_before: i64,
    pub not_after: i64,
    pub revoked: bool,
}

#[derive(Debug, Default)]
struct Snapshot {
    /// The audit-chain sequence this snapshot reflects.
    version: i64,
    app: Option<AppView>,
    server_keys: HashMap<[u8; 32], ServerKeyView>,
    admin_tokens: HashMap<[u8; 32], AdminTokenView>,
    certificates: HashMap<[u8; 32], CertView>,
}

#[derive(Debug, Default)]
struct Revocations {
    last_seq: i64,
    sessions: HashMap<String, i64>,
    /// End user id -> tokens issued at or before this time are dead.
    users: HashMap<String, i64>,
}

#[derive(Debug, Default)]
pub struct Views {
    snapshot: RwLock<Snapshot>,
    revocations: RwLock<Revocations>,
}

fn digest_key(d: &[u8]) -> Option<[u8; 32]> {
    d.try_into().ok()
}

/// How far back each poll re-reads revocations, so one committed late by a
/// slower transaction (with a lower sequence number) is not missed.
const LATE_COMMIT_WINDOW_MS: i64 = 10_000;

impl Views {
    pub fn app(&self) -> Option<AppView> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).app.clone()
    }

    /// Is mTLS on? (Cheap: no clone.)
    pub fn mtls_on(&self) -> bool {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .app
            .as_ref()
            .is_some_and(|a| a.mtls)
    }

    pub fn server_key(&self, digest: &[u8; 32]) -> Option<ServerKeyView> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .server_keys
            .get(digest)
            .cloned()
    }

    pub fn admin_token(&self, digest: &[u8; 32]) -> Option<AdminTokenView> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .admin_tokens
            .get(digest)
            .cloned()
    }

    pub fn certificate(&self, fingerprint: &[u8; 32]) -> Option<CertView> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .certificates
            .get(fingerprint)
            .cloned()
    }

    /// Is an access token with this session id, user and issue time revoked?
    pub fn access_revoked(&self, sid: &str, uid: &str, iat: i64) -> bool {
        let r = self.revocations.read().unwrap_or_else(|p| p.into_inner());
        r.sessions.contains_key(sid) || r.users.get(uid).is_some_and(|nb| iat <= *nb)
    }

    pub fn note_session_revoked(&self, sid: &str, exp: i64) {
        let mut r = self.revocations.write().unwrap_or_else(|p| p.into_inner());
        r.sessions.insert(sid.to_string(), exp);
    }

    pub fn note_user_revoked(&self, uid: &str, at: i64) {
        let mut r = self.revocations.write().unwrap_or_else(|p| p.into_inner());
        let nb = r.users.entry(uid.to_string()).or_insert(at);
        *nb = (*nb).max(at);
    }

    /// Reloads what changed. `force` reloads the snapshot even when the
    /// audit head has not moved (used right after a change on this instance).
    pub async fn refresh(&self, db: &Db, force: bool) -> DomainResult<()> {
        let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM audit_head WHERE id = 1")
            .fetch_one(db.read())
            .await?;
        let stale = force || self.snapshot.read().unwrap_or_else(|p| p.into_inner()).version != seq;
        if stale {
            let fresh = load_snapshot(db, seq).await?;
            let mut current = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
            // A slow poll must not overwrite what a later refresh installed.
            if fresh.version >= current.version {
                *current = fresh;
            }
        }
        self.refresh_revocations(db).await
    }

    async fn refresh_revocations(&self, db: &Db) -> DomainResult<()> {
        let last = self.revocations.read().unwrap_or_else(|p| p.into_inner()).last_seq;
        let now = now_ms();
        let rows: Vec<(i64, String, String, i64, i64)> = sqlx::query_as(
            "SELECT seq, kind, subject, at, expires_at FROM revocations WHERE seq > $1 OR at > $2 ORDER BY seq",
        )
        .bind(last)
        .bind(now - LATE_COMMIT_WINDOW_MS)
        .fetch_all(db.read())
        .await?;
        let mut r = self.revocations.write().unwrap_or_else(|p| p.into_inner());
        for (seq, kind, subject, at, expires_at) in rows {
            r.last_seq = r.last_seq.max(seq);
            if kind == "session" {
                r.sessions.insert(subject, expires_at);
            } else {
                let nb = r.users.entry(subject).or_insert(at);
                *nb = (*nb).max(at);
            }
        }
        // Revoked tokens past their own expiry are dead anyway.
        r.sessions.retain(|_, exp| *exp > now);
        Ok(())
    }
}

async fn load_snapshot(db: &Db, version: i64) -> DomainResult<Snapshot> {
    let app = super::application::get(db).await?.map(|a| AppView {
        api_key: a.api_key,
        secure_mode: a.secure_mode,
        mtls: a.mtls,
    });
    let now = now_ms();
    let keys: Vec<(String, Vec<u8>, Option<i64>)> =
        sqlx::query_as("SELECT id, digest, retires_at FROM server_keys WHERE retires_at IS NULL OR retires_at > $1")
            .bind(now)
            .fetch_all(db.read())
            .await?;
    let server_keys = keys
        .into_iter()
        .filter_map(|(id, digest, retires_at)| Some((digest_key(&digest)?, ServerKeyView { id, retires_at })))
        .collect();
    type TokenRow = (String, String, Vec<u8>, String, String, i64, String, i64, Option<i64>);
    let tokens: Vec<TokenRow> = sqlx::query_as(
        "SELECT t.id, t.admin_id, t.digest, a.username, a.role, a.disabled, t.state, t.expires_at, t.valid_until \
         FROM admin_tokens t JOIN admin_users a ON a.id = t.admin_id \
         WHERE t.state = 'current' OR t.valid_until > $1",
    )
    .bind(now)
    .fetch_all(db.read())
    .await?;
    let admin_tokens = tokens
        .into_iter()
        .filter_map(
            |(token_id, admin_id, digest, username, role, disabled, state, expires_at, valid_until)| {
                let view = AdminTokenView {
                    token_id,
                    admin_id,
                    username,
                    role: Role::parse(&role)?,
                    disabled: disabled != 0,
                    current: state == "current",
                    expires_at,
                    valid_until,
                };
                Some((digest_key(&digest)?, view))
            },
        )
        .collect();
    // Few rows: at most two active at a time, plus those revoked over the
    // years; revoked ones stay so a refusal can say "revoked".
    type CertRow = (String, String, Vec<u8>, i64, i64, Option<i64>);
    let certs: Vec<CertRow> =
        sqlx::query_as("SELECT id, name, fingerprint, not_before, not_after, revoked_at FROM certificates")
            .fetch_all(db.read())
            .await?;
    let certificates = certs
        .into_iter()
        .filter_map(|(id, name, fingerprint, not_before, not_after, revoked_at)| {
            let view = CertView {
                id,
                name,
                not_before,
                not_after,
                revoked: revoked_at.is_some(),
            };
            Some((digest_key(&fingerprint)?, view))
        })
        .collect();
    Ok(Snapshot {
        version,
        app,
        server_keys,
        admin_tokens,
        certificates,
    })
}

//! Server keys: the backend-only secret that mints auth tokens. Shown once
//! at generation; only a SHA-256 digest is kept.

use secrecy::{ExposeSecret, SecretString};

use crate::domain::audit::AuditEvent;
use crate::domain::clock::now_ms;
use crate::domain::metrics::{Rotation, TokenKind, Verdict};
use crate::domain::pki::mtls::Transport;
use crate::domain::principal::Principal;
use crate::domain::secrets::{self, sha256};
use crate::domain::storage::db::Db;
use crate::domain::Keyward;
use crate::domain::{DomainError, DomainResult};

pub const PREFIX: &str = "kwsk_";
/// How much of a key is kept in clear to tell keys apart in lists.
const SHOWN_PREFIX_LEN: usize = PREFIX.len() + 6;
pub const MAX_OVERLAP_SECS: i64 = 24 * 3600;
/// The longest name a key may carry, in characters.
pub const MAX_NAME_CHARS: usize = 40;

#[derive(Debug)]
pub struct NewServerKey {
    pub key: SecretString,
    pub prefix: String,
    pub created_at: i64,
    /// When the keys that were active before stop working (`created_at`
    /// for at once).
    pub previous_retire_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    RetiringUntil(i64),
    Retired,
}

#[derive(Debug, Clone)]
pub struct ServerKeyInfo {
    pub id: String,
    pub prefix: String,
    /// What the admin who generated it called it, if anything.
    pub name: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub status: KeyStatus,
}

/// A key's name as given: trimmed, empty for none, short and printable.
fn key_name(given: Option<&str>) -> DomainResult<Option<String>> {
    let Some(name) = given.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(DomainError::invalid_field(
            "name",
            format!("A key's name is at most {MAX_NAME_CHARS} characters."),
        ));
    }
    // Control characters, and the invisible ones that make a name read as
    // another (zero-width, bidirectional overrides).
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
    };
    if name.chars().any(hidden) {
        return Err(DomainError::invalid_field(
            "name",
            "A key's name cannot hold control or invisible characters.",
        ));
    }
    Ok(Some(name.to_string()))
}

/// Generates a new key. Keys still active retire after `overlap_secs`
/// (0 = at once; at most 24 hours).
async fn generate(db: &Db, actor: &Principal, overlap_secs: i64, name: Option<&str>) -> DomainResult<NewServerKey> {
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap_secs) {
        return Err(DomainError::invalid_field(
            "overlap",
            "The overlap must be between 0 and 24 hours.",
        ));
    }
    let name = key_name(name)?;
    crate::domain::application::require(db).await?;
    let key = secrets::generate(PREFIX);
    let prefix = key.expose_secret()[..SHOWN_PREFIX_LEN].to_string();
    let now = now_ms();
    let retire_at = now + overlap_secs * 1000;
    let mut change = db.change_as(actor).await?;
    // A key already retiring earlier keeps its earlier end.
    sqlx::query("UPDATE server_keys SET retires_at = $1 WHERE retires_at IS NULL OR retires_at > $1")
        .bind(retire_at)
        .execute(change.conn())
        .await?;
    let id = crate::domain::ids::random_id();
    sqlx::query(
        "INSERT INTO server_keys (id, prefix, name, digest, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(&prefix)
    .bind(&name)
    .bind(sha256(key.expose_secret().as_bytes()).to_vec())
    .bind(now)
    .bind(&actor.name)
    .execute(change.conn())
    .await?;
    change
        .commit(
            AuditEvent::new(&actor.name, "server_key.generate", &prefix)
                .detail(serde_json::json!({ "overlap_seconds": overlap_secs, "name": name }))
                .source(actor.source()),
        )
        .await?;
    Ok(NewServerKey {
        key,
        prefix,
        created_at: now,
        previous_retire_at: retire_at,
    })
}

/// Takes a retired key off the list. Its audit events stay; a key that
/// still works (active or retiring) is refused, checked in the transaction.
async fn remove(db: &Db, actor: &Principal, id: &str) -> DomainResult<String> {
    let now = now_ms();
    let mut change = db.change_as(actor).await?;
    let found: Option<(String, Option<i64>)> =
        sqlx::query_as("SELECT prefix, retires_at FROM server_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(change.conn())
            .await?;
    let Some((prefix, retires_at)) = found else {
        return Err(DomainError::NotFound(crate::domain::Entity::ServerKey));
    };
    if retires_at.is_none_or(|t| t > now) {
        return Err(DomainError::Conflict(
            "Only a retired key can be removed: this one still works.".into(),
        ));
    }
    let deleted = sqlx::query("DELETE FROM server_keys WHERE id = $1 AND retires_at IS NOT NULL AND retires_at <= $2")
        .bind(id)
        .bind(now)
        .execute(change.conn())
        .await?;
    // Removed meanwhile by someone else: one removal, one event.
    if deleted.rows_affected() == 0 {
        return Err(DomainError::NotFound(crate::domain::Entity::ServerKey));
    }
    change
        .commit(AuditEvent::new(&actor.name, "server_key.remove", &prefix).source(actor.source()))
        .await?;
    Ok(prefix)
}

pub(crate) async fn list(db: &Db) -> DomainResult<Vec<ServerKeyInfo>> {
    type Row = (String, String, Option<String>, i64, Option<i64>, Option<i64>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, prefix, name, created_at, last_used_at, retires_at FROM server_keys \
         ORDER BY created_at DESC LIMIT 50",
    )
    .fetch_all(db.read())
    .await?;
    let now = now_ms();
    Ok(rows
        .into_iter()
        .map(
            |(id, prefix, name, created_at, last_used_at, retires_at)| ServerKeyInfo {
                id,
                prefix,
                name,
                created_at,
                last_used_at,
                status: match retires_at {
                    None => KeyStatus::Active,
                    Some(t) if t > now => KeyStatus::RetiringUntil(t),
                    Some(_) => KeyStatus::Retired,
                },
            },
        )
        .collect())
}

/// Why a presented server key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKeyRefusal {
    /// mTLS is on and the request came without a good client certificate.
    Mtls(crate::domain::pki::mtls::Refusal),
    Missing,
    Invalid,
}

impl Keyward {
    /// Generates a server key, shown this once; the keys active before
    /// retire after `overlap_secs` (0: at once; at most 24 hours).
    pub async fn generate_server_key(
        &self,
        who: &Principal,
        overlap_secs: i64,
        name: Option<&str>,
    ) -> DomainResult<NewServerKey> {
        let key = generate(&self.db, who, overlap_secs, name).await?;
        self.metrics.rotation(Rotation::ServerKey);
        self.refresh().await?;
        Ok(key)
    }

    /// Takes a retired key off the list (its audit events stay); returns
    /// its shown prefix.
    pub async fn remove_server_key(&self, who: &Principal, id: &str) -> DomainResult<String> {
        crate::domain::ids::plausible(id, crate::domain::Entity::ServerKey)?;
        let prefix = remove(&self.db, who, id).await?;
        self.refresh().await?;
        Ok(prefix)
    }

    /// What Settings > Integrations shows: the application, its server
    /// keys, and how many sessions opened without an auth token in the
    /// last day.
    pub async fn integrations(&self, who: &Principal) -> DomainResult<Integrations> {
        let app = self.application(who).await?;
        // What this instance has answered but not yet written (last-used
        // times, sessions without an auth token) is written first: the
        // page counts what has been answered, not what was written.
        // A failure here costs the page only its freshness.
        if let Err(e) = self.usage.flush(&self.db).await {
            tracing::warn!(error = %e, "usage bookkeeping could not be written before the integrations page");
        }
        let server_keys = list(&self.db).await?;
        let unsecured_sessions_last_day =
            crate::domain::storage::usage::unsecured_sessions_last_day(&self.db, now_ms()).await?;
        Ok(Integrations {
            app,
            server_keys,
            unsecured_sessions_last_day,
        })
    }

    /// The keys as lists show them (a key itself is never shown again).
    pub async fn server_keys(&self, _who: &Principal) -> DomainResult<Vec<ServerKeyInfo>> {
        list(&self.db).await
    }

    /// Does this request carry a live server key (and, under mTLS, a good
    /// client certificate, checked first so a caller without one learns
    /// nothing about the key)? From memory (under mTLS, after one read of
    /// the audit head: see `mtls_gate`); records the key's use.
    pub async fn check_server_key(&self, transport: &Transport, given: Option<&str>) -> Result<(), ServerKeyRefusal> {
        self.mtls_gate(transport).await.map_err(ServerKeyRefusal::Mtls)?;
        let given = given.ok_or(ServerKeyRefusal::Missing)?;
        let now = now_ms();
        let counted = |verdict| self.metrics.verification(TokenKind::ServerKey, verdict);
        match self.views.server_key(&sha256(given.as_bytes())) {
            Some(key) if key.retires_at.is_none_or(|t| t > now) => {
                counted(Verdict::Ok);
                self.usage.server_key_used(&key.id, now);
                Ok(())
            }
            Some(_) => {
                counted(Verdict::Expired);
                Err(ServerKeyRefusal::Invalid)
            }
            None => {
                counted(Verdict::Invalid);
                Err(ServerKeyRefusal::Invalid)
            }
        }
    }
}

/// What Settings > Integrations shows.
pub struct Integrations {
    pub app: crate::domain::application::Application,
    pub server_keys: Vec<ServerKeyInfo>,
    pub unsecured_sessions_last_day: i64,
}

//! The audit log: append-only and chained. Each event's hash is a MAC
//! (HMAC-SHA256, with a key sealed by the master key, which is not in the
//! database: see `keyring`) over the previous hash and every field, so
//! editing, removing or reordering an event breaks the chain that
//! `keyward audit verify` walks, and someone who can write the database
//! cannot compute a new one.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::domain::clock::now_ms;
use crate::domain::secrets::{sha256, SubKey};
use crate::domain::storage::db::Db;
use crate::domain::{DomainError, DomainResult};

/// The purpose the chain's first key was derived for (see `keyring`).
pub const KEY_PURPOSE: &str = "audit-chain";

/// Who did what to which asset, from where. Never the secret itself.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub actor: String,
    pub action: &'static str,
    pub target: String,
    pub detail: serde_json::Value,
    pub source: Option<String>,
}

impl AuditEvent {
    pub fn new(actor: impl Into<String>, action: &'static str, target: impl Into<String>) -> Self {
        AuditEvent {
            actor: actor.into(),
            action,
            target: target.into(),
            detail: serde_json::Value::Null,
            source: None,
        }
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    pub fn source(mut self, source: Option<String>) -> Self {
        self.source = source;
        self
    }
}

/// Where the actor came from: the console's client address, or the CLI.
pub use crate::domain::principal::CLI_SOURCE;

pub(crate) fn chain_hash(key: &SubKey, prev: &[u8], e: &StoredEvent) -> [u8; 32] {
    let (seq, at) = (e.seq.to_string(), e.at.to_string());
    key.mac(&[
        prev,
        seq.as_bytes(),
        at.as_bytes(),
        e.actor.as_bytes(),
        e.action.as_bytes(),
        e.target.as_bytes(),
        e.detail.as_bytes(),
        e.source.as_bytes(),
    ])
}

/// The chain as it was before it was keyed (plain SHA-256): checked once,
/// when the events written then are re-hashed with the key.
fn unkeyed_hash(prev: &[u8], e: &StoredEvent) -> [u8; 32] {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(prev);
    let (seq, at) = (e.seq.to_string(), e.at.to_string());
    for field in [&seq, &at, &e.actor, &e.action, &e.target, &e.detail, &e.source] {
        buf.extend_from_slice(&(field.len() as u64).to_be_bytes());
        buf.extend_from_slice(field.as_bytes());
    }
    sha256(&buf)
}

pub(crate) async fn append(
    conn: &mut AnyConnection,
    key: &SubKey,
    seq: i64,
    prev: &[u8],
    event: &AuditEvent,
) -> DomainResult<()> {
    let stored = StoredEvent {
        seq,
        at: now_ms(),
        actor: event.actor.clone(),
        action: event.action.to_string(),
        target: event.target.clone(),
        detail: event.detail.to_string(),
        source: event.source.clone().unwrap_or_default(),
    };
    let hash = chain_hash(key, prev, &stored).to_vec();
    sqlx::query(
        "INSERT INTO audit_events (seq, at, actor, action, target, detail, source, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(stored.seq)
    .bind(stored.at)
    .bind(&stored.actor)
    .bind(&stored.action)
    .bind(&stored.target)
    .bind(&stored.detail)
    .bind(&stored.source)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub source: String,
}

/// An event's stored detail as the JSON it was written from; text that is
/// not JSON (none is written so) as a string, so nothing is hidden.
pub fn detail_value(detail: String) -> serde_json::Value {
    serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail))
}

/// An event's row: seq, at, actor, action, target, detail, source, hash.
pub(crate) type Row = (i64, i64, String, String, String, String, String, Vec<u8>);

fn stored((seq, at, actor, action, target, detail, source, _): Row) -> StoredEvent {
    StoredEvent {
        seq,
        at,
        actor,
        action,
        target,
        detail,
        source,
    }
}

const ALL_EVENTS: &str = "SELECT seq, at, actor, action, target, detail, source, hash FROM audit_events ORDER BY seq";

/// Where a chain of `rows`, hashed by `hash`, first breaks.
fn first_break(rows: &[Row], hash: impl Fn(&[u8], &StoredEvent) -> [u8; 32]) -> Option<String> {
    let mut prev = vec![0u8; 32];
    for (i, row) in rows.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        if row.0 != expected_seq {
            return Some(format!("event {expected_seq} is missing"));
        }
        if hash(&prev, &stored(row.clone())).as_slice() != row.7.as_slice() {
            return Some(format!("at event {}: its content was changed", row.0));
        }
        prev = row.7.clone();
    }
    None
}

/// Walks the whole chain. Returns the number of events, or where it breaks.
pub async fn verify(db: &Db) -> DomainResult<u64> {
    let keys = db.keys()?;
    if chain_state(db).await? == ChainState::NotYetKeyed {
        return Err(DomainError::invalid(
            "audit chain not keyed yet: run `keyward audit rekey` once",
        ));
    }
    let rows: Vec<Row> = sqlx::query_as(ALL_EVENTS).fetch_all(db.read()).await?;
    if let Some(broken) = first_break(&rows, |prev, e| chain_hash(keys.audit_key_for(e.seq), prev, e)) {
        return Err(DomainError::invalid(format!("audit chain broken {broken}")));
    }
    let expected_seq = rows.len() as i64 + 1;
    let prev = rows.last().map_or_else(|| vec![0u8; 32], |r| r.7.clone());
    let (head_seq, head_hash, head_epoch): (i64, Vec<u8>, i64) =
        sqlx::query_as("SELECT seq, hash, key_epoch FROM audit_head WHERE id = 1")
            .fetch_one(db.read())
            .await?;
    if head_seq != expected_seq - 1 || head_hash != prev {
        return Err(DomainError::invalid(
            "audit chain broken: the newest events were removed",
        ));
    }
    // Each key epoch after the first starts at a master-key rotation's
    // event, and each rotation starts one.
    let rotations: Vec<i64> = rows
        .iter()
        .filter(|r| r.3 == "master_key.rotated")
        .map(|r| r.0)
        .collect();
    let starts: Vec<i64> = keys.epochs().iter().skip(1).map(|k| k.from_seq).collect();
    if rotations != starts || head_epoch != keys.current().epoch {
        return Err(DomainError::invalid(
            "audit chain broken: its key epochs do not match the master-key rotations it records",
        ));
    }
    Ok(rows.len() as u64)
}

pub async fn recent(db: &crate::domain::storage::db::Db, limit: i64) -> DomainResult<Vec<StoredEvent>> {
    search(db, &Filter::default(), None, limit).await
}

/// What the audit log page narrows by: each field matches where it
/// appears anywhere in the event's, in any case ("revoke" finds
/// `admin_token.revoke`, "OPS" finds `ops-one`); an empty one matches
/// anything.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// In the actor (a username, "operator" for the CLI, "anonymous").
    pub actor: String,
    /// In the action, e.g. "admin_token" or "revoke".
    pub action: String,
    /// In the target (a username, a key prefix or certificate id, …).
    pub target: String,
    /// At or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Before this time (ms since the epoch).
    pub until: Option<i64>,
}

/// `needle` as a LIKE pattern matching it anywhere, in lower case, with
/// LIKE's own characters taken literally (actions hold `_`).
fn anywhere(needle: &str) -> String {
    let needle: String = needle
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if needle.is_empty() {
        return String::new();
    }
    format!(
        "%{}%",
        needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    )
}

/// Events per page when the reader does not say (the console's page, the
/// admin API's default).
pub const PAGE_SIZE: i64 = 50;

/// A page of events, newest first, and where the next (older) one starts.
#[derive(Debug)]
pub struct Page {
    pub events: Vec<StoredEvent>,
    pub older_than: Option<i64>,
}

/// Up to `limit` events matching `filter`, older than event `before` if given.
async fn page(
    db: &crate::domain::storage::db::Db,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> DomainResult<Page> {
    // One more than asked tells whether an older page exists.
    let mut events = search(db, filter, before, limit + 1).await?;
    let more = events.len() as i64 > limit;
    events.truncate(limit.max(0) as usize);
    let older_than = if more { events.last().map(|e| e.seq) } else { None };
    Ok(Page { events, older_than })
}

/// The newest events matching `filter`, older than event `before` if given.
pub async fn search(
    db: &crate::domain::storage::db::Db,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> DomainResult<Vec<StoredEvent>> {
    // lower() on both sides: PostgreSQL's LIKE is case-sensitive.
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT seq, at, actor, action, target, detail, source, hash FROM audit_events \
         WHERE seq < $1 AND ($2 = '' OR lower(actor) LIKE $2 ESCAPE '\\') \
         AND ($3 = '' OR lower(action) LIKE $3 ESCAPE '\\') AND ($4 = '' OR lower(target) LIKE $4 ESCAPE '\\') \
         AND at >= $5 AND at < $6 ORDER BY seq DESC LIMIT $7",
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(anywhere(&filter.actor))
    .bind(anywhere(&filter.action))
    .bind(anywhere(&filter.target))
    .bind(filter.since.unwrap_or(i64::MIN))
    .bind(filter.until.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db.read())
    .await?;
    Ok(rows.into_iter().map(stored).collect())
}

/// Whether the chain is keyed (see [`rekey`]).
pub async fn chain_state(db: &Db) -> DomainResult<ChainState> {
    chain_state_in(&mut *db.read().acquire().await?).await
}

pub(crate) async fn chain_state_in(conn: &mut AnyConnection) -> DomainResult<ChainState> {
    let (keyed,): (i64,) = sqlx::query_as("SELECT keyed FROM audit_head WHERE id = 1")
        .fetch_one(conn)
        .await?;
    Ok(if keyed != 0 {
        ChainState::Keyed
    } else {
        ChainState::NotYetKeyed
    })
}

/// For a database whose keys were never sealed (`keyring::open`): checks
/// that `key`, derived from the master key in hand, is the one the chain
/// was written with, recording it the first time when `is_servers_key`.
/// A process with another key is refused before it writes.
pub(crate) async fn check_legacy_key(db: &Db, key: &SubKey, is_servers_key: bool) -> DomainResult<()> {
    let check = key.mac(&[b"key-check"]).to_vec();
    let (stored,): (Option<Vec<u8>>,) = sqlx::query_as("SELECT key_check FROM audit_head WHERE id = 1")
        .fetch_one(db.read())
        .await?;
    let refused = || {
        DomainError::invalid(
            "this master key does not open this database (the audit log was written with another): \
             use the server's key file (KEYWARD_MASTER_KEY_FILE)",
        )
    };
    match stored {
        Some(stored) if stored != check => return Err(refused()),
        None if is_servers_key => {
            let recorded = sqlx::query("UPDATE audit_head SET key_check = $1 WHERE id = 1 AND key_check IS NULL")
                .bind(&check)
                .execute(db.write())
                .await?
                .rows_affected();
            if recorded == 0 {
                // Another instance recorded its key between our read and
                // our write: it must be this one.
                let (now_stored,): (Option<Vec<u8>>,) = sqlx::query_as("SELECT key_check FROM audit_head WHERE id = 1")
                    .fetch_one(db.write())
                    .await?;
                if now_stored.is_some_and(|s| s != check) {
                    return Err(refused());
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainState {
    Keyed,
    /// Events from before the chain was keyed: `keyward audit rekey` once.
    NotYetKeyed,
}

/// What `rekey` found and did.
#[derive(Debug)]
pub struct Rekeyed {
    pub events: usize,
    /// Where the old chain broke, if it did.
    pub previous_break: Option<String>,
}

/// Keys a chain written before the chain was keyed: checks it the old way,
/// re-hashes every event with the key, and records that it did, with
/// whether the old chain was intact. Run once, by the operator
/// (`keyward audit rekey`). It is never done by itself: whoever can write
/// the database could otherwise put an edited chain back into the old form
/// and have Keyward bless it. A chain that was keyed before is refused.
pub async fn rekey(db: &Db) -> DomainResult<Rekeyed> {
    // An unkeyed chain was never rotated: its one key is the current one.
    let key = &db.keys()?.current().key;
    let mut change = db.change().await?;
    let (keyed,): (i64,) = sqlx::query_as("SELECT keyed FROM audit_head WHERE id = 1")
        .fetch_one(change.conn())
        .await?;
    if keyed != 0 {
        return Err(DomainError::Conflict("the audit chain is keyed already".into()));
    }
    let rows: Vec<Row> = sqlx::query_as(ALL_EVENTS).fetch_all(change.conn()).await?;
    if rows.iter().any(|r| r.3 == "audit.chain_keyed") {
        return Err(DomainError::Conflict(
            "the audit chain was keyed before and has been put back into the unkeyed form: \
             the database was tampered with; restore it from a backup"
                .into(),
        ));
    }
    let broken = first_break(&rows, unkeyed_hash);
    let mut prev = vec![0u8; 32];
    for row in &rows {
        let hash = chain_hash(key, &prev, &stored(row.clone())).to_vec();
        sqlx::query("UPDATE audit_events SET hash = $1 WHERE seq = $2")
            .bind(&hash)
            .bind(row.0)
            .execute(change.conn())
            .await?;
        prev = hash;
    }
    sqlx::query("UPDATE audit_head SET keyed = 1 WHERE id = 1")
        .execute(change.conn())
        .await?;
    let detail = serde_json::json!({
        "events": rows.len(),
        "previous_chain": broken.as_ref().map_or_else(|| "intact".to_string(), |b| format!("broken {b}")),
    });
    change.set_prev_hash(prev);
    change
        .commit(
            AuditEvent::new("operator", "audit.chain_keyed", "audit log")
                .detail(detail)
                .source(Some(CLI_SOURCE.into())),
        )
        .await?;
    Ok(Rekeyed {
        events: rows.len(),
        previous_break: broken,
    })
}

/// The longest filter field: longer cannot match anything stored.
pub const MAX_FILTER_CHARS: usize = 200;
/// The most events one page may hold.
pub const MAX_PAGE: i64 = 500;

impl crate::domain::Keyward {
    /// A page of the audit log, newest first, narrowed by `filter` (fields
    /// trimmed), older than event `before` if given; `limit` events
    /// ([`PAGE_SIZE`] when not given; 1 to [`MAX_PAGE`]). Every admin may
    /// read it: it names who changed which asset and from where, never a
    /// secret (SPEC §3).
    pub async fn audit_page(
        &self,
        _who: &crate::domain::Principal,
        filter: Filter,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> DomainResult<(Filter, Page)> {
        let limit = limit.unwrap_or(PAGE_SIZE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(DomainError::invalid_field(
                "limit",
                format!("limit must be 1 to {MAX_PAGE}"),
            ));
        }
        let filter = Filter {
            actor: filter.actor.trim().to_string(),
            action: filter.action.trim().to_string(),
            target: filter.target.trim().to_string(),
            ..filter
        };
        for (field, name, value) in [
            ("actor", "Actor", &filter.actor),
            ("action", "Action", &filter.action),
            ("target", "Target", &filter.target),
        ] {
            if value.chars().count() > MAX_FILTER_CHARS {
                return Err(DomainError::invalid_field(
                    field,
                    format!("{name} must be at most {MAX_FILTER_CHARS} characters."),
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(DomainError::invalid_field(
                    field,
                    format!("{name} must not contain control characters."),
                ));
            }
        }
        let found = page(&self.db, &filter, before, limit).await?;
        Ok((filter, found))
    }

    /// The actions on record, for a filter to offer (at most 200).
    pub async fn audit_actions(&self, _who: &crate::domain::Principal) -> DomainResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT action FROM audit_events ORDER BY action LIMIT 200")
            .fetch_all(self.db.read())
            .await?;
        Ok(rows.into_iter().map(|(a,)| a).collect())
    }
}

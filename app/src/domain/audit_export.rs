//! The audit log out of Keyward: JSON Lines for a SIEM, and the offline
//! check of such a copy.
//!
//! Each line carries every field the chain covers, the hash of the event
//! before it and its own, so a copy exported from any point can be
//! checked on its own with the master key: a missing event (a gap in the
//! sequence, or a line whose previous hash is not the line before's) and
//! an edited one (its hash no longer matches) are both found.

use std::io::{BufRead, Read};

use serde::{Deserialize, Serialize};

use crate::domain::audit::{chain_hash, detail_value, Row, StoredEvent};
use crate::domain::clock::iso;
use crate::domain::storage::db::Db;
use crate::domain::{DomainError, DomainResult, Principal};

/// Events read per query while exporting: the export streams page by
/// page, never holding the whole log.
pub const EXPORT_PAGE: i64 = 500;

/// One exported event: a line of the export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportedEvent {
    pub seq: i64,
    /// When, for people (ISO 8601, UTC).
    pub time: String,
    /// When, as chained: milliseconds since the epoch.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// What else the event records (never a secret): any JSON value.
    pub detail: serde_json::Value,
    /// Where from: the client's address, or `cli`.
    pub source: String,
    /// The hash of the event before (hex; zeros before the first).
    pub prev_hash: String,
    /// This event's chain hash (hex).
    pub hash: String,
}

impl ExportedEvent {
    /// The event as stored, for its hash to be computed again. Its detail
    /// was stored as `serde_json::Value`'s own text, which a parse and a
    /// print give back unchanged.
    fn stored(&self) -> StoredEvent {
        StoredEvent {
            seq: self.seq,
            at: self.at,
            actor: self.actor.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            detail: self.detail.to_string(),
            source: self.source.clone(),
        }
    }
}

/// Up to `limit` events after event `after`, oldest first.
async fn page(db: &Db, after: i64, limit: i64) -> DomainResult<Vec<ExportedEvent>> {
    // The event at `after` too, for the hash before the first.
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT seq, at, actor, action, target, detail, source, hash FROM audit_events \
         WHERE seq >= $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit + 1)
    .fetch_all(db.read())
    .await?;
    let mut rows = rows.into_iter().peekable();
    let mut prev = match rows.peek() {
        Some(first) if first.0 == after => rows.next().map(|r| r.7).unwrap_or_default(),
        // From the start; or the event at `after` is missing, which the
        // check of the copy reports (its first previous hash is empty).
        _ if after == 0 => vec![0u8; 32],
        _ => Vec::new(),
    };
    Ok(rows
        .take(limit as usize)
        .map(|(seq, at, actor, action, target, detail, source, hash)| {
            let line = ExportedEvent {
                seq,
                time: iso(at),
                at,
                actor,
                action,
                target,
                detail: detail_value(detail),
                source,
                prev_hash: hex::encode(&prev),
                hash: hex::encode(&hash),
            };
            prev = hash;
            line
        })
        .collect())
}

impl crate::domain::Keyward {
    /// A page of the export: up to `limit` (1 to [`EXPORT_PAGE`]) events
    /// after event `after` (0: from the first), oldest first. Every admin
    /// may read the audit log (SPEC §3).
    pub async fn audit_export(&self, _who: &Principal, after: i64, limit: i64) -> DomainResult<Vec<ExportedEvent>> {
        if after < 0 {
            return Err(DomainError::invalid_field(
                "after",
                "after must be 0 (from the first event) or an event's sequence number",
            ));
        }
        if !(1..=EXPORT_PAGE).contains(&limit) {
            return Err(DomainError::invalid_field(
                "limit",
                format!("limit must be 1 to {EXPORT_PAGE}"),
            ));
        }
        page(&self.db, after, limit).await
    }
}

/// Writes `events` as lines of the export, each a JSON object and a newline.
pub fn write_lines(events: &[ExportedEvent], out: &mut impl std::io::Write) -> std::io::Result<()> {
    for event in events {
        serde_json::to_writer(&mut *out, event)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// What the check of an exported copy found intact: how many events,
/// and the first and last sequence numbers.
#[derive(Debug, PartialEq, Eq)]
pub struct CheckedCopy {
    pub events: u64,
    pub first: i64,
    pub last: i64,
}

/// The longest line a copy may have: an event is a few hundred bytes, and
/// a copy from untrusted storage must not make the check read a whole
/// file into memory.
const MAX_LINE: u64 = 1 << 20;

/// Checks an exported copy (JSON Lines) with this database's keys (the
/// master key's): every line an event, no event missing between the
/// first and the last, none changed, each line's `time` its `at`. The
/// first names where it breaks. What a copy alone cannot show is an event
/// cut from its start or its end: compare its first and last `seq` with
/// what was asked for.
pub fn check_copy(db: &Db, mut copy: impl BufRead) -> DomainResult<CheckedCopy> {
    let keys = db.keys()?;
    let broken = |message: String| DomainError::invalid(format!("exported audit log broken: {message}"));
    let mut events = 0;
    let mut first = None;
    let mut before: Option<ExportedEvent> = None;
    let mut line = Vec::new();
    for n in 1.. {
        line.clear();
        let read = Read::take(&mut copy, MAX_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| DomainError::invalid(format!("could not read the copy: {e}")))?;
        if read == 0 {
            break;
        }
        if line.len() as u64 > MAX_LINE {
            return Err(broken(format!("line {n} is longer than {MAX_LINE} bytes")));
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        let event: ExportedEvent =
            serde_json::from_slice(&line).map_err(|e| broken(format!("line {n} is not an exported event ({e})")))?;
        match &before {
            Some(b) if event.seq != b.seq + 1 => {
                return Err(broken(if event.seq == b.seq + 2 {
                    format!("event {} is missing", b.seq + 1)
                } else if event.seq > b.seq + 2 {
                    format!("events {} to {} are missing", b.seq + 1, event.seq - 1)
                } else {
                    format!("event {} comes after event {}", event.seq, b.seq)
                }));
            }
            Some(b) if event.prev_hash != b.hash => {
                return Err(broken(format!(
                    "at event {}: the hash before it is not event {}'s",
                    event.seq, b.seq
                )));
            }
            None if event.seq == 1 && event.prev_hash != hex::encode([0u8; 32]) => {
                return Err(broken("at event 1: the hash before it is not the chain's start".into()));
            }
            _ => {}
        }
        if event.prev_hash.is_empty() {
            return Err(broken(format!(
                "at event {}: the event before it was missing from the log when it was exported",
                event.seq
            )));
        }
        let prev = hex::decode(&event.prev_hash)
            .map_err(|_| broken(format!("at event {}: the hash before it is not hex", event.seq)))?;
        let expected = chain_hash(keys.audit_key_for(event.seq), &prev, &event.stored());
        if hex::encode(expected) != event.hash {
            return Err(broken(format!("at event {}: its content was changed", event.seq)));
        }
        // Outside the hash, but what a SIEM shows: it must say the same.
        if event.time != iso(event.at) {
            return Err(broken(format!("at event {}: its time was changed", event.seq)));
        }
        events += 1;
        first.get_or_insert(event.seq);
        before = Some(event);
    }
    match (first, before) {
        (Some(first), Some(last)) => Ok(CheckedCopy {
            events,
            first,
            last: last.seq,
        }),
        _ => Err(broken("it holds no event".into())),
    }
}

//! In-memory views of what the hot paths check: the application's API key
//! and modes, server keys, admin tokens, client certificates, and
//! access-token revocations (logouts in a fixed-size filter, see
//! `bloom`; the database decides when the filter says "maybe").
//! Requests read these, never the database. A change made on this instance
//! refreshes them at once; changes made by other instances are picked up
//! by a poll of the audit-chain head (every change bumps it) and of the
//! revocation log, a few times a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::domain::clock::now_ms;
use crate::domain::principal::Role;
use crate::domain::storage::bloom::Bloom;
use crate::domain::storage::db::Db;
use crate::domain::storage::head_reads::{head_seq, HeadReads};
use crate::domain::DomainResult;

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
    /// Renewed: it works until then.
    pub retires_at: Option<i64>,
    /// Its CA was replaced by a rotation: it works until then.
    pub ca_retires_at: Option<i64>,
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
    /// Whether the first, full load has been done.
    loaded: bool,
    last_seq: i64,
    /// Sequence numbers below `last_seq` not seen yet, and since when.
    gaps: Vec<(i64, i64)>,
    /// While set (from, until): each poll also re-reads revocations made
    /// since `from`, by time, until `until`.
    catch_up: Option<(i64, i64)>,
    /// End user id -> (tokens issued at or before this time are dead, until
    /// when that matters: every token it could kill has expired by then).
    /// Few: each is an admin's audited action.
    users: HashMap<String, (i64, i64)>,
}

#[derive(Debug)]
pub struct Views {
    snapshot: RwLock<Snapshot>,
    /// One snapshot load at a time: requests that find the view behind
    /// wait for the load under way instead of each starting their own.
    loading: tokio::sync::Mutex<()>,
    /// Reads of the audit head shared by the requests that need the view
    /// exact (see `up_to_date`).
    head: HeadReads,
    revocations: RwLock<Revocations>,
    /// Logged-out session ids. Half the revocation memory each: the filter
    /// in use, and the one being rebuilt from the database (which drops
    /// the expired) while logouts go into both.
    sessions: RwLock<Arc<Bloom>>,
    rebuilding: Mutex<Option<Arc<Bloom>>>,
    filter_bytes: usize,
}

/// What the in-memory view knows of an access token's revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Surely not revoked.
    Live,
    /// Revoked (all of the user's sessions up to a time).
    Revoked,
    /// Its session id may have been logged out: the database decides.
    Ask,
}

/// The number of logouts a filter is tuned for (its hash count follows).
/// Verifying an access token must not read the database, and logged-out
/// tokens stay revoked for as long as they live (30 days): at the default
/// 16 MiB a filter and ten million logouts, about 5 in 10,000 live tokens
/// ask the database.
const LOGOUTS_TUNED_FOR: u64 = 10_000_000;

/// Rows read per query while the filter is rebuilt: a bounded amount of
/// memory and short read transactions, whatever the table holds.
pub const REBUILD_PAGE: i64 = 10_000;

fn digest_key(d: &[u8]) -> Option<[u8; 32]> {
    d.try_into().ok()
}

/// How long a skipped revocation sequence number is watched for: one taken
/// by a slower transaction that commits after a higher one.
pub const LATE_COMMIT_WINDOW_MS: i64 = 10_000;

impl Views {
    /// Views whose logged-out tokens take `revocation_bytes` of memory.
    pub fn new(revocation_bytes: usize) -> Views {
        let filter_bytes = (revocation_bytes / 2).max(8);
        Views {
            snapshot: RwLock::default(),
            loading: tokio::sync::Mutex::new(()),
            head: HeadReads::default(),
            revocations: RwLock::default(),
            sessions: RwLock::new(Arc::new(Bloom::with_bytes(filter_bytes, LOGOUTS_TUNED_FOR))),
            rebuilding: Mutex::new(None),
            filter_bytes,
        }
    }

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

    /// What memory says of an access token with this session id, user and
    /// issue time. No lock is held long and no database is read.
    pub fn access_revocation(&self, sid: &str, uid: &str, iat: i64) -> Revocation {
        let by_user = {
            let r = self.revocations.read().unwrap_or_else(|p| p.into_inner());
            r.users.get(uid).is_some_and(|(nb, _)| iat <= *nb)
        };
        if by_user {
            return Revocation::Revoked;
        }
        let filter = self.sessions.read().unwrap_or_else(|p| p.into_inner()).clone();
        if filter.may_contain(sid) {
            Revocation::Ask
        } else {
            Revocation::Live
        }
    }

    /// A logout, stored: remembered in the filter (and in the one being
    /// rebuilt, if any). The rebuild's lock is held across both inserts,
    /// so a swap cannot fall between them and lose this one.
    pub fn note_session_revoked(&self, sid: &str) {
        let rebuilding = self.rebuilding.lock().unwrap_or_else(|p| p.into_inner());
        self.sessions.read().unwrap_or_else(|p| p.into_inner()).insert(sid);
        if let Some(next) = rebuilding.as_ref() {
            next.insert(sid);
        }
    }

    pub fn note_user_revoked(&self, uid: &str, at: i64, until: i64) {
        let mut r = self.revocations.write().unwrap_or_else(|p| p.into_inner());
        let entry = r.users.entry(uid.to_string()).or_insert((at, until));
        *entry = (entry.0.max(at), entry.1.max(until));
    }

    /// Bytes of one revocation filter, and logouts put in the one in use.
    pub fn revocation_filter(&self) -> (usize, u64) {
        let filter = self.sessions.read().unwrap_or_else(|p| p.into_inner()).clone();
        (filter.bytes(), filter.inserted())
    }

    /// Builds a fresh filter from the unexpired logouts in the database and
    /// puts it in place: expired tokens leave it, so it does not fill up
    /// over the months. Logouts meanwhile go into both.
    pub async fn rebuild_revocations(&self, db: &Db) -> DomainResult<()> {
        let fresh = Arc::new(Bloom::with_bytes(self.filter_bytes, LOGOUTS_TUNED_FOR));
        *self.rebuilding.lock().unwrap_or_else(|p| p.into_inner()) = Some(fresh.clone());
        let built = fill(&fresh, db).await;
        // Swapped under the same lock logouts are noted under.
        let mut rebuilding = self.rebuilding.lock().unwrap_or_else(|p| p.into_inner());
        if built.is_ok() {
            *self.sessions.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        }
        *rebuilding = None;
        built
    }

    /// Reloads what changed. `force` reloads the snapshot even when the
    /// audit head has not moved (used right after a change on this instance).
    pub async fn refresh(&self, db: &Db, force: bool) -> DomainResult<()> {
        self.refresh_snapshot(db, force).await?;
        self.refresh_revocations(db).await
    }

    /// Brings the snapshot up to every change committed (on any instance)
    /// before this call: for the checks that must not wait for the poll, a
    /// client certificate's under mTLS. One read of the audit head, shared
    /// with the requests that arrived during the previous one; a reload
    /// only when something changed.
    pub async fn up_to_date(&self, db: &Db) -> DomainResult<()> {
        let seq = self.head.read(db).await?;
        if self.version() >= seq {
            return Ok(());
        }
        self.load_at(db, seq, false).await
    }

    fn version(&self) -> i64 {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).version
    }

    /// Reloads the snapshot if the audit head moved since it was loaded.
    async fn refresh_snapshot(&self, db: &Db, force: bool) -> DomainResult<()> {
        let seq = head_seq(db).await?;
        if force || self.version() != seq {
            self.load_at(db, seq, force).await?;
        }
        Ok(())
    }

    /// Loads the snapshot as of audit head `seq` (or later), one load at a
    /// time; unless `force`d, not if one as new was loaded meanwhile.
    async fn load_at(&self, db: &Db, seq: i64, force: bool) -> DomainResult<()> {
        let _one = self.loading.lock().await;
        if !force && self.version() >= seq {
            return Ok(()); // loaded while this one waited
        }
        let fresh = load_snapshot(db, seq).await?;
        let mut current = self.snapshot.write().unwrap_or_else(|p| p.into_inner());
        // A slow poll must not overwrite what a later refresh installed.
        if fresh.version >= current.version {
            *current = fresh;
        }
        Ok(())
    }

    /// New revocations, made on any instance: those past the highest
    /// sequence number seen, and those whose lower numbers were skipped
    /// (a slower transaction that committed later) until they show up or
    /// LATE_COMMIT_WINDOW_MS has passed; all by primary key and paged,
    /// whatever the rate of logouts. Right after the first load, or when
    /// too many numbers were skipped to watch one by one, a catch-up also
    /// re-reads by time (indexed) for one window.
    async fn refresh_revocations(&self, db: &Db) -> DomainResult<()> {
        let now = now_ms();
        let (loaded, last, gaps, catch_up) = {
            let r = self.revocations.read().unwrap_or_else(|p| p.into_inner());
            let gaps: Vec<i64> = r.gaps.iter().map(|(seq, _)| *seq).collect();
            (r.loaded, r.last_seq, gaps, r.catch_up)
        };
        if !loaded {
            // The highest number first: whatever commits from now on is
            // read by the polls, and what commits late below it by the
            // catch-up.
            let (max,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM revocations")
                .fetch_one(db.read())
                .await?;
            self.rebuild_revocations(db).await?;
            load_user_revocations(self, db).await?;
            let mut r = self.revocations.write().unwrap_or_else(|p| p.into_inner());
            r.last_seq = max.unwrap_or(0);
            r.catch_up = Some((now - LATE_COMMIT_WINDOW_MS, now + LATE_COMMIT_WINDOW_MS));
            r.loaded = true;
            return Ok(());
        }
        let mut rows: Vec<RevocationRow> = Vec::new();
        let mut after = last;
        loop {
            let page: Vec<RevocationRow> = sqlx::query_as(
                "SELECT seq, kind, subject, at, expires_at FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(REBUILD_PAGE)
            .fetch_all(db.read())
            .await?;
            let full = page.len() as i64 == REBUILD_PAGE;
            after = page.last().map_or(after, |r| r.0);
            rows.extend(page);
            if !full {
                break;
            }
        }
        let new_max = after;
        let fresh: std::collections::HashSet<i64> = rows.iter().map(|r| r.0).collect();
        for chunk in gaps.chunks(GAPS_PER_QUERY) {
            let sql = format!(
                "SELECT seq, kind, subject, at, expires_at FROM revocations WHERE seq IN ({})",
                db.param_list(chunk.len())
            );
            let mut q = sqlx::query_as::<_, RevocationRow>(&sql);
            for seq in chunk {
                q = q.bind(*seq);
            }
            rows.extend(q.fetch_all(db.read()).await?);
        }
        if let Some((from, _)) = catch_up {
            let late: Vec<RevocationRow> =
                sqlx::query_as("SELECT seq, kind, subject, at, expires_at FROM revocations WHERE at > $1")
                    .bind(from)
                    .fetch_all(db.read())
                    .await?;
            rows.extend(late);
        }
        let mut filled = std::collections::HashSet::new();
        for (seq, kind, subject, at, expires_at) in rows {
            filled.insert(seq);
            if kind == "session" {
                self.note_session_revoked(&subject);
            } else {
                self.note_user_revoked(&subject, at, expires_at);
            }
        }
        let mut r = self.revocations.write().unwrap_or_else(|p| p.into_inner());
        r.gaps
            .retain(|(seq, since)| !filled.contains(seq) && now - *since < LATE_COMMIT_WINDOW_MS);
        // Numbers skipped past the old maximum may still commit.
        for seq in (last + 1)..new_max {
            if !fresh.contains(&seq) {
                if r.gaps.len() >= MAX_GAPS {
                    // Too many to watch one by one: re-read by time instead.
                    r.catch_up = Some((now - LATE_COMMIT_WINDOW_MS, now + LATE_COMMIT_WINDOW_MS));
                    break;
                }
                r.gaps.push((seq, now));
            }
        }
        if r.catch_up.is_some_and(|(_, until)| until <= now) {
            r.catch_up = None;
        }
        r.last_seq = r.last_seq.max(new_max);
        // Every token a user-wide revocation could kill has expired.
        r.users.retain(|_, (_, until)| *until > now);
        Ok(())
    }
}

type RevocationRow = (i64, String, String, i64, i64);

/// Skipped sequence numbers watched one by one, at most (PostgreSQL's
/// overlapping batches skip up to a few thousand now and then).
const MAX_GAPS: usize = 65_536;
/// Skipped numbers looked up per query (well under every parameter limit).
const GAPS_PER_QUERY: usize = 500;

/// Puts every unexpired logout in `filter`, a page at a time.
async fn fill(filter: &Bloom, db: &Db) -> DomainResult<()> {
    let now = now_ms();
    let mut after = 0i64;
    loop {
        let page: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, subject FROM revocations WHERE seq > $1 AND kind = 'session' AND expires_at > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(now)
        .bind(REBUILD_PAGE)
        .fetch_all(db.read())
        .await?;
        for (_, sid) in &page {
            filter.insert(sid);
        }
        match page.last() {
            Some((seq, _)) if page.len() as i64 == REBUILD_PAGE => after = *seq,
            _ => return Ok(()),
        }
    }
}

async fn load_user_revocations(views: &Views, db: &Db) -> DomainResult<()> {
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT subject, at, expires_at FROM revocations WHERE kind = 'user' AND expires_at > $1")
            .bind(now_ms())
            .fetch_all(db.read())
            .await?;
    for (uid, at, until) in rows {
        views.note_user_revoked(&uid, at, until);
    }
    Ok(())
}

/// Is the session `sid` logged out? Asked only when the filter says maybe.
pub async fn session_revoked(db: &Db, sid: &str) -> DomainResult<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT seq FROM revocations WHERE subject = $1 AND kind = 'session' LIMIT 1")
            .bind(sid)
            .fetch_optional(db.read())
            .await?;
    Ok(row.is_some())
}

async fn load_snapshot(db: &Db, version: i64) -> DomainResult<Snapshot> {
    // Read here, like every other view: storage does not reach up into
    // the rooms it serves.
    let app: Option<(String, i64, i64)> =
        sqlx::query_as("SELECT api_key, secure_mode, mtls FROM application WHERE id = 1")
            .fetch_optional(db.read())
            .await?;
    let app = app.map(|(api_key, secure_mode, mtls)| AppView {
        api_key,
        secure_mode: secure_mode != 0,
        mtls: mtls != 0,
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
    type CertRow = (String, String, Vec<u8>, i64, i64, Option<i64>, Option<i64>, Option<i64>);
    let certs: Vec<CertRow> = sqlx::query_as(
        "SELECT c.id, c.name, c.fingerprint, c.not_before, c.not_after, c.revoked_at, c.retires_at, a.retires_at \
         FROM certificates c LEFT JOIN certificate_authorities a ON a.id = c.ca_id",
    )
    .fetch_all(db.read())
    .await?;
    let certificates = certs
        .into_iter()
        .filter_map(
            |(id, name, fingerprint, not_before, not_after, revoked_at, retires_at, ca_retires_at)| {
                let view = CertView {
                    id,
                    name,
                    not_before,
                    not_after,
                    revoked: revoked_at.is_some(),
                    retires_at,
                    ca_retires_at,
                };
                Some((digest_key(&fingerprint)?, view))
            },
        )
        .collect();
    Ok(Snapshot {
        version,
        app,
        server_keys,
        admin_tokens,
        certificates,
    })
}

//! The domain's operational figures for `/metrics` (SPEC §9), kept with
//! `prometheus-client` (the Prometheus project's OpenMetrics client):
//! every labelled series is made here, at start, from closed sets of
//! label values, so recording is one atomic add with no lock and no
//! lookup, every series exists (at zero) before its first event, and no
//! label can ever carry a user, a key, a token or a path parameter.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (0.5 ms … 2.5 s): fine
/// where the targets are (SPEC §8: p99 under 10 ms), coarse beyond.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Which token a verification was of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An end user's access token, on every API call that carries one.
    Access,
    /// An auth token from a customer backend, redeemed for a session.
    Auth,
    /// An admin token, on the admin API.
    Admin,
    /// A server key, presented to mint auth tokens.
    ServerKey,
    /// The application's API key, on every session request.
    ApiKey,
}

/// How a token verification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Expired,
    /// Genuine and unexpired, but dead: logged out, revoked, or (an auth
    /// token) already used.
    Revoked,
    /// Malformed, forged, or not a live token at all.
    Invalid,
    /// Not decided: the database failed while checking it.
    Error,
}

/// How a console sign-in ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    Ok,
    /// Unknown user, wrong password or disabled admin (told apart nowhere).
    BadCredentials,
    /// Refused before the password was checked: too many failures.
    Throttled,
    /// Anything else (no application yet, a database error).
    Error,
}

/// A credential replaced by a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    AdminToken,
    ServerKey,
}

/// A credential ended before its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    AdminToken,
    Certificate,
    /// Every session of an end user, by an admin.
    EndUserSessions,
    /// One access token, by its holder.
    Logout,
}

/// A write the batching writer takes into a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    User,
    Redemption,
    Logout,
}

/// Whether the known-user cache held a user a session asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup {
    Hit,
    Miss,
    /// Not in memory, and certainly not stored (`stored_user_ids`).
    New,
}

const TOKENS: [(TokenKind, &str); 5] = [
    (TokenKind::Access, "access"),
    (TokenKind::Auth, "auth"),
    (TokenKind::Admin, "admin"),
    (TokenKind::ServerKey, "server_key"),
    (TokenKind::ApiKey, "api_key"),
];
const VERDICTS: [(Verdict, &str); 5] = [
    (Verdict::Ok, "ok"),
    (Verdict::Expired, "expired"),
    (Verdict::Revoked, "revoked"),
    (Verdict::Invalid, "invalid"),
    (Verdict::Error, "error"),
];
const SIGN_INS: [(SignIn, &str); 4] = [
    (SignIn::Ok, "ok"),
    (SignIn::BadCredentials, "bad_credentials"),
    (SignIn::Throttled, "throttled"),
    (SignIn::Error, "error"),
];
const ROTATIONS: [(Rotation, &str); 2] = [
    (Rotation::AdminToken, "admin_token"),
    (Rotation::ServerKey, "server_key"),
];
const REVOCATIONS: [(Revocation, &str); 4] = [
    (Revocation::AdminToken, "admin_token"),
    (Revocation::Certificate, "certificate"),
    (Revocation::EndUserSessions, "end_user_sessions"),
    (Revocation::Logout, "logout"),
];
const WRITES: [(WriteKind, &str); 3] = [
    (WriteKind::User, "user"),
    (WriteKind::Redemption, "redemption"),
    (WriteKind::Logout, "logout"),
];

const LOOKUPS: [(CacheLookup, &str); 3] = [
    (CacheLookup::Hit, "hit"),
    (CacheLookup::Miss, "miss"),
    (CacheLookup::New, "new"),
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerificationLabels {
    token: &'static str,
    result: &'static str,
}

/// One counter per value of a closed label set, made up front: the
/// family is what is registered, the counters what is incremented.
struct Series<K, L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug> {
    family: Family<L, Counter>,
    counters: Vec<(K, Counter)>,
}

impl<K: Copy + PartialEq, L> Series<K, L>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    fn new(values: impl IntoIterator<Item = (K, L)>) -> Self {
        let family = Family::<L, Counter>::default();
        let counters = values
            .into_iter()
            .map(|(k, labels)| (k, family.get_or_create_owned(&labels)))
            .collect();
        Series { family, counters }
    }

    fn inc_by(&self, key: K, n: u64) {
        if let Some((_, c)) = self.counters.iter().find(|(k, _)| *k == key) {
            c.inc_by(n);
        }
    }
}

fn kinds<K: Copy>(values: &'static [(K, &'static str)]) -> impl Iterator<Item = (K, KindLabel)> {
    values.iter().map(|&(k, kind)| (k, KindLabel { kind }))
}

/// The domain's series. Cheap to record into from any task.
pub struct Metrics {
    verifications: Series<(TokenKind, Verdict), VerificationLabels>,
    sign_ins: Series<SignIn, ResultLabel>,
    rotations: Series<Rotation, KindLabel>,
    revocations: Series<Revocation, KindLabel>,
    writes: Series<WriteKind, KindLabel>,
    lookups: Series<CacheLookup, ResultLabel>,
    /// Time to write and commit one batch: what every write in it waited
    /// on the database.
    commit: Histogram,
    /// Statements that failed (their waiters got an error).
    failures: Counter,
    /// Sampled when `/metrics` is read.
    queued: Gauge,
    filter_bytes: Gauge,
    filter_logouts: Gauge,
    known_users: Gauge,
    known_user_bytes: Gauge,
    stored_user_filter_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let verifications = TOKENS.iter().flat_map(|&(t, token)| {
            VERDICTS
                .iter()
                .map(move |&(v, result)| ((t, v), VerificationLabels { token, result }))
        });
        Metrics {
            verifications: Series::new(verifications),
            sign_ins: Series::new(SIGN_INS.iter().map(|&(s, result)| (s, ResultLabel { result }))),
            rotations: Series::new(kinds(&ROTATIONS)),
            revocations: Series::new(kinds(&REVOCATIONS)),
            writes: Series::new(kinds(&WRITES)),
            lookups: Series::new(LOOKUPS.iter().map(|&(l, result)| (l, ResultLabel { result }))),
            commit: latency_histogram(),
            failures: Counter::default(),
            queued: Gauge::default(),
            filter_bytes: Gauge::default(),
            filter_logouts: Gauge::default(),
            known_users: Gauge::default(),
            known_user_bytes: Gauge::default(),
            stored_user_filter_bytes: Gauge::default(),
        }
    }
}

impl Metrics {
    pub fn verification(&self, token: TokenKind, verdict: Verdict) {
        self.verifications.inc_by((token, verdict), 1);
    }

    pub fn sign_in(&self, result: SignIn) {
        self.sign_ins.inc_by(result, 1);
    }

    pub fn rotation(&self, kind: Rotation) {
        self.rotations.inc_by(kind, 1);
    }

    pub fn revocation(&self, kind: Revocation) {
        self.revocations.inc_by(kind, 1);
    }

    pub(crate) fn writes(&self, kind: WriteKind, n: usize) {
        self.writes.inc_by(kind, n as u64);
    }

    pub(crate) fn cache_lookup(&self, result: CacheLookup) {
        self.lookups.inc_by(result, 1);
    }

    pub(crate) fn commit_took(&self, took: Duration) {
        self.commit.observe(took.as_secs_f64());
    }

    pub(crate) fn statement_failed(&self) {
        self.failures.inc();
    }

    /// The gauges as of now (called when `/metrics` is read).
    pub(crate) fn sample(
        &self,
        queued: usize,
        filter: (usize, u64),
        known_users: (usize, u64),
        stored_user_filter: usize,
    ) {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.queued.set(clamp(queued as u64));
        self.filter_bytes.set(clamp(filter.0 as u64));
        self.filter_logouts.set(clamp(filter.1));
        self.known_users.set(clamp(known_users.0 as u64));
        self.known_user_bytes.set(clamp(known_users.1));
        self.stored_user_filter_bytes.set(clamp(stored_user_filter as u64));
    }

    /// Logouts in the filter in use, as last sampled.
    pub fn revocation_filter_logouts(&self) -> i64 {
        self.filter_logouts.get()
    }

    /// Registers every series under its documented name (the README's
    /// Operations section lists them).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "keyward_token_verifications",
            "Credential verifications, by token (access, auth, admin, server_key, api_key) and result (ok, expired, revoked, invalid, error)",
            self.verifications.family.clone(),
        );
        registry.register(
            "keyward_sign_ins",
            "Console sign-ins, by result (ok, bad_credentials, throttled, error)",
            self.sign_ins.family.clone(),
        );
        registry.register(
            "keyward_rotations",
            "Credentials replaced by a new one, by kind (admin_token, server_key)",
            self.rotations.family.clone(),
        );
        registry.register(
            "keyward_revocations",
            "Credentials ended before their time, by kind (admin_token, certificate, end_user_sessions, logout)",
            self.revocations.family.clone(),
        );
        registry.register_with_unit(
            "keyward_writer_commit",
            "Time to write and commit one batch of the batching writer: what each write in it waited on the database",
            Unit::Seconds,
            self.commit.clone(),
        );
        registry.register(
            "keyward_writer_writes",
            "Writes taken into a batch, by kind (user, redemption, logout)",
            self.writes.family.clone(),
        );
        registry.register(
            "keyward_writer_failed_statements",
            "Batch statements the database refused (their writes were answered with an error)",
            self.failures.clone(),
        );
        registry.register(
            "keyward_writer_queued",
            "Writes waiting for a batch",
            self.queued.clone(),
        );
        registry.register(
            "keyward_revocation_filter_bytes",
            "Memory of the logged-out-token filter in use (fixed; a second one while it is rebuilt)",
            self.filter_bytes.clone(),
        );
        registry.register(
            "keyward_revocation_filter_logouts",
            "Logouts put into the filter in use since it was built",
            self.filter_logouts.clone(),
        );
        registry.register(
            "keyward_known_user_lookups",
            "Sessions' look-ups of their end user in memory, by result (hit; miss: one read of the database; new: not stored as far as this instance knows, so no read)",
            self.lookups.family.clone(),
        );
        registry.register(
            "keyward_known_users",
            "End users held in memory",
            self.known_users.clone(),
        );
        registry.register(
            "keyward_known_user_bytes",
            "Estimated memory of the end users held (bounded by --user-cache-memory)",
            self.known_user_bytes.clone(),
        );
        registry.register(
            "keyward_stored_user_filter_bytes",
            "Memory of the filter of stored user ids, which spares new users a read (0 until its load at start begins)",
            self.stored_user_filter_bytes.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn exposition(m: &Metrics) -> String {
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn every_series_exists_at_zero_and_counts_its_own_events() {
        let m = Metrics::default();
        let before = exposition(&m);
        assert!(before.contains("keyward_token_verifications_total{token=\"admin\",result=\"expired\"} 0"));
        assert!(before.contains("keyward_revocations_total{kind=\"logout\"} 0"));
        m.verification(TokenKind::Admin, Verdict::Expired);
        m.verification(TokenKind::Admin, Verdict::Expired);
        m.revocation(Revocation::Logout);
        m.writes(WriteKind::User, 3);
        let after = exposition(&m);
        assert!(after.contains("keyward_token_verifications_total{token=\"admin\",result=\"expired\"} 2"));
        assert!(after.contains("keyward_token_verifications_total{token=\"access\",result=\"expired\"} 0"));
        assert!(after.contains("keyward_revocations_total{kind=\"logout\"} 1"));
        assert!(after.contains("keyward_writer_writes_total{kind=\"user\"} 3"));
    }

    #[test]
    fn commit_latency_lands_in_its_bucket() {
        let m = Metrics::default();
        m.commit_took(Duration::from_millis(3));
        let out = exposition(&m);
        assert!(
            out.contains("keyward_writer_commit_seconds_bucket{le=\"0.0025\"} 0"),
            "{out}"
        );
        assert!(
            out.contains("keyward_writer_commit_seconds_bucket{le=\"0.005\"} 1"),
            "{out}"
        );
        assert!(out.contains("keyward_writer_commit_seconds_count 1"), "{out}");
    }
}

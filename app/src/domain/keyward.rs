//! `Keyward`: the domain handle, and the one door into the domain. Every
//! operation is a method on it (written beside the state it owns, in the
//! room's module) taking the acting [`Principal`](crate::domain::Principal); this file holds the
//! handle itself and its lifecycle: [`Keyward::start`] and [`Keyward::stop`].

use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::domain::admins::console_sessions::sealed_context;
use crate::domain::admins::password::Hasher;
use crate::domain::admins::throttle::{LoginThrottle, ThrottlePolicy};
use crate::domain::credentials::logout_limit::LogoutLimit;
use crate::domain::credentials::signing::SigningKeys;
use crate::domain::metrics::Metrics;
use crate::domain::secrets::{self, ct_eq, prefix, sha256, MasterKey};
use crate::domain::storage::db::Db;
use crate::domain::storage::known_users::KnownUsers;
use crate::domain::storage::reader::Reader;
use crate::domain::storage::stored_user_ids::StoredUserIds;
use crate::domain::storage::usage::Usage;
use crate::domain::storage::views::Views;
use crate::domain::storage::writer::Writer;
use crate::domain::traces::Traces;
use crate::domain::{DomainError, DomainResult};

/// Lifetimes the operator may configure (SPEC §7); tests use short ones.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub admin_token_grace: Duration,
    pub admin_token_ttl: Duration,
    pub access_token_ttl: Duration,
    pub auth_token_ttl: Duration,
    /// A console session ends after this long without a request…
    pub console_idle: Duration,
    /// …and after this long in any case.
    pub console_absolute: Duration,
    /// The longest validity an admin may give a client certificate.
    pub cert_max_validity: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        const HOUR: u64 = 3600;
        Lifetimes {
            admin_token_grace: Duration::from_secs(24 * HOUR),
            admin_token_ttl: Duration::from_secs(365 * 24 * HOUR),
            access_token_ttl: Duration::from_secs(30 * 24 * HOUR),
            auth_token_ttl: Duration::from_secs(600),
            console_idle: Duration::from_secs(30 * 60),
            console_absolute: Duration::from_secs(12 * HOUR),
            cert_max_validity: Duration::from_secs(365 * 24 * HOUR),
        }
    }
}

/// What the operator configures about the domain.
#[derive(Debug, Clone)]
pub struct Settings {
    pub lifetimes: Lifetimes,
    /// The console's and API's public URL (the endpoint of this region).
    pub public_url: String,
    /// Where backends reach the HTTPS listener (mTLS).
    pub https_url: String,
    pub throttle: ThrottlePolicy,
    /// Memory for the logout filter, in bytes.
    pub revocation_memory: usize,
    /// Memory for end users kept in memory (known users), in bytes.
    pub user_cache_memory: usize,
    /// How often the views are refreshed from the database in any case:
    /// on PostgreSQL a notification refreshes them at once, and this poll
    /// catches what a dropped connection missed; on SQLite it is the way
    /// other instances' changes arrive.
    pub refresh_interval: Duration,
    /// Where spans go (nowhere unless an exporter is configured).
    pub traces: Traces,
    /// Webhooks may point at loopback and private addresses (never at
    /// link-local ones): for receivers inside the operator's network.
    pub webhook_allow_private: bool,
}

/// Is this handle a server's (background work runs: views kept fresh,
/// expired records deleted) or a one-shot command's?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Server,
    Tool,
}

/// The handle's state: visible to the domain's rooms only.
pub struct Inner {
    pub(in crate::domain) db: Db,
    pub(in crate::domain) master_key: MasterKey,
    pub(in crate::domain) lifetimes: Lifetimes,
    /// Password hashing, limited per instance.
    pub(in crate::domain) hasher: Hasher,
    pub(in crate::domain) throttle: LoginThrottle,
    pub(in crate::domain) public_url: String,
    pub(in crate::domain) https_url: String,
    pub(in crate::domain) signing: SigningKeys,
    pub(in crate::domain) views: Views,
    pub(in crate::domain) usage: Usage,
    pub(in crate::domain) users: KnownUsers,
    /// Which user ids are certainly not stored: new users skip the read.
    pub(in crate::domain) stored_ids: StoredUserIds,
    /// Logouts per end user, bounded (per instance).
    pub(in crate::domain) logouts: LogoutLimit,
    /// The one batching writer for new users and redemptions.
    pub(in crate::domain) writer: Writer,
    /// Reads, in batches, the users not in memory.
    pub(in crate::domain) reader: Reader,
    pub(in crate::domain) metrics: Arc<Metrics>,
    /// Wakes the refresh before its next tick: another instance changed
    /// something (PostgreSQL's notifications).
    pub(in crate::domain) changed_elsewhere: Arc<Notify>,
    pub(in crate::domain) refresh_interval: Duration,
    pub(in crate::domain) webhook_allow_private: bool,
    traces: Traces,
    /// Digest of the one-time setup token, while setup is open.
    setup_token: Mutex<Option<[u8; 32]>>,
    /// Tells the background tasks to stop; they are awaited at `stop`.
    stop: watch::Sender<bool>,
    background: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Clone)]
pub struct Keyward(Arc<Inner>);

impl std::fmt::Debug for Keyward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyward")
            .field("public_url", &self.0.public_url)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for Keyward {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Keyward {
    /// Builds the handle on an opened, migrated database and loads the
    /// views; creates the signing key on first start. A server's handle
    /// also starts the background work (and opens setup, when there is
    /// no application yet: see [`Keyward::setup_token`]).
    pub async fn start(db: Db, master_key: MasterKey, settings: Settings, mode: Mode) -> DomainResult<Self> {
        let signing = crate::domain::credentials::signing::load_or_create(&db, &master_key).await?;
        crate::domain::pki::ca::ensure(&db, &master_key).await?;
        let throttle = LoginThrottle::new(settings.throttle, db.keys()?.throttle_key());
        let hasher = Hasher::default();
        if mode == Mode::Server {
            hasher.warm_up().await;
        }
        let (stop, _) = watch::channel(false);
        let metrics = Arc::new(Metrics::default());
        let kw = Keyward(Arc::new(Inner {
            writer: Writer::start(db.clone(), metrics.clone(), settings.traces.clone()),
            reader: Reader::start(db.clone()),
            metrics,
            traces: settings.traces,
            db,
            master_key,
            lifetimes: settings.lifetimes,
            hasher,
            throttle,
            public_url: settings.public_url,
            https_url: settings.https_url,
            signing,
            views: Views::new(settings.revocation_memory),
            usage: Usage::default(),
            users: KnownUsers::with_bytes(settings.user_cache_memory),
            stored_ids: StoredUserIds::default(),
            changed_elsewhere: Arc::new(Notify::new()),
            refresh_interval: settings.refresh_interval,
            webhook_allow_private: settings.webhook_allow_private,
            logouts: LogoutLimit::default(),
            setup_token: Mutex::new(None),
            stop,
            background: Mutex::new(Vec::new()),
        }));
        kw.refresh().await?;
        if mode == Mode::Server {
            let tasks = vec![
                tokio::spawn(super::background::keep_fresh(kw.clone(), kw.stop.subscribe())),
                tokio::spawn(super::background::clean_up(kw.clone(), kw.stop.subscribe())),
                tokio::spawn(super::background::warm_users(kw.clone(), kw.stop.subscribe())),
                tokio::spawn(crate::domain::webhooks::delivery::run(kw.clone(), kw.stop.subscribe())),
                tokio::spawn(crate::domain::webhooks::expiry::watch(kw.clone(), kw.stop.subscribe())),
                tokio::spawn(crate::domain::storage::changes::listen(
                    kw.db.clone(),
                    kw.changed_elsewhere.clone(),
                    kw.stop.subscribe(),
                )),
            ];
            *kw.background.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        }
        Ok(kw)
    }

    /// Stops the background work, writes what the batching writer and the
    /// usage bookkeeping still hold, and closes the database. Call it once
    /// requests have stopped coming.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.background.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
        // Writes queued by the last requests, then their bookkeeping,
        // reach the database before it closes.
        self.writer.close().await;
        if let Err(e) = self.usage.flush(&self.db).await {
            tracing::warn!(error = %e, "could not write the last usage bookkeeping");
        }
        self.db.close().await;
    }

    /// The periodic refresh: views, and users other instances renamed.
    pub(in crate::domain) async fn poll(&self) -> DomainResult<()> {
        self.views.refresh(&self.db, false).await?;
        self.users.refresh(&self.db).await
    }

    /// Reloads the in-memory views now. Every operation that changes what
    /// they hold calls it; tests call it to see another instance's change
    /// without waiting for the poll.
    #[doc(hidden)]
    pub async fn refresh(&self) -> DomainResult<()> {
        self.views.refresh(&self.db, true).await
    }

    /// Writes the usage bookkeeping now (tests; the server does it every
    /// few seconds and at `stop`).
    #[doc(hidden)]
    pub async fn flush_usage(&self) -> DomainResult<()> {
        self.usage.flush(&self.db).await
    }

    /// Builds the logout filter afresh now (tests; the server does it hourly).
    #[doc(hidden)]
    pub async fn rebuild_logout_filter(&self) -> DomainResult<()> {
        self.views.rebuild_revocations(&self.db).await
    }

    /// The database, for tests and benchmarks that inspect what is stored.
    /// The server's callers never need it: they go through operations.
    #[doc(hidden)]
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The console's session store, on this database.
    pub fn console_session_store(&self) -> crate::domain::admins::console_sessions::SqlSessionStore {
        crate::domain::admins::console_sessions::SqlSessionStore::new(self.db.clone())
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Where backends reach the HTTPS listener (mTLS).
    pub fn https_url(&self) -> &str {
        &self.https_url
    }

    /// How long a console session lasts without a request.
    pub fn console_idle(&self) -> Duration {
        self.lifetimes.console_idle
    }

    /// Ready to serve: the database answers.
    pub async fn ready(&self) -> DomainResult<()> {
        self.db.ping().await
    }

    /// Where this instance's spans go (the HTTP layer records its own).
    pub fn traces(&self) -> &Traces {
        &self.traces
    }

    /// What `/metrics` reports of the domain (aggregates only), its
    /// gauges read as of now.
    pub fn metrics(&self) -> &Metrics {
        self.metrics.sample(
            self.writer.queued(),
            self.views.revocation_filter(),
            self.users.size(),
            self.stored_ids.bytes(),
        );
        &self.metrics
    }

    /// Opens setup with a fresh one-time token, if there is no application
    /// yet; the caller prints it (it is the one place it appears).
    pub async fn open_setup_if_needed(&self) -> DomainResult<Option<SecretString>> {
        if crate::domain::application::get(&self.db).await?.is_some() {
            return Ok(None);
        }
        let token = secrets::generate(prefix::SETUP_TOKEN);
        *self.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = Some(sha256(token.expose_secret().as_bytes()));
        Ok(Some(token))
    }

    pub(in crate::domain) fn setup_token_matches(&self, candidate: &str) -> bool {
        let guard = self.setup_token.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().is_some_and(|d| ct_eq(d, &sha256(candidate.as_bytes())))
    }

    /// Seals a secret shown once for the console session that will show it
    /// (a no-JavaScript form's redirect): sessions are stored, secrets are not.
    /// `entry` is the session entry it is stored under, which must start
    /// with [`SEALED_PREFIX`] (a master-key rotation re-seals those). The
    /// context is the entry, under a prefix of its own, so nothing sealed
    /// for another purpose (admin tokens, the CA key) opens through here.
    ///
    /// [`SEALED_PREFIX`]: crate::domain::admins::console_sessions::SEALED_PREFIX
    pub fn seal_for_session(&self, plain: &[u8], entry: &str) -> DomainResult<Vec<u8>> {
        Self::sealed_entry(entry)?;
        self.master_key.seal(plain, &sealed_context(entry))
    }

    pub fn open_from_session(&self, sealed: &[u8], entry: &str) -> DomainResult<Vec<u8>> {
        Self::sealed_entry(entry)?;
        self.master_key.open(sealed, &sealed_context(entry))
    }

    fn sealed_entry(entry: &str) -> DomainResult<()> {
        if entry.starts_with(crate::domain::admins::console_sessions::SEALED_PREFIX) {
            Ok(())
        } else {
            Err(DomainError::Internal(format!(
                "session entry {entry} is not a sealed one"
            )))
        }
    }

    /// Burns the setup token: it works once.
    pub(in crate::domain) fn close_setup(&self) {
        *self.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

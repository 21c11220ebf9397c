//! `Keyward`: the domain handle shared by the console and the REST API.

use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::db::Db;
use super::known_users::KnownUsers;
use super::password::Hasher;
use super::secrets::{self, ct_eq, prefix, sha256, MasterKey};
use super::signing::SigningKeys;
use super::throttle::{LoginThrottle, ThrottlePolicy};
use super::usage::Usage;
use super::views::Views;
use super::writer::Writer;
use super::DomainResult;

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

pub struct Inner {
    pub db: Db,
    pub master_key: MasterKey,
    pub lifetimes: Lifetimes,
    /// Password hashing, limited per instance.
    pub hasher: Hasher,
    pub throttle: LoginThrottle,
    pub public_url: String,
    pub signing: SigningKeys,
    pub views: Views,
    pub usage: Usage,
    pub users: KnownUsers,
    /// Logouts per end user, bounded (per instance).
    pub logouts: super::logout_limit::LogoutLimit,
    /// The one batching writer for new users and redemptions.
    pub writer: Writer,
    /// Digest of the one-time setup token, while setup is open.
    setup_token: Mutex<Option<[u8; 32]>>,
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
    /// Builds the handle and loads the views; creates the signing key on
    /// first start.
    pub async fn start(
        db: Db,
        master_key: MasterKey,
        lifetimes: Lifetimes,
        public_url: String,
        throttle: ThrottlePolicy,
        revocation_memory: usize,
    ) -> DomainResult<Self> {
        let signing = super::signing::load_or_create(&db, &master_key).await?;
        super::ca::ensure(&db, &master_key).await?;
        let throttle = LoginThrottle::new(throttle, master_key.derive(super::throttle::KEY_PURPOSE));
        let hasher = Hasher::default();
        hasher.warm_up().await;
        let kw = Keyward(Arc::new(Inner {
            writer: Writer::start(db.clone()),
            db,
            master_key,
            lifetimes,
            hasher,
            throttle,
            public_url,
            signing,
            views: Views::new(revocation_memory),
            usage: Usage::default(),
            users: KnownUsers::default(),
            logouts: super::logout_limit::LogoutLimit::default(),
            setup_token: Mutex::new(None),
        }));
        kw.refresh().await?;
        Ok(kw)
    }

    /// The periodic refresh: views, and users other instances renamed.
    pub async fn poll(&self) -> DomainResult<()> {
        self.views.refresh(&self.db, false).await?;
        self.users.refresh(&self.db).await
    }

    /// Reloads the in-memory views now (after a change on this instance).
    pub async fn refresh(&self) -> DomainResult<()> {
        self.views.refresh(&self.db, true).await
    }

    /// Opens setup with a fresh one-time token; the caller prints it.
    pub fn open_setup(&self) -> SecretString {
        let token = secrets::generate(prefix::SETUP_TOKEN);
        *self.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = Some(sha256(token.expose_secret().as_bytes()));
        token
    }

    pub fn setup_token_matches(&self, candidate: &str) -> bool {
        let guard = self.setup_token.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().is_some_and(|d| ct_eq(d, &sha256(candidate.as_bytes())))
    }

    /// Burns the setup token: it works once.
    pub fn close_setup(&self) {
        *self.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

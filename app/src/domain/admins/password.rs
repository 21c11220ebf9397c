//! Password hashing with argon2id, always off the async runtime.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

use crate::domain::{DomainError, DomainResult};

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 256;

pub fn check_policy(password: &SecretString) -> DomainResult<()> {
    let n = password.expose_secret().chars().count();
    if n < MIN_LEN {
        return Err(DomainError::invalid_field(
            "password",
            format!("The password must be at least {MIN_LEN} characters long."),
        ));
    }
    if n > MAX_LEN {
        return Err(DomainError::invalid_field(
            "password",
            format!("The password must be at most {MAX_LEN} characters long."),
        ));
    }
    Ok(())
}

/// Runs argon2 off the async runtime, at most [`AT_ONCE`] at a time.
///
/// Each instance owns its limiter rather than sharing a process-wide one:
/// the limit belongs to a server, and servers in one process (the tests
/// start many) do not queue behind each other.
#[derive(Clone)]
pub struct Hasher {
    running: Arc<Semaphore>,
}

/// Each computation takes ~19 MiB: a flood of sign-ins queues instead of
/// exhausting memory.
const AT_ONCE: usize = 4;

impl Default for Hasher {
    fn default() -> Self {
        Hasher {
            running: Arc::new(Semaphore::new(AT_ONCE)),
        }
    }
}

impl Hasher {
    async fn permit(&self) -> DomainResult<tokio::sync::SemaphorePermit<'_>> {
        self.running
            .acquire()
            .await
            .map_err(|_| DomainError::Internal("hashing semaphore closed".into()))
    }

    /// Computes the dummy hash before the first sign-in, so that sign-in is
    /// not slower (and telling) for an unknown username.
    pub async fn warm_up(&self) {
        let _ = tokio::task::spawn_blocking(dummy_hash).await;
    }

    pub async fn hash(&self, password: SecretString) -> DomainResult<String> {
        let _permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| DomainError::Internal(format!("argon2 hash: {e}")))
        })
        .await
        .map_err(|e| DomainError::Internal(format!("hash task: {e}")))?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when
    /// there is no stored hash (then the answer is always false).
    pub async fn verify(&self, password: SecretString, stored: Option<String>) -> DomainResult<bool> {
        let _permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let real = stored.is_some();
            let phc = stored.unwrap_or_else(|| dummy_hash().to_string());
            let parsed = PasswordHash::new(&phc).map_err(|e| DomainError::Internal(format!("stored hash: {e}")))?;
            let ok = Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            Ok(ok && real)
        })
        .await
        .map_err(|e| DomainError::Internal(format!("verify task: {e}")))?
    }
}

/// A real hash of nothing useful: verifying against it when the user does
/// not exist costs the same time as a real check, so timing reveals nothing.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"keyward-dummy-password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

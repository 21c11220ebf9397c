//! Signing in: an admin's password (throttled), and the admin token an
//! admin without one gets at sign-in. Composes the accounts with their
//! tokens, so it sits beside both.

use secrecy::SecretString;

use crate::domain::admins::{authenticate, Admin};
use crate::domain::metrics::SignIn;
use crate::domain::principal::{Channel, Principal};
use crate::domain::{DomainError, DomainResult, Keyward};

impl Keyward {
    /// Signs an admin in. Unknown user, wrong password and disabled admin
    /// all give `BadCredentials` after the same work; repeated failures
    /// are throttled per user and address. An admin without a live token
    /// gets one.
    pub async fn sign_in(&self, username: &str, password: SecretString, address: &str) -> DomainResult<Admin> {
        let signed_in = async {
            crate::domain::application::require(&self.db).await?;
            let admin = authenticate(&self.db, &self.hasher, &self.throttle, username, password, address).await?;
            let who = Principal::console(&admin.username, &admin.id, admin.role, admin.session_epoch, address);
            crate::domain::credentials::admin_tokens::ensure_after_login(self, &admin, &who).await?;
            Ok(admin)
        }
        .await;
        self.metrics.sign_in(match &signed_in {
            Ok(_) => SignIn::Ok,
            Err(DomainError::BadCredentials) => SignIn::BadCredentials,
            Err(DomainError::RateLimited(_)) => SignIn::Throttled,
            Err(_) => SignIn::Error,
        });
        signed_in
    }

    /// The password of the acting admin again, throttled like sign-in,
    /// before a secret is shown or minted in the console. The admin API's
    /// token and the operator's host access are proof enough.
    pub(crate) async fn reauthenticate(&self, who: &Principal, password: Option<SecretString>) -> DomainResult<()> {
        if who.channel != Channel::Console {
            return Ok(());
        }
        let password = password.ok_or_else(|| DomainError::invalid_field("password", "Enter your password."))?;
        authenticate(
            &self.db,
            &self.hasher,
            &self.throttle,
            &who.name,
            password,
            who.address(),
        )
        .await?;
        Ok(())
    }
}

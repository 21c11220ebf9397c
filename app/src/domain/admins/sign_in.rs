//! Signing in: an admin's password (throttled), and the admin token an
//! admin without one gets at sign-in. Composes the accounts with their
//! tokens, so it sits beside both.

use secrecy::SecretString;

use crate::domain::admins::second_factor::PendingSignIn;
use crate::domain::admins::{authenticate, Admin};
use crate::domain::audit::AuditEvent;
use crate::domain::metrics::SignIn;
use crate::domain::principal::{Channel, Principal};
use crate::domain::{DomainError, DomainResult, Keyward};

/// Whether a password asked again comes with the second factor.
enum SecondFactorAgain<'a> {
    Ask(Option<&'a str>),
    NotNow,
}

/// Where a right password leaves a sign-in.
#[derive(Debug)]
pub enum SignInStep {
    /// Signed in.
    Done(Admin),
    /// A code from the admin's second factor is asked for next.
    SecondFactor(PendingSignIn),
}

impl Keyward {
    /// Signs an admin in. Unknown user, wrong password and disabled admin
    /// all give `BadCredentials` after the same work; repeated failures
    /// are throttled per user and address. An admin without a live token
    /// gets one. A sign-in is audited, and so is a refused password for an
    /// admin's name; a name nobody has is not (it may be a password typed
    /// into the wrong field, and anyone could fill the log with them), nor
    /// an attempt the throttle refused before any work (its lockout is).
    ///
    /// An admin with a second factor is not signed in yet: the answer is
    /// the pending sign-in that [`Keyward::complete_sign_in`] finishes.
    pub async fn sign_in(&self, username: &str, password: SecretString, address: &str) -> DomainResult<SignInStep> {
        let signed_in = async {
            crate::domain::application::require(&self.db).await?;
            let (admin, second_factor) =
                authenticate(&self.db, &self.hasher, &self.throttle, username, password, address).await?;
            if second_factor {
                // On record: a right password that never comes back with
                // a code is a stolen one being tried.
                self.audit_sign_in(
                    AuditEvent::new(&admin.username, "admin.sign_in_code_asked", &admin.username),
                    address,
                )
                .await?;
                return Ok(SignInStep::SecondFactor(PendingSignIn {
                    admin_id: admin.id.clone(),
                    epoch: admin.session_epoch,
                    at_ms: crate::domain::clock::now_ms(),
                }));
            }
            let who = Principal::console(&admin.username, &admin.id, admin.role, admin.session_epoch, address);
            crate::domain::credentials::admin_tokens::ensure_after_login(self, &admin, &who).await?;
            self.audit_sign_in(
                AuditEvent::new(&admin.username, "admin.sign_in", &admin.username),
                address,
            )
            .await?;
            Ok(SignInStep::Done(admin))
        }
        .await;
        if matches!(signed_in, Err(DomainError::BadCredentials)) {
            // After the answer, whether or not the name is an admin's, so
            // the refusal takes as long either way; a failed write is
            // logged, never the refusal's answer.
            let kw = self.clone();
            let (username, address) = (username.to_owned(), address.to_owned());
            tokio::spawn(async move {
                let recorded = async {
                    if let Some(admin) = crate::domain::admins::by_username(&kw.db, &username).await? {
                        let event = AuditEvent::new("anonymous", "admin.sign_in_refused", admin.username);
                        kw.audit_sign_in(event, &address).await?;
                    }
                    Ok::<_, DomainError>(())
                };
                if let Err(e) = recorded.await {
                    tracing::error!(error = %e, "a refused sign-in could not be audited");
                }
            });
        }
        self.metrics.sign_in(match &signed_in {
            Ok(_) => SignIn::Ok,
            Err(DomainError::BadCredentials) => SignIn::BadCredentials,
            Err(DomainError::RateLimited(_)) => SignIn::Throttled,
            Err(_) => SignIn::Error,
        });
        signed_in
    }

    /// Records that the acting admin signed out of the console.
    pub async fn signed_out(&self, who: &Principal) -> DomainResult<()> {
        if who.channel != Channel::Console {
            return Err(DomainError::Forbidden);
        }
        self.audit_sign_in(AuditEvent::new(&who.name, "admin.sign_out", &who.name), who.address())
            .await
    }

    async fn audit_sign_in(&self, event: AuditEvent, address: &str) -> DomainResult<()> {
        let event = event.detail(serde_json::json!({ "client": address }));
        self.db
            .change()
            .await?
            .commit(event.source(Some(address.to_owned())))
            .await
    }

    /// The password of the acting admin again, throttled like sign-in,
    /// before a secret is shown or minted in the console. The admin API's
    /// token and the operator's host access are proof enough. A wrong one
    /// is audited (a session in the wrong hands guessing).
    ///
    /// An admin with a second factor gives a code from it too (`code`),
    /// used up here, as at sign-in.
    pub(crate) async fn reauthenticate(
        &self,
        who: &Principal,
        password: Option<SecretString>,
        code: Option<&str>,
    ) -> DomainResult<()> {
        self.check_again(who, password, SecondFactorAgain::Ask(code)).await
    }

    /// The password alone again: for replacing a temporary password right
    /// after the sign-in that took the second factor.
    pub(crate) async fn reauthenticate_password_only(
        &self,
        who: &Principal,
        password: SecretString,
    ) -> DomainResult<()> {
        self.check_again(who, Some(password), SecondFactorAgain::NotNow).await
    }

    async fn check_again(
        &self,
        who: &Principal,
        password: Option<SecretString>,
        second_factor: SecondFactorAgain<'_>,
    ) -> DomainResult<()> {
        if who.channel != Channel::Console {
            return Ok(());
        }
        let password = password.ok_or_else(|| DomainError::invalid_field("password", "Enter your password."))?;
        let checked = authenticate(
            &self.db,
            &self.hasher,
            &self.throttle,
            &who.name,
            password,
            who.address(),
        )
        .await;
        match checked {
            Ok((admin, true)) => match second_factor {
                SecondFactorAgain::Ask(code) => self.second_factor_again_before(who, &admin, code).await,
                SecondFactorAgain::NotNow => Ok(()),
            },
            Ok((_, false)) => Ok(()),
            Err(DomainError::BadCredentials) => {
                self.audit_sign_in(
                    AuditEvent::new(&who.name, "admin.reauthenticate_refused", &who.name),
                    who.address(),
                )
                .await?;
                Err(DomainError::BadCredentials)
            }
            Err(e) => Err(e),
        }
    }
}

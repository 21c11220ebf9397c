//! Passkeys and security keys (WebAuthn) as a second factor, beside an
//! authenticator app: the app's codes are what work without JavaScript
//! and what a sensitive step asks for again, so a passkey is added once
//! the app is on, and turning two-factor sign-in off removes both.
//!
//! The ceremonies are webauthn-rs's; this module keeps the credentials and
//! says who may use them. A ceremony's state between its two steps is the
//! caller's to keep (the console keeps it in the server-side session).

use sqlx::AnyConnection;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::domain::admins::second_factor::{required, Factor, PendingSignIn, PENDING_MS};
use crate::domain::admins::{by_id, Admin};
use crate::domain::audit::AuditEvent;
use crate::domain::clock::now_ms;
use crate::domain::principal::{Channel, Principal};
use crate::domain::{DomainError, DomainResult, Keyward};

/// A passkey as its owner's page lists it.
#[derive(Debug, Clone)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The address passkeys work at, for `public_url`: its origin, with a
/// loopback address as `localhost`; `None` when passkeys cannot work.
pub fn passkey_origin(public_url: &str) -> Option<String> {
    relying_party(public_url)?;
    let mut origin = Url::parse(public_url).ok()?;
    if origin
        .host()
        .is_some_and(|h| matches!(h, url::Host::Ipv4(_) | url::Host::Ipv6(_)))
    {
        origin.set_host(Some("localhost")).ok()?;
    }
    origin.set_path("");
    Some(origin.as_str().trim_end_matches('/').to_owned())
}

/// The relying party for `public_url`: its host and origin. Browsers
/// refuse an IP address as a relying party, so a loopback address (a
/// developer's machine) is served as `localhost`; any other address has
/// no passkeys.
pub fn relying_party(public_url: &str) -> Option<Webauthn> {
    let mut origin = Url::parse(public_url).ok()?;
    let loopback = matches!(origin.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(origin.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    if loopback {
        origin.set_host(Some("localhost")).ok()?;
    }
    origin.set_path("");
    let rp_id = origin.domain()?.to_owned();
    WebauthnBuilder::new(&rp_id, &origin)
        .ok()?
        .rp_name("Keyward")
        .build()
        .ok()
}

fn no_passkeys_here() -> DomainError {
    DomainError::Conflict(
        "Passkeys need Keyward served under a domain name: set its public URL to one (KEYWARD_PUBLIC_URL).".into(),
    )
}

fn ceremony_failed(e: impl std::fmt::Display) -> DomainError {
    tracing::info!(error = %e, "a passkey ceremony was refused");
    DomainError::invalid_field(
        "passkey",
        "The passkey could not be used. Try again, or use a code from your app.",
    )
}

/// The admin's WebAuthn user handle: their id's 16 bytes.
fn user_handle(admin_id: &str) -> DomainResult<Uuid> {
    let bytes = hex::decode(admin_id).map_err(|e| DomainError::Internal(e.to_string()))?;
    Uuid::from_slice(&bytes).map_err(|e| DomainError::Internal(e.to_string()))
}

fn stored_id(passkey: &Passkey) -> String {
    data_encoding::BASE64URL_NOPAD.encode(passkey.cred_id().as_ref())
}

async fn credentials(conn: &mut AnyConnection, admin_id: &str) -> DomainResult<Vec<(String, Passkey)>> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, credential FROM admin_passkeys WHERE admin_id = $1")
        .bind(admin_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter()
        .map(|(id, json)| {
            serde_json::from_str(&json)
                .map(|p| (id, p))
                .map_err(|e| DomainError::Internal(format!("a stored passkey does not read: {e}")))
        })
        .collect()
}

/// Validates a passkey's name: 1 to 40 printable characters.
fn passkey_name(raw: &str) -> DomainResult<String> {
    let name = raw.trim();
    let ok = (1..=40).contains(&name.chars().count()) && !name.chars().any(char::is_control);
    if ok {
        Ok(name.to_owned())
    } else {
        Err(DomainError::invalid_field(
            "name",
            "Name the passkey (1 to 40 characters), so you can tell it apart later.",
        ))
    }
}

impl Keyward {
    fn webauthn(&self) -> DomainResult<Webauthn> {
        relying_party(self.public_url()).ok_or_else(no_passkeys_here)
    }

    /// The acting admin's passkeys.
    pub async fn passkeys(&self, who: &Principal) -> DomainResult<Vec<PasskeyInfo>> {
        let Some(admin_id) = who.admin_id() else {
            return Ok(Vec::new());
        };
        let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, name, created_at, last_used_at FROM admin_passkeys WHERE admin_id = $1 ORDER BY created_at",
        )
        .bind(admin_id)
        .fetch_all(self.db.read())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, created_at, last_used_at)| PasskeyInfo {
                id,
                name,
                created_at,
                last_used_at,
            })
            .collect())
    }

    /// Starts adding a passkey for the acting admin: their app must be on,
    /// and a code from it comes with the request (a stolen session alone
    /// must not add a lasting factor of its own).
    pub async fn begin_passkey_registration(
        &self,
        who: &Principal,
        name: &str,
        code: &str,
    ) -> DomainResult<(CreationChallengeResponse, PasskeyRegistration)> {
        passkey_name(name)?;
        let admin = self.acting_admin(who).await?;
        if who.channel != Channel::Console {
            return Err(DomainError::Forbidden);
        }
        if !required(&self.db, &admin.id).await? {
            return Err(DomainError::Conflict(
                "Set up an authenticator app first: a passkey is added beside it.".into(),
            ));
        }
        self.second_factor_again_before(who, &admin, Some(code)).await?;
        let webauthn = self.webauthn()?;
        let existing = credentials(&mut *self.db.read().acquire().await?, &admin.id).await?;
        let exclude = existing.iter().map(|(_, p)| p.cred_id().clone()).collect();
        webauthn
            .start_passkey_registration(user_handle(&admin.id)?, &admin.username, &admin.username, Some(exclude))
            .map_err(ceremony_failed)
    }

    /// Finishes adding a passkey: the browser's answer to the challenge.
    pub async fn finish_passkey_registration(
        &self,
        who: &Principal,
        name: &str,
        state: &PasskeyRegistration,
        answer: &RegisterPublicKeyCredential,
    ) -> DomainResult<()> {
        let name = passkey_name(name)?;
        let admin = self.acting_admin(who).await?;
        if who.channel != Channel::Console {
            return Err(DomainError::Forbidden);
        }
        let passkey = self
            .webauthn()?
            .finish_passkey_registration(answer, state)
            .map_err(ceremony_failed)?;
        let json = serde_json::to_string(&passkey).map_err(|e| DomainError::Internal(e.to_string()))?;
        let mut change = self.db.change_as(who).await?;
        // The app may have been turned off meanwhile (another tab): a
        // passkey beside no app is not added.
        let app_on: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM admin_totp WHERE admin_id = $1 AND confirmed_at IS NOT NULL")
                .bind(&admin.id)
                .fetch_optional(change.conn())
                .await?;
        if app_on.is_none() {
            return Err(DomainError::Conflict(
                "Two-factor sign-in was turned off meanwhile: turn it on again first.".into(),
            ));
        }
        sqlx::query(
            "INSERT INTO admin_passkeys (id, admin_id, name, credential, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(stored_id(&passkey))
        .bind(&admin.id)
        .bind(&name)
        .bind(json)
        .bind(now_ms())
        .execute(change.conn())
        .await
        .map_err(|e| crate::domain::storage::db::on_unique(e, "That passkey is already added."))?;
        change
            .commit(
                AuditEvent::new(who.name(), "admin.second_factor.enrol", who.name())
                    .detail(serde_json::json!({ "factor": "passkey", "name": name }))
                    .source(who.source()),
            )
            .await
    }

    /// Removes one of the acting admin's passkeys, after a code from their
    /// app (a stolen session does not take a factor away).
    pub async fn remove_passkey(&self, who: &Principal, id: &str, code: &str) -> DomainResult<()> {
        let admin = self.acting_admin(who).await?;
        let mut change = self.second_factor_again(who, &admin, code).await?;
        let removed: Option<(String,)> =
            sqlx::query_as("DELETE FROM admin_passkeys WHERE id = $1 AND admin_id = $2 RETURNING name")
                .bind(id)
                .bind(&admin.id)
                .fetch_optional(change.conn())
                .await?;
        let Some((name,)) = removed else {
            return Err(DomainError::invalid_field("id", "You have no such passkey."));
        };
        change
            .commit(
                AuditEvent::new(who.name(), "admin.second_factor.remove", who.name())
                    .detail(serde_json::json!({ "factor": "passkey", "name": name }))
                    .source(who.source()),
            )
            .await?;
        self.code_counted_good(who, &admin).await
    }

    /// The challenge for a sign-in's second step with a passkey; `None`
    /// when the admin has none.
    pub async fn begin_passkey_sign_in(
        &self,
        pending: &PendingSignIn,
    ) -> DomainResult<Option<(RequestChallengeResponse, PasskeyAuthentication)>> {
        let admin = self.pending_admin(pending).await?;
        let found = credentials(&mut *self.db.read().acquire().await?, &admin.id).await?;
        if found.is_empty() {
            return Ok(None);
        }
        let keys: Vec<Passkey> = found.into_iter().map(|(_, p)| p).collect();
        self.webauthn()?
            .start_passkey_authentication(&keys)
            .map(Some)
            .map_err(ceremony_failed)
    }

    /// The second step of a sign-in, with a passkey. Throttled and audited
    /// as a code is.
    pub async fn complete_sign_in_with_passkey(
        &self,
        pending: &PendingSignIn,
        state: &PasskeyAuthentication,
        answer: &PublicKeyCredential,
        address: &str,
    ) -> DomainResult<Admin> {
        let admin = self.pending_admin(pending).await?;
        self.throttle.attempt(&self.db, &admin.username, address).await?;
        let checked = self.webauthn()?.finish_passkey_authentication(answer, state);
        let Ok(result) = checked else {
            self.audit_refused_code(&admin.username, address).await?;
            return Err(ceremony_failed(
                checked.err().map(|e| e.to_string()).unwrap_or_default(),
            ));
        };
        let mut change = self.db.change().await?;
        let conn = change.conn();
        let mut keys = credentials(conn, &admin.id).await?;
        let Some((id, key)) = keys.iter_mut().find(|(_, p)| p.cred_id() == result.cred_id()) else {
            drop(change);
            self.audit_refused_code(&admin.username, address).await?;
            return Err(ceremony_failed("the passkey is no longer this admin's"));
        };
        key.update_credential(&result);
        let json = serde_json::to_string(&*key).map_err(|e| DomainError::Internal(e.to_string()))?;
        sqlx::query("UPDATE admin_passkeys SET credential = $1, last_used_at = $2 WHERE id = $3 AND admin_id = $4")
            .bind(json)
            .bind(now_ms())
            .bind(&*id)
            .bind(&admin.id)
            .execute(&mut *conn)
            .await?;
        self.signed_in_with(change, admin, Factor::Passkey, address).await
    }

    /// The admin of a sign-in waiting for its second factor, if it still
    /// may go on: in time, enabled, and nothing reset meanwhile.
    pub(super) async fn pending_admin(&self, pending: &PendingSignIn) -> DomainResult<Admin> {
        let expired = || DomainError::Unauthorized("The sign-in timed out. Sign in again.".into());
        if now_ms() - pending.at_ms > PENDING_MS {
            return Err(expired());
        }
        let admin = by_id(&self.db, &pending.admin_id).await?.ok_or_else(expired)?;
        if admin.disabled || admin.session_epoch != pending.epoch {
            return Err(expired());
        }
        Ok(admin)
    }
}

#[cfg(test)]
mod tests {
    use super::relying_party;

    #[test]
    fn a_loopback_address_is_served_as_localhost_and_no_other_address_at_all() {
        assert!(relying_party("http://127.0.0.1:3000/").is_some());
        assert!(relying_party("https://keyward.example.com/").is_some());
        assert!(relying_party("http://10.0.0.5:3000/").is_none());
        assert!(relying_party("not a url").is_none());
    }
}

//! An admin's second factor: an authenticator app (TOTP) and one-time
//! recovery codes. Enrolment is proven with a first code; sign-in asks for
//! a code after the password; a code is accepted once, and only inside the
//! transaction that acts on it. The operator can take the factor away from
//! the host (a lost phone).

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use crate::domain::admins::{by_username, totp, Admin};
use crate::domain::audit::AuditEvent;
use crate::domain::clock::now_ms;
use crate::domain::principal::{Channel, Principal};
use crate::domain::secrets::MasterKey;
use crate::domain::storage::db::Change;
use crate::domain::{DomainError, DomainResult, Entity, Keyward};

/// How many recovery codes an enrolment (or a regeneration) gives.
pub const RECOVERY_CODES: usize = 10;
/// How long the second step of a sign-in waits after the password.
pub const PENDING_MS: i64 = 5 * 60_000;
/// How long a set-up waits for its first code: an abandoned one is not
/// shown again (its secret is) nor confirmed later.
pub const SET_UP_MS: i64 = 15 * 60_000;

fn seal_context(admin_id: &str) -> String {
    format!("admin-totp:{admin_id}")
}

/// An admin's second factor, as their own account page shows it.
#[derive(Debug)]
pub struct TwoFactor {
    /// When the authenticator app was confirmed; `None` while off.
    pub enabled_at: Option<i64>,
    /// An enrolment begun and not yet confirmed.
    pub pending: Option<Enrolment>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: i64,
    /// Every admin must have a second factor (it cannot be turned off).
    pub required: bool,
}

/// What an authenticator app needs to be set up: the secret as text, and
/// the same as an `otpauth://` address and its QR code.
pub struct Enrolment {
    pub secret: SecretString,
    pub uri: SecretString,
    pub qr_svg: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(..)")
    }
}

/// An authenticator app just turned on.
#[derive(Debug)]
pub struct Confirmed {
    /// The admin as they are now (a new session epoch).
    pub admin: Admin,
    /// Shown once.
    pub recovery_codes: Vec<SecretString>,
}

/// What proved a sign-in's second step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Totp,
    RecoveryCode,
    Passkey,
}

impl Factor {
    fn as_str(self) -> &'static str {
        match self {
            Factor::Totp => "totp",
            Factor::RecoveryCode => "recovery_code",
            Factor::Passkey => "passkey",
        }
    }
}

/// A sign-in whose password was right, waiting for its second factor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingSignIn {
    pub admin_id: String,
    pub epoch: i64,
    pub at_ms: i64,
}

/// A typed code, as what it looks like: six digits are an app's code,
/// anything else a recovery code (spaces and hyphens as typed are not
/// part of either).
enum Typed {
    Totp(String),
    Recovery(String),
}

fn typed(raw: &str) -> Typed {
    let plain: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    if plain.len() == 6 && plain.bytes().all(|b| b.is_ascii_digit()) {
        Typed::Totp(plain)
    } else {
        Typed::Recovery(plain)
    }
}

fn digest(code: &str) -> Vec<u8> {
    Sha256::digest(code.as_bytes()).to_vec()
}

/// Ten new recovery codes: 80 random bits each, in four groups of four
/// base32 letters and digits (no padding, lower case).
fn new_recovery_codes() -> Vec<SecretString> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let plain = data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase();
            let grouped = plain
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).expect("base32 is ASCII"))
                .collect::<Vec<_>>()
                .join("-");
            SecretString::from(grouped)
        })
        .collect()
}

/// Replaces `admin_id`'s recovery codes by new ones (which void the old).
async fn replace_recovery_codes(conn: &mut AnyConnection, admin_id: &str) -> DomainResult<Vec<SecretString>> {
    sqlx::query("DELETE FROM admin_recovery_codes WHERE admin_id = $1")
        .bind(admin_id)
        .execute(&mut *conn)
        .await?;
    let codes = new_recovery_codes();
    let now = now_ms();
    for code in &codes {
        let plain = code.expose_secret().replace('-', "");
        sqlx::query("INSERT INTO admin_recovery_codes (admin_id, digest, created_at) VALUES ($1, $2, $3)")
            .bind(admin_id)
            .bind(digest(&plain))
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(codes)
}

/// The confirmed TOTP secret of `admin_id`, opened.
async fn confirmed_secret(
    conn: &mut AnyConnection,
    master: &MasterKey,
    admin_id: &str,
) -> DomainResult<Option<zeroize::Zeroizing<Vec<u8>>>> {
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT sealed FROM admin_totp WHERE admin_id = $1 AND confirmed_at IS NOT NULL")
            .bind(admin_id)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|(sealed,)| {
        master
            .open(&sealed, &seal_context(admin_id))
            .map(zeroize::Zeroizing::new)
    })
    .transpose()
}

/// Takes `raw` as `admin_id`'s second factor inside `conn`'s transaction:
/// an app's code of a step after the last one taken (a code works once),
/// or an unused recovery code (used up now). `None`: not accepted.
async fn accept(
    conn: &mut AnyConnection,
    master: &MasterKey,
    admin_id: &str,
    raw: &str,
) -> DomainResult<Option<Factor>> {
    match typed(raw) {
        Typed::Totp(code) => {
            let Some(secret) = confirmed_secret(conn, master, admin_id).await? else {
                return Ok(None);
            };
            let Some(step) = totp::matching_step(&secret, &code, now_ms()) else {
                return Ok(None);
            };
            let taken = sqlx::query(
                "UPDATE admin_totp SET last_step = $1 \
                 WHERE admin_id = $2 AND confirmed_at IS NOT NULL AND last_step < $1",
            )
            .bind(step)
            .bind(admin_id)
            .execute(&mut *conn)
            .await?;
            Ok((taken.rows_affected() == 1).then_some(Factor::Totp))
        }
        Typed::Recovery(code) if !code.is_empty() => {
            let used = sqlx::query(
                "UPDATE admin_recovery_codes SET used_at = $1 \
                 WHERE admin_id = $2 AND digest = $3 AND used_at IS NULL",
            )
            .bind(now_ms())
            .bind(admin_id)
            .bind(digest(&code))
            .execute(&mut *conn)
            .await?;
            Ok((used.rows_affected() == 1).then_some(Factor::RecoveryCode))
        }
        Typed::Recovery(_) => Ok(None),
    }
}

/// Is a second factor asked of `admin_id` at sign-in?
pub(super) async fn required(db: &crate::domain::storage::db::Db, admin_id: &str) -> DomainResult<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM admin_totp WHERE admin_id = $1 AND confirmed_at IS NOT NULL")
            .bind(admin_id)
            .fetch_optional(db.read())
            .await?;
    Ok(row.is_some())
}

/// Must every admin have a second factor (a super admin's policy)?
async fn policy(db: &crate::domain::storage::db::Db) -> DomainResult<bool> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT require_second_factor FROM application WHERE id = 1")
        .fetch_optional(db.read())
        .await?;
    Ok(row.is_some_and(|(on,)| on != 0))
}

/// Must `admin_id` set up a second factor before anything else: the
/// policy is on and they have none. One read, for every console request.
pub(super) async fn enrolment_due(db: &crate::domain::storage::db::Db, admin_id: &str) -> DomainResult<bool> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT a.require_second_factor, \
                (SELECT COUNT(*) FROM admin_totp t WHERE t.admin_id = $1 AND t.confirmed_at IS NOT NULL) \
         FROM application a WHERE a.id = 1",
    )
    .bind(admin_id)
    .fetch_optional(db.read())
    .await?;
    Ok(row.is_some_and(|(required, has)| required != 0 && has == 0))
}

/// Re-seals every TOTP secret with `new` (a master-key rotation).
pub(in crate::domain) async fn reseal(
    conn: &mut AnyConnection,
    old: &MasterKey,
    new: &MasterKey,
) -> DomainResult<usize> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT admin_id, sealed FROM admin_totp")
        .fetch_all(&mut *conn)
        .await?;
    for (admin_id, sealed) in &rows {
        sqlx::query("UPDATE admin_totp SET sealed = $1 WHERE admin_id = $2")
            .bind(old.reseal(new, sealed, &seal_context(admin_id))?)
            .bind(admin_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(rows.len())
}

fn not_accepted() -> DomainError {
    DomainError::invalid_field(
        "code",
        "That code is not right, or was used already. Enter the current code from your app, or an unused recovery code.",
    )
}

impl Keyward {
    /// The acting admin's own second factor (console only).
    pub async fn two_factor(&self, who: &Principal) -> DomainResult<TwoFactor> {
        let admin = self.own_console_account(who)?;
        let row: Option<(Vec<u8>, Option<i64>)> = sqlx::query_as(
            "SELECT sealed, confirmed_at FROM admin_totp \
             WHERE admin_id = $1 AND (confirmed_at IS NOT NULL OR created_at > $2)",
        )
        .bind(admin)
        .bind(now_ms() - SET_UP_MS)
        .fetch_optional(self.db.read())
        .await?;
        let (left,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM admin_recovery_codes WHERE admin_id = $1 AND used_at IS NULL")
                .bind(admin)
                .fetch_one(self.db.read())
                .await?;
        let pending = match &row {
            Some((sealed, None)) => {
                let secret = zeroize::Zeroizing::new(self.master_key.open(sealed, &seal_context(admin))?);
                let app = crate::domain::application::require(&self.db).await?;
                let uri = totp::provisioning_uri(&format!("Keyward {}", app.name), who.name(), &secret);
                Some(Enrolment {
                    secret: SecretString::from(totp::base32(&secret)),
                    qr_svg: totp::qr_svg(&uri)
                        .ok_or_else(|| DomainError::Internal("the enrolment QR code could not be drawn".into()))?,
                    uri: SecretString::from(uri),
                })
            }
            _ => None,
        };
        Ok(TwoFactor {
            enabled_at: row.and_then(|(_, confirmed)| confirmed),
            pending,
            recovery_codes_left: left,
            required: policy(&self.db).await?,
        })
    }

    /// Begins setting up an authenticator app for the acting admin, after
    /// their password again: a new secret, not asked for at sign-in until
    /// confirmed with a first code. Starting again replaces it.
    pub async fn begin_totp(&self, who: &Principal, password: Option<SecretString>) -> DomainResult<()> {
        let admin = self.own_console_account(who)?.to_owned();
        self.reauthenticate(who, password, None).await?;
        let mut secret = zeroize::Zeroizing::new(vec![0u8; totp::SECRET_BYTES]);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let sealed = self.master_key.seal(&secret, &seal_context(&admin))?;
        let mut change = self.db.change_as(who).await?;
        let conn = change.conn();
        let on: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM admin_totp WHERE admin_id = $1 AND confirmed_at IS NOT NULL")
                .bind(&admin)
                .fetch_optional(&mut *conn)
                .await?;
        if on.is_some() {
            return Err(DomainError::Conflict(
                "Two-factor sign-in is already on. Turn it off first to move it to another app.".into(),
            ));
        }
        sqlx::query("DELETE FROM admin_totp WHERE admin_id = $1")
            .bind(&admin)
            .execute(&mut *conn)
            .await?;
        sqlx::query("INSERT INTO admin_totp (admin_id, sealed, created_at) VALUES ($1, $2, $3)")
            .bind(&admin)
            .bind(sealed)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
        change
            .commit(AuditEvent::new(who.name(), "admin.totp.begin", who.name()).source(who.source()))
            .await
    }

    /// Confirms the acting admin's authenticator app with a first code:
    /// from now on sign-in asks for a code. Every other console session of
    /// theirs ends (one opened with a stolen password must not outlive the
    /// new factor): the caller seats the one it serves again with the
    /// admin returned. Gives ten recovery codes, shown once.
    pub async fn confirm_totp(&self, who: &Principal, code: &str) -> DomainResult<Confirmed> {
        let admin = self.acting_admin(who).await?;
        self.own_console_account(who)?;
        // Guessing the first code of a set-up someone else began counts
        // like guessing a password.
        self.throttle.attempt(&self.db, &admin.username, who.address()).await?;
        let mut change = self.db.change_as(who).await?;
        let row: Option<(Vec<u8>,)> = sqlx::query_as(
            "SELECT sealed FROM admin_totp WHERE admin_id = $1 AND confirmed_at IS NULL AND created_at > $2",
        )
        .bind(&admin.id)
        .bind(now_ms() - SET_UP_MS)
        .fetch_optional(change.conn())
        .await?;
        let Some((sealed,)) = row else {
            return Err(DomainError::Conflict(
                "There is no set-up waiting for a code (one waits 15 minutes). Start again.".into(),
            ));
        };
        let secret = zeroize::Zeroizing::new(self.master_key.open(&sealed, &seal_context(&admin.id))?);
        let step = match typed(code) {
            Typed::Totp(code) => totp::matching_step(&secret, &code, now_ms()),
            Typed::Recovery(_) => None,
        };
        let Some(step) = step else {
            drop(change);
            self.audit_refused_code(&admin.username, who.address()).await?;
            return Err(DomainError::invalid_field(
                "code",
                "That is not the app's current code. Check the phone's clock, and enter the 6 digits the app shows now.",
            ));
        };
        let conn = change.conn();
        sqlx::query("UPDATE admin_totp SET confirmed_at = $1, last_step = $2 WHERE admin_id = $3")
            .bind(now_ms())
            .bind(step)
            .bind(&admin.id)
            .execute(&mut *conn)
            .await?;
        let (epoch,): (i64,) = sqlx::query_as(
            "UPDATE admin_users SET session_epoch = session_epoch + 1, updated_at = $1 WHERE id = $2 \
             RETURNING session_epoch",
        )
        .bind(now_ms())
        .bind(&admin.id)
        .fetch_one(&mut *conn)
        .await?;
        let codes = replace_recovery_codes(conn, &admin.id).await?;
        change
            .commit(
                AuditEvent::new(who.name(), "admin.second_factor.enrol", who.name())
                    .detail(serde_json::json!({ "factor": "totp", "recovery_codes": codes.len() }))
                    .source(who.source()),
            )
            .await?;
        self.code_counted_good(who, &admin).await?;
        Ok(Confirmed {
            admin: Admin {
                session_epoch: epoch,
                ..admin
            },
            recovery_codes: codes,
        })
    }

    /// New recovery codes for the acting admin (the old ones stop
    /// working), after a code from their second factor.
    pub async fn regenerate_recovery_codes(&self, who: &Principal, code: &str) -> DomainResult<Vec<SecretString>> {
        let admin = self.acting_admin(who).await?;
        self.own_console_account(who)?;
        let mut change = self.second_factor_again(who, &admin, code).await?;
        let codes = replace_recovery_codes(change.conn(), &admin.id).await?;
        change
            .commit(
                AuditEvent::new(who.name(), "admin.recovery_codes.regenerate", who.name())
                    .detail(serde_json::json!({ "recovery_codes": codes.len() }))
                    .source(who.source()),
            )
            .await?;
        self.code_counted_good(who, &admin).await?;
        Ok(codes)
    }

    /// Turns the acting admin's second factor off, after a code from it;
    /// not while the policy requires one.
    pub async fn remove_totp(&self, who: &Principal, code: &str) -> DomainResult<()> {
        let admin = self.acting_admin(who).await?;
        self.own_console_account(who)?;
        if policy(&self.db).await? {
            return Err(DomainError::Conflict(
                "Two-factor sign-in is required for every admin here, so it cannot be turned off. \
                 To move it to a new phone, ask the operator to reset it."
                    .into(),
            ));
        }
        let mut change = self.second_factor_again(who, &admin, code).await?;
        remove_factors(change.conn(), &admin.id).await?;
        change
            .commit(
                AuditEvent::new(who.name(), "admin.second_factor.remove", who.name())
                    .detail(serde_json::json!({ "factor": "totp" }))
                    .source(who.source()),
            )
            .await?;
        self.code_counted_good(who, &admin).await
    }

    /// Break-glass, from the host: takes every second factor away from
    /// `username` (a lost phone) and ends their console sessions.
    pub async fn reset_second_factor(&self, who: &Principal, username: &str) -> DomainResult<()> {
        if who.channel != Channel::Cli {
            return Err(DomainError::Forbidden);
        }
        let admin = by_username(&self.db, &username.trim().to_lowercase())
            .await?
            .ok_or(DomainError::NotFound(Entity::Admin))?;
        let mut change = self.db.change_as(who).await?;
        let conn = change.conn();
        let removed = remove_factors(conn, &admin.id).await?;
        sqlx::query("UPDATE admin_users SET session_epoch = session_epoch + 1, updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(&admin.id)
            .execute(&mut *conn)
            .await?;
        change
            .commit(
                AuditEvent::new(who.name(), "admin.second_factor.reset", &admin.username)
                    .detail(serde_json::json!({ "had_totp": removed }))
                    .source(who.source()),
            )
            .await?;
        self.refresh().await
    }

    /// Requires (or stops requiring) a second factor of every admin. Super
    /// admins only; audited as a settings change.
    ///
    /// Stopping requiring it lowers every admin's guard: it takes a code
    /// from the acting super admin's own factor (`code`).
    pub async fn set_second_factor_policy(
        &self,
        who: &Principal,
        required: bool,
        code: Option<&str>,
    ) -> DomainResult<()> {
        who.require_super_admin()?;
        if !required && policy(&self.db).await? && who.channel == Channel::Console {
            let admin = self.acting_admin(who).await?;
            self.second_factor_again_before(who, &admin, code).await?;
        }
        // As GitHub has it: you require of others what you have yourself,
        // and so are never the one the policy shuts out of turning it off.
        if required && !self.has_second_factor(who).await? && who.channel != Channel::Cli {
            return Err(DomainError::Conflict(
                "Set up two-factor sign-in for yourself first, then require it of every admin.".into(),
            ));
        }
        let mut change = self.db.change_as(who).await?;
        let conn = change.conn();
        let (before,): (i64,) = sqlx::query_as("SELECT require_second_factor FROM application WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        if (before != 0) == required {
            return Ok(());
        }
        sqlx::query("UPDATE application SET require_second_factor = $1 WHERE id = 1")
            .bind(i64::from(required))
            .execute(&mut *conn)
            .await?;
        change
            .commit(
                AuditEvent::new(who.name(), "settings.update", "application")
                    .detail(serde_json::json!({
                        "require_second_factor": { "from": before != 0, "to": required }
                    }))
                    .source(who.source()),
            )
            .await
    }

    /// Has the acting admin a second factor (asked for again before a
    /// secret is shown)?
    pub async fn has_second_factor(&self, who: &Principal) -> DomainResult<bool> {
        match who.admin_id() {
            Some(id) => required(&self.db, id).await,
            None => Ok(false),
        }
    }

    /// Must `admin` set up a second factor before anything else?
    pub async fn enrolment_due(&self, admin: &Admin) -> DomainResult<bool> {
        enrolment_due(&self.db, &admin.id).await
    }

    /// The second step of a sign-in: a code for the admin whose password
    /// was right a moment ago. Throttled with the password (a wrong code
    /// counts as a failed sign-in); audited either way. The admin must
    /// still be enabled with the same session epoch (a reset or a disable
    /// meanwhile ends the sign-in).
    pub async fn complete_sign_in(&self, pending: &PendingSignIn, code: &str, address: &str) -> DomainResult<Admin> {
        let admin = self.pending_admin(pending).await?;
        self.throttle.attempt(&self.db, &admin.username, address).await?;
        let mut change = self.db.change().await?;
        match accept(change.conn(), &self.master_key, &admin.id, code).await? {
            Some(factor) => self.signed_in_with(change, admin, factor, address).await,
            None => {
                drop(change);
                self.audit_refused_code(&admin.username, address).await?;
                Err(not_accepted())
            }
        }
    }

    /// Finishes a sign-in whose second factor `change` has taken: on
    /// record with the factor, the throttle settled, and the token an
    /// admin without one gets at sign-in.
    pub(super) async fn signed_in_with(
        &self,
        change: Change,
        admin: Admin,
        factor: Factor,
        address: &str,
    ) -> DomainResult<Admin> {
        change
            .commit(
                AuditEvent::new(&admin.username, "admin.sign_in", &admin.username)
                    .detail(serde_json::json!({ "client": address, "factor": factor.as_str() }))
                    .source(Some(address.to_owned())),
            )
            .await?;
        self.throttle.success(&self.db, &admin.username, address).await?;
        let who = Principal::console(&admin.username, &admin.id, admin.role, admin.session_epoch, address);
        crate::domain::credentials::admin_tokens::ensure_after_login(self, &admin, &who).await?;
        Ok(admin)
    }

    /// A code from the acting admin's second factor again, before a change
    /// to it; the returned change has taken the code. Once it is
    /// committed, [`Self::code_counted_good`] takes the attempt back.
    pub(super) async fn second_factor_again(&self, who: &Principal, admin: &Admin, code: &str) -> DomainResult<Change> {
        if !required(&self.db, &admin.id).await? {
            return Err(DomainError::Conflict("Two-factor sign-in is off.".into()));
        }
        self.throttle.attempt(&self.db, &admin.username, who.address()).await?;
        let mut change = self.db.change_as(who).await?;
        if accept(change.conn(), &self.master_key, &admin.id, code)
            .await?
            .is_some()
        {
            // The throttle's success is the caller's, once this change is
            // committed: it writes, and the change holds the writer.
            return Ok(change);
        }
        drop(change);
        self.audit_refused_code(&admin.username, who.address()).await?;
        Err(not_accepted())
    }

    /// A code from `admin`'s second factor, if they have one, before a
    /// secret is shown or made, or their password changed. Used up in its
    /// own transaction: the action after it may fail, and then a new code
    /// is asked for.
    pub(super) async fn second_factor_again_before(
        &self,
        who: &Principal,
        admin: &Admin,
        code: Option<&str>,
    ) -> DomainResult<()> {
        if !required(&self.db, &admin.id).await? {
            return Ok(());
        }
        let code = code.map(str::trim).filter(|c| !c.is_empty()).ok_or_else(|| {
            DomainError::invalid_field("code", "Enter a code from your authenticator app (or a recovery code).")
        })?;
        self.throttle.attempt(&self.db, &admin.username, who.address()).await?;
        let mut tx = self.db.write().begin().await?;
        if accept(&mut tx, &self.master_key, &admin.id, code).await?.is_some() {
            tx.commit().await?;
            return self.code_counted_good(who, admin).await;
        }
        drop(tx);
        self.audit_refused_code(&admin.username, who.address()).await?;
        Err(not_accepted())
    }

    pub(super) async fn code_counted_good(&self, who: &Principal, admin: &Admin) -> DomainResult<()> {
        self.throttle.success(&self.db, &admin.username, who.address()).await
    }

    /// A wrong code on record; and, when it was the one that locked the
    /// address out of this admin, the lockout too (as for passwords).
    pub(super) async fn audit_refused_code(&self, username: &str, address: &str) -> DomainResult<()> {
        self.db
            .change()
            .await?
            .commit(
                AuditEvent::new(username, "admin.second_factor_refused", username)
                    .detail(serde_json::json!({ "client": address }))
                    .source(Some(address.to_owned())),
            )
            .await?;
        if let Some(until) = self.throttle.just_locked(&self.db, username, address).await? {
            self.db
                .change()
                .await?
                .commit(
                    AuditEvent::new("keyward", "admin.lockout", username)
                        .detail(serde_json::json!({ "client": address, "until": crate::domain::clock::iso(until) }))
                        .source(Some(address.to_owned())),
                )
                .await?;
        }
        Ok(())
    }

    /// The acting admin's id, for what only a console admin does to their
    /// own account.
    fn own_console_account<'a>(&self, who: &'a Principal) -> DomainResult<&'a str> {
        match (who.channel, who.admin_id()) {
            (Channel::Console, Some(id)) => Ok(id),
            _ => Err(DomainError::Forbidden),
        }
    }
}

/// Removes `admin_id`'s app and recovery codes; was there an app?
async fn remove_factors(conn: &mut AnyConnection, admin_id: &str) -> DomainResult<bool> {
    let removed = sqlx::query("DELETE FROM admin_totp WHERE admin_id = $1")
        .bind(admin_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM admin_recovery_codes WHERE admin_id = $1")
        .bind(admin_id)
        .execute(&mut *conn)
        .await?;
    // Passkeys sit beside the app: with it gone, they go too.
    sqlx::query("DELETE FROM admin_passkeys WHERE admin_id = $1")
        .bind(admin_id)
        .execute(&mut *conn)
        .await?;
    Ok(removed.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_digits_are_an_apps_code_anything_else_a_recovery_code() {
        assert!(matches!(typed(" 123 456 "), Typed::Totp(c) if c == "123456"));
        assert!(matches!(typed("ABCD-efgh"), Typed::Recovery(c) if c == "abcdefgh"));
        assert!(matches!(typed("1234567"), Typed::Recovery(_)));
    }

    #[test]
    fn recovery_codes_are_ten_distinct_80_bit_codes() {
        let codes: Vec<String> = new_recovery_codes()
            .iter()
            .map(|c| c.expose_secret().to_owned())
            .collect();
        assert_eq!(codes.len(), RECOVERY_CODES);
        for c in &codes {
            assert_eq!(c.len(), 19, "{c}");
            assert_eq!(c.matches('-').count(), 3, "{c}");
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
    }
}

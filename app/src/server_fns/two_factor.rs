//! The signed-in admin's own second factor: an authenticator app and
//! recovery codes.

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{Done, RecoveryCodes, TwoFactorData};

/// Where recovery codes made by a form posted without JavaScript wait.
#[cfg(feature = "ssr")]
const REVEALED_CODES: &str = "recovery_codes";

#[cfg(feature = "ssr")]
const PAGE: &str = "/settings/two-factor";

#[server(prefix = "/console/fn", endpoint = "two_factor")]
pub async fn load_two_factor() -> Result<TwoFactorData, AppError> {
    use secrecy::ExposeSecret;

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin_pending_enrolment().await?;
    let found = kw.two_factor(&who).await?;
    Ok(TwoFactorData {
        enabled_at: found.enabled_at.map(crate::domain::clock::display),
        pending: found.pending.map(|p| crate::model::TotpSetup {
            secret: grouped(p.secret.expose_secret()),
            uri: p.uri.expose_secret().to_owned(),
            qr_svg: p.qr_svg,
        }),
        recovery_codes_left: found.recovery_codes_left,
        required: found.required,
        can_set_policy: who.is_super_admin(),
        passkeys: kw
            .passkeys(&who)
            .await?
            .into_iter()
            .map(|p| crate::model::PasskeyRow {
                id: p.id,
                name: p.name,
                created_at: crate::domain::clock::display(p.created_at),
                last_used_at: p.last_used_at.map(crate::domain::clock::display),
            })
            .collect(),
        passkey_origin: crate::domain::admins::passkeys::passkey_origin(kw.public_url()),
        revealed_codes: crate::reveal::take(REVEALED_CODES).await?,
    })
}

/// A base32 secret in groups of four, easier to type into an app.
#[cfg(feature = "ssr")]
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Begins setting up an authenticator app, after the password again.
#[server(prefix = "/console/fn", endpoint = "begin_totp")]
pub async fn begin_totp(password: String) -> Result<(), AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin_pending_enrolment().await?;
    kw.begin_totp(&who, Some(secrecy::SecretString::from(password))).await?;
    leptos_axum::redirect(&format!("{PAGE}#set-up"));
    Ok(())
}

/// Turns the app on with its first code; the recovery codes come back once.
#[server(prefix = "/console/fn", endpoint = "confirm_totp")]
pub async fn confirm_totp(code: String) -> Result<RecoveryCodes, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin_pending_enrolment().await?;
    let confirmed = kw.confirm_totp(&who, &code).await?;
    // Every other session of this admin ended; this one goes on.
    let session = crate::auth::session().await?;
    crate::auth::reseat(&session, &confirmed.admin).await?;
    shown_once(confirmed.recovery_codes).await
}

/// New recovery codes (the old ones stop working), after a code.
#[server(prefix = "/console/fn", endpoint = "regenerate_recovery_codes")]
pub async fn regenerate_recovery_codes(code: String) -> Result<RecoveryCodes, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let codes = kw.regenerate_recovery_codes(&who, &code).await?;
    shown_once(codes).await
}

#[cfg(feature = "ssr")]
async fn shown_once(codes: Vec<secrecy::SecretString>) -> Result<RecoveryCodes, AppError> {
    use secrecy::ExposeSecret;
    let shown = RecoveryCodes {
        codes: codes.iter().map(|c| c.expose_secret().to_owned()).collect(),
    };
    crate::reveal::stash(REVEALED_CODES, &shown).await?;
    leptos_axum::redirect(&format!("{PAGE}#recovery-codes"));
    Ok(shown)
}

/// Requires (or stops requiring) a second factor of every admin: a super
/// admin's policy.
#[server(prefix = "/console/fn", endpoint = "set_second_factor_policy")]
pub async fn set_second_factor_policy(required: bool, code: Option<String>) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    kw.set_second_factor_policy(&who, required, code.as_deref()).await?;
    leptos_axum::redirect(&format!("{PAGE}#policy"));
    crate::server_fns::done(if required {
        "Two-factor sign-in is now required: admins without it set it up at their next page."
    } else {
        "Two-factor sign-in is no longer required: each admin chooses."
    })
    .await
}

/// Turns two-factor sign-in off, after a code.
#[server(prefix = "/console/fn", endpoint = "remove_totp")]
pub async fn remove_totp(code: String) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    kw.remove_totp(&who, &code).await?;
    leptos_axum::redirect(PAGE);
    crate::server_fns::done("Two-factor sign-in is off: your password alone signs you in.").await
}

/// Where a passkey being added waits between its two steps: the ceremony's
/// state and the name, in the server-side session.
#[cfg(feature = "ssr")]
const ADDING_PASSKEY: &str = "keyward.adding_passkey";

/// Starts adding a passkey: the options for the browser's
/// `navigator.credentials.create`, as JSON. (JavaScript only.)
#[server(prefix = "/console/fn", endpoint = "begin_add_passkey")]
pub async fn begin_add_passkey(name: String, code: String) -> Result<String, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let (options, state) = kw.begin_passkey_registration(&who, &name, &code).await?;
    let session = crate::auth::session().await?;
    session
        .insert(ADDING_PASSKEY, (name, state))
        .await
        .map_err(|_| AppError::Internal)?;
    serde_json::to_string(&options).map_err(|_| AppError::Internal)
}

/// Finishes adding a passkey with the browser's answer (JSON).
#[server(prefix = "/console/fn", endpoint = "finish_add_passkey")]
pub async fn finish_add_passkey(credential: String) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let session = crate::auth::session().await?;
    let Some((name, state)) = session
        .remove::<(String, webauthn_rs::prelude::PasskeyRegistration)>(ADDING_PASSKEY)
        .await
        .map_err(|_| AppError::Internal)?
    else {
        return Err(AppError::Conflict("No passkey is being added. Start again.".into()));
    };
    let answer = serde_json::from_str(&credential)
        .map_err(|_| AppError::Invalid("The browser's answer could not be read. Try again.".into()))?;
    kw.finish_passkey_registration(&who, &name, &state, &answer).await?;
    crate::server_fns::done(format!(
        "Passkey \u{201c}{name}\u{201d} added: you can sign in with it instead of a code."
    ))
    .await
}

/// Removes one of your passkeys, after a code from your app.
#[server(prefix = "/console/fn", endpoint = "remove_passkey")]
pub async fn remove_passkey(id: String, code: String) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    kw.remove_passkey(&who, &id, &code).await?;
    leptos_axum::redirect(&format!("{PAGE}#passkeys"));
    crate::server_fns::done("The passkey is removed: it no longer signs you in.").await
}

//! The one server-side gate every console server function passes through:
//! who is signed in, with which role, and are they still allowed in.
//! Hiding a button in the UI is never the check; this is.

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::domain::admins::{Admin, ConsoleSession};
use crate::domain::clock::now_ms;
use crate::domain::{Keyward, Principal};
use crate::error::AppError;

const SESSION_KEY: &str = "keyward.admin";

/// The client's address as the HTTP layer determined it.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

#[derive(Debug, Serialize, Deserialize)]
struct SignedIn {
    admin_id: String,
    /// The admin's session epoch at sign-in; bumping it ends this session.
    epoch: i64,
    login_at_ms: i64,
    /// When a request last pushed the idle expiry back.
    #[serde(default)]
    seen_at_ms: i64,
}

/// How often activity is written back to the session store.
const TOUCH_EVERY_MS: i64 = 60_000;

pub fn keyward() -> Result<Keyward, AppError> {
    leptos::prelude::use_context::<Keyward>().ok_or_else(|| {
        tracing::error!("Keyward state missing from the server-function context");
        AppError::Internal
    })
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(|e| {
        tracing::error!(error = %e, "session layer missing");
        AppError::Internal
    })
}

pub async fn client_addr() -> String {
    leptos_axum::extract::<axum::Extension<ClientAddr>>()
        .await
        .map(|axum::Extension(ClientAddr(a))| a)
        .unwrap_or_else(|_| "unknown".into())
}

fn session_error(e: tower_sessions::session::Error) -> AppError {
    tracing::error!(error = %e, "session store failed");
    AppError::Internal
}

/// Starts a console session for `admin`. The session id is replaced, so an
/// id planted before sign-in (session fixation) is worthless.
pub async fn sign_in(session: &Session, admin: &Admin) -> Result<(), AppError> {
    // Nothing from before the sign-in goes on: a secret or a message kept
    // for someone else's next page (see `reveal`) must not reach this admin.
    session.clear().await;
    session.cycle_id().await.map_err(session_error)?;
    let now = now_ms();
    let signed_in = SignedIn {
        admin_id: admin.id.clone(),
        epoch: admin.session_epoch,
        login_at_ms: now,
        seen_at_ms: now,
    };
    session.insert(SESSION_KEY, signed_in).await.map_err(session_error)
}

/// Keeps this console session after its admin's session epoch moved
/// (their own password change ended every session): a new id, the new
/// epoch, and the sign-in time it had, so its absolute limit still holds.
pub async fn reseat(session: &Session, admin: &Admin) -> Result<(), AppError> {
    let Some(mut signed_in) = session.get::<SignedIn>(SESSION_KEY).await.map_err(session_error)? else {
        return Err(AppError::Unauthorized);
    };
    if signed_in.admin_id != admin.id {
        return Err(AppError::Unauthorized);
    }
    signed_in.epoch = admin.session_epoch;
    session.cycle_id().await.map_err(session_error)?;
    session.insert(SESSION_KEY, signed_in).await.map_err(session_error)
}

const PENDING_KEY: &str = "keyward.second_factor";

/// Holds a sign-in whose password was right until its second factor
/// comes. Nothing from before goes on, and the session id is replaced
/// (as at sign-in itself).
pub async fn await_second_factor(
    session: &Session,
    pending: &crate::domain::admins::second_factor::PendingSignIn,
) -> Result<(), AppError> {
    session.clear().await;
    session.cycle_id().await.map_err(session_error)?;
    session.insert(PENDING_KEY, pending).await.map_err(session_error)
}

/// The sign-in waiting for its second factor in this session, if any.
pub async fn pending_second_factor(
    session: &Session,
) -> Result<Option<crate::domain::admins::second_factor::PendingSignIn>, AppError> {
    session.get(PENDING_KEY).await.map_err(session_error)
}

pub async fn sign_out(session: &Session) -> Result<(), AppError> {
    session.flush().await.map_err(session_error)
}

/// The signed-in admin, as the principal every operation is given:
/// signed in, session still current, admin still enabled.
pub async fn require_admin() -> Result<Principal, AppError> {
    let kw = keyward()?;
    let session = session().await?;
    check_admin(&kw, &session, client_addr().await).await
}

/// As [`require_admin`], also for an admin who signed in with a temporary
/// password (what they may do then: choose their own, see the frame, sign
/// out); says whether that is so. The password comes before a second
/// factor the policy asks for.
pub async fn require_admin_pending_password() -> Result<(Principal, bool), AppError> {
    let kw = keyward()?;
    let session = session().await?;
    let resumed = resume(&kw, &session, client_addr().await).await?;
    if resumed.must_enrol_second_factor && !resumed.must_change_password {
        return Err(AppError::SecondFactorRequired);
    }
    Ok((resumed.principal, resumed.must_change_password))
}

/// As [`require_admin`], also for an admin the policy sends to set up a
/// second factor (what they may do then: set it up).
pub async fn require_admin_pending_enrolment() -> Result<Principal, AppError> {
    let kw = keyward()?;
    let session = session().await?;
    let resumed = resume(&kw, &session, client_addr().await).await?;
    if resumed.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    Ok(resumed.principal)
}

/// Anyone signed in, whatever they must do first: for the console frame
/// and signing out.
pub async fn require_signed_in() -> Result<Principal, AppError> {
    let kw = keyward()?;
    let session = session().await?;
    Ok(resume(&kw, &session, client_addr().await).await?.principal)
}

/// The gate itself, for server functions and for the few plain axum
/// routes of the console (downloads).
pub async fn check_admin(kw: &Keyward, session: &Session, client: String) -> Result<Principal, AppError> {
    let resumed = resume(kw, session, client).await?;
    if resumed.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    if resumed.must_enrol_second_factor {
        return Err(AppError::SecondFactorRequired);
    }
    Ok(resumed.principal)
}

async fn resume(kw: &Keyward, session: &Session, client: String) -> Result<crate::domain::admins::Resumed, AppError> {
    let Some(mut signed_in) = session.get::<SignedIn>(SESSION_KEY).await.map_err(session_error)? else {
        // A fresh install has nobody to sign in: send people to setup.
        if !kw.is_set_up().await? {
            return Err(AppError::SetupRequired);
        }
        return Err(AppError::Unauthorized);
    };
    let resumed = kw
        .resume_console(
            ConsoleSession {
                admin_id: &signed_in.admin_id,
                epoch: signed_in.epoch,
                login_at_ms: signed_in.login_at_ms,
            },
            &client,
        )
        .await?;
    match resumed {
        Some(resumed) => {
            let now = now_ms();
            if now - signed_in.seen_at_ms > TOUCH_EVERY_MS {
                // Modifying the session makes the layer save it with a new idle expiry.
                signed_in.seen_at_ms = now;
                session.insert(SESSION_KEY, signed_in).await.map_err(session_error)?;
            }
            Ok(resumed)
        }
        None => {
            sign_out(session).await?;
            Err(AppError::Unauthorized)
        }
    }
}

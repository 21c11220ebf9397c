//! Secrets shown once to a browser without JavaScript. A form post cannot
//! carry its answer through the redirect, so the answer waits, sealed with
//! the master key, in the console session, and is taken (and so gone) by
//! the one page render the form redirects to. With JavaScript the server
//! function's return value shows it and nothing is stashed.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::AppError;

/// Was this server function called by a plain form post (no JavaScript)?
pub async fn plain_form_post() -> bool {
    leptos_axum::extract::<axum::http::HeaderMap>()
        .await
        .ok()
        .and_then(|h| {
            h.get(axum::http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(|a| a.contains("text/html"))
        })
        .unwrap_or(false)
}

fn session_key(slot: &str) -> String {
    format!("{}{slot}", crate::domain::admins::console_sessions::SEALED_PREFIX)
}

/// Stashes `value` for the next render, only for a plain form post.
pub async fn stash<T: Serialize>(slot: &str, value: &T) -> Result<(), AppError> {
    if !plain_form_post().await {
        tracing::debug!(slot, "reveal: not a plain form post, nothing stashed");
        return Ok(());
    }
    tracing::debug!(slot, "reveal: stashed");
    let kw = crate::auth::keyward()?;
    let plain = serde_json::to_vec(value).map_err(|_| AppError::Internal)?;
    let sealed = kw.seal_for_session(&plain, &session_key(slot))?;
    let session = crate::auth::session().await?;
    session
        .insert(&session_key(slot), sealed)
        .await
        .map_err(|_| AppError::Internal)
}

/// Takes what was stashed in `slot`, if anything.
pub async fn take<T: DeserializeOwned>(slot: &str) -> Result<Option<T>, AppError> {
    let kw = crate::auth::keyward()?;
    let session = crate::auth::session().await?;
    // Looked at first: removing marks the session changed, and a changed
    // session is written back, which most page loads (nothing waiting)
    // need not pay for.
    let sealed: Option<Vec<u8>> = session.get(&session_key(slot)).await.map_err(|_| AppError::Internal)?;
    tracing::debug!(slot, found = sealed.is_some(), "reveal: take");
    let Some(sealed) = sealed else { return Ok(None) };
    session
        .remove::<Vec<u8>>(&session_key(slot))
        .await
        .map_err(|_| AppError::Internal)?;
    // Sealed by an instance that still held a master key rotated away
    // meanwhile: gone, like any reveal not shown (the secret can be asked
    // for again), rather than an error page.
    let Ok(plain) = kw.open_from_session(&sealed, &session_key(slot)) else {
        tracing::warn!(
            slot,
            "a secret waiting to be shown does not open (the master key was rotated): dropped"
        );
        return Ok(None);
    };
    serde_json::from_slice(&plain).map(Some).map_err(|_| AppError::Internal)
}

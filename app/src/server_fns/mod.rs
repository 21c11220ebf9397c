//! The console's server functions, one concern per file. Each one checks
//! authorization itself (see `crate::auth`), whatever the page shows.

pub mod admins;
pub mod api_reference;
pub mod audit;
pub mod integrations;
pub mod security;
pub mod session;
pub mod setup;
pub mod two_factor;
pub mod webhooks;

/// Server functions live under their own prefix so `/api/` stays the REST
/// API's (and its JSON error envelope's) alone.
pub const PREFIX: &str = "/console/fn";

/// Says what an action did: returned to the page (with JavaScript), and
/// kept for the page a plain form post lands on (without), where the
/// console frame takes it.
#[cfg(feature = "ssr")]
pub(crate) async fn done(message: impl Into<String>) -> Result<crate::model::Done, crate::error::AppError> {
    let message = message.into();
    crate::reveal::stash(DONE_SLOT, &message).await?;
    Ok(crate::model::Done { message })
}

#[cfg(feature = "ssr")]
pub(crate) const DONE_SLOT: &str = "done";

/// Keeps a refused form's fields (never a secret typed in it) for the page
/// a plain form post lands on, which would otherwise start empty. With
/// JavaScript the form is still on the page and nothing is kept. A failure
/// to keep them costs only retyping, so it is logged, not shown.
#[cfg(feature = "ssr")]
pub(crate) async fn keep<T: serde::Serialize>(slot: &str, typed: &T) {
    if let Err(e) = crate::reveal::stash(slot, typed).await {
        tracing::warn!(slot, error = %e, "a refused form's fields could not be kept");
    }
}

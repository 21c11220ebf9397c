use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{Integrations, NewServerKey};

#[server(prefix = "/console/fn", endpoint = "integrations")]
pub async fn load_integrations() -> Result<Integrations, AppError> {
    use crate::domain::clock::{display, now_ms};
    use crate::domain::server_keys::{self, KeyStatus};
    use crate::domain::{application, usage};
    use crate::model::{Endpoint, ServerKeyRow, REGIONS};

    let kw = crate::auth::keyward()?;
    crate::auth::require_admin().await?;
    let app = application::require(&kw.db).await?;
    // Clients of the public API point at a regional host; on Keyward the
    // application's region is served by this deployment's own URL.
    let endpoints = REGIONS
        .iter()
        .map(|(code, _)| {
            let this = *code == app.region;
            Endpoint {
                region: code.to_string(),
                url: if this {
                    kw.public_url.clone()
                } else {
                    format!("https://apix.{code}.amity.co/")
                },
                this_deployment: this,
            }
        })
        .collect();
    let server_keys = server_keys::list(&kw.db)
        .await?
        .into_iter()
        .map(|k| ServerKeyRow {
            prefix: format!("{}…", k.prefix),
            created_at: display(k.created_at),
            last_used_at: k.last_used_at.map(display),
            active: !matches!(k.status, KeyStatus::Retired),
            status: match k.status {
                KeyStatus::Active => "Active".into(),
                KeyStatus::RetiringUntil(t) => format!("Retiring until {}", display(t)),
                KeyStatus::Retired => "Retired".into(),
            },
        })
        .collect();
    Ok(Integrations {
        api_key: app.api_key,
        region: app.region,
        endpoints,
        secure_mode: app.secure_mode,
        unsecured_sessions_last_day: usage::unsecured_sessions_last_day(&kw.db, now_ms()).await?,
        server_keys,
        revealed_key: crate::reveal::take("server_key").await?,
    })
}

#[server(prefix = "/console/fn", endpoint = "set_secure_mode")]
pub async fn set_secure_mode(enabled: bool) -> Result<(), AppError> {
    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_admin().await?;
    crate::domain::application::set_modes(&kw.db, &current.actor(), Some(enabled), None).await?;
    kw.refresh().await?;
    leptos_axum::redirect("/settings/integrations");
    Ok(())
}

/// Generates a server key. It is returned once to the page (with
/// JavaScript) or kept sealed in the session for the one page view the
/// form redirects to (without).
#[server(prefix = "/console/fn", endpoint = "generate_server_key")]
pub async fn generate_server_key(overlap_hours: i64) -> Result<NewServerKey, AppError> {
    use crate::domain::clock::display;
    use secrecy::ExposeSecret;

    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_admin().await?;
    let overlap_secs = overlap_hours.saturating_mul(3600);
    let key = crate::domain::server_keys::generate(&kw.db, &current.actor(), overlap_secs).await?;
    kw.refresh().await?;
    let shown = NewServerKey {
        key: key.key.expose_secret().to_string(),
        prefix: key.prefix,
        old_keys_stop: if overlap_secs == 0 {
            "now".into()
        } else {
            display(key.created_at + overlap_secs * 1000)
        },
    };
    crate::reveal::stash("server_key", &shown).await?;
    leptos_axum::redirect("/settings/integrations");
    Ok(shown)
}

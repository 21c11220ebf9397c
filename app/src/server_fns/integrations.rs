use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{Done, Integrations, NewServerKey};

/// The region form as typed, kept through a refusal without JavaScript.
#[cfg(feature = "ssr")]
const KEPT_REGION: &str = "kept_region";

#[server(prefix = "/console/fn", endpoint = "integrations")]
pub async fn load_integrations() -> Result<Integrations, AppError> {
    use crate::domain::application::REGIONS;
    use crate::domain::clock::display;
    use crate::domain::credentials::server_keys::KeyStatus;
    use crate::model::{Endpoint, OverlapChoice, ServerKeyRow};

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let found = kw.integrations(&who).await?;
    let app = found.app;
    // Clients of the public API point at a regional host; on Keyward the
    // application's region is served by this deployment's own URL, or, in
    // a custom region, by the URL given for it (listed first).
    let custom = app.region_url.clone().map(|url| Endpoint {
        region: app.region.clone(),
        url,
        this_deployment: true,
    });
    let endpoints = custom
        .into_iter()
        .chain(REGIONS.iter().map(|(code, _)| {
            let this = *code == app.region;
            Endpoint {
                region: code.to_string(),
                url: if this {
                    kw.public_url().to_string()
                } else {
                    format!("https://apix.{code}.amity.co/")
                },
                this_deployment: this,
            }
        }))
        .collect();
    let now = crate::domain::clock::now_ms();
    let server_keys: Vec<ServerKeyRow> = found
        .server_keys
        .into_iter()
        .map(|k| ServerKeyRow {
            id: k.id,
            prefix: format!("{}…", k.prefix),
            name: k.name,
            created_at: display(k.created_at),
            last_used_at: k.last_used_at.map(display),
            active: !matches!(k.status, KeyStatus::Retired),
            removable: matches!(k.status, KeyStatus::Retired),
            used_recently: k.status == KeyStatus::Active && k.last_used_at.is_some_and(|t| now - t < 86_400_000),
            status: match k.status {
                KeyStatus::Active => "Active".into(),
                KeyStatus::RetiringUntil(t) => format!("Retiring until {}", display(t)),
                KeyStatus::Retired => "Retired".into(),
            },
        })
        .collect();
    let overlap_choices = [0, 1, 6, 12, 24]
        .into_iter()
        .map(|hours| OverlapChoice {
            hours,
            label: match hours {
                0 => "0 hours (they stop now)".into(),
                1 => format!("1 hour (until {})", display(now + 3_600_000)),
                h => format!("{h} hours (until {})", display(now + h * 3_600_000)),
            },
        })
        .collect();
    // One click must not cut off a backend that used its key today.
    let default_overlap_hours = if server_keys.iter().any(|k| k.used_recently) {
        24
    } else {
        0
    };
    Ok(Integrations {
        api_key: app.api_key,
        region: app.region,
        region_url: app.region_url,
        can_change_region: who.is_super_admin(),
        regions: REGIONS
            .iter()
            .map(|(code, name)| (code.to_string(), name.to_string()))
            .collect(),
        endpoints,
        secure_mode: app.secure_mode,
        mtls: app.mtls,
        unsecured_sessions_last_day: found.unsecured_sessions_last_day,
        server_keys,
        overlap_choices,
        default_overlap_hours,
        revealed_key: crate::reveal::take("server_key").await?,
        kept_region: crate::reveal::take(KEPT_REGION).await?,
    })
}

/// Moves the application to another region: `region` is a built-in code,
/// or `custom` for the label in `custom_region` at `region_url`.
#[server(prefix = "/console/fn", endpoint = "set_region")]
pub async fn set_region(
    region: String,
    custom_region: Option<String>,
    region_url: Option<String>,
) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let typed = crate::model::RegionInput {
        region: region.clone(),
        custom_region: custom_region.clone().unwrap_or_default(),
        region_url: region_url.clone().unwrap_or_default(),
    };
    let (label, url) = crate::server_fns::setup::chosen_region(region, custom_region, region_url);
    let app = match kw.set_region(&who, &label, url.as_deref()).await {
        Ok(app) => app,
        Err(refused) => {
            // Typed again otherwise: without JavaScript the page is new.
            crate::server_fns::keep(KEPT_REGION, &typed).await;
            return Err(refused.into());
        }
    };
    leptos_axum::redirect("/settings/integrations");
    crate::server_fns::done(format!(
        "The region is now {}. Clients keep working only once they use its endpoint.",
        app.region.to_uppercase()
    ))
    .await
}

#[server(prefix = "/console/fn", endpoint = "set_secure_mode")]
pub async fn set_secure_mode(enabled: bool) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    kw.set_modes(&who, Some(enabled), None).await?;
    leptos_axum::redirect("/settings/integrations");
    crate::server_fns::done(if enabled {
        "Secure mode is on: clients need an auth token from your backend to open a session."
    } else {
        "Secure mode is off: the API key and a userId are enough to open a session."
    })
    .await
}

/// Generates a server key. It is returned once to the page (with
/// JavaScript) or kept sealed in the session for the one page view the
/// form redirects to (without).
#[server(prefix = "/console/fn", endpoint = "generate_server_key")]
pub async fn generate_server_key(overlap_hours: i64, name: Option<String>) -> Result<NewServerKey, AppError> {
    use crate::domain::clock::display;
    use secrecy::ExposeSecret;

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let key = kw
        .generate_server_key(&who, overlap_hours.saturating_mul(3600), name.as_deref())
        .await?;
    let shown = NewServerKey {
        key: key.key.expose_secret().to_string(),
        prefix: key.prefix,
        old_keys_stop: if key.previous_retire_at <= key.created_at {
            "now".into()
        } else {
            display(key.previous_retire_at)
        },
    };
    crate::reveal::stash("server_key", &shown).await?;
    leptos_axum::redirect("/settings/integrations");
    Ok(shown)
}

/// Takes a retired server key off the list (its audit events stay).
#[server(prefix = "/console/fn", endpoint = "remove_server_key")]
pub async fn remove_server_key(id: String) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let prefix = kw.remove_server_key(&who, &id).await?;
    leptos_axum::redirect("/settings/integrations#server-keys");
    crate::server_fns::done(format!(
        "Server key {prefix}… is off the list. Its events stay in the audit log."
    ))
    .await
}

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::Integrations;

#[server(prefix = "/console/fn", endpoint = "integrations")]
pub async fn load_integrations() -> Result<Integrations, AppError> {
    use crate::model::{Endpoint, REGIONS};

    let kw = crate::auth::keyward()?;
    crate::auth::require_admin().await?;
    let app = crate::domain::application::require(&kw.db).await?;
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
    Ok(Integrations {
        api_key: app.api_key,
        region: app.region,
        endpoints,
    })
}

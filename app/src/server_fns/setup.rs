// `run_setup`'s arguments are the setup form's fields, by name (also
// without JavaScript): grouping them would rename the fields. The server
// macro also writes the browser's side of it, hence module-wide.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;

use crate::error::AppError;

/// Is first-run setup still open? (No application exists yet.)
#[server(prefix = "/console/fn", endpoint = "setup_open")]
pub async fn setup_open() -> Result<bool, AppError> {
    let kw = crate::auth::keyward()?;
    Ok(!kw.is_set_up().await?)
}

/// What the setup form starts with: the regions an application may be in,
/// (code, name), as the domain lists them, and the fields typed before a
/// refusal without JavaScript. No secret in either.
#[server(prefix = "/console/fn", endpoint = "setup_form")]
pub async fn setup_form() -> Result<crate::model::SetupForm, AppError> {
    Ok(crate::model::SetupForm {
        regions: crate::domain::application::REGIONS
            .iter()
            .map(|(code, name)| (code.to_string(), name.to_string()))
            .collect(),
        kept: crate::reveal::take(KEPT_SETUP).await?,
    })
}

/// Where a refused setup form's fields wait for the next page.
#[cfg(feature = "ssr")]
const KEPT_SETUP: &str = "kept_setup";

/// The region a form chose: a built-in code, or (`custom`) the label typed
/// beside it, with the URL only then. The domain checks both.
#[cfg(feature = "ssr")]
pub(crate) fn chosen_region(
    region: String,
    custom_region: Option<String>,
    region_url: Option<String>,
) -> (String, Option<String>) {
    if region.trim() == CUSTOM {
        (custom_region.unwrap_or_default(), region_url)
    } else {
        (region, None)
    }
}

/// The choice in a region select that stands for the label typed beside it.
pub const CUSTOM: &str = "custom";

/// Creates the application and the first super admin. Guarded by the
/// one-time token `keyward serve` prints; it works once.
#[server(prefix = "/console/fn", endpoint = "setup")]
pub async fn run_setup(
    token: String,
    app_name: String,
    region: String,
    custom_region: Option<String>,
    region_url: Option<String>,
    username: String,
    password: String,
    password_confirm: String,
) -> Result<(), AppError> {
    use crate::domain::application::{Setup, SetupProof};
    use secrecy::SecretString;

    let kw = crate::auth::keyward()?;
    // Kept only for whoever holds the setup link: a stranger's posts keep
    // nothing they typed. Never the token or the passwords.
    let keep = kw.holds_setup_link(&token).then(|| crate::model::SetupInput {
        app_name: app_name.clone(),
        region: crate::model::RegionInput {
            region: region.clone(),
            custom_region: custom_region.clone().unwrap_or_default(),
            region_url: region_url.clone().unwrap_or_default(),
        },
        username: username.clone(),
    });
    let outcome = async {
        if password != password_confirm {
            return Err(AppError::Invalid("The two passwords do not match.".into()));
        }
        let (region, region_url) = chosen_region(region, custom_region, region_url);
        let setup = Setup {
            app_name,
            region,
            region_url,
            admin_username: username,
            admin_password: SecretString::from(password),
            source: Some(crate::auth::client_addr().await),
        };
        Ok(kw.setup(SetupProof::Token(&token), setup).await?)
    }
    .await;
    if let Err(refused) = outcome {
        if let Some(typed) = &keep {
            crate::server_fns::keep(KEPT_SETUP, typed).await;
        }
        return Err(refused);
    }
    leptos_axum::redirect("/login?setup=done");
    Ok(())
}

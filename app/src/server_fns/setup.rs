use leptos::prelude::*;

use crate::error::AppError;

/// Is first-run setup still open? (No application exists yet.)
#[server(prefix = "/console/fn", endpoint = "setup_open")]
pub async fn setup_open() -> Result<bool, AppError> {
    let kw = crate::auth::keyward()?;
    Ok(crate::domain::application::get(&kw.db).await?.is_none())
}

/// Creates the application and the first super admin. Guarded by the
/// one-time token `keyward serve` prints; it works once.
#[server(prefix = "/console/fn", endpoint = "setup")]
pub async fn run_setup(
    token: String,
    app_name: String,
    region: String,
    username: String,
    password: String,
    password_confirm: String,
) -> Result<(), AppError> {
    use crate::domain::application::{self, Setup};
    use secrecy::SecretString;

    let kw = crate::auth::keyward()?;
    if application::get(&kw.db).await?.is_some() {
        return Err(AppError::Conflict("Keyward is already set up. Sign in instead.".into()));
    }
    if !kw.setup_token_matches(token.trim()) {
        return Err(AppError::Invalid(
            "This setup link is not valid. Use the link that `keyward serve` printed at start.".into(),
        ));
    }
    if password != password_confirm {
        return Err(AppError::Invalid("The two passwords do not match.".into()));
    }
    let setup = Setup {
        app_name,
        region,
        admin_username: username,
        admin_password: SecretString::from(password),
        source: Some(crate::auth::client_addr().await),
    };
    application::setup(&kw.db, &kw.master_key, &kw.hasher, setup).await?;
    kw.close_setup();
    kw.refresh().await?;
    leptos_axum::redirect("/login?setup=done");
    Ok(())
}

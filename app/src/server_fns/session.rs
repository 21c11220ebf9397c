use leptos::prelude::*;

use crate::error::AppError;
use crate::model::ConsoleFrame;

/// Signs an admin in. Unknown user, wrong password and disabled admin get
/// the same answer after the same work; repeated failures are throttled.
#[server(prefix = "/console/fn", endpoint = "login")]
pub async fn login(username: String, password: String) -> Result<(), AppError> {
    use crate::domain::{admins, DomainError};
    use secrecy::SecretString;

    let kw = crate::auth::keyward()?;
    crate::domain::application::require(&kw.db).await?;
    let client = crate::auth::client_addr().await;
    let result = admins::authenticate(&kw.db, &kw.throttle, &username, SecretString::from(password), &client).await;
    let admin = match result {
        Ok(admin) => admin,
        Err(DomainError::BadCredentials) => {
            // The username is the caller's text: quote it, and say nothing about it.
            tracing::info!(client = %client, "console sign-in refused");
            return Err(AppError::Invalid("Incorrect username or password.".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let session = crate::auth::session().await?;
    crate::auth::sign_in(&session, &admin).await?;
    crate::domain::admin_tokens::ensure_after_login(&kw, &admin, &client).await?;
    tracing::info!(admin = %admin.username, client = %client, "console sign-in");
    leptos_axum::redirect("/settings/integrations");
    Ok(())
}

#[server(prefix = "/console/fn", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    let session = crate::auth::session().await?;
    crate::auth::sign_out(&session).await?;
    leptos_axum::redirect("/login");
    Ok(())
}

/// What the console frame shows; fails with Unauthorized when signed out.
#[server(prefix = "/console/fn", endpoint = "frame")]
pub async fn load_console_frame() -> Result<ConsoleFrame, AppError> {
    let kw = crate::auth::keyward()?;
    let app = crate::domain::application::require(&kw.db).await?;
    let current = crate::auth::require_admin().await?;
    Ok(ConsoleFrame {
        app_name: app.name,
        region: app.region,
        username: current.admin.username,
        role: current.admin.role,
    })
}

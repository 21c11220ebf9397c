use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{AdminPage, Done, ShownToken};

pub const PAGE_SIZE: i64 = 25;

/// Where a refused create-admin form's fields wait for the next page.
#[cfg(feature = "ssr")]
const KEPT_ADMIN: &str = "kept_admin";

#[server(prefix = "/console/fn", endpoint = "admins")]
pub async fn list_admins(query: String, page: i64) -> Result<AdminPage, AppError> {
    use crate::domain::clock::{display, human};
    use crate::domain::credentials::admin_tokens::TokenState;
    use crate::domain::Role;
    use crate::model::AdminRow;

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let found = kw.admin_page(&who, &query, page, PAGE_SIZE).await?;
    let rows = found
        .entries
        .into_iter()
        .map(|e| {
            let a = e.admin;
            let (token_status, token_expires) = match (&e.token.state, e.token.switching_until) {
                (_, _) if a.role == Role::SuperAdmin => ("not available for Super Admin".to_string(), None),
                (TokenState::Active { expires_at }, Some(until)) => (
                    format!("switching over until {}", display(until)),
                    Some(display(*expires_at)),
                ),
                (TokenState::Active { expires_at }, None) => ("active".into(), Some(display(*expires_at))),
                (TokenState::Expired { expired_at }, _) => ("expired".into(), Some(display(*expired_at))),
                (TokenState::Revoked, _) => ("revoked".into(), None),
                (TokenState::None, _) => ("none".into(), None),
            };
            let locked_out = (!e.lockouts.is_empty()).then(|| {
                e.lockouts
                    .iter()
                    .map(|l| match &l.client {
                        Some(client) => format!("from {client} until {}", display(l.until)),
                        None => format!("from new addresses, backing off until {}", display(l.until)),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            AdminRow {
                is_you: who.admin_id() == Some(a.id.as_str()),
                username: a.username,
                role: a.role.into(),
                disabled: a.disabled,
                created_at: display(a.created_at),
                token_status,
                token_expires,
                last_used: e.token.last_used_at.map(display),
                locked_out,
                second_factor: e.second_factor,
            }
        })
        .collect();
    Ok(AdminPage {
        you_have_second_factor: kw.has_second_factor(&who).await?,
        rows,
        total: found.total,
        page: found.page,
        pages: found.pages,
        query,
        you_are_super: who.is_super_admin(),
        you: who.name().to_string(),
        switch_over: human(found.switch_over),
        token_days: crate::domain::credentials::admin_tokens::lifetime_choices(found.token_lifetime),
        token_lifetime: human(found.token_lifetime),
        revealed_token: crate::reveal::take("admin_token").await?,
        password_changed: crate::reveal::take("password_changed").await?.unwrap_or(false),
        kept: crate::reveal::take(KEPT_ADMIN).await?,
    })
}

/// The password asked again before a secret is shown or made: a wrong
/// one is said apart from a sign-in's.
#[cfg(feature = "ssr")]
fn wrong_password(e: crate::domain::DomainError) -> AppError {
    match e {
        crate::domain::DomainError::BadCredentials => AppError::WrongPassword("That password is not correct.".into()),
        other => other.into(),
    }
}

/// Shows the caller's current token, after they enter their password again.
#[server(prefix = "/console/fn", endpoint = "retrieve_token")]
pub async fn retrieve_token(password: String, code: Option<String>) -> Result<ShownToken, AppError> {
    use crate::domain::clock::display;
    use secrecy::ExposeSecret;

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let (token, expires_at) = kw
        .retrieve_admin_token(&who, Some(secrecy::SecretString::from(password)), code.as_deref())
        .await
        .map_err(wrong_password)?
        .ok_or_else(|| AppError::Invalid("You have no current admin token. Generate one.".into()))?;
    let shown = ShownToken {
        token: token.expose_secret().to_string(),
        expires_at: display(expires_at),
        previous_stops: None,
    };
    crate::reveal::stash("admin_token", &shown).await?;
    leptos_axum::redirect("/settings/admin-users");
    Ok(shown)
}

/// A new token for the caller, after their password again; the previous
/// one works until the switch-over ends (or it expires, if sooner).
#[server(prefix = "/console/fn", endpoint = "generate_token")]
pub async fn generate_token(password: String, days: Option<u32>, code: Option<String>) -> Result<ShownToken, AppError> {
    use crate::domain::clock::display;
    use secrecy::ExposeSecret;

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let issued = kw
        .generate_admin_token(&who, Some(secrecy::SecretString::from(password)), code.as_deref(), days)
        .await
        .map_err(wrong_password)?;
    let shown = ShownToken {
        token: issued.token.expose_secret().to_string(),
        expires_at: display(issued.expires_at),
        previous_stops: issued.previous_valid_until.map(display),
    };
    crate::reveal::stash("admin_token", &shown).await?;
    leptos_axum::redirect("/settings/admin-users");
    Ok(shown)
}

/// Revokes an admin's tokens and ends their console sessions everywhere.
/// Admins may name only themselves; super admins anyone.
#[server(prefix = "/console/fn", endpoint = "revoke_token")]
pub async fn revoke_token(username: String) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let revoked = kw.revoke_admin_token(&who, &username).await?;
    if revoked.own {
        // Their session is gone: the sign-in page says why.
        leptos_axum::redirect("/login?reason=revoked");
        return Ok(Done {
            message: "Your token is revoked and you are signed out.".into(),
        });
    }
    leptos_axum::redirect("/settings/admin-users");
    crate::server_fns::done(format!(
        "{}'s token is revoked and their console sessions ended. Their next sign-in issues a new token: \
         disable them to keep them out.",
        normal(&username)
    ))
    .await
}

/// A username as the domain keeps it (the messages name the admin so).
#[cfg(feature = "ssr")]
fn normal(username: &str) -> String {
    username.trim().to_lowercase()
}

#[server(prefix = "/console/fn", endpoint = "create_admin")]
pub async fn create_admin(username: String, password: String, role: String) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let parsed = crate::domain::Role::parse(&role);
    if let Err(refused) = kw
        .create_admin(&who, &username, secrecy::SecretString::from(password), parsed)
        .await
    {
        // Typed again otherwise (without JavaScript the page is new).
        crate::server_fns::keep(KEPT_ADMIN, &crate::model::AdminInput { username, role }).await;
        return Err(refused.into());
    }
    leptos_axum::redirect("/settings/admin-users");
    crate::server_fns::done(format!(
        "Admin {} created. They can sign in with the password you set.",
        normal(&username)
    ))
    .await
}

#[server(prefix = "/console/fn", endpoint = "set_admin_disabled")]
pub async fn set_admin_disabled(username: String, disabled: bool) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    kw.set_admin_disabled(&who, &username, disabled).await?;
    leptos_axum::redirect("/settings/admin-users");
    let name = normal(&username);
    crate::server_fns::done(if disabled {
        format!("{name} is disabled: they cannot sign in, and their token no longer works.")
    } else {
        format!("{name} is enabled: they can sign in again.")
    })
    .await
}

/// Ends an admin's sign-in lockouts at once (super admins).
#[server(prefix = "/console/fn", endpoint = "unlock_admin")]
pub async fn unlock_admin(username: String) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    kw.unlock_admin(&who, &username).await?;
    leptos_axum::redirect("/settings/admin-users");
    crate::server_fns::done(format!(
        "{} is unlocked: they can sign in again now.",
        normal(&username)
    ))
    .await
}

/// Changes the signed-in admin's own password, after the current one.
/// Their other console sessions end; this one goes on (a new id).
#[server(prefix = "/console/fn", endpoint = "change_password")]
pub async fn change_password(
    current: String,
    password: String,
    password_confirm: String,
    code: Option<String>,
) -> Result<Done, AppError> {
    use secrecy::SecretString;

    let kw = crate::auth::keyward()?;
    let (who, was_temporary) = crate::auth::require_admin_pending_password().await?;
    if password != password_confirm {
        return Err(AppError::Invalid("The new passwords do not match.".into()));
    }
    let admin = kw
        .change_own_password(
            &who,
            SecretString::from(current),
            SecretString::from(password),
            code.as_deref(),
        )
        .await
        .map_err(wrong_password)?;
    let session = crate::auth::session().await?;
    crate::auth::reseat(&session, &admin).await?;
    if was_temporary {
        // In place of a temporary one: said on the same page, which then
        // leads on into the console.
        leptos_axum::redirect("/settings/password?changed");
        return crate::server_fns::done("Your password is changed: it is yours alone now.").await;
    }
    // Said once, on the page the form lands on (not from the URL, which
    // anyone could link to).
    crate::reveal::stash("password_changed", &true).await?;
    leptos_axum::redirect("/settings/admin-users");
    Ok(Done {
        message: "Your password was changed. Your other console sessions were signed out.".into(),
    })
}

/// Gives another admin a temporary password (super admins): their sessions
/// end, and they choose their own at their next sign-in.
#[server(prefix = "/console/fn", endpoint = "set_temporary_password")]
pub async fn set_temporary_password(
    username: String,
    password: String,
    password_confirm: String,
) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    if password != password_confirm {
        return Err(AppError::Invalid("The passwords do not match.".into()));
    }
    kw.set_temporary_password(&who, &username, secrecy::SecretString::from(password))
        .await?;
    leptos_axum::redirect("/settings/admin-users");
    crate::server_fns::done(format!(
        "{} has a temporary password: give it to them over a channel you trust. Their sessions have ended, \
         and they choose their own password when they next sign in.",
        normal(&username)
    ))
    .await
}

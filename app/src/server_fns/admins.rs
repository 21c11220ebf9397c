use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{AdminPage, ShownToken};

pub const PAGE_SIZE: i64 = 25;

#[server(prefix = "/console/fn", endpoint = "admins")]
pub async fn list_admins(query: String, page: i64) -> Result<AdminPage, AppError> {
    use crate::domain::admin_tokens::{self, TokenState};
    use crate::domain::{admins, clock::display};
    use crate::model::{AdminRow, Role};

    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_admin().await?;
    // Any number may arrive in the URL: past the last page shows the last.
    let mut page = page.clamp(1, i64::MAX / PAGE_SIZE);
    let (mut found, total) = admins::search(&kw.db, &query, (page - 1) * PAGE_SIZE, PAGE_SIZE).await?;
    let last = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    if page > last {
        page = last;
        found = admins::search(&kw.db, &query, (page - 1) * PAGE_SIZE, PAGE_SIZE)
            .await?
            .0;
    }
    let mut rows = Vec::with_capacity(found.len());
    for a in found {
        let status = admin_tokens::status(&kw.db, &a.id).await?;
        let (token_status, token_expires) = match (&status.state, status.switching_until) {
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
        let lockouts = kw.throttle.lockouts(&kw.db, &a.username).await?;
        let locked_out = (!lockouts.is_empty()).then(|| {
            lockouts
                .iter()
                .map(|l| match &l.client {
                    Some(client) => format!("from {client} until {}", display(l.until)),
                    None => format!("from new addresses, backing off until {}", display(l.until)),
                })
                .collect::<Vec<_>>()
                .join("; ")
        });
        rows.push(AdminRow {
            is_you: a.id == current.admin.id,
            username: a.username,
            role: a.role,
            disabled: a.disabled,
            created_at: display(a.created_at),
            token_status,
            token_expires,
            last_used: status.last_used_at.map(display),
            locked_out,
        });
    }
    Ok(AdminPage {
        rows,
        total,
        page,
        pages: last,
        query,
        you_are_super: current.admin.role == Role::SuperAdmin,
        you: current.admin.username.clone(),
        switch_over: crate::domain::clock::human(kw.lifetimes.admin_token_grace),
        revealed_token: crate::reveal::take("admin_token").await?,
    })
}

/// Shows the caller's current token, after they enter their password again.
#[server(prefix = "/console/fn", endpoint = "retrieve_token")]
pub async fn retrieve_token(password: String) -> Result<ShownToken, AppError> {
    use crate::domain::{admin_tokens, clock::display};
    use secrecy::ExposeSecret;

    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_admin().await?;
    confirm_password(&kw, &current, password).await?;
    let (token, expires_at) = admin_tokens::retrieve(&kw.db, &kw.master_key, &current.actor(), &current.admin.id)
        .await?
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

/// The signed-in admin's password again, throttled like sign-in, before a
/// secret is shown or minted: a session left open is not a token.
#[cfg(feature = "ssr")]
async fn confirm_password(
    kw: &crate::domain::Keyward,
    current: &crate::auth::CurrentAdmin,
    password: String,
) -> Result<(), AppError> {
    use crate::domain::{admins, DomainError};
    let checked = admins::authenticate(
        &kw.db,
        &kw.hasher,
        &kw.throttle,
        &current.admin.username,
        secrecy::SecretString::from(password),
        &current.client,
    )
    .await;
    match checked {
        Ok(_) => Ok(()),
        Err(DomainError::BadCredentials) => Err(AppError::WrongPassword("That password is not correct.".into())),
        Err(e) => Err(e.into()),
    }
}

/// A new token for the caller, after their password again; the previous
/// one works until the switch-over ends.
#[server(prefix = "/console/fn", endpoint = "generate_token")]
pub async fn generate_token(password: String) -> Result<ShownToken, AppError> {
    use crate::domain::{admin_tokens, clock::display};
    use secrecy::ExposeSecret;

    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_admin().await?;
    confirm_password(&kw, &current, password).await?;
    let issued = admin_tokens::issue(&kw.db, &kw.master_key, &kw.lifetimes, &current.actor(), &current.admin).await?;
    kw.refresh().await?;
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
pub async fn revoke_token(username: String) -> Result<(), AppError> {
    use crate::domain::{admin_tokens, DomainError};

    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_admin().await?;
    let own = username.trim().eq_ignore_ascii_case(&current.admin.username);
    admin_tokens::revoke(&kw.db, &current.actor(), &current.admin, &username)
        .await
        .map_err(|e| match e {
            DomainError::Forbidden => AppError::Forbidden,
            DomainError::NotFound => AppError::Invalid("There is no admin with that username.".into()),
            other => other.into(),
        })?;
    kw.refresh().await?;
    if own {
        leptos_axum::redirect("/login?reason=revoked");
    } else {
        leptos_axum::redirect("/settings/admin-users");
    }
    Ok(())
}

#[server(prefix = "/console/fn", endpoint = "create_admin")]
pub async fn create_admin(username: String, password: String, role: String) -> Result<(), AppError> {
    use crate::domain::admins;
    use crate::model::Role;

    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_super_admin().await?;
    let role = Role::parse(&role).ok_or_else(|| AppError::Invalid("Choose a role.".into()))?;
    admins::create(
        &kw.db,
        &kw.hasher,
        &current.actor(),
        &username,
        secrecy::SecretString::from(password),
        role,
    )
    .await?;
    leptos_axum::redirect("/settings/admin-users");
    Ok(())
}

#[server(prefix = "/console/fn", endpoint = "set_admin_disabled")]
pub async fn set_admin_disabled(username: String, disabled: bool) -> Result<(), AppError> {
    use crate::domain::{admins, DomainError};

    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_super_admin().await?;
    if username.trim().eq_ignore_ascii_case(&current.admin.username) {
        return Err(AppError::Invalid("You cannot disable yourself.".into()));
    }
    admins::set_disabled(&kw.db, &current.actor(), &username, disabled)
        .await
        .map_err(|e| match e {
            DomainError::NotFound => AppError::Invalid("There is no admin with that username.".into()),
            other => other.into(),
        })?;
    kw.refresh().await?;
    leptos_axum::redirect("/settings/admin-users");
    Ok(())
}

/// Ends an admin's sign-in lockouts at once (super admins).
#[server(prefix = "/console/fn", endpoint = "unlock_admin")]
pub async fn unlock_admin(username: String) -> Result<(), AppError> {
    use crate::domain::{admins, DomainError};

    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_admin().await?;
    admins::unlock(&kw.db, &kw.throttle, &current.actor(), current.admin.role, &username)
        .await
        .map_err(|e| match e {
            DomainError::NotFound => AppError::Invalid("There is no admin with that username.".into()),
            other => other.into(),
        })?;
    leptos_axum::redirect("/settings/admin-users");
    Ok(())
}

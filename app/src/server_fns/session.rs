use leptos::prelude::*;

use crate::error::AppError;
use crate::model::ConsoleFrame;

/// Signs an admin in. Unknown user, wrong password and disabled admin get
/// the same answer after the same work; repeated failures are throttled.
#[server(prefix = "/console/fn", endpoint = "login")]
pub async fn login(username: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use crate::domain::admins::SignInStep;
    use crate::domain::DomainError;
    use secrecy::SecretString;

    let kw = crate::auth::keyward()?;
    let client = crate::auth::client_addr().await;
    let session = crate::auth::session().await?;
    let next = next.filter(|n| is_console_page(n));
    let admin = match kw.sign_in(&username, SecretString::from(password), &client).await {
        Ok(SignInStep::Done(admin)) => admin,
        Ok(SignInStep::SecondFactor(pending)) => {
            crate::auth::await_second_factor(&session, &pending).await?;
            let to = match &next {
                Some(next) => format!("{SECOND_FACTOR_PAGE}?next={}", crate::pages::urlencode(next)),
                None => SECOND_FACTOR_PAGE.to_owned(),
            };
            leptos_axum::redirect(&to);
            return Ok(());
        }
        Err(DomainError::BadCredentials) => {
            // Not the username: people type their password into that field.
            tracing::info!(client = %client, "console sign-in refused");
            return Err(AppError::WrongPassword("Incorrect username or password.".into()));
        }
        Err(e) => return Err(e.into()),
    };
    enter_console(&session, &admin, next.as_deref(), &client).await
}

/// The sign-in's second page: where a code is asked for.
pub const SECOND_FACTOR_PAGE: &str = "/login/second-factor";

/// The second step of a sign-in: a code from the admin's authenticator
/// app, or a recovery code, for the password given a moment ago.
#[server(prefix = "/console/fn", endpoint = "second_factor")]
pub async fn second_factor(code: String, next: Option<String>) -> Result<(), AppError> {
    let kw = crate::auth::keyward()?;
    let client = crate::auth::client_addr().await;
    let session = crate::auth::session().await?;
    let pending = pending_or_start_over(&session).await?;
    let admin = second_step(&session, kw.complete_sign_in(&pending, &code, &client).await).await?;
    let next = next.filter(|n| is_console_page(n));
    enter_console(&session, &admin, next.as_deref(), &client).await
}

/// A second step's outcome: a sign-in that timed out, or whose account
/// changed meanwhile, ends here and starts over.
#[cfg(feature = "ssr")]
async fn second_step(
    session: &tower_sessions::Session,
    outcome: crate::domain::DomainResult<crate::domain::admins::Admin>,
) -> Result<crate::domain::admins::Admin, AppError> {
    match outcome {
        Ok(admin) => Ok(admin),
        Err(crate::domain::DomainError::Unauthorized(_)) => {
            crate::auth::sign_out(session).await?;
            Err(start_over())
        }
        Err(e) => Err(e.into()),
    }
}

/// Starts the console session and goes where the admin was headed: a
/// temporary password is changed before anything else.
#[cfg(feature = "ssr")]
async fn enter_console(
    session: &tower_sessions::Session,
    admin: &crate::domain::admins::Admin,
    next: Option<&str>,
    client: &str,
) -> Result<(), AppError> {
    let to = console_entered(session, admin, next, client).await?;
    leptos_axum::redirect(&to);
    Ok(())
}

/// Starts the console session; where to go now.
#[cfg(feature = "ssr")]
async fn console_entered(
    session: &tower_sessions::Session,
    admin: &crate::domain::admins::Admin,
    next: Option<&str>,
    client: &str,
) -> Result<String, AppError> {
    crate::auth::sign_in(session, admin).await?;
    tracing::info!(admin = %admin.username, client = %client, "console sign-in");
    let kw = crate::auth::keyward()?;
    Ok(if admin.must_change_password {
        "/settings/password".to_owned()
    } else if kw.enrolment_due(admin).await? {
        "/settings/two-factor".to_owned()
    } else {
        next.unwrap_or("/settings/integrations").to_owned()
    })
}

/// What a sign-in that lost its way is told: start again.
#[cfg(feature = "ssr")]
fn start_over() -> AppError {
    AppError::Conflict("This sign-in has timed out. Sign in again.".into())
}

/// The sign-in waiting for its second factor in this session.
#[cfg(feature = "ssr")]
async fn pending_or_start_over(
    session: &tower_sessions::Session,
) -> Result<crate::domain::admins::second_factor::PendingSignIn, AppError> {
    crate::auth::pending_second_factor(session)
        .await?
        .ok_or_else(start_over)
}

/// Where a passkey sign-in's challenge waits for the browser's answer.
#[cfg(feature = "ssr")]
const PASSKEY_SIGN_IN: &str = "keyward.passkey_sign_in";

/// The second step with a passkey, first half: the options for the
/// browser's `navigator.credentials.get`, as JSON; `None` when the admin
/// has no passkey. (JavaScript only.)
#[server(prefix = "/console/fn", endpoint = "begin_passkey_sign_in")]
pub async fn begin_passkey_sign_in() -> Result<Option<String>, AppError> {
    use crate::domain::DomainError;

    let kw = crate::auth::keyward()?;
    let session = crate::auth::session().await?;
    let pending = pending_or_start_over(&session).await?;
    let found = match kw.begin_passkey_sign_in(&pending).await {
        Ok(found) => found,
        Err(DomainError::Unauthorized(_)) => return Err(start_over()),
        Err(e) => return Err(e.into()),
    };
    let Some((options, state)) = found else {
        return Ok(None);
    };
    session
        .insert(PASSKEY_SIGN_IN, state)
        .await
        .map_err(|_| AppError::Internal)?;
    serde_json::to_string(&options)
        .map(Some)
        .map_err(|_| AppError::Internal)
}

/// The second step with a passkey: the browser's answer (JSON). Answers
/// the console page to go to.
#[server(prefix = "/console/fn", endpoint = "finish_passkey_sign_in")]
pub async fn finish_passkey_sign_in(credential: String, next: Option<String>) -> Result<String, AppError> {
    let kw = crate::auth::keyward()?;
    let client = crate::auth::client_addr().await;
    let session = crate::auth::session().await?;
    let pending = pending_or_start_over(&session).await?;
    let Some(state) = session
        .remove::<webauthn_rs::prelude::PasskeyAuthentication>(PASSKEY_SIGN_IN)
        .await
        .map_err(|_| AppError::Internal)?
    else {
        return Err(AppError::Conflict("Choose your passkey again.".into()));
    };
    let answer = serde_json::from_str(&credential)
        .map_err(|_| AppError::Invalid("The browser's answer could not be read. Try again.".into()))?;
    let answered = kw
        .complete_sign_in_with_passkey(&pending, &state, &answer, &client)
        .await;
    let admin = second_step(&session, answered).await?;
    let next = next.filter(|n| is_console_page(n));
    console_entered(&session, &admin, next.as_deref(), &client).await
}

/// Is `path` a page of the console to return to after sign-in? Only a
/// local path under `/settings/`, in plain characters: never another
/// site (`//evil`, `/\evil`, `https:`), never a control character.
pub fn is_console_page(path: &str) -> bool {
    path.len() <= 512
        && path.starts_with("/settings/")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~?=&%+".contains(&b))
        && !path.contains("//")
        && !path.contains("/..")
}

#[cfg(test)]
mod tests {
    use super::is_console_page;

    #[test]
    fn only_console_pages_are_returned_to() {
        for good in [
            "/settings/audit-log",
            "/settings/audit-log?actor=ops&action=revoke",
            "/settings/admin-users?q=a%20b",
        ] {
            assert!(is_console_page(good), "{good}");
        }
        for bad in [
            "https://evil.example/settings/",
            "//evil.example/settings/",
            "/\\evil.example",
            "/settings//evil",
            "/settings/../login",
            "/login",
            "/settings/x\r\nSet-Cookie: a=b",
            "settings/audit-log",
            "",
        ] {
            assert!(!is_console_page(bad), "{bad:?}");
        }
    }
}

#[server(prefix = "/console/fn", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    let session = crate::auth::session().await?;
    // A session that had already ended signs out quietly: nobody to name.
    // Signing out never fails for want of its audit event.
    if let (Ok(kw), Ok(who)) = (crate::auth::keyward(), crate::auth::require_signed_in().await) {
        if let Err(e) = kw.signed_out(&who).await {
            tracing::error!(error = %e, "the sign-out could not be audited");
        }
    }
    crate::auth::sign_out(&session).await?;
    leptos_axum::redirect("/login");
    Ok(())
}

/// What the console frame shows; fails with Unauthorized when signed out.
#[server(prefix = "/console/fn", endpoint = "frame")]
pub async fn load_console_frame() -> Result<ConsoleFrame, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_signed_in().await?;
    let app = kw.application(&who).await?;
    let notices = match kw.own_token_status(&who).await? {
        Some(status) => token_notices(&status),
        None => Vec::new(),
    };
    Ok(ConsoleFrame {
        app_name: app.name,
        region: app.region,
        username: who.name().to_string(),
        role: who.role().into(),
        notices,
        done: crate::reveal::take(crate::server_fns::DONE_SLOT).await?,
    })
}

/// What an admin should know about their own token: the switch-over of
/// the previous one, and an expiry 30, 7 or 1 days ahead.
#[cfg(feature = "ssr")]
fn token_notices(status: &crate::domain::credentials::admin_tokens::TokenStatus) -> Vec<String> {
    use crate::domain::clock::{display, now_ms};
    use crate::domain::credentials::admin_tokens::TokenState;

    const DAY_MS: i64 = 86_400_000;
    let mut notices = Vec::new();
    if let Some(until) = status.switching_until {
        notices.push(format!(
            "Your previous admin token stops working at {}. Switch your automation to the new token before then.",
            display(until)
        ));
    }
    match status.state {
        TokenState::Active { expires_at } => {
            let left = expires_at - now_ms();
            let when = display(expires_at);
            if left <= DAY_MS {
                notices.push(format!(
                    "Your admin token expires within a day, at {when}. Generate a new one now."
                ));
            } else if left <= 7 * DAY_MS {
                notices.push(format!("Your admin token expires within 7 days, at {when}."));
            } else if left <= 30 * DAY_MS {
                notices.push(format!("Your admin token expires within 30 days, at {when}."));
            }
        }
        TokenState::Expired { .. } => notices.push("Your admin token has expired. Generate a new one.".into()),
        TokenState::None | TokenState::Revoked => {}
    }
    notices
}

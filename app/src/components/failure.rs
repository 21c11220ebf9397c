use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::error::AppError;

/// What a page shows when its data could not be loaded: signed-out
/// visitors go to the sign-in page, a fresh install to setup, anything
/// else gets a readable message.
#[component]
pub fn FailureView(error: AppError) -> impl IntoView {
    match error {
        AppError::Unauthorized => view! { <Redirect path=sign_in_path()/> }.into_any(),
        AppError::SetupRequired => view! { <Redirect path="/setup"/> }.into_any(),
        AppError::PasswordChangeRequired => view! { <Redirect path="/settings/password"/> }.into_any(),
        AppError::SecondFactorRequired => view! { <Redirect path="/settings/two-factor"/> }.into_any(),
        other => view! { <p class="alert error" role="alert">{other.to_string()}</p> }.into_any(),
    }
}

/// The sign-in page, told which page to return to, and (to someone whose
/// session it was) that their session ended. A first visit, with no
/// session cookie, is just asked to sign in.
fn sign_in_path() -> String {
    let location = leptos_router::hooks::use_location();
    // The router's search comes without its '?'.
    let (path, search) = (location.pathname.get_untracked(), location.search.get_untracked());
    let here = match search.trim_start_matches('?') {
        "" => path,
        query => format!("{path}?{query}"),
    };
    let mut to = format!("/login?next={}", crate::pages::urlencode(&here));
    if had_session() {
        to.push_str("&reason=signed-out");
    }
    to
}

/// Did this request carry a console session cookie? In the browser (a
/// click inside the console) it did; the cookie itself is HttpOnly.
fn had_session() -> bool {
    #[cfg(feature = "ssr")]
    {
        use_context::<axum::http::request::Parts>().is_none_or(|parts| {
            parts
                .headers
                .get_all(axum::http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .any(|c| matches!(c.trim().split('=').next(), Some("keyward" | "__Host-keyward")))
        })
    }
    #[cfg(not(feature = "ssr"))]
    {
        true
    }
}

/// The error of the latest submission of a form, if any. It takes the
/// focus when it appears, so a keyboard user is not dropped to the top of
/// the page (the form beside it keeps what was typed).
#[component]
pub fn FormError(error: Signal<Option<AppError>>) -> impl IntoView {
    let node = NodeRef::<leptos::html::P>::new();
    Effect::new(move |_| {
        if let Some(p) = node.get() {
            let _ = p.focus();
        }
    });
    move || {
        error.get().map(|e| {
            view! { <p class="alert error" role="alert" tabindex="-1" node_ref=node>{e.to_string()}</p> }
        })
    }
}

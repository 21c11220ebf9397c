use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::error::AppError;

/// What a page shows when its data could not be loaded: signed-out
/// visitors go to the sign-in page, a fresh install to setup, anything
/// else gets a readable message.
#[component]
pub fn FailureView(error: AppError) -> impl IntoView {
    match error {
        AppError::Unauthorized => view! { <Redirect path="/login?reason=signed-out"/> }.into_any(),
        AppError::SetupRequired => view! { <Redirect path="/setup"/> }.into_any(),
        other => view! { <p class="alert error" role="alert">{other.to_string()}</p> }.into_any(),
    }
}

/// The error of the latest submission of a form, if any.
#[component]
pub fn FormError(error: Signal<Option<AppError>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            view! { <p class="alert error" role="alert">{e.to_string()}</p> }
        })
    }
}

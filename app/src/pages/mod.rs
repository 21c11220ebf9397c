//! One page per module.

pub mod admin_users;
pub mod integrations;
pub mod layout;
pub mod login;
pub mod not_found;
pub mod security;
pub mod setup;

use leptos::prelude::*;
use leptos_router::components::Redirect;

/// `/` leads into the console; the console sends signed-out visitors on.
#[component]
pub fn Home() -> impl IntoView {
    view! { <Redirect path="/settings/integrations"/> }
}

//! One page per module.

pub mod admin_users;
pub mod api_reference;
pub mod audit_log;
pub mod integrations;
pub mod layout;
pub mod login;
pub mod not_found;
pub mod password;
pub mod security;
pub mod setup;
pub mod two_factor;
pub mod webhooks;

use leptos::prelude::*;
use leptos_router::components::Redirect;

/// `/` leads into the console; the console sends signed-out visitors on.
#[component]
pub fn Home() -> impl IntoView {
    view! { <Redirect path="/settings/integrations"/> }
}

/// A query-string value, percent-encoded (links that keep a page's filters).
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

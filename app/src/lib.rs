//! Keyward's console (Leptos pages, components, server functions) and, under
//! the `ssr` feature, its domain: the one place keys, tokens, admins and
//! storage are handled.

// Cargo unifies features across what it builds together: building the
// server and the browser crate in one command (`cargo build --workspace`)
// turns both on here, and that server panics at start-up. Stop the build
// instead, and say what to run.
#[cfg(all(feature = "ssr", feature = "hydrate"))]
compile_error!(
    "app's `ssr` and `hydrate` features are both on: the server and the browser crate were built together \
     (e.g. `cargo build --workspace`). Build the server alone with `cargo build --release` at the root \
     (or `-p server`), and the browser crate with `./scripts/run.sh` (see the README)."
);

pub mod components;
pub mod error;
pub mod model;
pub mod pages;
pub mod server_fns;

#[cfg(feature = "ssr")]
pub mod auth;
#[cfg(feature = "ssr")]
pub mod domain;
#[cfg(feature = "ssr")]
pub mod reveal;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, SsrMode};

use pages::{
    admin_users::AdminUsersPage, api_reference::ApiReferencePage, audit_log::AuditLogPage,
    integrations::IntegrationsPage, layout::ConsoleLayout, login::LoginPage, login::SecondFactorPage,
    not_found::NotFound, password::PasswordPage, security::SecurityPage, setup::SetupPage, two_factor::TwoFactorPage,
    webhooks::WebhooksPage, Home,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                // The bundle's names carry its content hash (the server's
                // `output_name`), so the stylesheet is linked here, not in App.
                <link rel="stylesheet" id="keyward" href=format!("/pkg/{}.css", options.output_name)/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The page's policy allows exactly this response's nonce'd hydration
/// scripts (and what they load), the wasm, and our own styles.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    use axum::http::{header, HeaderValue};
    use leptos::nonce::use_nonce;
    if let (Some(nonce), Some(res)) = (use_nonce(), use_context::<leptos_axum::ResponseOptions>()) {
        let policy = format!(
            "default-src 'none'; script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'; \
             style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        );
        if let Ok(value) = HeaderValue::from_str(&policy) {
            res.insert_header(header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Tests (and curious people) can tell a hydrated page from a static one.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        // Pages name themselves (`<Title text=…/>`); the console frame adds
        // the application's name once it knows it.
        <Title formatter=|text: String| if text.is_empty() { "Keyward".to_owned() } else { format!("{text} · Keyward") }/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/") view=Home ssr=SsrMode::Async/>
                <Route path=path!("/setup") view=SetupPage ssr=SsrMode::Async/>
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/login/second-factor") view=SecondFactorPage ssr=SsrMode::Async/>
                <ParentRoute path=path!("/settings") view=ConsoleLayout ssr=SsrMode::Async>
                    <Route path=path!("integrations") view=IntegrationsPage/>
                    <Route path=path!("security") view=SecurityPage/>
                    <Route path=path!("webhooks") view=WebhooksPage/>
                    <Route path=path!("admin-users") view=AdminUsersPage/>
                    <Route path=path!("audit-log") view=AuditLogPage/>
                    <Route path=path!("api") view=ApiReferencePage/>
                    <Route path=path!("password") view=PasswordPage/>
                    <Route path=path!("two-factor") view=TwoFactorPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::{FormError, PasskeySignIn, Ready};
use crate::server_fns::session::{Login, SecondFactor};

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let notice = move || {
        query.with(|q| match (q.get("setup").as_deref(), q.get("reason").as_deref()) {
            (Some("done"), _) => Some("Setup is complete. Sign in with the super admin you just created."),
            (_, Some("signed-out")) => Some("Your session has ended. Please sign in again."),
            (_, Some("revoked")) => Some("Your admin token was revoked and you were signed out everywhere."),
            _ => None,
        })
    };
    let error = Signal::derive(move || login.value().get().and_then(Result::err));
    // Where to go after signing in: only a console page (checked again by
    // the server function, which alone decides the redirect).
    let next = query
        .with_untracked(|q| q.get("next"))
        .filter(|n| crate::server_fns::session::is_console_page(n));
    view! {
        <Title text="Sign in"/>
        <main class="narrow">
            <Ready/>
            <h1 class="brand">"Keyward"</h1>
            <section class="card">
                <h2>"Sign in"</h2>
                {move || notice().map(|n| view! { <p class="alert info">{n}</p> })}
                <FormError error/>
                <ActionForm action=login attr:class="form" attr:id="login-form">
                    <label>"Username" <input type="text" name="username" autocomplete="username" required maxlength="64"/></label>
                    <label>"Password" <input type="password" name="password" autocomplete="current-password" required maxlength="256"/></label>
                    {next.map(|next| view! { <input type="hidden" name="next" value=next/> })}
                    <button type="submit" class="button primary" disabled=move || login.pending().get()>"Sign in"</button>
                </ActionForm>
            </section>
        </main>
    }
}

/// The sign-in's second step: a code from the authenticator app, or a
/// recovery code. The server knows whose sign-in it is (the session);
/// this page only asks.
#[component]
pub fn SecondFactorPage() -> impl IntoView {
    let action = ServerAction::<SecondFactor>::new();
    let query = use_query_map();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let next = query
        .with_untracked(|q| q.get("next"))
        .filter(|n| crate::server_fns::session::is_console_page(n));
    let next_for_passkey = next.clone();
    view! {
        <Title text="Two-factor sign-in"/>
        <main class="narrow">
            <Ready/>
            <h1 class="brand">"Keyward"</h1>
            <section class="card">
                <h2>"Enter your code"</h2>
                <p class="muted">
                    "Open your authenticator app and enter the 6-digit code it shows for Keyward. "
                    "Lost your phone? Enter one of your recovery codes instead."
                </p>
                <FormError error/>
                <ActionForm action attr:class="form" attr:id="second-factor-form">
                    <label>"Code from your app, or a recovery code"
                        <input type="text" name="code" required maxlength="32" autocomplete="one-time-code"
                            autocapitalize="off" spellcheck="false" autofocus/>
                    </label>
                    {next.map(|next| view! { <input type="hidden" name="next" value=next/> })}
                    <button type="submit" class="button primary" disabled=move || action.pending().get()>"Sign in"</button>
                </ActionForm>
                <PasskeySignIn next=next_for_passkey/>
                <p><a href="/login">"Start again"</a></p>
            </section>
        </main>
    }
}

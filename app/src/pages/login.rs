use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::{FormError, Ready};
use crate::server_fns::session::Login;

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

use leptos::prelude::*;
use leptos_meta::Title;

use leptos_router::hooks::use_query_map;

use crate::components::{say_done, FormError, Ready};
use crate::server_fns::admins::ChangePassword;

/// Where an admin who signed in with a temporary password chooses their
/// own. Every other console page sends them here until they have.
#[component]
pub fn PasswordPage() -> impl IntoView {
    let action = ServerAction::<ChangePassword>::new();
    say_done(action);
    // After the change (`?changed`, a harmless link if forged): on into the console.
    let query = use_query_map();
    let changed = move || query.with(|q| q.get("changed").is_some());
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    view! {
        <Title text="Choose your password"/>
        <h1>"Choose your password"</h1>
        <Ready/>
        <section class="card" role="group" aria-label="Choose your password">
            <p>
                "A super admin gave you a temporary password. Choose your own to go on: at least 12 characters, "
                "one nobody else knows."
            </p>
            <FormError error/>
            <ActionForm action attr:class="form">
                <label>"Temporary password" <input type="password" name="current" required autocomplete="current-password" maxlength="256"/></label>
                <label>"New password" <input type="password" name="password" required minlength="12" autocomplete="new-password" maxlength="256"/></label>
                <label>"New password again" <input type="password" name="password_confirm" required minlength="12" autocomplete="new-password" maxlength="256"/></label>
                <div><button type="submit" class="button primary">"Choose password"</button></div>
            </ActionForm>
        </section>
        <Show when=changed>
            <p><a class="button primary" href="/settings/integrations">"Continue to the console"</a></p>
        </Show>
    }
}

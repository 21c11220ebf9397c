use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;

use crate::components::{FailureView, FormError, Ready, RegionFields};
use crate::model::SetupForm;
use crate::server_fns::setup::{setup_form, setup_open, RunSetup};

/// First-run setup: only while no application exists, and only with the
/// one-time token from `keyward serve`.
#[component]
pub fn SetupPage() -> impl IntoView {
    let open = Resource::new(|| (), |_| setup_open());
    let form = Resource::new(|| (), |_| setup_form());
    view! {
        <Title text="Set up"/>
        <main class="narrow">
            <h1 class="brand">"Keyward"</h1>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match (open.await, form.await) {
                        (Ok(true), Ok(form)) => view! { <SetupCard form/> }.into_any(),
                        (Ok(false), _) => view! { <Redirect path="/login"/> }.into_any(),
                        (Err(error), _) | (_, Err(error)) => view! { <FailureView error/> }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn SetupCard(form: SetupForm) -> impl IntoView {
    let kept = form.kept.unwrap_or_default();
    let setup = ServerAction::<RunSetup>::new();
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token").unwrap_or_default());
    let error = Signal::derive(move || setup.value().get().and_then(Result::err));
    view! {
        <Ready/>
        <section class="card">
            <h2>"Set up Keyward"</h2>
            <p class="muted">"Create the application and its first super admin. This page disappears once setup is done."</p>
            <FormError error/>
            <ActionForm action=setup attr:class="form" attr:id="setup-form">
                {move || {
                    let t = token();
                    if t.is_empty() {
                        view! { <label>"Setup token" <input type="text" name="token" required autocomplete="off"/></label> }.into_any()
                    } else {
                        view! { <input type="hidden" name="token" value=t/> }.into_any()
                    }
                }}
                <fieldset>
                    <legend>"Application"</legend>
                    <label>"Application name" <input type="text" name="app_name" required maxlength="100" value=kept.app_name/></label>
                    <RegionFields regions=form.regions chosen=kept.region/>
                </fieldset>
                <fieldset>
                    <legend>"First super admin"</legend>
                    <label>"Username" <input type="text" name="username" required minlength="3" maxlength="64" autocomplete="username" value=kept.username/></label>
                    <label>"Password (at least 12 characters)" <input type="password" name="password" required minlength="12" maxlength="256" autocomplete="new-password"/></label>
                    <label>"Repeat the password" <input type="password" name="password_confirm" required minlength="12" maxlength="256" autocomplete="new-password"/></label>
                </fieldset>
                <button type="submit" class="button primary" disabled=move || setup.pending().get()>"Create application"</button>
            </ActionForm>
        </section>
    }
}

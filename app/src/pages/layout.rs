use leptos::prelude::*;
use leptos_router::components::{Outlet, A};

use crate::components::FailureView;
use crate::model::ConsoleFrame;
use crate::server_fns::session::{load_console_frame, Logout};

/// The frame of every signed-in page: application, region, who is signed
/// in, sign-out, and the settings navigation.
#[component]
pub fn ConsoleLayout() -> impl IntoView {
    let frame = Resource::new(|| (), |_| load_console_frame());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match frame.await {
                    Ok(frame) => view! { <Frame frame/> }.into_any(),
                    Err(error) => view! { <FailureView error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Frame(frame: ConsoleFrame) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    view! {
        <header class="topbar">
            <span class="brand">"Keyward"</span>
            <span class="app" data-testid="app-name">{frame.app_name}</span>
            <span class="badge" data-testid="region">{frame.region.to_uppercase()}</span>
            <span class="spacer"></span>
            <span class="who" data-testid="signed-in-as">{frame.username}" · "{frame.role.label()}</span>
            <ActionForm action=logout attr:class="inline">
                <button type="submit" class="button secondary">"Sign out"</button>
            </ActionForm>
        </header>
        <div class="console">
            <nav class="sidenav" aria-label="Settings">
                <h2>"Settings"</h2>
                <A href="/settings/integrations">"Integrations"</A>
                <A href="/settings/admin-users">"Admin Users"</A>
            </nav>
            <main class="content">
                <Outlet/>
            </main>
        </div>
    }
}

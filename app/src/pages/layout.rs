use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{Outlet, A};

use crate::components::{FailureView, Feedback, LiveRegion};
use crate::model::ConsoleFrame;
use crate::server_fns::session::{load_console_frame, Logout};

/// The frame of every signed-in page: application, region, who is signed
/// in, sign-out, and the settings navigation.
///
/// The page (`<Outlet/>`) is deliberately not inside the frame's Suspense:
/// a page creates its own resources, and they must be created at the same
/// place on the server and in the browser for hydration to line up.
/// Each page checks the session itself.
#[component]
pub fn ConsoleLayout() -> impl IntoView {
    let frame = Resource::new(|| (), |_| load_console_frame());
    let logout = ServerAction::<Logout>::new();
    let feedback = Feedback::provide();
    view! {
        <a class="skip" href="#main">"Skip to the page"</a>
        <header class="topbar">
            <span class="brand">"Keyward"</span>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match frame.await {
                        Ok(frame) => view! { <FrameInfo frame/> }.into_any(),
                        Err(error) => view! { <FailureView error/> }.into_any(),
                    }
                })}
            </Suspense>
            <ActionForm action=logout attr:class="inline">
                <button type="submit" class="button secondary">"Sign out"</button>
            </ActionForm>
        </header>
        <div class="console">
            <nav class="sidenav" aria-label="Settings">
                <h2>"Settings"</h2>
                <A href="/settings/integrations">"Integrations"</A>
                <A href="/settings/security">"Security"</A>
                <A href="/settings/webhooks">"Webhooks"</A>
                <A href="/settings/admin-users">"Admin Users"</A>
                <A href="/settings/audit-log">"Audit log"</A>
                <A href="/settings/api">"API reference"</A>
                <A href="/settings/two-factor">"Two-factor sign-in"</A>
            </nav>
            <main class="content" id="main" tabindex="-1">
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let (notices, done) = frame.await.map(|f| (f.notices, f.done)).unwrap_or_default();
                        view! {
                            <LiveRegion feedback at_load=done/>
                            {notices.into_iter().map(|n| {
                                view! { <p class="alert warn" data-testid="token-notice">{n}</p> }
                            }).collect_view()}
                        }
                    })}
                </Suspense>
                <Outlet/>
            </main>
        </div>
    }
}

#[component]
fn FrameInfo(frame: ConsoleFrame) -> impl IntoView {
    let app = frame.app_name.clone();
    view! {
        <Title formatter=move |text: String| format!("{text} · {app} · Keyward")/>
        <span class="app" data-testid="app-name">{frame.app_name}</span>
        <span class="badge" data-testid="region">{frame.region.to_uppercase()}</span>
        <span class="spacer"></span>
        <span class="who" data-testid="signed-in-as">{frame.username}" · "{frame.role.label()}</span>
    }
}

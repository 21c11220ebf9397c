use leptos::prelude::*;

use crate::components::{CopyButton, FailureView};
use crate::model::Integrations;
use crate::server_fns::integrations::load_integrations;

#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_integrations());
    view! {
        <h1>"Integrations"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <IntegrationsView data/> }.into_any(),
                    Err(error) => view! { <FailureView error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn IntegrationsView(data: Integrations) -> impl IntoView {
    let key = data.api_key.clone();
    view! {
        <section class="card">
            <h2>"API key"</h2>
            <p class="muted">"Identifies your application to the client SDKs. It is safe to embed in apps."</p>
            <div class="secret-row">
                <input id="api-key" data-testid="api-key" class="mono" type="text" readonly value=data.api_key/>
                <CopyButton text=key label="Copy the API key"/>
            </div>
        </section>
        <section class="card">
            <h2>"Endpoints"</h2>
            <p class="muted">
                "Your application is in region " <strong>{data.region.to_uppercase()}</strong>
                ". Point the SDK's region endpoint at this deployment instead of the public host."
            </p>
            <table>
                <thead><tr><th>"Region"</th><th>"Endpoint"</th></tr></thead>
                <tbody>
                    {data.endpoints.into_iter().map(|e| {
                        let class = if e.this_deployment { "highlight" } else { "" };
                        view! {
                            <tr class=class>
                                <td>{e.region.to_uppercase()}</td>
                                <td class="mono">{e.url}{e.this_deployment.then_some(" (this deployment)")}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

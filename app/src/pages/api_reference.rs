use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{FailureView, Ready};
use crate::model::{ApiOperation, ApiReference};
use crate::server_fns::api_reference::load_api_reference;

/// Settings > API reference: the REST API as its OpenAPI document
/// describes it, rendered here (no third-party viewer, nothing fetched
/// from elsewhere); the document itself is at `/api/openapi.json`.
#[component]
pub fn ApiReferencePage() -> impl IntoView {
    let reference = Resource::new(|| (), |_| load_api_reference());
    view! {
        <Title text="API reference"/>
        <h1>"API reference"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match reference.await {
                    Ok(reference) => view! { <Reference reference/> }.into_any(),
                    Err(error) => view! { <FailureView error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Reference(reference: ApiReference) -> impl IntoView {
    let count = reference.operations.len();
    view! {
        <Ready/>
        <p class="muted">
            {format!("{count} operations, from the OpenAPI {} document ", reference.version)}
            <a href="/api/openapi.json" data-testid="openapi-link">"/api/openapi.json"</a>
            ". Errors are the envelope {status, code, message, data?}; code 400100 means a bad credential and nothing else."
        </p>
        {reference.operations.into_iter().map(|op| view! { <Operation op/> }).collect_view()}
    }
}

#[component]
fn Operation(op: ApiOperation) -> impl IntoView {
    let id = format!("{}-{}", op.method.to_lowercase(), op.path.replace(['/', '{', '}'], "-"));
    view! {
        <section class="card operation" id=id data-testid="operation">
            <h2 class="mono">
                <span class=format!("badge method {}", op.method.to_lowercase())>{op.method.clone()}</span>
                " " {op.path.clone()}
            </h2>
            <p>{op.summary}</p>
            <p class="muted">{format!("{} · credential: {}", op.tag, op.credential)}</p>
            {(!op.params.is_empty()).then(|| view! {
                <table class="stack">
                    <thead><tr><th>"Parameter"</th><th>"In"</th><th>"Required"</th><th>"Description"</th></tr></thead>
                    <tbody>
                        {op.params.into_iter().map(|p| view! {
                            <tr>
                                <td class="mono" data-label="Parameter">{p.name}</td>
                                <td data-label="In">{p.place}</td>
                                <td data-label="Required">{if p.required { "yes" } else { "no" }}</td>
                                <td data-label="Description">{p.description}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
            {op.body.map(|b| view! { <p>"Body: " <span class="mono">{b}</span></p> })}
            <table>
                <thead><tr><th>"Status"</th><th>"Answer"</th></tr></thead>
                <tbody>
                    {op.responses.into_iter().map(|(status, what)| view! {
                        <tr><td class="mono">{status}</td><td>{what}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

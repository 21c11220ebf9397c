use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::{say_done, successes, CopyButton, FailureView, FormError, Ready, RegionFields};
use crate::model::{Integrations, NewServerKey, OverlapChoice, RegionInput, ServerKeyRow};
use crate::server_fns::integrations::{
    load_integrations, GenerateServerKey, RemoveServerKey, SetRegion, SetSecureMode,
};

/// Settings > Integrations. Confirmations are steps in the URL
/// (`?confirm=…`), so they work the same with and without JavaScript.
#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let set_secure = ServerAction::<SetSecureMode>::new();
    let generate = ServerAction::<GenerateServerKey>::new();
    let set_region = ServerAction::<SetRegion>::new();
    let remove = ServerAction::<RemoveServerKey>::new();
    say_done(set_secure);
    say_done(set_region);
    say_done(remove);
    let (secured, generated, moved, removed) = (
        successes(set_secure),
        successes(generate),
        successes(set_region),
        successes(remove),
    );
    let data = Resource::new(
        move || (secured.get(), generated.get(), moved.get(), removed.get()),
        |_| load_integrations(),
    );
    view! {
        <Title text="Integrations"/>
        <h1>"Integrations"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <IntegrationsView data set_secure generate set_region remove/> }.into_any(),
                    Err(error) => view! { <FailureView error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn IntegrationsView(
    data: Integrations,
    set_secure: ServerAction<SetSecureMode>,
    generate: ServerAction<GenerateServerKey>,
    set_region: ServerAction<SetRegion>,
    remove: ServerAction<RemoveServerKey>,
) -> impl IntoView {
    let key = data.api_key.clone();
    let live: Vec<ServerKeyRow> = data.server_keys.iter().filter(|k| k.active).cloned().collect();
    // With JavaScript the new key comes back as the action's value;
    // without, the server hands it to this one render.
    let from_action = move || generate.value().get().and_then(Result::ok);
    let revealed = data.revealed_key.clone();
    let new_key = move || from_action().or_else(|| revealed.clone());
    view! {
        <Ready/>
        <section class="card">
            <h2>"API key"</h2>
            <p class="muted">"Identifies your application to the client SDKs. It is safe to embed in apps."</p>
            <div class="secret-row">
                <input id="api-key" data-testid="api-key" class="mono" type="text" readonly aria-label="API key" value=data.api_key/>
                <CopyButton text=key label="Copy the API key"/>
            </div>
        </section>
        <SecureMode
            enabled=data.secure_mode
            mtls=data.mtls
            has_key=data.server_keys.iter().any(|k| k.active)
            unsecured=data.unsecured_sessions_last_day
            action=set_secure
        />
        <section class="card" id="server-keys">
            <h2>"Server keys"</h2>
            <p class="muted">
                "Your backend uses a server key to mint auth tokens for its users. Keep it secret: never ship it in an app."
            </p>
            {move || new_key().map(|k| view! { <RevealKey k action=generate/> })}
            <GenerateKey action=generate live choices=data.overlap_choices default_hours=data.default_overlap_hours/>
            <KeyTable rows=data.server_keys remove/>
        </section>
        <Endpoints
            region=data.region
            region_url=data.region_url
            regions=data.regions
            endpoints=data.endpoints
            can_change=data.can_change_region
            kept=data.kept_region
            action=set_region
        />
    }
}

#[component]
fn SecureMode(
    enabled: bool,
    mtls: bool,
    has_key: bool,
    unsecured: i64,
    action: ServerAction<SetSecureMode>,
) -> impl IntoView {
    let query = use_query_map();
    // While mTLS is on, secure mode cannot go off: say so instead of
    // offering a confirmation that would only then refuse.
    let locked_on = enabled && mtls;
    let confirming = move || !locked_on && query.with(|q| q.get("confirm").as_deref() == Some("secure-mode"));
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let state = if enabled { "On" } else { "Off" };
    view! {
        <section class="card" id="secure-mode">
            <h2>"Secure mode " <span class=if enabled { "badge ok" } else { "badge off" } data-testid="secure-mode-state">{state}</span></h2>
            <p class="muted">
                "In secure mode a client gets a session only with an auth token that your backend minted with a server key. "
                "Without it, the API key and any userId are enough."
            </p>
            <FormError error/>
            <Show
                when=confirming
                fallback=move || if locked_on {
                    view! {
                        <p class="alert info" data-testid="secure-mode-needs-mtls-off">
                            "mTLS is on, and it needs secure mode. To turn secure mode off, turn mTLS off first in "
                            <a href="/settings/security#mtls">"Security"</a> "."
                        </p>
                    }.into_any()
                } else {
                    view! {
                        <a class="button secondary" href="?confirm=secure-mode#secure-mode">
                            {if enabled { "Turn secure mode off…" } else { "Turn secure mode on…" }}
                        </a>
                    }.into_any()
                }
            >
                <div class="confirm" role="group" aria-label="Confirm secure mode">
                    {if enabled {
                        view! {
                            <p class="alert warn">
                                "Turning secure mode off lets anyone with your API key open a session as any user. "
                                "Auth tokens are no longer required."
                            </p>
                        }.into_any()
                    } else {
                        view! {
                            {(!has_key).then(|| view! {
                                <p class="alert error" data-testid="no-server-key">
                                    "You have no server key. With secure mode on, no client can open a session until "
                                    "your backend mints auth tokens with one: "
                                    <a href="?confirm=server-key#server-keys">"generate a server key"</a> " first."
                                </p>
                            })}
                            <p class="alert warn">
                                "Clients that open sessions without an auth token will be refused at once. "
                                <strong data-testid="unsecured-count">{unsecured}</strong>
                                {if unsecured == 1 {
                                    " session was opened without an auth token in the last 24 hours: "
                                } else {
                                    " sessions were opened without an auth token in the last 24 hours: "
                                }}
                                "make sure those clients get auth tokens from your backend first."
                            </p>
                        }.into_any()
                    }}
                    <ActionForm action attr:class="inline">
                        <input type="hidden" name="enabled" value=if enabled { "false" } else { "true" }/>
                        <button type="submit" class="button primary">
                            {if enabled { "Turn secure mode off" } else { "Turn secure mode on" }}
                        </button>
                    </ActionForm>
                    " "
                    <a class="button secondary" href="/settings/integrations">"Cancel"</a>
                </div>
            </Show>
        </section>
    }
    .into_any()
}

#[component]
fn GenerateKey(
    action: ServerAction<GenerateServerKey>,
    /// The keys that still work: the new key stops them.
    live: Vec<ServerKeyRow>,
    choices: Vec<OverlapChoice>,
    default_hours: i64,
) -> impl IntoView {
    let query = use_query_map();
    let confirming = move || query.with(|q| q.get("confirm").as_deref() == Some("server-key"));
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let (live, choices) = (StoredValue::new(live), StoredValue::new(choices));
    view! {
        <FormError error/>
        <Show
            when=confirming
            fallback=|| view! { <a class="button primary" href="?confirm=server-key#server-keys">"Generate new server key"</a> }
        >
            <div class="confirm" role="group" aria-label="Confirm new server key">
                <p class="alert warn">
                    "The new key is shown once, right after it is generated: store it before you leave the page."
                </p>
                {live.with_value(|live| (!live.is_empty()).then(|| view! {
                    <p>"These keys stop working when the overlap you choose ends:"</p>
                    <ul data-testid="keys-that-stop">
                        {live.iter().map(|k| view! {
                            <li>
                                <span class="mono">{k.prefix.clone()}</span>
                                {k.name.clone().map(|n| format!(" \u{201c}{n}\u{201d}"))}
                                " · last used " {k.last_used_at.clone().unwrap_or_else(|| "never".into())}
                                {(!k.status.starts_with("Active")).then(|| format!(" · {} (an earlier end is kept)", k.status.to_lowercase()))}
                            </li>
                        }).collect_view()}
                    </ul>
                    {(default_hours > 0).then(|| view! {
                        <p class="muted" data-testid="overlap-why">
                            "A current key was used in the last 24 hours, so it keeps working for a while by default: "
                            "move your backend to the new key before then."
                        </p>
                    })}
                }))}
                <ActionForm action attr:class="form">
                    <label>"Name (optional, for example \u{201c}billing backend\u{201d})"
                        <input type="text" name="name" maxlength="40" autocomplete="off"/>
                    </label>
                    <label>"Current keys keep working for"
                        <select name="overlap_hours">
                            {choices.get_value().into_iter().map(|c| view! {
                                <option value=c.hours.to_string() selected=c.hours == default_hours>{c.label}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <div>
                        <button type="submit" class="button primary">"Generate"</button>
                        " "
                        <a class="button secondary" href="/settings/integrations">"Cancel"</a>
                    </div>
                </ActionForm>
            </div>
        </Show>
    }
    // Erased: the page's view type is otherwise too deep for the wasm build.
    .into_any()
}

#[component]
fn RevealKey(k: NewServerKey, action: ServerAction<GenerateServerKey>) -> impl IntoView {
    let copy = k.key.clone();
    view! {
        <div class="reveal" role="group" aria-label="New server key">
            <p class="alert info">
                "Your new server key. This is the only time it is shown. Earlier keys stop working: "
                {k.old_keys_stop}"."
            </p>
            <div class="secret-row">
                <input data-testid="new-server-key" class="mono" type="text" readonly aria-label="New server key" value=k.key/>
                <CopyButton text=copy label="Copy the server key"/>
            </div>
            // Forgetting the action's value is what hides the key with JavaScript;
            // without, the link's fresh page load no longer has it.
            <p>
                <a class="button primary" href="/settings/integrations" on:click=move |_| action.value().set(None)>
                    "I have stored it"
                </a>
            </p>
        </div>
    }
}

#[component]
fn KeyTable(rows: Vec<ServerKeyRow>, remove: ServerAction<RemoveServerKey>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted">"No server key yet."</p> }.into_any();
    }
    let error = Signal::derive(move || remove.value().get().and_then(Result::err));
    view! {
        <FormError error/>
        <table class="stack" data-testid="server-key-table">
            <thead><tr>
                <th>"Key"</th><th>"Name"</th><th>"Created"</th><th>"Last used"</th><th>"Status"</th>
                <th><span class="visually-hidden">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|r| view! {
                    <tr class=if r.active { "" } else { "muted" }>
                        <td class="mono" data-label="Key">{r.prefix.clone()}</td>
                        <td data-label="Name">{r.name.unwrap_or_else(|| "—".into())}</td>
                        <td data-label="Created">{r.created_at}</td>
                        <td data-label="Last used">{r.last_used_at.unwrap_or_else(|| "never".into())}</td>
                        <td data-label="Status">{r.status}</td>
                        <td data-label="Actions">
                            {r.removable.then(|| view! {
                                <ActionForm action=remove attr:class="inline">
                                    <input type="hidden" name="id" value=r.id.clone()/>
                                    <button type="submit" class="link" aria-label=format!("Remove {} from the list", r.prefix)>
                                        "Remove"
                                    </button>
                                </ActionForm>
                            })}
                        </td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn Endpoints(
    region: String,
    region_url: Option<String>,
    /// The built-in regions, (code, name), for the region form.
    regions: Vec<(String, String)>,
    endpoints: Vec<crate::model::Endpoint>,
    can_change: bool,
    /// The form as typed before a refusal (without JavaScript).
    kept: Option<RegionInput>,
    action: ServerAction<SetRegion>,
) -> impl IntoView {
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let custom = region_url.is_some();
    let change = can_change.then(|| {
        let chosen = kept.unwrap_or_else(|| RegionInput::in_use(&region, region_url.as_deref()));
        view! {
            <h3>"Change the region"</h3>
            <p class="muted">"Clients keep working only if they are pointed at the new region's endpoint."</p>
            <FormError error/>
            <ActionForm action attr:class="form" attr:id="region-form">
                <RegionFields regions chosen/>
                <button type="submit" class="button secondary">"Change region"</button>
            </ActionForm>
        }
    });
    view! {
        <section class="card" id="endpoints">
            <h2>"Endpoints"</h2>
            <p class="muted" data-testid="region-summary">
                "Your application is in " {if custom { "the custom region " } else { "region " }}
                <strong data-testid="endpoint-region">{region.to_uppercase()}</strong>
                {if custom {
                    ". Point the SDK's custom endpoint at its URL below."
                } else {
                    ". Point the SDK's region endpoint at this deployment instead of the public host."
                }}
            </p>
            <table class="stack">
                <thead><tr><th>"Region"</th><th>"Endpoint"</th></tr></thead>
                <tbody>
                    {endpoints.into_iter().map(|e| {
                        let class = if e.this_deployment { "highlight" } else { "" };
                        view! {
                            <tr class=class>
                                <td data-label="Region">{e.region.to_uppercase()}</td>
                                <td class="mono" data-label="Endpoint">{e.url}{e.this_deployment.then_some(" (your region)")}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            {change}
        </section>
    }
}

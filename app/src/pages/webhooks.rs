use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::{say_done, successes, CopyButton, FailureView, FormError, Ready};
use crate::model::{DeliveryLog, EventChoice, NewWebhookSecret, WebhookInput, WebhookRow, WebhooksData};
use crate::server_fns::webhooks::{load_webhooks, CreateWebhook, DeleteWebhook, SendTestWebhook, SetWebhookEnabled};

/// Settings > Webhooks: endpoints told of changes to the application's
/// credentials, each with its delivery log. Steps live in the URL
/// (`?do=add`, `?delete=<id>`, `?log=<id>`), so all of it works without
/// JavaScript.
#[component]
pub fn WebhooksPage() -> impl IntoView {
    let create = ServerAction::<CreateWebhook>::new();
    let enable = ServerAction::<SetWebhookEnabled>::new();
    let delete = ServerAction::<DeleteWebhook>::new();
    let test = ServerAction::<SendTestWebhook>::new();
    say_done(enable);
    say_done(delete);
    say_done(test);
    let (created, enabled, deleted, tested) =
        (successes(create), successes(enable), successes(delete), successes(test));
    let query = use_query_map();
    let log = move || query.with(|q| q.get("log"));
    let data = Resource::new(
        move || (created.get(), enabled.get(), deleted.get(), tested.get(), log()),
        |(.., log)| load_webhooks(log),
    );
    view! {
        <Title text="Webhooks"/>
        <h1>"Webhooks"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <WebhooksView data create enable delete test/> }.into_any(),
                    Err(error) => view! { <FailureView error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn WebhooksView(
    data: WebhooksData,
    create: ServerAction<CreateWebhook>,
    enable: ServerAction<SetWebhookEnabled>,
    delete: ServerAction<DeleteWebhook>,
    test: ServerAction<SendTestWebhook>,
) -> impl IntoView {
    // With JavaScript the secret comes back as the action's value;
    // without, the server hands it to this one render.
    let revealed = data.revealed.clone();
    let secret = move || create.value().get().and_then(Result::ok).or_else(|| revealed.clone());
    let room = (data.endpoints.len() as i64) < data.max_endpoints;
    let disabled: Vec<WebhookRow> = data
        .endpoints
        .iter()
        .filter(|w| w.disabled_reason.is_some())
        .cloned()
        .collect();
    view! {
        <Ready/>
        {disabled.into_iter().map(|w| view! {
            <p class="alert warn" data-testid="webhook-disabled-notice">
                <span class="mono">{w.url}</span> ": " {w.disabled_reason} " Fix the receiver, then enable it again below."
            </p>
        }).collect_view()}
        <section class="card" id="endpoints">
            <h2>"Endpoints"</h2>
            <p class="muted">
                "Keyward sends a signed POST to each endpoint when something it listens for happens: a server key "
                "generated or retired, secure mode or mTLS switched, an admin token or certificate issued, revoked or "
                "about to expire, an admin created, disabled or locked out, a second factor changed, another endpoint "
                "added or removed (the full list is in the form). Each request carries the audit event's "
                "sequence number and chain hash, never a secret, and a " <code>"Keyward-Signature"</code>
                " header to check with the endpoint's signing secret. Failed deliveries are retried for 24 hours."
            </p>
            {move || secret().map(|s| view! { <RevealSecret s action=create/> })}
            <AddForm action=create room events=data.events kept=data.kept max=data.max_endpoints/>
            <DeleteConfirm rows=data.endpoints.clone() action=delete/>
            <EndpointTable rows=data.endpoints enable test/>
        </section>
        {data.log.map(|log| view! { <Log log/> })}
    }
    .into_any()
}

#[component]
fn RevealSecret(s: NewWebhookSecret, action: ServerAction<CreateWebhook>) -> impl IntoView {
    let copy = s.secret.clone();
    view! {
        <div class="reveal" role="group" aria-label="New endpoint's signing secret">
            <p class="alert info">
                "Endpoint " <span class="mono">{s.url}</span> " added. Its signing secret is shown this once: "
                "store it where your receiver checks signatures."
            </p>
            <div class="secret-row">
                <input data-testid="webhook-secret" class="mono" type="text" readonly aria-label="Signing secret" value=s.secret/>
                <CopyButton text=copy label="Copy the signing secret"/>
            </div>
            <p>
                <a class="button primary" href="/settings/webhooks" on:click=move |_| action.value().set(None)>
                    "I have stored it"
                </a>
            </p>
        </div>
    }
}

#[component]
fn AddForm(
    action: ServerAction<CreateWebhook>,
    room: bool,
    events: Vec<EventChoice>,
    kept: Option<WebhookInput>,
    max: i64,
) -> impl IntoView {
    let query = use_query_map();
    let open = move || query.with(|q| q.get("do").as_deref() == Some("add"));
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let kept = kept.unwrap_or(WebhookInput {
        url: String::new(),
        description: String::new(),
        all: true,
        events: Vec::new(),
    });
    let (kept, events) = (StoredValue::new(kept), StoredValue::new(events));
    view! {
        <FormError error/>
        <Show
            when=open
            fallback=move || {
                if room {
                    view! { <a class="button primary" href="?do=add#endpoints">"+ Add endpoint"</a> }.into_any()
                } else {
                    view! { <p class="muted">"There are " {max} " endpoints: delete one before adding another."</p> }.into_any()
                }
            }
        >
            <ActionForm action attr:class="form" attr:data-testid="add-webhook">
                <label>"Endpoint URL"
                    <input type="url" name="url" required maxlength="2000" placeholder="https://siem.example.com/hooks/keyward"
                        value=kept.with_value(|k| k.url.clone())/>
                </label>
                <label>"Description (optional)"
                    <input type="text" name="description" maxlength="200" value=kept.with_value(|k| k.description.clone())/>
                </label>
                <fieldset>
                    <legend>"Events"</legend>
                    <label class="inline">
                        <input type="radio" name="scope" value="all" checked=kept.with_value(|k| k.all)/>
                        " All events, present and future"
                    </label>
                    <label class="inline">
                        <input type="radio" name="scope" value="chosen" checked=kept.with_value(|k| !k.all)/>
                        " Only these:"
                    </label>
                    <ul class="checklist" data-testid="event-choices">
                        {events.get_value().into_iter().enumerate().map(|(i, e)| {
                            let ticked = kept.with_value(|k| k.events.contains(&e.name));
                            view! {
                                <li>
                                    <label class="inline">
                                        <input type="checkbox" name=format!("events[{i}]") value=e.name.clone() checked=ticked/>
                                        " " <code>{e.name}</code> " · " {e.description}
                                    </label>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </fieldset>
                <div>
                    <button type="submit" class="button primary">"Add endpoint"</button>
                    " "
                    <a class="button secondary" href="/settings/webhooks">"Cancel"</a>
                </div>
            </ActionForm>
        </Show>
    }
    .into_any()
}

#[component]
fn DeleteConfirm(rows: Vec<WebhookRow>, action: ServerAction<DeleteWebhook>) -> impl IntoView {
    let query = use_query_map();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let target = move || {
        let id = query.with(|q| q.get("delete"))?;
        rows.iter().find(|r| r.id == id).cloned()
    };
    view! {
        <FormError error/>
        {move || target().map(|row| view! {
            <div class="confirm" role="group" aria-label="Confirm deletion">
                <p class="alert warn">
                    "Delete the endpoint " <span class="mono">{row.url.clone()}</span>
                    "? Nothing more is sent to it, and its delivery log goes with it."
                </p>
                <ActionForm action attr:class="inline">
                    <input type="hidden" name="id" value=row.id.clone()/>
                    <button type="submit" class="button danger">"Delete endpoint"</button>
                </ActionForm>
                " "
                <a class="button secondary" href="/settings/webhooks">"Cancel"</a>
            </div>
        })}
    }
}

#[component]
fn EndpointTable(
    rows: Vec<WebhookRow>,
    enable: ServerAction<SetWebhookEnabled>,
    test: ServerAction<SendTestWebhook>,
) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted">"No endpoint yet."</p> }.into_any();
    }
    let error = Signal::derive(move || {
        enable
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| test.value().get().and_then(Result::err))
    });
    view! {
        <FormError error/>
        <table class="stack" data-testid="webhook-table">
            <thead><tr>
                <th>"Endpoint"</th><th>"Events"</th><th>"Status"</th><th>"Added"</th>
                <th><span class="visually-hidden">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|r| {
                    let (badge, state) = match (r.enabled, &r.failing_since) {
                        (false, _) => ("badge off", "Disabled".to_owned()),
                        (true, Some(since)) => ("badge revoked", since.clone()),
                        (true, None) => ("badge ok", "Enabled".to_owned()),
                    };
                    let (test_id, enable_id) = (r.id.clone(), r.id.clone());
                    let (log_href, delete_href) = (format!("?log={}#log", r.id), format!("?delete={}#endpoints", r.id));
                    view! {
                        <tr class=if r.enabled { "" } else { "muted" } data-testid="webhook-row">
                            <td data-label="Endpoint">
                                <span class="mono">{r.url.clone()}</span>
                                {(!r.description.is_empty()).then(|| view! { <br/><span class="muted">{r.description.clone()}</span> })}
                            </td>
                            <td data-label="Events">{r.events.clone()}</td>
                            <td data-label="Status"><span class=badge>{state}</span></td>
                            <td data-label="Added">{r.created.clone()}</td>
                            <td class="actions" data-label="Actions">
                                <a href=log_href>"Delivery log"</a>
                                {r.enabled.then(|| view! {
                                    " · "
                                    <ActionForm action=test attr:class="inline">
                                        <input type="hidden" name="id" value=test_id/>
                                        <button type="submit" class="link">"Send test event"</button>
                                    </ActionForm>
                                })}
                                " · "
                                <ActionForm action=enable attr:class="inline">
                                    <input type="hidden" name="id" value=enable_id/>
                                    <input type="hidden" name="enabled" value=if r.enabled { "false" } else { "true" }/>
                                    <button type="submit" class="link">{if r.enabled { "Disable" } else { "Enable" }}</button>
                                </ActionForm>
                                " · "
                                <a href=delete_href>"Delete…"</a>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// What each delivery got, newest first.
#[component]
fn Log(log: DeliveryLog) -> impl IntoView {
    let badge = |state: &str| match state {
        "delivered" => "badge ok",
        "failed" => "badge revoked",
        _ => "badge off",
    };
    view! {
        <section class="card" id="log">
            <h2>"Delivery log"</h2>
            <p class="muted">"The latest deliveries to " <span class="mono">{log.url}</span> ", newest first."</p>
            {if log.deliveries.is_empty() {
                view! { <p class="muted">"Nothing sent yet."</p> }.into_any()
            } else {
                view! {
                    <table class="stack" data-testid="delivery-log">
                        <thead><tr>
                            <th>"Time"</th><th>"Event"</th><th>"Status"</th><th>"Attempts"</th><th>"Response"</th>
                        </tr></thead>
                        <tbody>
                            {log.deliveries.into_iter().map(|d| {
                                let response = match (d.response_code, d.last_error.clone()) {
                                    (Some(code), None) => code.to_string(),
                                    (_, Some(e)) => e,
                                    (None, None) => "—".into(),
                                };
                                let next = d.next_attempt.clone().map(|n| format!(" · next attempt {n}"));
                                view! {
                                    <tr data-testid="delivery-row">
                                        <td data-label="Time">{d.created}</td>
                                        <td data-label="Event"><code>{d.event}</code>" " <span class="muted">"#"{d.seq}</span></td>
                                        <td data-label="Status"><span class=badge(&d.state)>{d.state.clone()}</span></td>
                                        <td data-label="Attempts">{d.attempts}{next}</td>
                                        <td data-label="Response">{response}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

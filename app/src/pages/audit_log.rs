use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::urlencode;
use crate::components::{FailureView, Ready};
use crate::model::AuditPage;
use crate::server_fns::audit::list_audit;

/// Audit log: every change to keys, tokens, certificates, admins and
/// settings, newest first. The filter is a plain GET form, so it works
/// with and without JavaScript.
#[component]
pub fn AuditLogPage() -> impl IntoView {
    let query = use_query_map();
    let events = Resource::new(
        move || {
            query.with(|q| {
                let field = |name: &str| q.get(name).unwrap_or_default();
                (
                    field("actor"),
                    field("action"),
                    field("target"),
                    field("from"),
                    field("to"),
                    q.get("before").and_then(|b| b.parse::<i64>().ok()),
                )
            })
        },
        |(actor, action, target, from, to, before)| list_audit(actor, action, target, Some(from), Some(to), before),
    );
    view! {
        <Title text="Audit log"/>
        <h1>"Audit log"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match events.await {
                    Ok(page) => view! { <AuditEvents page/> }.into_any(),
                    Err(error) => view! { <FailureView error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AuditEvents(page: AuditPage) -> impl IntoView {
    let filtered = !(page.actor.is_empty()
        && page.action.is_empty()
        && page.target.is_empty()
        && page.from.is_empty()
        && page.to.is_empty());
    // The filter as a query string: paging and exports keep it.
    let query = format!(
        "actor={}&action={}&target={}&from={}&to={}",
        urlencode(&page.actor),
        urlencode(&page.action),
        urlencode(&page.target),
        urlencode(&page.from),
        urlencode(&page.to)
    );
    let older = page
        .older_than
        .map(|seq| format!("/settings/audit-log?{query}&before={seq}"));
    let export = |format: &str| format!("/console/audit-log/export?format={format}&{query}");
    let empty = page.rows.is_empty();
    view! {
        <Ready/>
        <form method="get" action="/settings/audit-log" class="search filters" role="search" aria-label="Filter events">
            <label>"Actor" <input type="text" name="actor" value=page.actor.clone() placeholder="username"/></label>
            <label>"Action"
                <input type="text" name="action" value=page.action.clone() placeholder="e.g. revoke" list="audit-actions"/>
            </label>
            <datalist id="audit-actions">
                {page.actions.into_iter().map(|a| view! { <option value=a.clone()></option> }).collect_view()}
            </datalist>
            <label>"Target" <input type="text" name="target" value=page.target.clone() placeholder="username or id"/></label>
            <label>"From (UTC)" <input type="date" name="from" value=page.from.clone()/></label>
            <label>"To (UTC)" <input type="date" name="to" value=page.to.clone()/></label>
            <button type="submit" class="button secondary">"Filter"</button>
            {filtered.then(|| view! { <a href="/settings/audit-log">"Clear"</a> })}
        </form>
        {page.problem.map(|p| view! { <p class="alert error" role="alert" data-testid="audit-problem">{p}</p> })}
        <p class="exports">
            "Export what the filter shows: "
            <a href=export("csv") download data-testid="export-csv">"CSV"</a>
            " · "
            <a href=export("jsonl") download data-testid="export-jsonl">"JSON Lines"</a>
            " · The whole log, every event with its chain hash, for "
            <code>"keyward audit verify --file"</code> " or a SIEM: "
            <a href="/console/audit-log/stream" download data-testid="export-stream">"verifiable stream"</a>
        </p>
        <section class="card scroll">
            {if empty {
                view! { <p class="muted" data-testid="audit-empty">"No events match."</p> }.into_any()
            } else {
                view! {
                    <table class="audit stack" data-testid="audit-table">
                        <thead><tr>
                            <th>"#"</th><th>"When"</th><th>"Actor"</th><th>"Action"</th><th>"Target"</th><th>"Detail"</th><th>"From"</th>
                        </tr></thead>
                        <tbody>
                            {page.rows.into_iter().map(|e| {
                                let key = e.action.clone();
                                let detail = if e.detail.is_empty() {
                                    view! { "—" }.into_any()
                                } else {
                                    view! {
                                        <ul class="detail-fields">
                                            {e.detail.into_iter().map(|(label, value)| view! {
                                                <li>{format!("{label}: {value}")}</li>
                                            }).collect_view()}
                                        </ul>
                                    }.into_any()
                                };
                                view! {
                                <tr data-action=key>
                                    <td data-label="#">{e.seq}</td>
                                    <td class="when" data-label="When">{e.at}</td>
                                    <td data-label="Actor">{e.actor}</td>
                                    <td class="mono action" data-label="Action">{e.action}</td>
                                    <td data-label="Target">{e.target}</td>
                                    <td class="detail" data-label="Detail">{detail}</td>
                                    <td data-label="From">{e.source}</td>
                                </tr>
                            }}).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            {older.map(|href| view! {
                <nav class="pager" aria-label="Pages"><a href=href>"Older events →"</a></nav>
            })}
        </section>
    }
}

use leptos::prelude::*;

use crate::components::FailureView;
use crate::model::AdminRow;
use crate::server_fns::admins::list_admins;

#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let admins = Resource::new(|| (), |_| list_admins());
    view! {
        <h1>"Admin Users"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match admins.await {
                    Ok(rows) => view! { <AdminTable rows/> }.into_any(),
                    Err(error) => view! { <FailureView error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn AdminTable(rows: Vec<AdminRow>) -> impl IntoView {
    view! {
        <section class="card">
            <table data-testid="admin-table">
                <thead><tr><th>"Username"</th><th>"Role"</th><th>"Status"</th><th>"Created"</th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|r| view! {
                        <tr>
                            <td>{r.username}{r.is_you.then_some(" (you)")}</td>
                            <td>{r.role.label()}</td>
                            <td>{if r.disabled { "Disabled" } else { "Active" }}</td>
                            <td>{r.created_at}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

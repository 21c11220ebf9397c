use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::urlencode;
use crate::components::{reset_on_success, say_done, successes, CopyButton, FailureView, FormError, Menu, Ready};
use crate::model::{AdminInput, AdminPage, AdminRow, Role, ShownToken};
use crate::server_fns::admins::{
    list_admins, ChangePassword, CreateAdmin, GenerateToken, RetrieveToken, RevokeToken, SetAdminDisabled,
    SetTemporaryPassword, UnlockAdmin,
};

/// The actions of this page, so the table reloads after any of them.
#[derive(Clone, Copy)]
struct Actions {
    retrieve: ServerAction<RetrieveToken>,
    generate: ServerAction<GenerateToken>,
    revoke: ServerAction<RevokeToken>,
    create: ServerAction<CreateAdmin>,
    disable: ServerAction<SetAdminDisabled>,
    unlock: ServerAction<UnlockAdmin>,
    password: ServerAction<ChangePassword>,
    temporary: ServerAction<SetTemporaryPassword>,
}

/// Settings > Admin Users. Menus and confirmations are URL steps
/// (`?do=…`), so every action works with and without JavaScript.
#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let actions = Actions {
        retrieve: ServerAction::new(),
        generate: ServerAction::new(),
        revoke: ServerAction::new(),
        create: ServerAction::new(),
        disable: ServerAction::new(),
        unlock: ServerAction::new(),
        password: ServerAction::new(),
        temporary: ServerAction::new(),
    };
    let query = use_query_map();
    // Only the search and the page reload the list; opening a step (`?do=…`) does not.
    let search = Memo::new(move |_| query.with(|m| m.get("q").unwrap_or_default()));
    let page = Memo::new(move |_| query.with(|m| m.get("page").and_then(|p| p.parse::<i64>().ok()).unwrap_or(1)));
    say_done(actions.revoke);
    say_done(actions.create);
    say_done(actions.disable);
    say_done(actions.unlock);
    say_done(actions.temporary);
    let changes = (
        successes(actions.generate),
        successes(actions.revoke),
        successes(actions.create),
        successes(actions.disable),
        successes(actions.unlock),
    );
    let admins = Resource::new(
        move || {
            (
                search.get(),
                page.get(),
                changes.0.get(),
                changes.1.get(),
                changes.2.get(),
                changes.3.get(),
                changes.4.get(),
            )
        },
        |(q, page, ..)| list_admins(q, page),
    );
    view! {
        <Title text="Admin Users"/>
        <h1>"Admin Users"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match admins.await {
                    Ok(data) => view! { <AdminUsers data actions/> }.into_any(),
                    Err(error) => view! { <FailureView error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn step() -> Memo<Option<String>> {
    let query = use_query_map();
    Memo::new(move |_| query.with(|q| q.get("do")))
}

#[component]
fn AdminUsers(data: AdminPage, actions: Actions) -> impl IntoView {
    let step = step();
    let revealed = data.revealed_token.clone();
    let shown = move || {
        actions
            .generate
            .value()
            .get()
            .and_then(Result::ok)
            .or_else(|| actions.retrieve.value().get().and_then(Result::ok))
            .or_else(|| revealed.clone())
    };
    let errors = Signal::derive(move || {
        actions
            .retrieve
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| actions.generate.value().get().and_then(Result::err))
            .or_else(|| actions.revoke.value().get().and_then(Result::err))
            .or_else(|| actions.disable.value().get().and_then(Result::err))
            .or_else(|| actions.unlock.value().get().and_then(Result::err))
            .or_else(|| actions.password.value().get().and_then(Result::err))
            .or_else(|| actions.temporary.value().get().and_then(Result::err))
    });
    let changed_now = data.password_changed;
    let changed = move || changed_now || actions.password.value().get().is_some_and(|r| r.is_ok());
    let me_admin = data.rows.iter().any(|r| r.is_you && r.role == Role::Admin) || !data.you_are_super;
    let switch_over = data.switch_over.clone();
    let token_days = data.token_days.clone();
    let token_lifetime = data.token_lifetime.clone();
    let code = data.you_have_second_factor;
    view! {
        <Ready/>
        <FormError error=errors/>
        {move || changed().then(|| view! {
            <p class="alert info" role="status" data-testid="password-changed">
                "Your password was changed. Your other console sessions were signed out."
            </p>
        })}
        {move || shown().map(|t| view! { <RevealToken t actions/> })}
        {move || match step.get().as_deref() {
            Some("retrieve") if me_admin => view! { <RetrieveStep action=actions.retrieve code/> }.into_any(),
            Some("generate") if me_admin => view! { <GenerateStep action=actions.generate switch_over=switch_over.clone() days=token_days.clone() longest=token_lifetime.clone() code/> }.into_any(),
            Some("revoke") => view! { <RevokeOwnStep action=actions.revoke me=data.you.clone()/> }.into_any(),
            Some("password") if !changed() => view! { <PasswordStep action=actions.password code/> }.into_any(),
            Some("revoke-other") if data.you_are_super => view! { <RevokeOtherStep action=actions.revoke/> }.into_any(),
            Some("disable") if data.you_are_super => view! { <DisableStep action=actions.disable/> }.into_any(),
            Some("temporary") if data.you_are_super => view! { <TemporaryPasswordStep action=actions.temporary/> }.into_any(),
            _ => ().into_any(),
        }}
        <Search query=data.query.clone()/>
        <section class="card">
            <AdminTable rows=data.rows.clone() you_are_super=data.you_are_super actions/>
            <Pager page=data.page pages=data.pages total=data.total query=data.query.clone()/>
        </section>
        {data.you_are_super.then(|| view! {
            <CreateAdminForm action=actions.create kept=data.kept.clone()/>
            <section class="card">
                <h2>"Revoke an admin's token"</h2>
                <p class="muted">"The admin's tokens stop working at once and they are signed out of every console session."</p>
                <a class="button secondary" href="?do=revoke-other">"Revoke by username…"</a>
            </section>
        })}
    }
}

#[component]
fn RevealToken(t: ShownToken, actions: Actions) -> impl IntoView {
    let copy = t.token.clone();
    let forget = move |_| {
        actions.generate.value().set(None);
        actions.retrieve.value().set(None);
    };
    view! {
        <section class="card reveal" role="group" aria-label="Your admin token">
            <h2>"Your admin token"</h2>
            <div class="secret-row">
                <input data-testid="admin-token" class="mono" type="text" readonly value=t.token/>
                <CopyButton text=copy label="Copy the admin token"/>
            </div>
            <p class="muted">"Expires " {t.expires_at} "."</p>
            {t.previous_stops.map(|when| view! {
                <p class="alert warn" data-testid="switch-over-notice">
                    "Your previous token keeps working until " {when} ". Switch your automation to this one before then."
                </p>
            })}
            <a class="button primary" href="/settings/admin-users" on:click=forget>"Done"</a>
        </section>
    }
}

#[component]
fn RetrieveStep(action: ServerAction<RetrieveToken>, code: bool) -> impl IntoView {
    view! {
        <section class="card confirm" role="group" aria-label="Retrieve token">
            <h2>"Retrieve your admin token"</h2>
            <p class="muted">"Enter your password again to see your current token."</p>
            <ActionForm action attr:class="form">
                <PasswordAgain submit="Show token" code/>
            </ActionForm>
        </section>
    }
}

/// A code from the admin's second factor, asked with the password again.
#[component]
fn CodeAgain() -> impl IntoView {
    view! {
        <label>"Code from your app, or a recovery code"
            <input type="text" name="code" required maxlength="32" autocomplete="one-time-code" autocapitalize="off" spellcheck="false"/>
        </label>
    }
}

/// The password asked again before a token is shown or made (and a code
/// when the admin has a second factor), and the step's buttons (inside
/// the step's own form).
#[component]
fn PasswordAgain(submit: &'static str, code: bool) -> impl IntoView {
    view! {
        <label>"Your password" <input type="password" name="password" required autocomplete="current-password" maxlength="256"/></label>
        {code.then(|| view! { <CodeAgain/> })}
        <div>
            <button type="submit" class="button primary">{submit}</button>
            " " <a class="button secondary" href="/settings/admin-users">"Cancel"</a>
        </div>
    }
}

#[component]
fn GenerateStep(
    action: ServerAction<GenerateToken>,
    switch_over: String,
    days: Vec<u32>,
    longest: String,
    code: bool,
) -> impl IntoView {
    // The longest is chosen unless the admin picks a shorter life.
    let longest_days = days.last().copied();
    let choice = (!days.is_empty()).then(|| {
        view! {
            <label>"Expires after "
                <select name="days">
                    {days.into_iter().map(|d| view! {
                        <option value=d.to_string() selected=Some(d) == longest_days>{format!("{d} days")}</option>
                    }).collect_view()}
                </select>
            </label>
        }
        .into_any()
    });
    view! {
        <section class="card confirm" role="group" aria-label="Generate token">
            <h2>"Generate a new admin token?"</h2>
            <p class="alert warn">
                "Your current token keeps working for " {switch_over}
                " and then stops: switch your automation to the new token within that time."
            </p>
            <ActionForm action attr:class="form">
                {choice.unwrap_or_else(|| view! { <p>"The new token lasts " {longest} "."</p> }.into_any())}
                <PasswordAgain submit="Generate new token" code/>
            </ActionForm>
        </section>
    }
}

#[component]
fn PasswordStep(action: ServerAction<ChangePassword>, code: bool) -> impl IntoView {
    view! {
        <section class="card confirm" role="group" aria-label="Change your password">
            <h2>"Change your password"</h2>
            <p class="muted">"Your other console sessions are signed out; this one stays. At least 12 characters."</p>
            <p class="muted">
                "Your admin token keeps working: if someone else may have learned your password, "
                "revoke your token too (the “…” menu on your row)."
            </p>
            <ActionForm action attr:class="form">
                <label>"Current password" <input type="password" name="current" required autocomplete="current-password" maxlength="256"/></label>
                {code.then(|| view! { <CodeAgain/> })}
                <label>"New password" <input type="password" name="password" required minlength="12" autocomplete="new-password" maxlength="256"/></label>
                <label>"New password again" <input type="password" name="password_confirm" required minlength="12" autocomplete="new-password" maxlength="256"/></label>
                <div>
                    <button type="submit" class="button primary">"Change password"</button>
                    " " <a class="button secondary" href="/settings/admin-users">"Cancel"</a>
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
fn RevokeOwnStep(action: ServerAction<RevokeToken>, me: String) -> impl IntoView {
    view! {
        <section class="card confirm" role="group" aria-label="Revoke token">
            <h2>"Revoke your admin token?"</h2>
            <p class="alert warn">
                "Every token of yours stops working at once, and you are signed out of every console session, "
                "in this browser and others. You get a new token at your next sign-in."
            </p>
            <ActionForm action attr:class="inline">
                <input type="hidden" name="username" value=me/>
                <button type="submit" class="button danger">"Revoke my token"</button>
            </ActionForm>
            " " <a class="button secondary" href="/settings/admin-users">"Cancel"</a>
        </section>
    }
}

#[component]
fn RevokeOtherStep(action: ServerAction<RevokeToken>) -> impl IntoView {
    let query = use_query_map();
    let preset = query.with_untracked(|q| q.get("username").unwrap_or_default());
    view! {
        <section class="card confirm" role="group" aria-label="Revoke an admin's token">
            <h2>"Revoke an admin's token"</h2>
            <p class="alert warn">"Their tokens stop working at once and they are signed out of every console session."</p>
            <p data-testid="revoke-is-not-disable">
                "This does not keep them out: their next sign-in gives them a new token. "
                "To keep someone out, disable them (the “…” menu on their row)."
            </p>
            <ActionForm action attr:class="form">
                <label>"Username" <input type="text" name="username" required maxlength="64" value=preset/></label>
                <div>
                    <button type="submit" class="button danger">"Revoke token"</button>
                    " " <a class="button secondary" href="/settings/admin-users">"Cancel"</a>
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
fn DisableStep(action: ServerAction<SetAdminDisabled>) -> impl IntoView {
    let query = use_query_map();
    let name = query.with_untracked(|q| q.get("username").unwrap_or_default());
    view! {
        <section class="card confirm" role="group" aria-label="Disable an admin">
            <h2>"Disable " {name.clone()} "?"</h2>
            <p class="alert warn">
                "They are signed out of every console session, their admin tokens are revoked for good, "
                "and they cannot sign in until a super admin enables them again."
            </p>
            <ActionForm action attr:class="inline">
                <input type="hidden" name="username" value=name.clone()/>
                <input type="hidden" name="disabled" value="true"/>
                <button type="submit" class="button danger">"Disable " {name}</button>
            </ActionForm>
            " " <a class="button secondary" href="/settings/admin-users">"Cancel"</a>
        </section>
    }
}

/// A super admin gives someone a temporary password (they forgot theirs).
#[component]
fn TemporaryPasswordStep(action: ServerAction<SetTemporaryPassword>) -> impl IntoView {
    let query = use_query_map();
    let name = query.with_untracked(|q| q.get("username").unwrap_or_default());
    view! {
        <section class="card confirm" role="group" aria-label="Set a temporary password">
            <h2>"A temporary password for " {name.clone()}</h2>
            <p class="muted">
                "Their console sessions end at once. At their next sign-in they must choose their own password before "
                "anything else. Give it to them over a channel you trust. Their admin token keeps working: revoke it "
                "too if it may be known to someone else."
            </p>
            <ActionForm action attr:class="form">
                <input type="hidden" name="username" value=name/>
                <label>"Temporary password (at least 12 characters)" <input type="password" name="password" required minlength="12" autocomplete="new-password" maxlength="256"/></label>
                <label>"Temporary password again" <input type="password" name="password_confirm" required minlength="12" autocomplete="new-password" maxlength="256"/></label>
                <div>
                    <button type="submit" class="button primary">"Set temporary password"</button>
                    " " <a class="button secondary" href="/settings/admin-users">"Cancel"</a>
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
fn Search(query: String) -> impl IntoView {
    view! {
        <form method="get" action="/settings/admin-users" class="search" role="search">
            <input type="search" name="q" value=query placeholder="Search usernames" aria-label="Search usernames"/>
            <button type="submit" class="button secondary">"Search"</button>
        </form>
    }
}

/// "1 admin", "30 admins · page 1 of 2", or what a search that found
/// nobody looked for.
fn count_text(total: i64, page: i64, pages: i64, query: &str) -> String {
    match total {
        0 => format!("No admin matches “{}”.", query.trim()),
        1 => "1 admin".into(),
        n if pages > 1 => format!("{n} admins · page {page} of {pages}"),
        n => format!("{n} admins"),
    }
}

#[component]
fn Pager(page: i64, pages: i64, total: i64, query: String) -> impl IntoView {
    let count = count_text(total, page, pages, &query);
    let link = move |p: i64| format!("/settings/admin-users?q={}&page={p}", urlencode(&query));
    view! {
        <nav class="pager" aria-label="Pages">
            <span data-testid="admin-count">{count}</span>
            {(page > 1).then(|| view! { <a href=link(page - 1)>"← Previous"</a> })}
            {(page < pages).then(|| view! { <a href=link(page + 1)>"Next →"</a> })}
        </nav>
    }
}

#[component]
fn AdminTable(rows: Vec<AdminRow>, you_are_super: bool, actions: Actions) -> impl IntoView {
    view! {
        <table class="stack" data-testid="admin-table">
            <thead><tr>
                <th>"Username"</th><th>"Role"</th><th>"Status"</th><th>"Two-factor"</th><th>"Token"</th><th>"Expires"</th><th>"Last used"</th><th><span class="visually-hidden">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|r| {
                    let menu = row_menu(&r, you_are_super, actions);
                    let key = r.username.clone();
                    view! {
                        <tr data-username=key>
                            <td data-label="Username">{r.username}{r.is_you.then_some(" (you)")}</td>
                            <td data-label="Role">{r.role.label()}</td>
                            <td data-label="Status">
                                {match (r.disabled, r.locked_out.is_some()) {
                                    (true, _) => "Disabled",
                                    (false, true) => "Locked out",
                                    (false, false) => "Active",
                                }}
                                {r.locked_out.map(|why| view! { <br/><span class="badge warn" data-testid="locked-out">"Locked out " {why}</span> })}
                            </td>
                            <td data-testid="two-factor-state" data-label="Two-factor">
                                {if r.second_factor {
                                    view! { <span class="badge ok">"On"</span> }.into_any()
                                } else {
                                    view! { <span class="badge off">"Off"</span> }.into_any()
                                }}
                            </td>
                            <td data-testid="token-status" data-label="Token">{r.token_status}</td>
                            <td data-label="Expires">{r.token_expires.unwrap_or_else(|| "—".into())}</td>
                            <td data-label="Last used">{r.last_used.unwrap_or_else(|| "never".into())}</td>
                            <td data-label="Actions">{menu}</td>
                        </tr>
                    }
                    // Erased: the page's view type is otherwise too deep for the wasm build.
                    .into_any()
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// The "…" menu: a `<details>` element, so it opens without JavaScript.
fn row_menu(r: &AdminRow, you_are_super: bool, actions: Actions) -> AnyView {
    if r.is_you {
        let own_token = r.role == Role::Admin;
        return view! {
            <Menu label="Actions for you">
                {own_token.then(|| view! {
                    <a href="?do=retrieve">"Retrieve token"</a>
                    <a href="?do=generate">"Generate new token"</a>
                })}
                <a href="?do=revoke">"Revoke token"</a>
                <a href="?do=password">"Change password"</a>
            </Menu>
        }
        .into_any();
    }
    if !you_are_super {
        return ().into_any();
    }
    let name = r.username.clone();
    let disable_to = !r.disabled;
    let (has_token, locked_out) = (r.role == Role::Admin, r.locked_out.is_some());
    view! {
        <Menu label=format!("Actions for {name}")>
                {has_token.then(|| view! { <a href=format!("?do=revoke-other&username={}", urlencode(&name))>"Revoke token"</a> })}
                {locked_out.then({
                    let name = name.clone();
                    move || view! {
                    <ActionForm action=actions.unlock>
                        <input type="hidden" name="username" value=name/>
                        <button type="submit" class="link">"Unlock"</button>
                    </ActionForm>
                }})}
                <a href=format!("?do=temporary&username={}", urlencode(&name))>"Set a temporary password…"</a>
                {if disable_to {
                    // Disabling is confirmed first: it ends the admin's sessions and tokens for good.
                    view! { <a href=format!("?do=disable&username={}", urlencode(&name))>"Disable…"</a> }.into_any()
                } else {
                    view! {
                        <ActionForm action=actions.disable>
                            <input type="hidden" name="username" value=name.clone()/>
                            <input type="hidden" name="disabled" value="false"/>
                            <button type="submit" class="link">"Enable"</button>
                        </ActionForm>
                    }
                    .into_any()
                }}
        </Menu>
    }
    .into_any()
}

#[component]
fn CreateAdminForm(action: ServerAction<CreateAdmin>, kept: Option<AdminInput>) -> impl IntoView {
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let form = NodeRef::new();
    reset_on_success(action, form);
    // A refusal keeps the rest, never the password (as without JavaScript).
    let password = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if matches!(action.value().get(), Some(Err(_))) {
            if let Some(input) = password.get_untracked() {
                input.set_value("");
            }
        }
    });
    let AdminInput { username, role } = kept.unwrap_or(AdminInput {
        username: String::new(),
        role: "admin".into(),
    });
    let super_admin = role == "super_admin";
    view! {
        <section class="card" id="create-admin">
            <h2>"Create an admin"</h2>
            <FormError error/>
            <ActionForm action node_ref=form attr:class="form" attr:id="create-admin-form">
                <label>"New admin's username" <input type="text" name="username" required minlength="3" maxlength="64" autocomplete="off" value=username/></label>
                <label>"Initial password (at least 12 characters)" <input type="password" name="password" required minlength="12" maxlength="256" autocomplete="new-password" node_ref=password/></label>
                <label>"Role"
                    <select name="role">
                        <option value="admin" selected=!super_admin>"Admin"</option>
                        <option value="super_admin" selected=super_admin>"Super Admin"</option>
                    </select>
                </label>
                <button type="submit" class="button primary">"Create admin"</button>
            </ActionForm>
        </section>
    }
}

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::{say_done, successes, FailureView, FormError, Ready};
use crate::model::{pem_file_name, CaRow, CertificateInput, CertificateRow, SecurityData};
use crate::server_fns::security::{
    load_security, CreateCertificate, RenewCertificate, RevokeCertificate, RotateCa, SetMtls,
};

/// Settings > Security: the application's CA, client certificates issued
/// from CSRs, and the mTLS switch. Steps live in the URL (`?do=create`,
/// `?revoke=<id>`, `?confirm=mtls`, `?rotate=ca`) so everything works
/// without JavaScript.
#[component]
pub fn SecurityPage() -> impl IntoView {
    let create = ServerAction::<CreateCertificate>::new();
    let renew = ServerAction::<RenewCertificate>::new();
    let revoke = ServerAction::<RevokeCertificate>::new();
    let set_mtls = ServerAction::<SetMtls>::new();
    let rotate = ServerAction::<RotateCa>::new();
    say_done(revoke);
    say_done(set_mtls);
    say_done(rotate);
    let (created, renewed, revoked, switched, rotated) = (
        successes(create),
        successes(renew),
        successes(revoke),
        successes(set_mtls),
        successes(rotate),
    );
    let data = Resource::new(
        move || {
            (
                created.get(),
                renewed.get(),
                revoked.get(),
                switched.get(),
                rotated.get(),
            )
        },
        |_| load_security(),
    );
    view! {
        <Title text="Security"/>
        <h1>"Security"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <SecurityView data create renew revoke set_mtls rotate/> }.into_any(),
                    Err(error) => view! { <FailureView error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SecurityView(
    data: SecurityData,
    create: ServerAction<CreateCertificate>,
    renew: ServerAction<RenewCertificate>,
    revoke: ServerAction<RevokeCertificate>,
    set_mtls: ServerAction<SetMtls>,
    rotate: ServerAction<RotateCa>,
) -> impl IntoView {
    let query = use_query_map();
    let issued_id = move || {
        query
            .with(|q| q.get("issued"))
            .or_else(|| create.value().get().and_then(Result::ok))
            .or_else(|| renew.value().get().and_then(Result::ok))
    };
    let rows = data.certificates.clone();
    let issued = move || {
        let id = issued_id()?;
        rows.iter().find(|r| r.id == id).cloned()
    };
    let room = data.active_certificates < data.max_active;
    view! {
        <Ready/>
        {data.warnings.into_iter().map(|w| view! { <p class="alert warn" data-testid="cert-warning">{w}</p> }).collect_view()}
        <CertificateAuthority
            cas=data.cas
            can_rotate=data.can_rotate_ca
            validity_days=data.ca_validity_days
            working=data.working_certificates
            action=rotate
        />
        <section class="card" id="certificates">
            <h2>"Certificates"</h2>
            <p class="muted">
                "Client certificates for your backend, issued by this application's own CA from a certificate signing "
                "request (CSR). The private key never leaves your backend. At most " {data.max_active}
                " certificates can be active at once, so you can roll over to a new one before the old one expires."
            </p>
            {move || issued().map(|row| view! { <Issued row/> })}
            <CreateCertificateForm action=create room max_validity_days=data.max_validity_days kept=data.kept/>
            <RenewConfirm rows=data.certificates.clone() max_validity_days=data.max_validity_days action=renew/>
            <RevokeConfirm rows=data.certificates.clone() mtls=data.mtls action=revoke/>
            <CertificateTable rows=data.certificates/>
        </section>
        <Mtls
            on=data.mtls
            secure_mode=data.secure_mode
            active=data.active_certificates
            https_url=data.https_url
            action=set_mtls
        />
    }
}

#[component]
fn Issued(row: CertificateRow) -> impl IntoView {
    view! {
        <div class="alert info" role="status" data-testid="issued">
            <p>
                "Certificate \u{201c}"{row.name.clone()}"\u{201d} issued. Download it (PEM, with the CA chain) and "
                "install it on your backend together with the private key you made the CSR with."
            </p>
            <p>
                <a class="button primary" href=download_href(&row.id) download=pem_file_name(&row.name)>
                    "Download certificate"
                </a>
            </p>
        </div>
    }
}

/// The application's CAs: the current one, those whose overlap runs (and
/// those retired lately), the bundle and CRL downloads, and the rotation.
#[component]
fn CertificateAuthority(
    cas: Vec<CaRow>,
    can_rotate: bool,
    validity_days: i64,
    working: Vec<String>,
    action: ServerAction<RotateCa>,
) -> impl IntoView {
    let query = use_query_map();
    let confirming = move || query.with(|q| q.get("rotate").as_deref() == Some("ca"));
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let several = cas.iter().filter(|c| c.state != "retired").count() > 1;
    // (hours, label): how long the old CA's certificates keep working.
    let overlaps = [
        (0, "No time: its certificates stop at once (a leaked key)"),
        (24, "24 hours"),
        (168, "7 days"),
        (720, "30 days"),
        (2160, "90 days"),
    ];
    let stopping = if working.is_empty() {
        "No certificate is active now.".to_owned()
    } else {
        format!(
            "With no time, these active certificates stop working from the next request: {}.",
            working
                .iter()
                .map(|n| format!("\u{201c}{n}\u{201d}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let stopping = StoredValue::new(stopping);
    let any_working = !working.is_empty();
    view! {
        <section class="card" id="ca">
            <h2>"Certificate authority"</h2>
            <p class="muted">
                "This application's own CA issues the client certificates below. Rotating it makes a new CA that issues "
                "from then on; the old one's certificates keep working for the overlap you choose, so you can renew them "
                "onto the new CA (no new CSR needed) before they stop."
            </p>
            <table class="stack" data-testid="ca-table">
                <thead>
                    <tr><th>"CA"</th><th>"Subject"</th><th>"SHA-256 fingerprint"</th><th>"Not after"</th><th>"State"</th></tr>
                </thead>
                <tbody>
                    {cas.into_iter().map(|c| view! {
                        <tr class=if c.state == "retired" { "muted" } else { "" } data-testid="ca-row">
                            <td data-label="CA">{c.id}</td>
                            <td class="mono" data-label="Subject">{c.subject}</td>
                            <td class="mono fingerprint" data-label="SHA-256 fingerprint">{c.fingerprint}</td>
                            <td data-label="Not after">{c.not_after}<br/><span class="muted">{c.countdown}</span></td>
                            <td data-label="State">
                                <span class=match c.state.as_str() { "current" => "badge ok", "retiring" => "badge warn", _ => "badge off" }>
                                    {c.state.clone()}
                                </span>
                            </td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <p>
                <a class="button secondary" href="/api/v1/ca.pem" download="keyward-ca.pem" data-testid="ca-download">
                    {if several { "Download the CA bundle" } else { "Download the CA certificate" }}
                </a>
                " "
                <a class="button secondary" href="/api/v1/crl.pem" download="keyward-crl.pem">"Download the CRL"</a>
            </p>
            {several.then(|| view! {
                <p class="muted">"During an overlap the bundle and the CRL file carry every CA still trusted."</p>
            })}
            <FormError error/>
            {if !can_rotate {
                view! { <p class="muted">"Only a super admin can rotate the CA."</p> }.into_any()
            } else {
                view! {
                    <Show
                        when=confirming
                        fallback=|| view! { <a class="button secondary" href="?rotate=ca#ca">"Rotate CA…"</a> }
                    >
                        <div class="confirm" role="group" aria-label="Confirm CA rotation">
                            <ActionForm action attr:class="form" attr:data-testid="rotate-ca">
                                <label>"The old CA's certificates keep working for"
                                    <select name="overlap_hours">
                                        {overlaps.into_iter().map(|(hours, label)| view! {
                                            <option value=hours.to_string() selected=hours == 168>{label}</option>
                                        }).collect_view()}
                                    </select>
                                </label>
                                <label>"The new CA is valid for (days)"
                                    <input type="number" name="validity_days" min="1" max="36500" value=validity_days required/>
                                </label>
                                <p class=if any_working { "alert warn" } else { "muted" } data-testid="rotate-stops">{stopping.get_value()}</p>
                                {any_working.then(|| view! {
                                    <label class="inline">
                                        <input type="checkbox" name="stop_active_certificates" value="yes"/>
                                        " With no time: stop them now (the old CA's key is compromised)"
                                    </label>
                                })}
                                <div>
                                    <button type="submit" class="button danger">"Rotate CA"</button>
                                    " "
                                    <a class="button secondary" href="/settings/security">"Cancel"</a>
                                </div>
                            </ActionForm>
                        </div>
                    </Show>
                }.into_any()
            }}
        </section>
    }
}

/// Active green, revoked red, anything else (expired) grey.
fn status_badge(status: &str) -> &'static str {
    match status {
        "active" => "badge ok",
        "revoked" => "badge revoked",
        _ => "badge off",
    }
}

fn download_href(id: &str) -> String {
    format!("/console/certificates/{id}/download")
}

#[component]
fn CreateCertificateForm(
    action: ServerAction<CreateCertificate>,
    room: bool,
    max_validity_days: i64,
    kept: Option<CertificateInput>,
) -> impl IntoView {
    let query = use_query_map();
    let open = move || query.with(|q| q.get("do").as_deref() == Some("create"));
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let CertificateInput {
        name,
        csr,
        validity_days,
    } = kept.unwrap_or(CertificateInput {
        name: String::new(),
        csr: String::new(),
        validity_days: max_validity_days.min(365),
    });
    let (name, csr) = (StoredValue::new(name), StoredValue::new(csr));
    view! {
        <FormError error/>
        <Show
            when=open
            fallback=move || {
                if room {
                    view! { <a class="button primary" href="?do=create#certificates">"+ Create Certificate"</a> }.into_any()
                } else {
                    view! {
                        <p class="muted" data-testid="no-room">
                            "Two certificates are active: revoke one before creating another."
                        </p>
                    }.into_any()
                }
            }
        >
            <ActionForm action attr:class="form" attr:data-testid="create-certificate">
                <label>"Name"
                    <input type="text" name="name" required maxlength="30" placeholder="backend-2026" value=name.get_value()/>
                </label>
                <label>"Certificate signing request (PEM)"
                    <textarea name="csr" rows="10" class="mono" required
                        placeholder="-----BEGIN CERTIFICATE REQUEST-----">{csr.get_value()}</textarea>
                </label>
                <p class="muted">
                    "Make one with, for example: "
                    <code>"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout backend.key -subj /CN=backend"</code>
                    ". RSA (2048 bits or more), ECDSA P-256/P-384 and Ed25519 keys are accepted."
                </p>
                <label>"Valid for (days, at most " {max_validity_days} ")"
                    <input type="number" name="validity_days" min="1" max=max_validity_days value=validity_days required/>
                </label>
                <div>
                    <button type="submit" class="button primary">"Create certificate"</button>
                    " "
                    <a class="button secondary" href="/settings/security">"Cancel"</a>
                </div>
            </ActionForm>
        </Show>
    }
}

/// `?renew=<id>`: the same key and subject issued again; the current
/// certificate keeps working for the overlap chosen.
#[component]
fn RenewConfirm(
    rows: Vec<CertificateRow>,
    max_validity_days: i64,
    action: ServerAction<RenewCertificate>,
) -> impl IntoView {
    let query = use_query_map();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let target = move || {
        let id = query.with(|q| q.get("renew"))?;
        rows.iter().find(|r| r.id == id && r.renewable).cloned()
    };
    // (hours, label): 0 stops it at once; a century means "until it expires".
    let overlaps = [
        (0, "No time: it stops at once"),
        (1, "1 hour"),
        (24, "24 hours"),
        (168, "7 days"),
        (876_000, "Until it expires"),
    ];
    view! {
        <FormError error/>
        {move || target().map(|row| view! {
            <div class="confirm" role="group" aria-label="Confirm renewal">
                <p class="alert info">
                    "Renew \u{201c}"{row.name.clone()}"\u{201d}? The CA issues a new certificate for the same key and "
                    "subject: no new CSR is needed. Install it on your backend; the current one keeps working for the "
                    "time you choose, then stops."
                </p>
                <ActionForm action attr:class="form" attr:data-testid="renew-certificate">
                    <input type="hidden" name="id" value=row.id.clone()/>
                    <label>"Valid for (days, at most " {max_validity_days} ")"
                        <input type="number" name="validity_days" min="1" max=max_validity_days
                            value=row.lifetime_days.min(max_validity_days) required/>
                    </label>
                    <label>"The current certificate keeps working for"
                        <select name="overlap_hours">
                            {overlaps.into_iter().map(|(hours, label)| view! {
                                <option value=hours.to_string() selected=hours == 24>{label}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <div>
                        <button type="submit" class="button primary">"Renew certificate"</button>
                        " "
                        <a class="button secondary" href="/settings/security">"Cancel"</a>
                    </div>
                </ActionForm>
            </div>
        })}
    }
}

#[component]
fn RevokeConfirm(rows: Vec<CertificateRow>, mtls: bool, action: ServerAction<RevokeCertificate>) -> impl IntoView {
    let query = use_query_map();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let active = rows.iter().filter(|r| r.active).count();
    let target = move || {
        let id = query.with(|q| q.get("revoke"))?;
        rows.iter().find(|r| r.id == id && r.status != "revoked").cloned()
    };
    view! {
        <FormError error/>
        {move || target().map(|row| {
            let last = mtls && row.active && active == 1;
            view! {
                <div class="confirm" role="group" aria-label="Confirm revocation">
                    <p class="alert warn">
                        "Revoke \u{201c}"{row.name.clone()}"\u{201d}? From the next request on, a backend using it is refused "
                        "wherever mTLS applies, and it is listed in the CRL. This cannot be undone."
                        {last.then_some(" It is the only active certificate and mTLS is on: no backend will be able to mint auth tokens or use the admin API until you create another certificate or turn mTLS off.")}
                    </p>
                    <ActionForm action attr:class="inline">
                        <input type="hidden" name="id" value=row.id.clone()/>
                        <button type="submit" class="button danger">"Revoke certificate"</button>
                    </ActionForm>
                    " "
                    <a class="button secondary" href="/settings/security">"Cancel"</a>
                </div>
            }
        })}
    }
}

#[component]
fn CertificateTable(rows: Vec<CertificateRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted">"No certificate yet."</p> }.into_any();
    }
    view! {
        <table class="stack" data-testid="certificate-table">
            <thead>
                <tr><th>"Name"</th><th>"Subject"</th><th>"SHA-256 fingerprint"</th><th>"Not after"</th><th>"Status"</th><th><span class="visually-hidden">"Actions"</span></th></tr>
            </thead>
            <tbody>
                {rows.into_iter().map(|r| {
                    let revocable = r.status != "revoked";
                    let revoke_href = format!("?revoke={}#certificates", r.id);
                    let renew_href = r.renewable.then(|| format!("?renew={}#certificates", r.id));
                    view! {
                        <tr class=if r.active { "" } else { "muted" } data-testid="certificate-row">
                            <td data-label="Name">{r.name.clone()}</td>
                            <td class="mono" data-label="Subject">{r.subject}</td>
                            <td class="mono fingerprint" data-label="SHA-256 fingerprint">{r.fingerprint}</td>
                            <td data-label="Not after">{r.not_after}<br/><span class="muted">{r.countdown}</span></td>
                            <td data-label="Status"><span class=status_badge(&r.status)>{r.status.clone()}</span></td>
                            <td class="actions" data-label="Actions">
                                <a href=download_href(&r.id) download=pem_file_name(&r.name)>"Download"</a>
                                {renew_href.map(|href| view! { " · " <a href=href>"Renew…"</a> })}
                                {revocable.then(|| view! { " · " <a href=revoke_href>"Revoke…"</a> })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn Mtls(on: bool, secure_mode: bool, active: i64, https_url: String, action: ServerAction<SetMtls>) -> impl IntoView {
    let query = use_query_map();
    let confirming = move || query.with(|q| q.get("confirm").as_deref() == Some("mtls"));
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let has_active = active > 0;
    let ready = secure_mode && has_active;
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    view! {
        <section class="card" id="mtls">
            <h2>"mTLS " <span class=if on { "badge ok" } else { "badge off" } data-testid="mtls-state">{if on { "On" } else { "Off" }}</span></h2>
            <p class="muted">
                "While mTLS is on, the auth-token endpoints (" <code>"GET /api/v3/authentication/token"</code> ", "
                <code>"POST /api/v4/authentication/token"</code> ") and every admin-token endpoint answer only requests that "
                "arrive over Keyward's HTTPS listener with an active certificate from the list above. Anything else gets "
                "403 with the reason. Client SDK sessions and this console are not affected."
            </p>
            <p>
                "Keyward's HTTPS listener: " <code data-testid="https-url">{https_url}</code>
                <span class="muted">" (behind a proxy that passes client certificates on, your backends use the proxy's address)"</span>
            </p>
            <ul class="checklist" data-testid="mtls-prerequisites">
                <li class=if secure_mode { "ok" } else { "missing" }>
                    {mark(secure_mode)} " Secure mode is on "
                    {(!secure_mode).then(|| view! { "(" <a href="/settings/integrations#secure-mode">"turn it on in Integrations"</a> ")" })}
                </li>
                <li class=if has_active { "ok" } else { "missing" }>
                    {mark(has_active)} " At least one active certificate (" {active} " active)"
                </li>
            </ul>
            <FormError error/>
            <Show
                when=confirming
                fallback=move || {
                    if on {
                        view! { <a class="button secondary" href="?confirm=mtls#mtls">"Turn mTLS off…"</a> }.into_any()
                    } else if ready {
                        view! { <a class="button primary" href="?confirm=mtls#mtls">"Turn mTLS on…"</a> }.into_any()
                    } else {
                        view! {
                            <button class="button primary" disabled title="Meet the prerequisites above first">
                                "Turn mTLS on…"
                            </button>
                        }.into_any()
                    }
                }
            >
                <div class="confirm" role="group" aria-label="Confirm mTLS">
                    {if on {
                        view! {
                            <p class="alert warn">
                                "Turning mTLS off lets anyone with a server key mint auth tokens, and anyone with an admin "
                                "token use the admin API, without a client certificate and over plain HTTP."
                            </p>
                        }.into_any()
                    } else {
                        view! {
                            <p class="alert warn">
                                "Backends that mint auth tokens or call the admin API without one of the certificates above "
                                "will be refused at once, as will calls over plain HTTP. Install a certificate on every "
                                "backend and point it at the HTTPS listener first."
                            </p>
                        }.into_any()
                    }}
                    <ActionForm action attr:class="inline">
                        <input type="hidden" name="enabled" value=if on { "false" } else { "true" }/>
                        <button type="submit" class="button primary">{if on { "Turn mTLS off" } else { "Turn mTLS on" }}</button>
                    </ActionForm>
                    " "
                    <a class="button secondary" href="/settings/security">"Cancel"</a>
                </div>
            </Show>
        </section>
    }
}

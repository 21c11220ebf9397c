use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{say_done, successes, AddPasskey, CopyButton, FailureView, FormError, Ready};
use crate::model::{PasskeyRow, RecoveryCodes, TotpSetup, TwoFactorData};
use crate::server_fns::two_factor::{
    load_two_factor, BeginTotp, ConfirmTotp, RegenerateRecoveryCodes, RemovePasskey, RemoveTotp, SetSecondFactorPolicy,
};

/// Settings > Two-factor sign-in: the signed-in admin's own authenticator
/// app and recovery codes. Every step is a plain form, so it all works
/// without JavaScript.
#[component]
pub fn TwoFactorPage() -> impl IntoView {
    let begin = ServerAction::<BeginTotp>::new();
    let confirm = ServerAction::<ConfirmTotp>::new();
    let regenerate = ServerAction::<RegenerateRecoveryCodes>::new();
    let remove = ServerAction::<RemoveTotp>::new();
    let policy = ServerAction::<SetSecondFactorPolicy>::new();
    let unkey = ServerAction::<RemovePasskey>::new();
    let added = RwSignal::new(0u64);
    say_done(remove);
    say_done(policy);
    say_done(unkey);
    let unkeyed = successes(unkey);
    let (begun, confirmed, regenerated, removed, ruled) = (
        successes(begin),
        successes(confirm),
        successes(regenerate),
        successes(remove),
        successes(policy),
    );
    let data = Resource::new(
        move || {
            (
                begun.get(),
                confirmed.get(),
                regenerated.get(),
                removed.get(),
                ruled.get(),
                unkeyed.get(),
                added.get(),
            )
        },
        |_| load_two_factor(),
    );
    view! {
        <Title text="Two-factor sign-in"/>
        <h1>"Two-factor sign-in"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <TwoFactorView data begin confirm regenerate remove policy unkey added/> }.into_any(),
                    Err(error) => view! { <FailureView error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn TwoFactorView(
    data: TwoFactorData,
    begin: ServerAction<BeginTotp>,
    confirm: ServerAction<ConfirmTotp>,
    regenerate: ServerAction<RegenerateRecoveryCodes>,
    remove: ServerAction<RemoveTotp>,
    policy: ServerAction<SetSecondFactorPolicy>,
    unkey: ServerAction<RemovePasskey>,
    added: RwSignal<u64>,
) -> impl IntoView {
    // New codes come back as the action's value (JavaScript) or are handed
    // to this one render (without).
    let revealed = data.revealed_codes.clone();
    let codes = move || {
        confirm
            .value()
            .get()
            .and_then(Result::ok)
            .or_else(|| regenerate.value().get().and_then(Result::ok))
            .or_else(|| revealed.clone())
    };
    let required = data.required;
    let state = match (data.enabled_at.clone(), data.pending) {
        (Some(since), _) => {
            view! { <TotpOn since left=data.recovery_codes_left required regenerate remove/> }.into_any()
        }
        (None, Some(setup)) => view! { <TotpSetUp setup confirm/> }.into_any(),
        (None, None) => view! { <TotpOff begin/> }.into_any(),
    };
    let must = (required && data.enabled_at.is_none()).then(|| {
        view! {
            <p class="alert warn" data-testid="two-factor-required">
                "Two-factor sign-in is required for every admin here. Set it up to go on into the console."
            </p>
        }
    });
    let rule = data.can_set_policy.then(|| view! { <Policy required action=policy/> });
    let keys = data.enabled_at.is_some().then(|| {
        view! { <Passkeys rows=data.passkeys.clone() origin=data.passkey_origin.clone() remove=unkey added/> }
    });
    view! {
        <Ready/>
        {must}
        {move || codes().map(|codes| view! { <ShownCodes codes/> })}
        {state}
        {keys}
        {rule}
    }
    .into_any()
}

/// A super admin's policy: every admin must have a second factor.
#[component]
fn Policy(required: bool, action: ServerAction<SetSecondFactorPolicy>) -> impl IntoView {
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    view! {
        <section class="card" id="policy" data-testid="two-factor-policy">
            <h2>"For every admin"</h2>
            {if required {
                view! {
                    <p>"Required: " <span class="badge ok">"On"</span> " an admin without two-factor sign-in sets it up before anything else."</p>
                }.into_any()
            } else {
                view! {
                    <p>"Not required: " <span class="badge off">"Off"</span> " each admin chooses. Requiring it sends every admin without it to set it up at their next page."</p>
                }.into_any()
            }}
            <FormError error/>
            <ActionForm action attr:class="form">
                <input type="hidden" name="required" value=(!required).to_string()/>
                {required.then(|| view! {
                    <label>"Code from your app" <input type="text" name="code" required maxlength="32" autocomplete="one-time-code"/></label>
                })}
                <button type="submit" class="button secondary">
                    {if required { "Stop requiring two-factor sign-in" } else { "Require two-factor sign-in for every admin" }}
                </button>
            </ActionForm>
        </section>
    }
}

#[component]
fn TotpOff(begin: ServerAction<BeginTotp>) -> impl IntoView {
    let error = Signal::derive(move || begin.value().get().and_then(Result::err));
    view! {
        <section class="card" data-testid="two-factor-off">
            <h2>"Off"</h2>
            <p>
                "Your password alone signs you in. With two-factor sign-in on, Keyward also asks for a code "
                "from an authenticator app on your phone (Google Authenticator, 1Password, Authy, …), so a "
                "stolen password is not enough."
            </p>
            <FormError error/>
            <ActionForm action=begin attr:class="form">
                <label>"Your password" <input type="password" name="password" required autocomplete="current-password" maxlength="256"/></label>
                <div><button type="submit" class="button primary">"Set up an authenticator app"</button></div>
            </ActionForm>
        </section>
    }
}

#[component]
fn TotpSetUp(setup: TotpSetup, confirm: ServerAction<ConfirmTotp>) -> impl IntoView {
    let error = Signal::derive(move || confirm.value().get().and_then(Result::err));
    let secret = setup.secret.clone();
    view! {
        <section class="card" id="set-up" data-testid="two-factor-set-up">
            <h2>"Set up your authenticator app"</h2>
            <ol class="steps">
                <li>"In your authenticator app, add an account and scan this QR code."</li>
            </ol>
            <div class="qr" role="img" aria-label="QR code for your authenticator app" inner_html=setup.qr_svg></div>
            <p>"Cannot scan it? Type this key into the app instead (time-based, 6 digits, every 30 seconds):"</p>
            <div class="secret-row">
                <input class="mono" type="text" readonly aria-label="Setup key" data-testid="totp-secret" value=setup.secret/>
                <CopyButton text=secret label="Copy the setup key"/>
            </div>
            <ol class="steps" start="2">
                <li>"Enter the 6-digit code the app now shows, to prove it is set up."</li>
            </ol>
            <FormError error/>
            <ActionForm action=confirm attr:class="form">
                <label>"Code from your app"
                    <input type="text" name="code" required inputmode="numeric" pattern="[0-9 ]{6,8}" maxlength="8"
                        autocomplete="one-time-code"/>
                </label>
                <div><button type="submit" class="button primary">"Turn on two-factor sign-in"</button></div>
            </ActionForm>
        </section>
    }
}

#[component]
fn TotpOn(
    since: String,
    left: i64,
    /// Required by the policy: it cannot be turned off.
    required: bool,
    regenerate: ServerAction<RegenerateRecoveryCodes>,
    remove: ServerAction<RemoveTotp>,
) -> impl IntoView {
    let regenerate_error = Signal::derive(move || regenerate.value().get().and_then(Result::err));
    let remove_error = Signal::derive(move || remove.value().get().and_then(Result::err));
    let left_text = match left {
        0 => "You have no recovery codes left: make new ones now.".to_owned(),
        1 => "You have 1 recovery code left.".to_owned(),
        n => format!("You have {n} recovery codes left."),
    };
    view! {
        <section class="card" data-testid="two-factor-on">
            <h2>"Authenticator app " <span class="badge ok">"On"</span></h2>
            <p>{format!("Since {since}, signing in asks for a code from your authenticator app after your password.")}</p>
            <p data-testid="recovery-codes-left">{left_text}</p>
        </section>
        <section class="card" role="group" aria-label="New recovery codes">
            <h2>"New recovery codes"</h2>
            <p class="muted">"Makes ten new codes; the ones you have stop working. Enter a code from your app to go on."</p>
            <FormError error=regenerate_error/>
            <ActionForm action=regenerate attr:class="form">
                <label>"Code from your app" <input type="text" name="code" required maxlength="32" autocomplete="one-time-code"/></label>
                <div><button type="submit" class="button secondary">"Make new recovery codes"</button></div>
            </ActionForm>
        </section>
        {if required {
            view! {
                <p class="muted" data-testid="cannot-turn-off">
                    "Two-factor sign-in is required for every admin here, so it cannot be turned off. "
                    "On a new phone? Ask the operator to reset it (keyward admin reset-2fa)."
                </p>
            }.into_any()
        } else {
            view! {
                <section class="card" role="group" aria-label="Turn two-factor sign-in off">
                    <h2>"Turn off"</h2>
                    <p class="muted">"Your password alone will sign you in again. Enter a code from your app (or a recovery code) to go on."</p>
                    <FormError error=remove_error/>
                    <ActionForm action=remove attr:class="form">
                        <label>"Code from your app, or a recovery code" <input type="text" name="code" required maxlength="32" autocomplete="one-time-code"/></label>
                        <div><button type="submit" class="button danger">"Turn two-factor sign-in off"</button></div>
                    </ActionForm>
                </section>
            }.into_any()
        }}
    }
}

/// Recovery codes, shown once: to copy, or to download as a text file
/// (a `data:` link, so it works without JavaScript too).
#[component]
fn ShownCodes(codes: RecoveryCodes) -> impl IntoView {
    let text = codes.codes.join("\n");
    let file = format!(
        "data:text/plain;charset=utf-8,{}",
        crate::pages::urlencode(&format!(
            "Keyward recovery codes. Each one signs you in once, instead of a code from your app.\n\n{text}\n"
        ))
    );
    view! {
        <section class="card reveal" id="recovery-codes" data-testid="recovery-codes" role="region" aria-label="Your recovery codes">
            <h2>"Your recovery codes"</h2>
            <p class="alert warn">
                "Save these now: they are shown only this once. Each one signs you in once if you lose your phone."
            </p>
            <ul class="codes mono">
                {codes.codes.into_iter().map(|c| view! { <li>{c}</li> }).collect_view()}
            </ul>
            <p>
                <CopyButton text=text label="Copy the recovery codes"/>
                " "
                <a class="button secondary" href=file download="keyward-recovery-codes.txt">"Download"</a>
            </p>
        </section>
    }
}

/// Passkeys and security keys, beside the app: listed, added (with
/// JavaScript), removed after a code.
#[component]
fn Passkeys(
    rows: Vec<PasskeyRow>,
    origin: Option<String>,
    remove: ServerAction<RemovePasskey>,
    added: RwSignal<u64>,
) -> impl IntoView {
    let error = Signal::derive(move || remove.value().get().and_then(Result::err));
    let list = (!rows.is_empty()).then(|| {
        view! {
            <table class="stack" data-testid="passkey-list">
                <thead><tr><th>"Name"</th><th>"Added"</th><th>"Last used"</th><th><span class="visually-hidden">"Actions"</span></th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|p| view! {
                        <tr>
                            <td data-label="Name">{p.name.clone()}</td>
                            <td data-label="Added">{p.created_at}</td>
                            <td data-label="Last used">{p.last_used_at.unwrap_or_else(|| "never".into())}</td>
                            <td data-label="Actions">
                                <ActionForm action=remove attr:class="inline">
                                    <input type="hidden" name="id" value=p.id/>
                                    <label>"Code from your app"
                                        <input type="text" name="code" required maxlength="32" autocomplete="one-time-code" size="8"/>
                                    </label>
                                    " "
                                    <button type="submit" class="link" aria-label=format!("Remove the passkey {}", p.name)>"Remove"</button>
                                </ActionForm>
                            </td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        }
    });
    view! {
        <section class="card" id="passkeys" data-testid="passkeys">
            <h2>"Passkeys and security keys"</h2>
            <p class="muted">
                "Sign in with your fingerprint, face, screen lock or a security key instead of typing a code. "
                "Your app's codes still work, and are what a sensitive step asks for."
            </p>
            <FormError error/>
            {list}
            {if let Some(origin) = origin {
                view! {
                    <p class="muted" data-testid="passkey-origin">{format!("Passkeys work with the console opened at {origin}.")}</p>
                    <AddPasskey added/>
                }.into_any()
            } else {
                view! {
                    <p class="muted" data-testid="passkeys-impossible">
                        "Passkeys need Keyward served under a domain name: its public URL is an address."
                    </p>
                }.into_any()
            }}
        </section>
    }
    .into_any()
}

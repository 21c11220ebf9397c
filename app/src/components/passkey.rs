//! The browser's half of a passkey ceremony: the server's options go to
//! the Credential API (`navigator.credentials`), its answer goes back.
//! Passkeys need JavaScript; without it these buttons are not offered and
//! the page says so.

use leptos::prelude::*;

use crate::components::{Feedback, FormError};
use crate::error::AppError;

/// Adds a passkey for the signed-in admin; `added` moves on success.
#[component]
pub fn AddPasskey(added: RwSignal<u64>) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let name = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let feedback = use_context::<Feedback>();
    let on_click = move |_| {
        busy.set(true);
        error.set(None);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let outcome = async {
                use crate::server_fns::two_factor::{begin_add_passkey, finish_add_passkey};
                let options = begin_add_passkey(name.get_untracked(), code.get_untracked()).await?;
                let answer = browser::create(&options).await?;
                finish_add_passkey(answer).await
            }
            .await;
            busy.set(false);
            match outcome {
                Ok(done) => {
                    name.set(String::new());
                    code.set(String::new());
                    if let Some(f) = feedback {
                        f.say(done.message);
                    }
                    added.update(|n| *n += 1);
                }
                Err(e) => error.set(Some(e)),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (feedback, added);
    };
    view! {
        <Show
            when=move || hydrated.get()
            fallback=|| view! { <p class="muted" data-testid="passkeys-need-javascript">"Adding a passkey needs JavaScript."</p> }
        >
            <FormError error=Signal::derive(move || error.get())/>
            <div class="form">
                <label>"Name of the new passkey"
                    <input type="text" maxlength="40" placeholder="Work laptop" prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev))/>
                </label>
                <label>"Code from your app"
                    <input type="text" maxlength="32" autocomplete="one-time-code" prop:value=move || code.get()
                        on:input=move |ev| code.set(event_target_value(&ev))/>
                </label>
                <div>
                    <button type="button" class="button secondary" disabled=move || busy.get() on:click=on_click>
                        "Add a passkey"
                    </button>
                </div>
            </div>
        </Show>
    }
}

/// The second step of a sign-in with a passkey; on success the browser
/// goes where the server says.
#[component]
pub fn PasskeySignIn(next: Option<String>) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let error = RwSignal::new(None::<AppError>);
    let busy = RwSignal::new(false);
    let next = StoredValue::new(next);
    let on_click = move |_| {
        busy.set(true);
        error.set(None);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let outcome = async {
                use crate::server_fns::session::{begin_passkey_sign_in, finish_passkey_sign_in};
                let Some(options) = begin_passkey_sign_in().await? else {
                    return Err(AppError::Conflict(
                        "No passkey is set up for this account: enter a code instead.".into(),
                    ));
                };
                let answer = browser::get(&options).await?;
                finish_passkey_sign_in(answer, next.get_value()).await
            }
            .await;
            busy.set(false);
            match outcome {
                Ok(to) => {
                    let _ = window().location().set_href(&to);
                }
                Err(e) => error.set(Some(e)),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = next;
    };
    view! {
        <Show
            when=move || hydrated.get()
            fallback=|| view! { <p class="muted">"Signing in with a passkey needs JavaScript."</p> }
        >
            <FormError error=Signal::derive(move || error.get())/>
            <p>
                <button type="button" class="button secondary" disabled=move || busy.get() on:click=on_click>
                    "Use a passkey"
                </button>
            </p>
        </Show>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::window;
    use leptos::wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    use crate::error::AppError;

    fn refused(e: impl std::fmt::Debug) -> AppError {
        leptos::logging::warn!("passkey ceremony: {e:?}");
        AppError::Invalid("The browser did not give a passkey (cancelled, or none fits). Try again.".into())
    }

    /// The credential the browser's ceremony gives.
    async fn answered(
        promise: Result<web_sys::js_sys::Promise, leptos::wasm_bindgen::JsValue>,
    ) -> Result<web_sys::PublicKeyCredential, AppError> {
        JsFuture::from(promise.map_err(refused)?)
            .await
            .map_err(refused)?
            .dyn_into()
            .map_err(refused)
    }

    /// `navigator.credentials.create` with the server's options (JSON).
    pub async fn create(options: &str) -> Result<String, AppError> {
        let options: webauthn_rs_proto::CreationChallengeResponse = serde_json::from_str(options).map_err(refused)?;
        let options: web_sys::CredentialCreationOptions = options.into();
        let credential = answered(window().navigator().credentials().create_with_options(&options)).await?;
        serde_json::to_string(&webauthn_rs_proto::RegisterPublicKeyCredential::from(credential)).map_err(refused)
    }

    /// `navigator.credentials.get` with the server's options (JSON).
    pub async fn get(options: &str) -> Result<String, AppError> {
        let options: webauthn_rs_proto::RequestChallengeResponse = serde_json::from_str(options).map_err(refused)?;
        let options: web_sys::CredentialRequestOptions = options.into();
        let credential = answered(window().navigator().credentials().get_with_options(&options)).await?;
        serde_json::to_string(&webauthn_rs_proto::PublicKeyCredential::from(credential)).map_err(refused)
    }
}

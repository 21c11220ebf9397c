use std::time::Duration;

use leptos::prelude::*;

/// Copies `text` to the clipboard. Rendered only once the page is hydrated:
/// without JavaScript there is nothing it could do, so it is not offered.
/// "Copied" is said to screen readers too, and turns back into "Copy".
#[component]
pub fn CopyButton(#[prop(into)] text: String, #[prop(into)] label: String) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let copied = RwSignal::new(false);
    let on_click = move |_| {
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
        #[cfg(feature = "hydrate")]
        {
            let clipboard = window().navigator().clipboard();
            let _ = clipboard.write_text(&text);
        }
        copied.set(true);
        set_timeout(move || copied.set(false), Duration::from_secs(3));
    };
    view! {
        <Show when=move || hydrated.get()>
            <button type="button" class="button secondary copy" aria-label=label.clone() on:click=on_click.clone()>
                {move || if copied.get() { "Copied" } else { "Copy" }}
            </button>
        </Show>
        <span class="visually-hidden" role="status" aria-live="polite">
            {move || copied.get().then_some("Copied to the clipboard.")}
        </span>
    }
}

use leptos::prelude::*;

/// A row's "…" menu. A `<details>` element, so it opens without
/// JavaScript (and choosing an item loads a new page, which closes it).
/// Once hydrated it also closes as a menu should: when an item is
/// chosen, on Escape (focus back on its button), and on a click or a
/// focus anywhere outside it.
#[component]
pub fn Menu(#[prop(into)] label: String, children: Children) -> impl IntoView {
    let menu = NodeRef::<leptos::html::Details>::new();
    let close = move || {
        if let Some(details) = menu.get_untracked() {
            let _ = details.remove_attribute("open");
        }
    };
    // Closes the menu when something outside it is clicked or focused.
    let outside = move |target: Option<leptos::web_sys::EventTarget>| {
        let Some(details) = menu.get_untracked() else { return };
        let target = target.and_then(|t| {
            use leptos::wasm_bindgen::JsCast;
            t.dyn_into::<leptos::web_sys::Node>().ok()
        });
        if !details.contains(target.as_ref()) {
            let _ = details.remove_attribute("open");
        }
    };
    Effect::new(move |_| {
        let clicks = window_event_listener(leptos::ev::click, move |ev| outside(ev.target()));
        let focus = window_event_listener(leptos::ev::focusin, move |ev| outside(ev.target()));
        on_cleanup(move || {
            clicks.remove();
            focus.remove();
        });
    });
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            close();
            if let Some(summary) = menu
                .get_untracked()
                .and_then(|d| d.query_selector("summary").ok().flatten())
            {
                use leptos::wasm_bindgen::JsCast;
                if let Ok(summary) = summary.dyn_into::<leptos::web_sys::HtmlElement>() {
                    let _ = summary.focus();
                }
            }
        }
    };
    view! {
        <details class="menu" node_ref=menu on:keydown=on_key>
            <summary aria-label=label>"…"</summary>
            <div class="menu-items" on:click=move |_| close()>{children()}</div>
        </details>
    }
}

use leptos::prelude::*;

/// Marks the page as interactive once this point of the tree has hydrated.
/// Placed inside each page's loaded content (after its Suspense), so tests
/// and scripts wait for the part people click, not just the frame.
#[component]
pub fn Ready() -> impl IntoView {
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-ready", "true");
        }
    });
}

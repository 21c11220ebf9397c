use leptos::prelude::*;

/// Marks the page as interactive once this point of the tree has hydrated:
/// `data-ready` on the body names the page's path, and is taken away when
/// the page goes (in-app navigation), so a test waiting for the next page
/// cannot be answered by the last one. Placed inside each page's loaded
/// content (after its Suspense): tests wait for the part people click.
#[component]
pub fn Ready() -> impl IntoView {
    Effect::new(move |_| {
        let Some(body) = document().body() else { return };
        // The next page's mark may be set before this one's cleanup runs:
        // each mark has its own number, and a cleanup removes only its own.
        static MARKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mine = MARKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string();
        let path = window().location().pathname().unwrap_or_default();
        let _ = body.set_attribute("data-ready", &path);
        let _ = body.set_attribute("data-ready-mark", &mine);
        on_cleanup(move || {
            let Some(body) = document().body() else { return };
            if body.get_attribute("data-ready-mark").as_deref() == Some(mine.as_str()) {
                let _ = body.remove_attribute("data-ready");
                let _ = body.remove_attribute("data-ready-mark");
            }
        });
    });
}

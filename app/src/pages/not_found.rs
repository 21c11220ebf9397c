use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::Ready;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <main class="narrow">
            <Ready/>
            <h1>"Page not found"</h1>
            <p><a href="/">"Go to the console"</a></p>
        </main>
    }
}

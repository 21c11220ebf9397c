use leptos::prelude::*;

use crate::server_fns::setup::CUSTOM;

/// The region inputs of a form: a built-in region, or "custom" with the
/// label and public base URL typed beside it. Plain inputs, so the form
/// works the same without JavaScript; the server reads the label and URL
/// only when "custom" is chosen.
#[component]
pub fn RegionFields(
    /// (code, name) of the built-in regions.
    regions: Vec<(String, String)>,
    /// The region now chosen: a built-in code or a custom label.
    #[prop(optional, into)]
    current: String,
    /// A custom region's URL now in use.
    current_url: Option<String>,
) -> impl IntoView {
    let is_custom = current_url.is_some();
    let custom_label = if is_custom { current.clone() } else { String::new() };
    view! {
        <label>"Region"
            <select name="region" required>
                {regions.into_iter().map(|(code, name)| {
                    let selected = !is_custom && code == current;
                    view! { <option value=code.clone() selected=selected>{format!("{name} ({code})")}</option> }
                }).collect_view()}
                <option value=CUSTOM selected=is_custom>"Custom region (below)"</option>
            </select>
        </label>
        <label>"Custom label (letters, digits, hyphens)"
            <input type="text" name="custom_region" maxlength="32" value=custom_label autocomplete="off"/>
        </label>
        <label>"Custom base URL (what its clients use)"
            <input type="url" name="region_url" maxlength="200" value=current_url.unwrap_or_default()
                placeholder="https://chat.example.com/" autocomplete="off"/>
        </label>
    }
}

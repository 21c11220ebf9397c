use leptos::prelude::*;

use crate::model::RegionInput;
use crate::server_fns::setup::CUSTOM;

/// The region inputs of a form: a built-in region, or "custom" with the
/// label and public base URL typed beside it. Plain inputs, so the form
/// works the same without JavaScript; the server reads the label and URL
/// only when "custom" is chosen.
#[component]
pub fn RegionFields(
    /// (code, name) of the built-in regions.
    regions: Vec<(String, String)>,
    /// What the fields start with: the region now in use, or what was
    /// typed before a refusal.
    #[prop(optional)]
    chosen: RegionInput,
) -> impl IntoView {
    let is_custom = chosen.region == CUSTOM;
    view! {
        <label>"Region"
            <select name="region" required>
                {regions.into_iter().map(|(code, name)| {
                    let selected = !is_custom && code == chosen.region;
                    view! { <option value=code.clone() selected=selected>{format!("{name} ({code})")}</option> }
                }).collect_view()}
                <option value=CUSTOM selected=is_custom>"Custom region (below)"</option>
            </select>
        </label>
        <label>"Custom label (letters, digits, hyphens)"
            <input type="text" name="custom_region" maxlength="32" value=chosen.custom_region autocomplete="off"/>
        </label>
        <label>"Custom base URL (what its clients use)"
            <input type="url" name="region_url" maxlength="200" value=chosen.region_url
                placeholder="https://chat.example.com/" autocomplete="off"/>
        </label>
    }
}

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::AdminRow;

#[server(prefix = "/console/fn", endpoint = "admins")]
pub async fn list_admins() -> Result<Vec<AdminRow>, AppError> {
    use crate::domain::{admins, clock};

    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_admin().await?;
    let rows = admins::list(&kw.db)
        .await?
        .into_iter()
        .map(|a| AdminRow {
            is_you: a.id == current.admin.id,
            username: a.username,
            role: a.role,
            disabled: a.disabled,
            created_at: clock::display(a.created_at),
        })
        .collect();
    Ok(rows)
}

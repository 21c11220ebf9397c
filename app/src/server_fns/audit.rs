use leptos::prelude::*;

use crate::error::AppError;
use crate::model::AuditPage;

/// The audit log, newest first, narrowed by actor, action prefix and target.
/// Every signed-in admin may read it: it names who changed which asset and
/// from where, never a secret (SPEC §3).
#[server(prefix = "/console/fn", endpoint = "audit_events")]
pub async fn list_audit(
    actor: String,
    action: String,
    target: String,
    before: Option<i64>,
) -> Result<AuditPage, AppError> {
    use crate::domain::{audit, clock::display};
    use crate::model::AuditRow;

    /// A filter field longer than this cannot match anything stored.
    const MAX_FILTER: usize = 200;

    let kw = crate::auth::keyward()?;
    crate::auth::require_admin().await?;
    let filter = audit::Filter {
        actor: actor.trim().to_string(),
        action: action.trim().to_string(),
        target: target.trim().to_string(),
    };
    for (name, value) in [
        ("Actor", &filter.actor),
        ("Action", &filter.action),
        ("Target", &filter.target),
    ] {
        if value.chars().count() > MAX_FILTER {
            return Err(AppError::Invalid(format!(
                "{name} must be at most {MAX_FILTER} characters."
            )));
        }
    }
    let found = audit::page(&kw.db, &filter, before, audit::PAGE_SIZE).await?;
    Ok(AuditPage {
        rows: found
            .events
            .into_iter()
            .map(|e| AuditRow {
                seq: e.seq,
                at: display(e.at),
                actor: e.actor,
                action: e.action,
                target: e.target,
                detail: e.detail,
                source: e.source,
            })
            .collect(),
        actor: filter.actor,
        action: filter.action,
        target: filter.target,
        older_than: found.older_than,
    })
}

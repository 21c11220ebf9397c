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

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let (filter, found) = kw
        .audit_page(&who, audit::Filter { actor, action, target }, before, None)
        .await?;
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

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::AuditPage;

/// The audit log, newest first, narrowed by actor, action and target (any
/// part, any case) and by a range of days (UTC). Every signed-in admin may
/// read it: it names who changed which asset and from where, never a
/// secret (SPEC §3).
#[server(prefix = "/console/fn", endpoint = "audit_events")]
pub async fn list_audit(
    actor: String,
    action: String,
    target: String,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
) -> Result<AuditPage, AppError> {
    use crate::domain::clock::display;
    use crate::model::AuditRow;

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let actions = kw.audit_actions(&who).await?;
    // Optional on the wire: callers from before the range existed send none.
    let (from, to) = (
        from.unwrap_or_default().trim().to_string(),
        to.unwrap_or_default().trim().to_string(),
    );
    // A bad filter is said on the page, which keeps the form to correct it.
    let refused = |problem: String, actor, action, target| AuditPage {
        rows: Vec::new(),
        actor,
        action,
        target,
        from: from.clone(),
        to: to.clone(),
        actions: actions.clone(),
        problem: Some(problem),
        older_than: None,
    };
    let filter = match filter(actor.clone(), action.clone(), target.clone(), &from, &to) {
        Ok(filter) => filter,
        Err(e) => return Ok(refused(e.to_string(), actor, action, target)),
    };
    let (filter, found) = match kw.audit_page(&who, filter, before, None).await {
        Ok(found) => found,
        Err(crate::domain::DomainError::Invalid { message, .. }) => return Ok(refused(message, actor, action, target)),
        Err(e) => return Err(e.into()),
    };
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
                detail: readable(&e.detail),
                source: e.source,
            })
            .collect(),
        actor: filter.actor,
        action: filter.action,
        target: filter.target,
        from,
        to,
        actions,
        problem: None,
        older_than: found.older_than,
    })
}

/// The audit filter from the page's fields: `from` and `to` are days
/// (YYYY-MM-DD, UTC), both included; empty for no bound.
#[cfg(feature = "ssr")]
pub fn filter(
    actor: String,
    action: String,
    target: String,
    from: &str,
    to: &str,
) -> Result<crate::domain::audit::Filter, AppError> {
    const DAY_MS: i64 = 86_400_000;
    Ok(crate::domain::audit::Filter {
        actor,
        action,
        target,
        since: day_start(from, "From")?,
        until: day_start(to, "To")?.map(|t| t + DAY_MS),
    })
}

/// Midnight UTC of a `YYYY-MM-DD` day, in ms; `None` for an empty field.
#[cfg(feature = "ssr")]
fn day_start(field: &str, name: &str) -> Result<Option<i64>, AppError> {
    let field = field.trim();
    if field.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(field, &format)
        .map_err(|_| AppError::Invalid(format!("{name} must be a date like 2026-11-28.")))?;
    Ok(Some(day.midnight().assume_utc().unix_timestamp() * 1000))
}

/// An event's detail (a JSON object) as lines a person reads: labels in
/// words, times as times, durations in hours, a change as before → after.
#[cfg(feature = "ssr")]
pub fn readable(detail: &str) -> Vec<(String, String)> {
    use serde_json::Value;

    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(detail) else {
        return match detail {
            "" | "null" => Vec::new(),
            other => vec![("detail".into(), other.to_string())],
        };
    };
    fields
        .into_iter()
        .map(|(key, value)| {
            let text = match &value {
                Value::Object(change) if change.contains_key("from") && change.contains_key("to") => {
                    let switch = |v: &Value| match v {
                        Value::Bool(on) => if *on { "on" } else { "off" }.to_string(),
                        other => word(&key, other),
                    };
                    format!("{} → {}", switch(&change["from"]), switch(&change["to"]))
                }
                other => word(&key, other),
            };
            (key.replace('_', " "), text)
        })
        .collect()
}

/// One value in words: a time for `…_at`/`until` fields, hours for
/// `…_seconds`, yes or no.
#[cfg(feature = "ssr")]
fn word(key: &str, value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Number(n) if key.ends_with("_at") || key.ends_with("until") => {
            n.as_i64().map_or_else(|| n.to_string(), crate::domain::clock::display)
        }
        Value::Number(n) if key.ends_with("_seconds") => match n.as_i64() {
            Some(0) => "none".into(),
            Some(s) if s % 3600 == 0 => format!("{} h", s / 3600),
            Some(s) => format!("{s} s"),
            None => n.to_string(),
        },
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

//! The audit log as a file: what the console's filter shows, as CSV (for a
//! spreadsheet) or JSON Lines (for a SIEM or `jq`). Behind the console's
//! sign-in, like the page.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use tower_sessions::Session;

use app::auth::ClientAddr;
use app::domain::audit::{StoredEvent, MAX_PAGE};

use super::AppState;

/// The most events one export holds (newest first).
const MAX_EVENTS: usize = 100_000;

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    format: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// `GET /console/audit-log/export?format=csv|jsonl&actor=…&action=…&target=…&from=…&to=…`
pub async fn export(
    State(state): State<AppState>,
    session: Session,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let kw = &state.keyward;
    let who = match super::console::signed_in(kw, &session, client).await {
        Ok(who) => who,
        Err(elsewhere) => return elsewhere,
    };
    let Ok(Query(q)) = query else {
        return refused("Say which format: format=csv or format=jsonl.");
    };
    let csv = match q.format.as_str() {
        "csv" => true,
        "jsonl" => false,
        _ => return refused("The format is csv or jsonl."),
    };
    let filter = match app::server_fns::audit::filter(q.actor, q.action, q.target, &q.from, &q.to) {
        Ok(filter) => filter,
        Err(e) => return refused(&e.to_string()),
    };
    let mut events = Vec::new();
    let mut before = None;
    loop {
        let page = match kw.audit_page(&who, filter.clone(), before, Some(MAX_PAGE)).await {
            Ok((_, page)) => page,
            Err(app::domain::DomainError::Invalid { message, .. }) => return refused(&message),
            Err(e) => {
                tracing::error!(error = %e, "could not read the audit log for an export");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        events.extend(page.events);
        match page.older_than {
            Some(seq) if events.len() < MAX_EVENTS => before = Some(seq),
            _ => break,
        }
    }
    events.truncate(MAX_EVENTS);
    let day = time::OffsetDateTime::now_utc().date();
    let (body, kind, ext) = if csv {
        (as_csv(&events), "text/csv; charset=utf-8", "csv")
    } else {
        (as_json_lines(&events), "application/x-ndjson", "jsonl")
    };
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"keyward-audit-{day}.{ext}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    #[serde(default)]
    after: i64,
}

/// `GET /console/audit-log/stream?after=`: the whole log as the admin API
/// exports it (oldest first, every event with its chain hash), for
/// `keyward audit verify --file` or a SIEM, downloaded from the console.
pub async fn stream(
    State(state): State<AppState>,
    session: Session,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let kw = &state.keyward;
    let who = match super::console::signed_in(kw, &session, client).await {
        Ok(who) => who,
        Err(elsewhere) => return elsewhere,
    };
    let Ok(Query(q)) = query else {
        return refused("after is an event's sequence number.");
    };
    match super::api::audit_stream::stream(kw.clone(), who, q.after).await {
        Ok(mut res) => {
            let day = time::OffsetDateTime::now_utc().date();
            if let Ok(v) = format!("attachment; filename=\"keyward-audit-stream-{day}.jsonl\"").parse() {
                res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            res
        }
        Err(app::domain::DomainError::Invalid { message, .. }) => refused(&message),
        Err(e) => {
            tracing::error!(error = %e, "could not read the audit log for a download");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn refused(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, message.to_string()).into_response()
}

fn as_csv(events: &[StoredEvent]) -> String {
    let mut out = String::from("seq,at,actor,action,target,detail,source\r\n");
    for e in events {
        let cells = [
            e.seq.to_string(),
            rfc3339(e.at),
            e.actor.clone(),
            e.action.clone(),
            e.target.clone(),
            e.detail.clone(),
            e.source.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn as_json_lines(events: &[StoredEvent]) -> String {
    let mut out = String::new();
    for e in events {
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null);
        let line = serde_json::json!({
            "seq": e.seq,
            "at": rfc3339(e.at),
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "detail": detail,
            "source": e.source,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

/// An event's time as RFC 3339, UTC.
fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// One CSV cell (RFC 4180): quoted when it holds a comma, quote or line
/// break; and one a spreadsheet would run as a formula (`=`, `+`, `-`,
/// `@`, tab, CR first) is quoted as text behind a `'` (OWASP's advice).
pub fn csv_cell(value: &str) -> String {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let value = if formula {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if formula || value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

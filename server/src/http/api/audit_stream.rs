//! `GET /api/v1/audit-events/export?after=`: the audit log as JSON Lines
//! for a SIEM, streamed a page at a time (never the whole log in memory),
//! resumable from any event.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use app::domain::audit_export::{write_lines, ExportedEvent, EXPORT_PAGE};
use app::domain::{Keyward, Principal};

use super::extract::{AdminToken, ApiQuery};
use super::{AdminTokenRefusals, ApiError, ErrorBody};
use crate::http::AppState;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Start after this event's sequence number (0, or left out: from the
    /// first event).
    #[param(minimum = 0)]
    after: Option<i64>,
}

/// One event per line, oldest first: `seq`, `time`, `at` (ms), `actor`,
/// `action`, `target`, `detail`, `source`, `prevHash` and `hash`, so a
/// copy can be checked offline with `keyward audit verify --file`.
#[utoipa::path(
    get,
    path = "/api/v1/audit-events/export",
    tag = "Admin",
    summary = "The audit log as JSON Lines",
    params(ExportQuery),
    responses(
        (status = 200, description = "One event per line, oldest first, each with its chain hash and the one before it",
         content_type = "application/x-ndjson", body = String),
        (status = 400, description = "A malformed query or a negative `after`", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn export(
    State(state): State<AppState>,
    token: AdminToken,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    Ok(stream(state.keyward.clone(), token.principal().clone(), q.after.unwrap_or(0)).await?)
}

/// The log after event `after`, streamed a page at a time: the admin
/// API's export and the console's download alike. The first page is read
/// before the answer starts, so bad input is an error, not a broken stream.
pub(crate) async fn stream(kw: Keyward, who: Principal, after: i64) -> Result<Response, app::domain::DomainError> {
    let first = kw.audit_export(&who, after, EXPORT_PAGE).await?;
    let pages = futures_util::stream::try_unfold(Pages::First(first, kw, who), Pages::next);
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(pages),
    )
        .into_response())
}

enum Pages {
    First(Vec<ExportedEvent>, Keyward, Principal),
    After(i64, Keyward, Principal),
}

impl Pages {
    async fn next(self) -> Result<Option<(Bytes, Pages)>, std::io::Error> {
        let (page, kw, who) = match self {
            Pages::First(page, kw, who) => (page, kw, who),
            Pages::After(after, kw, who) => {
                let page = kw.audit_export(&who, after, EXPORT_PAGE).await.map_err(|e| {
                    // The answer has begun: it can only be cut short. The
                    // detail goes to the log.
                    tracing::error!(error = %e, after, "the audit export failed");
                    std::io::Error::other("the audit export failed")
                })?;
                (page, kw, who)
            }
        };
        let Some(last) = page.last().map(|e| e.seq) else {
            return Ok(None);
        };
        let mut lines = Vec::with_capacity(page.len() * 256);
        write_lines(&page, &mut lines)?;
        Ok(Some((Bytes::from(lines), Pages::After(last, kw, who))))
    }
}

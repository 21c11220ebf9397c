//! The console's few plain routes: file downloads, which a page links to
//! and the browser saves. Behind the same sign-in gate as every server
//! function. And how server functions answer: with the status their
//! error deserves, and, for a form posted without JavaScript, with an
//! error the next page may show only because this server put it there.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tower_sessions::Session;

use app::auth::{check_admin, ClientAddr};
use app::domain::{DomainError, Entity};
use app::error::AppError;
use app::model::pem_file_name;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/certificates/{id}/download", get(download_certificate))
        .route("/console/audit-log/export", get(super::audit_export::export))
        .route("/console/audit-log/stream", get(super::audit_export::stream))
}

/// The admin behind a plain console route, or where the browser goes
/// instead: sign-in, setup, or choosing their own password.
pub(super) async fn signed_in(
    kw: &app::domain::Keyward,
    session: &Session,
    client: String,
) -> Result<app::domain::Principal, Response> {
    check_admin(kw, session, client).await.map_err(|e| match e {
        AppError::Unauthorized => Redirect::to("/login?reason=signed-out").into_response(),
        AppError::SetupRequired => Redirect::to("/setup").into_response(),
        AppError::PasswordChangeRequired => Redirect::to("/settings/password").into_response(),
        AppError::SecondFactorRequired => Redirect::to("/settings/two-factor").into_response(),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    })
}

/// A certificate as PEM, followed by the CA certificate (the chain).
async fn download_certificate(
    State(state): State<AppState>,
    session: Session,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    Path(id): Path<String>,
) -> Response {
    let kw = &state.keyward;
    let who = match signed_in(kw, &session, client).await {
        Ok(who) => who,
        Err(elsewhere) => return elsewhere,
    };
    match kw.certificate(&who, &id).await {
        Ok((info, pem)) => (
            [
                (header::CONTENT_TYPE, "application/x-pem-file".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", pem_file_name(&info.name)),
                ),
            ],
            pem,
        )
            .into_response(),
        Err(DomainError::NotFound(Entity::Certificate)) => {
            (StatusCode::NOT_FOUND, "No such certificate.").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read a certificate for download");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The header server_fn puts on an error answer.
const SERVER_FN_ERROR: &str = "serverfnerror";
/// The error of the last form posted without JavaScript, for its next page.
const FORM_ERROR: &str = "keyward.form_error";
/// Errors are a short JSON value; anything longer is not one of ours.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// Around every console request (inside the session layer).
///
/// - A server function's error leaves with its own status (400, 401, 403,
///   409, 429), not server_fn's blanket 500.
/// - Without JavaScript, a failed form post is redirected back with the
///   error in the URL (`__path`, `__err`), and the page shows it. Anybody
///   can write such a URL, so the page is only rendered with it when this
///   session's last post failed with exactly that error, once; otherwise
///   the URL is cleaned by a redirect.
pub async fn answers(session: Session, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/console/fn/") {
        let res = next.run(req).await;
        return function_answer(&session, res).await;
    }
    let query = req.uri().query().unwrap_or_default();
    // Names are compared decoded (`%5F%5Ferr` is `__err` to the page too).
    let carries_error = url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "__err" || k == "__path");
    if carries_error {
        let shown = form_error_in(query);
        let flashed = session.remove::<(String, String)>(FORM_ERROR).await.ok().flatten();
        if req.method() != Method::GET || shown.is_none() || shown != flashed {
            return Redirect::to(&without_form_error(req.uri().path(), query)).into_response();
        }
    }
    next.run(req).await
}

async fn function_answer(session: &Session, res: Response) -> Response {
    if res.status().is_redirection() {
        let error = res
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| form_error_in(l.split_once('?')?.1));
        if let Some(error) = error {
            if let Err(e) = session.insert(FORM_ERROR, error).await {
                tracing::warn!(error = %e, "could not keep a form's error for its page");
            }
        }
        return res;
    }
    if !(res.status() == StatusCode::INTERNAL_SERVER_ERROR && res.headers().contains_key(SERVER_FN_ERROR)) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return (parts, Body::empty()).into_response();
    };
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    (parts, Body::from(bytes)).into_response()
}

/// The `__path` and `__err` of a query string, if both are there.
fn form_error_in(query: &str) -> Option<(String, String)> {
    let mut path = None;
    let mut err = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "__path" => path = Some(v.into_owned()),
            "__err" => err = Some(v.into_owned()),
            _ => {}
        }
    }
    Some((path?, err?))
}

fn without_form_error(path: &str, query: &str) -> String {
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k != "__path" && k != "__err")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        return path.to_string();
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    format!("{path}?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_errors_are_read_from_and_cleaned_out_of_queries() {
        assert_eq!(
            form_error_in("a=1&__path=%2Fconsole%2Ffn%2Flogin&__err=eyJ4Ijp9"),
            Some(("/console/fn/login".into(), "eyJ4Ijp9".into()))
        );
        assert_eq!(form_error_in("__err=x"), None);
        assert_eq!(without_form_error("/login", "__path=p&__err=e"), "/login");
        assert_eq!(
            without_form_error("/settings/admin-users", "q=a+b&__path=p&__err=e&page=2"),
            "/settings/admin-users?q=a+b&page=2"
        );
    }
}

//! The console's few plain routes: file downloads, which a page links to
//! and the browser saves. Behind the same sign-in gate as every server
//! function.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tower_sessions::Session;

use app::auth::{check_admin, ClientAddr};
use app::domain::{certificates, DomainError};
use app::error::AppError;
use app::model::pem_file_name;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/certificates/{id}/download", get(download_certificate))
}

/// A certificate as PEM, followed by the CA certificate (the chain).
async fn download_certificate(
    State(state): State<AppState>,
    session: Session,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    Path(id): Path<String>,
) -> Response {
    let kw = &state.keyward;
    match check_admin(kw, &session, client).await {
        Ok(_) => {}
        Err(AppError::Unauthorized) => return Redirect::to("/login?reason=signed-out").into_response(),
        Err(AppError::SetupRequired) => return Redirect::to("/setup").into_response(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
    match certificates::get_with_chain(&kw.db, &id).await {
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
        Err(DomainError::NotFound) => (StatusCode::NOT_FOUND, "No such certificate.").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not read a certificate for download");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

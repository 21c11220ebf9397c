//! Certificates through the admin API, and the public CA certificate and
//! CRL that clients and proxies fetch.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use app::domain::clock::iso;
use app::domain::pki::certificates::{CertificateInfo, Validity};
use app::domain::DomainError;

use super::extract::{json_or_default, AdminToken, ApiJson};
use super::{AdminTokenRefusals, ApiError, ErrorBody, Success};
use crate::http::AppState;

/// A client certificate's metadata; with its PEM where asked for one.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    id: String,
    name: String,
    subject: String,
    key_type: String,
    serial_number: String,
    fingerprint_sha256: String,
    not_before: String,
    not_after: String,
    /// `active`, `expired`, `revoked`, `replaced` (renewed, past its
    /// overlap) or `ca_retired` (its CA was rotated out).
    status: &'static str,
    created_at: String,
    created_by: String,
    revoked_at: Option<String>,
    /// Renewed: it works until then (at most its own `notAfter`)…
    retires_at: Option<String>,
    /// …and this certificate replaced it.
    renewed_as: Option<String>,
    /// The CA that issued it, numbered from 1 (each rotation makes the next).
    ca: i64,
    /// Its CA was rotated out: the certificate works until then.
    ca_retires_at: Option<String>,
    /// The certificate and the CA chain (PEM): on creation and on `GET /{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pem: Option<String>,
}

impl Certificate {
    fn of(c: CertificateInfo, pem: Option<String>) -> Certificate {
        Certificate {
            status: c.status.as_str(),
            not_before: iso(c.not_before),
            not_after: iso(c.not_after),
            created_at: iso(c.created_at),
            revoked_at: c.revoked_at.map(iso),
            retires_at: c.retires_at.map(iso),
            renewed_as: c.renewed_as,
            ca: c.ca_id,
            ca_retires_at: c.ca_retires_at.map(iso),
            id: c.id,
            name: c.name,
            subject: c.subject,
            key_type: c.key_type,
            serial_number: c.serial_hex,
            fingerprint_sha256: c.fingerprint,
            created_by: c.created_by,
            pem,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Certificates {
    certificates: Vec<Certificate>,
}

/// `GET /api/v1/certificates`
#[utoipa::path(
    get,
    path = "/api/v1/certificates",
    tag = "Certificates",
    summary = "The application's client certificates",
    responses((status = 200, description = "Newest first", body = Certificates), AdminTokenRefusals),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>, token: AdminToken) -> Result<Json<Certificates>, ApiError> {
    let rows = state.keyward.certificates(token.principal()).await?;
    Ok(Json(Certificates {
        certificates: rows.into_iter().map(|c| Certificate::of(c, None)).collect(),
    }))
}

/// `GET /api/v1/certificates/{id}`: one certificate with its PEM (and the
/// CA chain), to download again what `POST` returned once.
#[utoipa::path(
    get,
    path = "/api/v1/certificates/{id}",
    tag = "Certificates",
    summary = "One certificate, with its PEM and the CA chain",
    params(("id" = String, Path, description = "The certificate's id")),
    responses(
        (status = 200, description = "The certificate", body = Certificate),
        (status = 404, description = "No certificate with that id", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    token: AdminToken,
    Path(id): Path<String>,
) -> Result<Json<Certificate>, ApiError> {
    let (info, chain) = state.keyward.certificate(token.principal(), &id).await?;
    Ok(Json(Certificate::of(info, Some(chain))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCertificateBody {
    name: String,
    csr: String,
    /// Whole days; or `validitySeconds` for short-lived certificates.
    validity_days: Option<i64>,
    validity_seconds: Option<i64>,
}

/// `validityDays` or `validitySeconds` (not both), or the default.
fn validity(days: Option<i64>, seconds: Option<i64>) -> Result<Validity, ApiError> {
    match (days, seconds) {
        (Some(_), Some(_)) => Err(ApiError::BadRequest(
            "Give validityDays or validitySeconds, not both".into(),
        )),
        (Some(days), None) => Ok(Validity::Days(days)),
        (None, Some(secs)) => Ok(Validity::Seconds(secs)),
        (None, None) => Ok(Validity::Default),
    }
}

/// `POST /api/v1/certificates`: issues a certificate from a CSR and returns
/// it (PEM with the CA chain) with its metadata.
#[utoipa::path(
    post,
    path = "/api/v1/certificates",
    tag = "Certificates",
    summary = "Issue a client certificate from a CSR",
    request_body = NewCertificateBody,
    responses(
        (status = 200, description = "The certificate, with its PEM and the CA chain", body = Certificate),
        (status = 400, description = "A malformed body, a bad CSR or validity", body = ErrorBody),
        (status = 409, description = "Two certificates are active already", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    token: AdminToken,
    ApiJson(body): ApiJson<NewCertificateBody>,
) -> Result<Json<Certificate>, ApiError> {
    let validity = validity(body.validity_days, body.validity_seconds)?;
    let (info, chain) = state
        .keyward
        .issue_certificate(token.principal(), &body.name, &body.csr, validity)
        .await?;
    Ok(Json(Certificate::of(info, Some(chain))))
}

/// `DELETE /api/v1/certificates/{id}`: revokes it, from the next request on.
#[utoipa::path(
    delete,
    path = "/api/v1/certificates/{id}",
    tag = "Certificates",
    summary = "Revoke a certificate, from the next request on",
    params(("id" = String, Path, description = "The certificate's id")),
    responses(
        (status = 200, description = "Revoked (and listed in the CRL)", body = Success),
        (status = 404, description = "No certificate with that id", body = ErrorBody),
        (status = 409, description = "Revoked already, or the last active one while mTLS is on", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    token: AdminToken,
    Path(id): Path<String>,
) -> Result<Json<Success>, ApiError> {
    state.keyward.revoke_certificate(token.principal(), &id).await?;
    Ok(Json(Success::YES))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenewBody {
    /// Whole days, or `validitySeconds`; by default as long as the old one.
    validity_days: Option<i64>,
    validity_seconds: Option<i64>,
    /// How long the old certificate keeps working (default a day; at most
    /// until its own end; 0 stops it at once).
    overlap_seconds: Option<i64>,
}

/// The default overlap of a renewal: a day to swap the backend over.
const DEFAULT_OVERLAP_SECS: i64 = 86_400;

/// `POST /api/v1/certificates/{id}/renew`: the same key and subject issued
/// again by the CA; the old certificate works on for the overlap.
#[utoipa::path(
    post,
    path = "/api/v1/certificates/{id}/renew",
    tag = "Certificates",
    summary = "Renew a certificate for its own key, with an overlap",
    params(("id" = String, Path, description = "The certificate's id")),
    request_body(content = Option<RenewBody>, description = "Optional; an empty body means the defaults"),
    responses(
        (status = 200, description = "The new certificate, with its PEM and the CA chain", body = Certificate),
        (status = 400, description = "A malformed body, a bad validity or overlap", body = ErrorBody),
        (status = 404, description = "No certificate with that id", body = ErrorBody),
        (status = 409, description = "Revoked, expired or renewed already", body = ErrorBody),
        AdminTokenRefusals
    ),
    security(("bearer" = []))
)]
pub async fn renew(
    State(state): State<AppState>,
    token: AdminToken,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Certificate>, ApiError> {
    let body: RenewBody = json_or_default(&body)?;
    let validity = validity(body.validity_days, body.validity_seconds)?;
    let renewed = state
        .keyward
        .renew_certificate(
            token.principal(),
            &id,
            validity,
            body.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECS),
        )
        .await?;
    Ok(Json(Certificate::of(renewed.certificate, Some(renewed.chain))))
}

fn pem_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/x-pem-file")], body).into_response()
}

/// `GET /api/v1/ca.pem`: public, so clients and proxies can trust it.
/// During a CA rotation's overlap it carries the old CA too.
#[utoipa::path(
    get,
    path = "/api/v1/ca.pem",
    tag = "Certificates",
    summary = "The CA bundle: the application's current CA, and during a rotation's overlap the CAs it replaced",
    responses(
        (status = 200, description = "PEM, the current CA first", body = String, content_type = "application/x-pem-file"),
        (status = 404, description = "Keyward is not set up yet", body = ErrorBody),
    )
)]
pub async fn ca_pem(State(state): State<AppState>) -> Result<Response, ApiError> {
    match state.keyward.ca_pem().await {
        Ok(pem) => Ok(pem_response(pem)),
        Err(DomainError::SetupRequired) => Err(ApiError::NotFound("Keyward has not been set up yet".into())),
        Err(e) => Err(e.into()),
    }
}

/// `GET /api/v1/crl.pem`: the revoked certificates, freshly signed; one
/// CRL for each CA trusted now.
#[utoipa::path(
    get,
    path = "/api/v1/crl.pem",
    tag = "Certificates",
    summary = "The certificate revocation lists, freshly signed: one for each CA trusted now",
    responses(
        (status = 200, description = "PEM, the current CA's CRL first", body = String, content_type = "application/x-pem-file"),
        (status = 404, description = "Keyward is not set up yet", body = ErrorBody),
    )
)]
pub async fn crl_pem(State(state): State<AppState>) -> Result<Response, ApiError> {
    match state.keyward.crl_pem().await {
        Ok(pem) => Ok(pem_response(pem)),
        // No CA yet: the same answer as ca.pem's.
        Err(DomainError::SetupRequired) => Err(ApiError::NotFound("Keyward has not been set up yet".into())),
        Err(e) => Err(e.into()),
    }
}

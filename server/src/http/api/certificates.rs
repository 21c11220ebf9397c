//! Certificates through the admin API, and the public CA certificate and
//! CRL that clients and proxies fetch.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use app::domain::clock::iso;
use app::domain::pki::certificates::{CertificateInfo, Validity};
use app::domain::DomainError;

use super::extract::{AdminToken, ApiJson};
use super::ApiError;
use crate::http::AppState;

fn certificate_json(c: &CertificateInfo) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "subject": c.subject,
        "keyType": c.key_type,
        "serialNumber": c.serial_hex,
        "fingerprintSha256": c.fingerprint,
        "notBefore": iso(c.not_before),
        "notAfter": iso(c.not_after),
        "status": c.status.as_str(),
        "createdAt": iso(c.created_at),
        "createdBy": c.created_by,
        "revokedAt": c.revoked_at.map(iso),
    })
}

/// `GET /api/v1/certificates`
pub async fn list(State(state): State<AppState>, token: AdminToken) -> Result<Json<Value>, ApiError> {
    let rows = state.keyward.certificates(token.principal()).await?;
    Ok(Json(
        json!({ "certificates": rows.iter().map(certificate_json).collect::<Vec<_>>() }),
    ))
}

/// `GET /api/v1/certificates/{id}`: one certificate with its PEM (and the
/// CA chain), to download again what `POST` returned once.
pub async fn get(
    State(state): State<AppState>,
    token: AdminToken,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (info, chain) = state.keyward.certificate(token.principal(), &id).await?;
    Ok(Json(with_pem(&info, chain)))
}

/// The metadata and the PEM (certificate and CA chain), to save as a file.
fn with_pem(info: &CertificateInfo, chain: String) -> Value {
    let mut out = certificate_json(info);
    out["pem"] = Value::String(chain);
    out
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCertificateBody {
    name: String,
    csr: String,
    /// Whole days; or `validitySeconds` for short-lived certificates.
    validity_days: Option<i64>,
    validity_seconds: Option<i64>,
}

/// `POST /api/v1/certificates`: issues a certificate from a CSR and returns
/// it (PEM with the CA chain) with its metadata.
pub async fn create(
    State(state): State<AppState>,
    token: AdminToken,
    ApiJson(body): ApiJson<NewCertificateBody>,
) -> Result<Json<Value>, ApiError> {
    let validity = match (body.validity_days, body.validity_seconds) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "Give validityDays or validitySeconds, not both".into(),
            ))
        }
        (Some(days), None) => Validity::Days(days),
        (None, Some(secs)) => Validity::Seconds(secs),
        (None, None) => Validity::Default,
    };
    let (info, chain) = state
        .keyward
        .issue_certificate(token.principal(), &body.name, &body.csr, validity)
        .await?;
    Ok(Json(with_pem(&info, chain)))
}

/// `DELETE /api/v1/certificates/{id}`: revokes it, from the next request on.
pub async fn revoke(
    State(state): State<AppState>,
    token: AdminToken,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.keyward.revoke_certificate(token.principal(), &id).await?;
    Ok(Json(json!({ "success": true })))
}

fn pem_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/x-pem-file")], body).into_response()
}

/// `GET /api/v1/ca.pem`: public, so clients and proxies can trust it.
pub async fn ca_pem(State(state): State<AppState>) -> Result<Response, ApiError> {
    match state.keyward.ca_pem().await {
        Ok(pem) => Ok(pem_response(pem)),
        Err(DomainError::SetupRequired) => Err(ApiError::NotFound("Keyward has not been set up yet".into())),
        Err(e) => Err(e.into()),
    }
}

/// `GET /api/v1/crl.pem`: the revoked certificates, freshly signed.
pub async fn crl_pem(State(state): State<AppState>) -> Result<Response, ApiError> {
    match state.keyward.crl_pem().await {
        Ok(pem) => Ok(pem_response(pem)),
        // No CA yet: the same answer as ca.pem's.
        Err(DomainError::SetupRequired) => Err(ApiError::NotFound("Keyward has not been set up yet".into())),
        Err(e) => Err(e.into()),
    }
}

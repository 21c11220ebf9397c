//! Certificates through the admin API, and the public CA certificate and
//! CRL that clients and proxies fetch.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use app::domain::ca;
use app::domain::certificates::{self, CertificateInfo, NewCertificate};
use app::domain::clock::iso;
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
pub async fn list(State(state): State<AppState>, _token: AdminToken) -> Result<Json<Value>, ApiError> {
    let rows = certificates::list(&state.keyward.db).await?;
    Ok(Json(
        json!({ "certificates": rows.iter().map(certificate_json).collect::<Vec<_>>() }),
    ))
}

/// `GET /api/v1/certificates/{id}`: one certificate with its PEM (and the
/// CA chain), to download again what `POST` returned once.
pub async fn get(
    State(state): State<AppState>,
    _token: AdminToken,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (info, chain) = certificates::get_with_chain(&state.keyward.db, &id)
        .await
        .map_err(not_found)?;
    Ok(Json(with_pem(&info, chain)))
}

/// The metadata and the PEM (certificate and CA chain), to save as a file.
fn with_pem(info: &CertificateInfo, chain: String) -> Value {
    let mut out = certificate_json(info);
    out["pem"] = Value::String(chain);
    out
}

fn not_found(e: DomainError) -> ApiError {
    match e {
        DomainError::NotFound => ApiError::NotFound("No certificate with that id".into()),
        other => other.into(),
    }
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
    let kw = &state.keyward;
    let max = kw.lifetimes.cert_max_validity.as_secs() as i64;
    let validity_secs = match (body.validity_days, body.validity_seconds) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "Give validityDays or validitySeconds, not both".into(),
            ))
        }
        (Some(days), None) => days.checked_mul(86_400).unwrap_or(i64::MAX),
        (None, Some(secs)) => secs,
        (None, None) => max,
    };
    let (info, chain) = certificates::create(
        &kw.db,
        &kw.master_key,
        &token.actor(),
        NewCertificate {
            name: &body.name,
            csr_pem: &body.csr,
            validity_secs,
        },
        max,
    )
    .await?;
    kw.refresh().await?;
    Ok(Json(with_pem(&info, chain)))
}

/// `DELETE /api/v1/certificates/{id}`: revokes it, from the next request on.
pub async fn revoke(
    State(state): State<AppState>,
    token: AdminToken,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let kw = &state.keyward;
    certificates::revoke(&kw.db, &token.actor(), &id)
        .await
        .map_err(not_found)?;
    kw.refresh().await?;
    Ok(Json(json!({ "success": true })))
}

fn pem_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/x-pem-file")], body).into_response()
}

/// `GET /api/v1/ca.pem`: public, so clients and proxies can trust it.
pub async fn ca_pem(State(state): State<AppState>) -> Result<Response, ApiError> {
    let pem = ca::cert_pem(&state.keyward.db)
        .await?
        .ok_or_else(|| ApiError::NotFound("Keyward has not been set up yet".into()))?;
    Ok(pem_response(pem))
}

/// `GET /api/v1/crl.pem`: the revoked certificates, freshly signed.
pub async fn crl_pem(State(state): State<AppState>) -> Result<Response, ApiError> {
    let kw = &state.keyward;
    match certificates::crl_pem(&kw.db, &kw.master_key).await {
        Ok(pem) => Ok(pem_response(pem)),
        // No CA yet: the same answer as ca.pem's.
        Err(DomainError::SetupRequired) => Err(ApiError::NotFound("Keyward has not been set up yet".into())),
        Err(e) => Err(e.into()),
    }
}

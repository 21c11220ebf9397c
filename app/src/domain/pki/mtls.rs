//! The mTLS gate: does this request carry a client certificate that this
//! application's CA issued, unexpired and unrevoked? Decided per request
//! from the in-memory view, so a revocation counts from the next request.
//!
//! The TLS layer only proves that the client holds the certificate's key;
//! the decision is made here, so a refusal can be a 403 that says what is
//! missing instead of a failed handshake.

use std::sync::Arc;

use crate::domain::secrets::sha256;
use crate::domain::storage::views::{CertView, Views};

/// How a request reached Keyward, as far as mTLS is concerned.
#[derive(Debug, Clone)]
pub enum Transport {
    PlainHttp,
    /// Over TLS (our HTTPS listener, or a trusted TLS-terminating proxy),
    /// with the DER of the client's certificate if it sent one.
    Tls {
        client_cert: Option<Arc<[u8]>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PlainHttp,
    NoCertificate,
    UnknownIssuer,
    Revoked,
    /// Its CA was retired by a rotation (at once, or at an overlap's end).
    CaRetired,
    Expired,
    /// Renewed, and its overlap is over: its renewal is the one to use.
    Replaced,
    NotYetValid,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::PlainHttp => {
                "mTLS is on: this endpoint is served only over HTTPS with a client certificate, and this request came over plain HTTP"
            }
            Refusal::NoCertificate => "mTLS is on: no client certificate was presented",
            Refusal::UnknownIssuer => {
                "mTLS is on: the client certificate was not issued by this application's CA (unknown issuer)"
            }
            Refusal::Revoked => "mTLS is on: the client certificate has been revoked",
            Refusal::CaRetired => {
                "mTLS is on: the client certificate was issued by a CA that has been retired; use a certificate from the current CA (renew it in Settings > Security)"
            }
            Refusal::Expired => "mTLS is on: the client certificate has expired",
            Refusal::Replaced => {
                "mTLS is on: the client certificate was renewed and its overlap is over; use the certificate that replaced it"
            }
            Refusal::NotYetValid => "mTLS is on: the client certificate is not valid yet",
        }
    }
}

/// Checks the request's certificate; the certificate's view when it passes.
pub fn check(views: &Views, transport: &Transport, now_ms: i64) -> Result<CertView, Refusal> {
    let der = match transport {
        Transport::PlainHttp => return Err(Refusal::PlainHttp),
        Transport::Tls { client_cert: None } => return Err(Refusal::NoCertificate),
        Transport::Tls { client_cert: Some(der) } => der,
    };
    // We keep every certificate we issued, byte for byte: a fingerprint we
    // do not know was not issued by this CA.
    let cert = views.certificate(&sha256(der)).ok_or(Refusal::UnknownIssuer)?;
    if cert.revoked {
        Err(Refusal::Revoked)
    } else if now_ms >= cert.not_after {
        Err(Refusal::Expired)
    } else if cert.ca_retires_at.is_some_and(|at| now_ms >= at) {
        Err(Refusal::CaRetired)
    } else if cert.retires_at.is_some_and(|at| now_ms >= at) {
        Err(Refusal::Replaced)
    } else if now_ms < cert.not_before {
        Err(Refusal::NotYetValid)
    } else {
        Ok(cert)
    }
}

impl crate::domain::Keyward {
    /// While mTLS is on, the credential endpoints (auth-token minting and
    /// every admin-token endpoint) answer only requests that arrived with a
    /// good client certificate.
    ///
    /// A revocation or a CA rotation made on another instance counts from
    /// the next request here too: the view is brought up to date first
    /// (a read of the audit head, shared by the requests arriving while
    /// the one before it ran; a reload when something changed), not left
    /// to the poll. Should that read fail, the view as it stands decides.
    pub async fn mtls_gate(&self, transport: &Transport) -> Result<(), Refusal> {
        if !self.views.mtls_on() {
            return Ok(());
        }
        if matches!(transport, Transport::Tls { client_cert: Some(_) }) {
            if let Err(e) = self.views.up_to_date(&self.db).await {
                tracing::warn!(error = %e, "could not bring the certificate view up to date; deciding from memory");
            }
        }
        check(&self.views, transport, crate::domain::clock::now_ms()).map(|_| ())
    }
}

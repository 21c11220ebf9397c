use leptos::prelude::*;

use crate::error::AppError;
use crate::model::SecurityData;

/// Certificates expiring within this many days are called out.
#[cfg(feature = "ssr")]
const EXPIRY_WARNING_DAYS: i64 = 30;

#[server(prefix = "/console/fn", endpoint = "security")]
pub async fn load_security() -> Result<SecurityData, AppError> {
    use crate::domain::application;
    use crate::domain::certificates::{self, CertStatus, MAX_ACTIVE};
    use crate::domain::clock::{countdown, display, now_ms};
    use crate::model::CertificateRow;

    let kw = crate::auth::keyward()?;
    crate::auth::require_admin().await?;
    let app = application::require(&kw.db).await?;
    let now = now_ms();
    let list = certificates::list(&kw.db).await?;
    let mut warnings = Vec::new();
    for c in list.iter().filter(|c| c.status == CertStatus::Active) {
        if c.not_after - now < EXPIRY_WARNING_DAYS * 86_400_000 {
            warnings.push(format!(
                "Certificate \u{201c}{}\u{201d} expires {} ({}). Create a replacement and move your backend to it before then.",
                c.name,
                countdown(c.not_after, now),
                display(c.not_after)
            ));
        }
    }
    let active = list.iter().filter(|c| c.status == CertStatus::Active).count() as i64;
    if app.mtls && active == 0 {
        warnings.push(
            "mTLS is on but no certificate is active: no backend can mint auth tokens or use the admin API until you \
             create a certificate or turn mTLS off."
                .into(),
        );
    }
    let certificates = list
        .into_iter()
        .map(|c| CertificateRow {
            countdown: countdown(c.not_after, now),
            not_after: display(c.not_after),
            active: c.status == CertStatus::Active,
            status: c.status.as_str().into(),
            id: c.id,
            name: c.name,
            subject: c.subject,
            key_type: c.key_type,
            fingerprint: c.fingerprint,
        })
        .collect();
    Ok(SecurityData {
        certificates,
        secure_mode: app.secure_mode,
        mtls: app.mtls,
        active_certificates: active,
        max_active: MAX_ACTIVE,
        max_validity_days: (kw.lifetimes.cert_max_validity.as_secs() / 86_400).max(1) as i64,
        warnings,
    })
}

/// Issues a certificate from a pasted CSR.
#[server(prefix = "/console/fn", endpoint = "create_certificate")]
pub async fn create_certificate(name: String, csr: String, validity_days: i64) -> Result<String, AppError> {
    use crate::domain::certificates::{self, NewCertificate};

    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_admin().await?;
    if validity_days < 1 {
        return Err(AppError::Invalid("The validity must be at least 1 day.".into()));
    }
    let max = kw.lifetimes.cert_max_validity.as_secs() as i64;
    let (info, _) = certificates::create(
        &kw.db,
        &kw.master_key,
        &current.actor(),
        NewCertificate {
            name: &name,
            csr_pem: &csr,
            validity_secs: validity_days.saturating_mul(86_400),
        },
        max,
    )
    .await?;
    kw.refresh().await?;
    leptos_axum::redirect(&format!("/settings/security?issued={}#certificates", info.id));
    Ok(info.id)
}

#[server(prefix = "/console/fn", endpoint = "revoke_certificate")]
pub async fn revoke_certificate(id: String) -> Result<(), AppError> {
    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_admin().await?;
    crate::domain::certificates::revoke(&kw.db, &current.actor(), &id).await?;
    kw.refresh().await?;
    leptos_axum::redirect("/settings/security#certificates");
    Ok(())
}

#[server(prefix = "/console/fn", endpoint = "set_mtls")]
pub async fn set_mtls(enabled: bool) -> Result<(), AppError> {
    let kw = crate::auth::keyward()?;
    let current = crate::auth::require_admin().await?;
    crate::domain::application::set_modes(&kw.db, &current.actor(), None, Some(enabled)).await?;
    kw.refresh().await?;
    leptos_axum::redirect("/settings/security#mtls");
    Ok(())
}

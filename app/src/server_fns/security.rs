use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{Done, SecurityData};

/// Where a refused certificate form's fields wait for the next page.
#[cfg(feature = "ssr")]
const KEPT_CERTIFICATE: &str = "kept_certificate";

#[server(prefix = "/console/fn", endpoint = "security")]
pub async fn load_security() -> Result<SecurityData, AppError> {
    use crate::domain::clock::{countdown, display, now_ms};
    use crate::domain::pki::certificates::{CertStatus, MAX_ACTIVE};
    use crate::model::{CaRow, CertificateRow};

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let overview = kw.security_overview(&who).await?;
    let cas = kw.ca_overview(&who).await?;
    let now = now_ms();
    // Only what is possible: with no room for another active certificate,
    // one must be revoked before a replacement can be made.
    let act = if overview.active < MAX_ACTIVE {
        "Create a replacement and move your backend to it before then."
    } else {
        "Revoke a certificate you no longer use, then create a replacement and move your backend to it before then."
    };
    let mut warnings: Vec<String> = overview
        .expiring
        .iter()
        .map(|c| {
            format!(
                "Certificate \u{201c}{}\u{201d} expires {} ({}). {act}",
                c.name,
                countdown(c.not_after, now),
                display(c.not_after)
            )
        })
        .collect();
    if let Some(ca) = cas.current() {
        if crate::domain::pki::certificates::expiring(ca.not_before, ca.not_after, now) {
            warnings.push(format!(
                "The CA expires {} ({}): certificates cannot outlive it. Rotate it (below), with an overlap, and renew \
                 your certificates onto the new one.",
                countdown(ca.not_after, now),
                display(ca.not_after)
            ));
        }
    }
    // Certificates whose CA a rotation replaced: renewal moves them on.
    for c in overview.certificates.iter().filter(|c| c.renewable()) {
        if let Some(at) = c.ca_retires_at.filter(|at| *at > now) {
            warnings.push(format!(
                "Certificate \u{201c}{}\u{201d} was issued by the CA being retired: it stops working {} ({}). Renew it, \
                 and install the new one on your backend before then.",
                c.name,
                countdown(at, now),
                display(at)
            ));
        }
    }
    if overview.mtls_locked_out() {
        warnings.push(
            "mTLS is on but no certificate is active: no backend can mint auth tokens or use the admin API until you \
             create a certificate or turn mTLS off."
                .into(),
        );
    }
    let working_certificates = overview
        .certificates
        .iter()
        .filter(|c| c.status == CertStatus::Active)
        .map(|c| c.name.clone())
        .collect();
    let cas_rows = cas
        .authorities
        .iter()
        .filter(|ca| ca.retires_at.is_none_or(|at| at > now - 30 * 86_400_000))
        .map(|ca| CaRow {
            id: ca.id,
            subject: ca.subject.clone(),
            fingerprint: ca.fingerprint.clone(),
            not_after: display(ca.not_after),
            countdown: match ca.retires_at {
                None => countdown(ca.not_after, now),
                Some(at) if at > now => format!("Trusted until {} ({})", display(at), countdown(at, now)),
                Some(at) => format!("Retired {}", display(at)),
            },
            state: match ca.retires_at {
                None => "current",
                Some(at) if at > now => "retiring",
                Some(_) => "retired",
            }
            .into(),
        })
        .collect();
    let certificates = overview
        .certificates
        .into_iter()
        .map(|c| CertificateRow {
            // A revoked certificate has no time left: say when it ended;
            // a renewed one, until when it works.
            countdown: match (c.revoked_at, c.retires_at) {
                (Some(at), _) => format!("Revoked {}", display(at)),
                (None, Some(at)) if at > now => format!("Renewed: works until {}", display(at)),
                (None, Some(at)) => format!("Renewed: replaced since {}", display(at)),
                (None, None) => countdown(c.not_after, now),
            },
            renewable: c.can_renew(),
            lifetime_days: ((c.not_after - c.not_before) / 86_400_000).max(1),
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
        secure_mode: overview.secure_mode,
        mtls: overview.mtls,
        active_certificates: overview.active,
        max_active: MAX_ACTIVE,
        max_validity_days: (overview.max_validity.as_secs() / 86_400).max(1) as i64,
        warnings,
        https_url: kw.https_url().to_string(),
        kept: crate::reveal::take(KEPT_CERTIFICATE).await?,
        cas: cas_rows,
        can_rotate_ca: who.is_super_admin(),
        ca_validity_days: cas.validity_days,
        working_certificates,
    })
}

/// Rotates the CA (super admins): the old one's certificates keep working
/// for `overlap_hours`; 0 stops them at once, which needs
/// `stop_active_certificates` ticked when any is active.
#[server(prefix = "/console/fn", endpoint = "rotate_ca")]
pub async fn rotate_ca(
    overlap_hours: i64,
    validity_days: i64,
    stop_active_certificates: Option<String>,
) -> Result<Done, AppError> {
    use crate::domain::clock::display;
    use crate::domain::pki::rotation::{names, Rotation};

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let rotated = kw
        .rotate_ca(
            &who,
            Rotation {
                overlap_secs: overlap_hours.saturating_mul(3600),
                validity_days: Some(validity_days),
                stop_active_certificates: stop_active_certificates.is_some(),
            },
        )
        .await?;
    leptos_axum::redirect("/settings/security#ca");
    let mut message = format!(
        "The CA was rotated: CA {} issues from now on, valid until {}.",
        rotated.ca.id,
        display(rotated.ca.not_after)
    );
    if overlap_hours == 0 {
        message.push_str(" The old CA is retired: its certificates are refused from now on.");
        if !rotated.stopping.is_empty() {
            message.push_str(&format!(
                " These stopped working: {}. Renew them, and install the new ones.",
                names(&rotated.stopping)
            ));
        }
    } else {
        message.push_str(&format!(
            " The old CA's certificates keep working until {}.",
            display(rotated.old_retires_at)
        ));
        if !rotated.to_renew.is_empty() {
            message.push_str(&format!(" Renew these before then: {}.", names(&rotated.to_renew)));
        }
    }
    message.push_str(" Clients or proxies that check certificates should fetch the CA bundle again.");
    crate::server_fns::done(message).await
}

/// Issues a certificate from a pasted CSR.
#[server(prefix = "/console/fn", endpoint = "create_certificate")]
pub async fn create_certificate(name: String, csr: String, validity_days: i64) -> Result<String, AppError> {
    use crate::domain::pki::certificates::Validity;

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let (info, _) = match kw
        .issue_certificate(&who, &name, &csr, Validity::Days(validity_days))
        .await
    {
        Ok(issued) => issued,
        Err(refused) => {
            // Pasted again otherwise (without JavaScript the page is new).
            // Never a private key pasted by mistake: that field starts empty.
            let csr = if csr.contains("PRIVATE KEY") {
                String::new()
            } else {
                csr
            };
            let kept = crate::model::CertificateInput {
                name,
                csr,
                validity_days,
            };
            crate::server_fns::keep(KEPT_CERTIFICATE, &kept).await;
            return Err(refused.into());
        }
    };
    leptos_axum::redirect(&format!("/settings/security?issued={}#certificates", info.id));
    Ok(info.id)
}

/// Renews a certificate for its own key; the current one keeps working
/// for `overlap_hours` (at most until its own end).
#[server(prefix = "/console/fn", endpoint = "renew_certificate")]
pub async fn renew_certificate(id: String, validity_days: i64, overlap_hours: i64) -> Result<String, AppError> {
    use crate::domain::pki::certificates::Validity;

    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let renewed = kw
        .renew_certificate(
            &who,
            &id,
            Validity::Days(validity_days),
            overlap_hours.saturating_mul(3600),
        )
        .await?;
    leptos_axum::redirect(&format!(
        "/settings/security?issued={}#certificates",
        renewed.certificate.id
    ));
    Ok(renewed.certificate.id)
}

#[server(prefix = "/console/fn", endpoint = "revoke_certificate")]
pub async fn revoke_certificate(id: String) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    let revoked = kw.revoke_certificate(&who, &id).await?;
    leptos_axum::redirect("/settings/security#certificates");
    crate::server_fns::done(format!(
        "Certificate \u{201c}{}\u{201d} is revoked: the HTTPS listener refuses it from now on.",
        revoked.name
    ))
    .await
}

#[server(prefix = "/console/fn", endpoint = "set_mtls")]
pub async fn set_mtls(enabled: bool) -> Result<Done, AppError> {
    let kw = crate::auth::keyward()?;
    let who = crate::auth::require_admin().await?;
    kw.set_modes(&who, None, Some(enabled)).await?;
    leptos_axum::redirect("/settings/security#mtls");
    crate::server_fns::done(if enabled {
        "mTLS is on: minting auth tokens and the admin API now need a client certificate, on the HTTPS listener."
    } else {
        "mTLS is off: minting auth tokens and the admin API no longer need a client certificate."
    })
    .await
}

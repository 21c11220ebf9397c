//! CA rotation: a new CA issues from now on, while the certificates of the
//! ones it replaces keep passing mTLS for an overlap the super admin
//! chooses (or stop at once, for a leaked key). Certificates are renewed
//! onto the new CA during the overlap, without new CSRs.

use crate::domain::audit::AuditEvent;
use crate::domain::clock::{iso, now_ms};
use crate::domain::pki::ca::{self, CaInfo, MAX_VALIDITY_DAYS, MIN_VALIDITY_DAYS};
use crate::domain::pki::certificates::{self, CertificateInfo};
use crate::domain::principal::Principal;
use crate::domain::{DomainError, DomainResult, Keyward};

/// The longest overlap a rotation may give the CAs it replaces.
pub const MAX_OVERLAP_SECS: i64 = 365 * 86_400;

/// What a super admin asks of a rotation.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    /// How long the replaced CAs' certificates keep working; 0 = at once.
    pub overlap_secs: i64,
    /// The new CA's lifetime in days; `None` keeps the application's
    /// setting. A value given is kept as the setting for later rotations.
    pub validity_days: Option<i64>,
    /// For an immediate rotation that stops active certificates: the
    /// admin has seen which (see [`Keyward::ca_overview`]).
    pub stop_active_certificates: bool,
}

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The new, current CA.
    pub ca: CaInfo,
    /// When the replaced CAs (and their certificates) stop being trusted.
    pub old_retires_at: i64,
    /// The certificates that worked when it happened (all issued by the
    /// replaced CAs): they stop at `old_retires_at`…
    pub stopping: Vec<CertificateInfo>,
    /// …and those of them to renew (not renewed already).
    pub to_renew: Vec<CertificateInfo>,
}

/// The CAs as Settings > Security shows them.
#[derive(Debug, Clone)]
pub struct CaOverview {
    /// Newest first: the current CA, then those it replaced.
    pub authorities: Vec<CaInfo>,
    /// The lifetime of the next CA, in days.
    pub validity_days: i64,
}

impl CaOverview {
    pub fn current(&self) -> Option<&CaInfo> {
        self.authorities.iter().find(|c| c.is_current())
    }
}

pub fn validate_validity_days(days: i64) -> DomainResult<i64> {
    if (MIN_VALIDITY_DAYS..=MAX_VALIDITY_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(DomainError::invalid_field(
            "ca_validity",
            format!("A CA's lifetime must be {MIN_VALIDITY_DAYS} to {MAX_VALIDITY_DAYS} days."),
        ))
    }
}

fn validate_overlap(secs: i64) -> DomainResult<i64> {
    if (0..=MAX_OVERLAP_SECS).contains(&secs) {
        Ok(secs)
    } else {
        Err(DomainError::invalid_field(
            "overlap",
            "The overlap must be between 0 (the old CA stops at once) and 365 days.",
        ))
    }
}

/// The names of `certs`, quoted, for a message.
pub fn names(certs: &[CertificateInfo]) -> String {
    certs
        .iter()
        .map(|c| format!("\"{}\"", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Keyward {
    /// The application's CAs and the lifetime of the next one.
    pub async fn ca_overview(&self, _who: &Principal) -> DomainResult<CaOverview> {
        let authorities = ca::list(self.db.read()).await?;
        let validity: Option<(i64,)> = sqlx::query_as("SELECT ca_validity_days FROM application WHERE id = 1")
            .fetch_optional(self.db.read())
            .await?;
        Ok(CaOverview {
            authorities,
            validity_days: validity.map_or(ca::DEFAULT_VALIDITY_DAYS, |(d,)| d),
        })
    }

    /// Rotates the application's CA (super admins, and the operator from
    /// the host). Every CA trusted now stays trusted for the overlap at
    /// most; with no overlap their certificates are refused from the next
    /// request on, which an admin must have agreed to when any is active.
    pub async fn rotate_ca(&self, who: &Principal, rotation: Rotation) -> DomainResult<Rotated> {
        who.require_super_admin()?;
        let overlap_secs = validate_overlap(rotation.overlap_secs)?;
        let validity_days = rotation.validity_days.map(validate_validity_days).transpose()?;
        let mut change = self.db.change_as(who).await?;
        // Read inside the change, the clock too (it may have waited for
        // the lock): what stops is what works as it happens.
        let now = now_ms();
        let stopping = certificates::working_in(change.conn(), now).await?;
        if overlap_secs == 0 && !stopping.is_empty() && !rotation.stop_active_certificates {
            return Err(DomainError::Conflict(format!(
                "Rotating the CA at once stops these active certificates from the next request: {}. \
                 Confirm that they should stop, or give the old CA an overlap and renew them first.",
                names(&stopping)
            )));
        }
        let to_renew: Vec<CertificateInfo> = stopping.iter().filter(|c| c.renewed_as.is_none()).cloned().collect();
        if let Some(days) = validity_days {
            sqlx::query("UPDATE application SET ca_validity_days = $1 WHERE id = 1")
                .bind(days)
                .execute(change.conn())
                .await?;
        }
        let (days,): (i64,) = sqlx::query_as("SELECT ca_validity_days FROM application WHERE id = 1")
            .fetch_optional(change.conn())
            .await?
            .ok_or(DomainError::SetupRequired)?;
        let rotated = ca::rotate(
            change.conn(),
            &self.master_key,
            &who.name,
            days,
            overlap_secs * 1000,
            now,
        )
        .await?;
        let authorities = ca::list(change.conn()).await?;
        let new_ca = authorities
            .into_iter()
            .find(|c| c.id == rotated.id)
            .ok_or_else(|| DomainError::Internal("the new CA is not stored".into()))?;
        change
            .commit(
                AuditEvent::new(&who.name, "ca.rotate", &new_ca.subject)
                    .detail(serde_json::json!({
                        "ca": new_ca.id,
                        "fingerprint": new_ca.fingerprint,
                        "not_after": iso(new_ca.not_after),
                        "overlap_seconds": overlap_secs,
                        "old_retires_at": iso(rotated.old_retires_at),
                        "certificates_stopping": stopping.iter().map(|c| &c.id).collect::<Vec<_>>(),
                    }))
                    .source(who.source()),
            )
            .await?;
        self.refresh().await?;
        Ok(Rotated {
            ca: new_ca,
            old_retires_at: rotated.old_retires_at,
            stopping,
            to_renew,
        })
    }
}

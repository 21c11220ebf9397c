//! Client certificates issued by the application's CA for mTLS: at most
//! two active at once, each downloadable, renewable (the same key and
//! subject, issued again; the old one kept for an overlap) and revocable,
//! revoked ones in the CRL. Every change is one audited transaction.

use crate::domain::audit::AuditEvent;
use crate::domain::clock::now_ms;
use crate::domain::pki::ca::Ca;
use crate::domain::pki::csr;
use crate::domain::principal::Principal;
use crate::domain::secrets::MasterKey;
use crate::domain::storage::db::Db;
use crate::domain::{DomainError, DomainResult, Keyward};

pub const MAX_ACTIVE: i64 = 2;
pub const NAME_MAX_CHARS: usize = 30;
/// Certificates are issued for at least this long.
pub const MIN_VALIDITY_SECS: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Active,
    Expired,
    Revoked,
    /// Renewed, and past the overlap its renewal gave it.
    Replaced,
    /// Issued by a CA that a rotation retired: no longer accepted.
    CaRetired,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Active => "active",
            CertStatus::Expired => "expired",
            CertStatus::Revoked => "revoked",
            CertStatus::Replaced => "replaced",
            CertStatus::CaRetired => "ca_retired",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CertificateInfo {
    pub id: String,
    pub name: String,
    pub subject: String,
    pub key_type: String,
    pub serial_hex: String,
    pub fingerprint: String,
    pub not_before: i64,
    pub not_after: i64,
    pub created_at: i64,
    pub created_by: String,
    pub revoked_at: Option<i64>,
    /// Renewed: it works until then (at most its own not-after)…
    pub retires_at: Option<i64>,
    /// …and this certificate replaced it.
    pub renewed_as: Option<String>,
    /// The CA that issued it (numbered from 1)…
    pub ca_id: i64,
    /// …and, once a rotation replaced that CA, when it stops being trusted.
    pub ca_retires_at: Option<i64>,
    pub status: CertStatus,
}

impl CertificateInfo {
    /// Does it pass mTLS now, and not on its way out by a renewal?
    pub fn renewable(&self) -> bool {
        self.status == CertStatus::Active && self.renewed_as.is_none()
    }

    /// Can it be renewed? Active, or stopped only because its CA was
    /// retired (renewal is the way to the current CA without a new CSR);
    /// not renewed already.
    pub fn can_renew(&self) -> bool {
        matches!(self.status, CertStatus::Active | CertStatus::CaRetired) && self.renewed_as.is_none()
    }
}

/// SHA-256 fingerprint as people compare it: `AB:CD:…`.
pub fn fingerprint_text(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

pub fn validate_name(raw: &str) -> DomainResult<String> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > NAME_MAX_CHARS {
        return Err(DomainError::invalid_field(
            "name",
            format!("The certificate name must be 1 to {NAME_MAX_CHARS} characters (it has {n})."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::invalid_field(
            "name",
            "The certificate name cannot contain control characters.",
        ));
    }
    Ok(name.to_string())
}

pub struct NewCertificate<'a> {
    pub name: &'a str,
    pub csr_pem: &'a str,
    /// `None`: the configured maximum, or less if the CA ends sooner.
    pub validity_secs: Option<i64>,
}

/// A validity outside 1 second..`max_validity_secs`, refused.
fn check_validity(validity_secs: i64, max_validity_secs: i64) -> DomainResult<i64> {
    if (MIN_VALIDITY_SECS..=max_validity_secs).contains(&validity_secs) {
        return Ok(validity_secs);
    }
    Err(DomainError::invalid_field(
        "validity",
        format!(
            "The validity must be between 1 second and {} (the configured maximum).",
            crate::domain::clock::human(std::time::Duration::from_secs(max_validity_secs.max(1) as u64))
        ),
    ))
}

/// Is there room for one more active certificate named `name`? Counted
/// under the change's lock: two requests cannot both take the last place.
async fn check_room(conn: &mut sqlx::AnyConnection, name: &str, now: i64) -> DomainResult<()> {
    if active_count(&mut *conn).await? >= MAX_ACTIVE {
        return Err(DomainError::Conflict(format!(
            "At most {MAX_ACTIVE} certificates can be active at once: revoke one before creating another."
        )));
    }
    let (same_name,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM certificates WHERE {ACTIVE} AND name = $2"
    ))
    .bind(now)
    .bind(name)
    .fetch_one(conn)
    .await?;
    if same_name > 0 {
        return Err(DomainError::Conflict(format!(
            "An active certificate is already named \"{name}\": choose another name."
        )));
    }
    Ok(())
}

/// Read from `certificates c` joined with the CA that issued each.
const COLUMNS: &str = "c.id, c.name, c.subject, c.key_type, c.serial, c.fingerprint, c.not_before, c.not_after, \
                       c.created_at, c.created_by, c.revoked_at, c.retires_at, c.renewed_as, c.ca_id, a.retires_at";
const FROM: &str = "certificates c LEFT JOIN certificate_authorities a ON a.id = c.ca_id";
type Row = (
    String,
    String,
    String,
    String,
    String,
    Vec<u8>,
    i64,
    i64,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
    Option<i64>,
);

fn from_row(row: Row, now: i64) -> CertificateInfo {
    let (
        id,
        name,
        subject,
        key_type,
        serial_hex,
        fingerprint,
        not_before,
        not_after,
        created_at,
        created_by,
        revoked_at,
        retires_at,
        renewed_as,
        ca_id,
        ca_retires_at,
    ) = row;
    let status = if revoked_at.is_some() {
        CertStatus::Revoked
    } else if ca_retires_at.is_some_and(|at| at <= now) && not_after > now {
        CertStatus::CaRetired
    } else if retires_at.is_some_and(|at| at <= now) && not_after > now {
        CertStatus::Replaced
    } else if not_after <= now {
        CertStatus::Expired
    } else {
        CertStatus::Active
    };
    CertificateInfo {
        id,
        name,
        subject,
        key_type,
        serial_hex,
        fingerprint: fingerprint_text(&fingerprint),
        not_before,
        not_after,
        created_at,
        created_by,
        revoked_at,
        retires_at,
        renewed_as,
        ca_id,
        ca_retires_at,
        status,
    }
}

/// Issues a certificate from a CSR. Returns it with its PEM and the CA's
/// after it (the chain a client installs).
async fn create(
    db: &Db,
    master: &MasterKey,
    actor: &Principal,
    new: NewCertificate<'_>,
    max_validity_secs: i64,
) -> DomainResult<(CertificateInfo, String)> {
    let name = validate_name(new.name)?;
    let asked = new
        .validity_secs
        .map(|secs| check_validity(secs, max_validity_secs))
        .transpose()?;
    let checked = csr::check(new.csr_pem)?;

    let mut change = db.change_as(actor).await?;
    let now = now_ms();
    check_room(change.conn(), &name, now).await?;
    let authority = Ca::load(change.conn(), master).await?;
    // Left to us, as long as allowed, and no longer than the CA lasts.
    let validity_secs = asked.unwrap_or_else(|| {
        max_validity_secs
            .min((authority.not_after_ms() - now) / 1000)
            .max(MIN_VALIDITY_SECS)
    });
    let issued = authority.issue(&checked, now + validity_secs * 1000)?;
    let info = insert_issued(
        change.conn(),
        &name,
        &checked.subject_text,
        &checked.key_type.label(),
        &issued,
        now,
        &actor.name,
    )
    .await?;
    change
        .commit(
            AuditEvent::new(&actor.name, "certificate.issue", &name)
                .detail(serde_json::json!({
                    "id": info.id,
                    "subject": info.subject,
                    "serial": info.serial_hex,
                    "fingerprint": info.fingerprint,
                    "not_after": crate::domain::clock::iso(info.not_after),
                }))
                .source(actor.source()),
        )
        .await?;
    Ok((info, chain(&issued.pem, authority.cert_pem())))
}

/// Stores a certificate the CA just issued (a new one or a renewal) and
/// describes it: active, from now.
async fn insert_issued(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    subject: &str,
    key_type: &str,
    issued: &crate::domain::pki::ca::Issued,
    now: i64,
    created_by: &str,
) -> DomainResult<CertificateInfo> {
    let id = crate::domain::ids::random_id();
    sqlx::query(
        "INSERT INTO certificates (id, name, subject, key_type, serial, fingerprint, not_before, not_after, pem, \
         created_at, created_by, ca_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(name)
    .bind(subject)
    .bind(key_type)
    .bind(&issued.serial_hex)
    .bind(issued.fingerprint.to_vec())
    .bind(issued.not_before_ms)
    .bind(issued.not_after_ms)
    .bind(&issued.pem)
    .bind(now)
    .bind(created_by)
    .bind(issued.ca_id)
    .execute(conn)
    .await?;
    Ok(CertificateInfo {
        id,
        name: name.to_owned(),
        subject: subject.to_owned(),
        key_type: key_type.to_owned(),
        serial_hex: issued.serial_hex.clone(),
        fingerprint: fingerprint_text(&issued.fingerprint),
        not_before: issued.not_before_ms,
        not_after: issued.not_after_ms,
        created_at: now,
        created_by: created_by.to_owned(),
        revoked_at: None,
        retires_at: None,
        renewed_as: None,
        ca_id: issued.ca_id,
        ca_retires_at: None,
        status: CertStatus::Active,
    })
}

/// One certificate, as it stands at `now`.
async fn find<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: &str,
    now: i64,
) -> DomainResult<CertificateInfo> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM {FROM} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await?;
    Ok(from_row(
        row.ok_or(DomainError::NotFound(crate::domain::Entity::Certificate))?,
        now,
    ))
}

/// A renewal's outcome: the new certificate (with its chain) and when the
/// one it replaces stops working.
#[derive(Debug, Clone)]
pub struct Renewed {
    pub certificate: CertificateInfo,
    pub chain: String,
    pub old_retires_at: i64,
}

/// Issues `id` again for the same key and subject from the CA, for
/// `validity_secs`; the old one keeps working for `overlap_secs` (at most
/// until its own end), then only the new one does.
async fn renew(
    db: &Db,
    master: &MasterKey,
    actor: &Principal,
    id: &str,
    validity_secs: Option<i64>,
    overlap_secs: i64,
    max_validity_secs: i64,
) -> DomainResult<Renewed> {
    if overlap_secs < 0 {
        return Err(DomainError::invalid_field(
            "overlap",
            "The overlap cannot be negative (0 stops the old certificate at once).",
        ));
    }
    let mut change = db.change_as(actor).await?;
    let now = now_ms();
    let old = find(change.conn(), id, now).await?;
    if let Some(new_id) = &old.renewed_as {
        return Err(DomainError::Conflict(format!(
            "The certificate \"{}\" was renewed already (as {new_id}): renew that one.",
            old.name
        )));
    }
    if !old.can_renew() {
        return Err(DomainError::Conflict(format!(
            "The certificate \"{}\" is {}: only an active certificate is renewed. Create a new one from a CSR.",
            old.name,
            old.status.as_str()
        )));
    }
    if old.status == CertStatus::CaRetired {
        // It no longer counts as active: coming back, it must find room,
        // as a new certificate would.
        check_room(change.conn(), &old.name, now).await?;
    }
    let authority = Ca::load(change.conn(), master).await?;
    // As long as the one it replaces (its backdating left out), unless
    // told otherwise; and no longer than the CA lasts.
    let lifetime_secs = (old.not_after - old.not_before) / 1000 - crate::domain::pki::ca::BACKDATE_SECS;
    let validity_secs = match validity_secs {
        Some(secs) => check_validity(secs, max_validity_secs)?,
        None => lifetime_secs
            .min((authority.not_after_ms() - now) / 1000)
            .clamp(MIN_VALIDITY_SECS, max_validity_secs),
    };
    let (pem,): (String,) = sqlx::query_as("SELECT pem FROM certificates WHERE id = $1")
        .bind(id)
        .fetch_one(change.conn())
        .await?;
    let key = csr::from_certificate(&pem)?;
    let issued = authority.issue(&key, now + validity_secs * 1000)?;
    let certificate = insert_issued(
        change.conn(),
        &old.name,
        &old.subject,
        &old.key_type,
        &issued,
        now,
        &actor.name,
    )
    .await?;
    let old_retires_at = now.saturating_add(overlap_secs.saturating_mul(1000)).min(old.not_after);
    sqlx::query("UPDATE certificates SET retires_at = $1, renewed_as = $2 WHERE id = $3")
        .bind(old_retires_at)
        .bind(&certificate.id)
        .bind(id)
        .execute(change.conn())
        .await?;
    change
        .commit(
            AuditEvent::new(&actor.name, "certificate.renew", &old.name)
                .detail(serde_json::json!({
                    "id": old.id,
                    "renewed_as": certificate.id,
                    "serial": certificate.serial_hex,
                    "fingerprint": certificate.fingerprint,
                    "not_after": crate::domain::clock::iso(certificate.not_after),
                    "old_retires_at": crate::domain::clock::iso(old_retires_at),
                }))
                .source(actor.source()),
        )
        .await?;
    Ok(Renewed {
        chain: chain(&issued.pem, authority.cert_pem()),
        certificate,
        old_retires_at,
    })
}

async fn list(db: &Db) -> DomainResult<Vec<CertificateInfo>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {FROM} ORDER BY c.created_at DESC LIMIT 100"
    ))
    .fetch_all(db.read())
    .await?;
    let now = now_ms();
    Ok(rows.into_iter().map(|r| from_row(r, now)).collect())
}

/// Every certificate that passes mTLS at `now` (renewed ones in their
/// overlap included), newest first: what an immediate CA rotation stops.
pub(crate) async fn working_in<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    now: i64,
) -> DomainResult<Vec<CertificateInfo>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE c.revoked_at IS NULL AND c.not_after > $1 \
         AND (c.retires_at IS NULL OR c.retires_at > $1) AND (a.retires_at IS NULL OR a.retires_at > $1) \
         ORDER BY c.created_at DESC"
    ))
    .bind(now)
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|r| from_row(r, now)).collect())
}

/// A certificate's PEM followed by its CA's: what a client installs.
fn chain(leaf: &str, ca: &str) -> String {
    format!("{}\n{}\n", leaf.trim_end(), ca.trim_end())
}

/// A certificate and its PEM with the CA chain after it.
async fn get_with_chain(db: &Db, id: &str) -> DomainResult<(CertificateInfo, String)> {
    let info = find(db.read(), id, now_ms()).await?;
    let (leaf, ca_pem): (String, String) = sqlx::query_as(
        "SELECT c.pem, a.cert_pem FROM certificates c JOIN certificate_authorities a ON a.id = c.ca_id \
             WHERE c.id = $1",
    )
    .bind(id)
    .fetch_optional(db.read())
    .await?
    .ok_or(DomainError::NotFound(crate::domain::Entity::Certificate))?;
    Ok((info, chain(&leaf, &ca_pem)))
}

/// Revokes a certificate: from the next request on it no longer passes
/// mTLS, and it is listed in the CRL. So are the certificates it renewed
/// that still work (their overlap not over): they carry the same key, and
/// a revoked renewal must not leave its predecessor as a way in (nor a way
/// round the limit of active certificates).
async fn revoke(db: &Db, actor: &Principal, id: &str) -> DomainResult<CertificateInfo> {
    let mut change = db.change_as(actor).await?;
    let now = now_ms();
    let info = find(change.conn(), id, now).await?;
    if info.revoked_at.is_some() {
        return Err(DomainError::Conflict(format!(
            "The certificate \"{}\" is already revoked.",
            info.name
        )));
    }
    sqlx::query("UPDATE certificates SET revoked_at = $1, revoked_by = $2 WHERE id = $3")
        .bind(now)
        .bind(&actor.name)
        .bind(id)
        .execute(change.conn())
        .await?;
    // Back along the renewals, while they still work (bounded: a chain is
    // as long as the renewals made, each one a change).
    let mut predecessors = Vec::new();
    let mut current = id.to_owned();
    for _ in 0..1000 {
        let before: Option<(String, Option<i64>, Option<i64>)> =
            sqlx::query_as("SELECT id, revoked_at, retires_at FROM certificates WHERE renewed_as = $1")
                .bind(&current)
                .fetch_optional(change.conn())
                .await?;
        let Some((before, revoked_at, retires_at)) = before else {
            break;
        };
        if revoked_at.is_none() && retires_at.is_some_and(|at| at > now) {
            sqlx::query("UPDATE certificates SET revoked_at = $1, revoked_by = $2 WHERE id = $3")
                .bind(now)
                .bind(&actor.name)
                .bind(&before)
                .execute(change.conn())
                .await?;
            predecessors.push(before.clone());
        }
        current = before;
    }
    change
        .commit(
            AuditEvent::new(&actor.name, "certificate.revoke", &info.name)
                .detail(serde_json::json!({
                    "id": info.id,
                    "serial": info.serial_hex,
                    "fingerprint": info.fingerprint,
                    "renewed_ones_revoked": predecessors,
                }))
                .source(actor.source()),
        )
        .await?;
    Ok(CertificateInfo {
        revoked_at: Some(now),
        status: CertStatus::Revoked,
        ..info
    })
}

/// The condition for a certificate that counts as active at `$1`: not
/// revoked or expired, its CA still trusted, and not renewed (one on its
/// way out does not count; its renewal does).
const ACTIVE: &str = "revoked_at IS NULL AND not_after > $1 AND renewed_as IS NULL AND ca_id IN \
                      (SELECT id FROM certificate_authorities WHERE retires_at IS NULL OR retires_at > $1)";

/// How many certificates are active now, towards the limit.
pub(crate) async fn active_count<'e>(executor: impl sqlx::Executor<'e, Database = sqlx::Any>) -> DomainResult<i64> {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM certificates WHERE {ACTIVE}"))
        .bind(now_ms())
        .fetch_one(executor)
        .await?;
    Ok(n)
}

/// The CRLs, signed now: one for each CA trusted now (the current one
/// first), each listing the revoked certificates it issued.
async fn crl_pem(db: &Db, master: &MasterKey) -> DomainResult<String> {
    let mut conn = db.read().acquire().await?;
    let mut crls = String::new();
    for (ca_id, _) in crate::domain::pki::ca::trusted(&mut *conn, now_ms()).await? {
        let revoked: Vec<(String, i64)> = sqlx::query_as(
            "SELECT serial, revoked_at FROM certificates WHERE revoked_at IS NOT NULL AND ca_id = $1 \
             ORDER BY revoked_at",
        )
        .bind(ca_id)
        .fetch_all(&mut *conn)
        .await?;
        let authority = Ca::load_id(&mut conn, master, ca_id).await?;
        crls.push_str(authority.crl_pem(&revoked)?.trim_end());
        crls.push('\n');
    }
    if crls.is_empty() {
        return Err(DomainError::SetupRequired);
    }
    Ok(crls)
}

/// How long a new certificate is valid, as the caller asked.
#[derive(Debug, Clone, Copy)]
pub enum Validity {
    /// The configured maximum.
    Default,
    /// Whole days (the console's field).
    Days(i64),
    /// Seconds, for short-lived certificates (the admin API).
    Seconds(i64),
}

impl Validity {
    /// In seconds; `None` for the default, which the operation decides.
    fn secs(self) -> DomainResult<Option<i64>> {
        match self {
            Validity::Default => Ok(None),
            Validity::Days(days) if days < 1 => Err(DomainError::invalid_field(
                "validity",
                "The validity must be at least 1 day.",
            )),
            Validity::Days(days) => Ok(Some(days.saturating_mul(86_400))),
            Validity::Seconds(secs) => Ok(Some(secs)),
        }
    }
}

/// Certificates expiring within this many days are called out (or
/// within the last third of a shorter life: a new 30-day certificate is
/// not "about to expire").
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Is something valid from `not_before` to `not_after` (a certificate,
/// a CA) close enough to its end to act on?
pub fn expiring(not_before: i64, not_after: i64, now: i64) -> bool {
    let window = (EXPIRY_WARNING_DAYS * 86_400_000).min((not_after - not_before) / 3);
    not_after - now < window
}

/// What Settings > Security shows.
pub struct SecurityOverview {
    pub secure_mode: bool,
    pub mtls: bool,
    pub certificates: Vec<CertificateInfo>,
    pub active: i64,
    /// Active certificates close to their end (see [`EXPIRY_WARNING_DAYS`]).
    pub expiring: Vec<CertificateInfo>,
    /// The longest validity an admin may give a certificate now: the
    /// configured maximum, or less if the CA ends sooner.
    pub max_validity: std::time::Duration,
}

impl SecurityOverview {
    /// mTLS on with no active certificate: no backend can mint auth
    /// tokens or use the admin API.
    pub fn mtls_locked_out(&self) -> bool {
        self.mtls && self.active == 0
    }
}

impl Keyward {
    /// Issues a certificate from a CSR; returns it with its PEM and the
    /// CA's after it (the chain a client installs).
    pub async fn issue_certificate(
        &self,
        who: &Principal,
        name: &str,
        csr_pem: &str,
        validity: Validity,
    ) -> DomainResult<(CertificateInfo, String)> {
        let max = self.lifetimes.cert_max_validity.as_secs() as i64;
        let validity_secs = validity.secs()?;
        let issued = create(
            &self.db,
            &self.master_key,
            who,
            NewCertificate {
                name,
                csr_pem,
                validity_secs,
            },
            max,
        )
        .await?;
        self.refresh().await?;
        Ok(issued)
    }

    /// Revokes a certificate: from the next request on it no longer passes
    /// mTLS, and it is listed in the CRL.
    pub async fn revoke_certificate(&self, who: &Principal, id: &str) -> DomainResult<CertificateInfo> {
        crate::domain::ids::plausible(id, crate::domain::Entity::Certificate)?;
        let info = revoke(&self.db, who, id).await?;
        self.metrics.revocation(crate::domain::metrics::Revocation::Certificate);
        self.refresh().await?;
        Ok(info)
    }

    /// Renews a certificate: the same key and subject, issued again by
    /// the CA (no CSR needed), for `validity` (by default as long as the
    /// old one's); the old one keeps working for `overlap_secs` (at most
    /// until its own end) so the backend can swap without an outage.
    pub async fn renew_certificate(
        &self,
        who: &Principal,
        id: &str,
        validity: Validity,
        overlap_secs: i64,
    ) -> DomainResult<Renewed> {
        crate::domain::ids::plausible(id, crate::domain::Entity::Certificate)?;
        let validity_secs = validity.secs()?;
        let max = self.lifetimes.cert_max_validity.as_secs() as i64;
        let renewed = renew(&self.db, &self.master_key, who, id, validity_secs, overlap_secs, max).await?;
        self.refresh().await?;
        Ok(renewed)
    }

    /// The newest certificates, newest first.
    pub async fn certificates(&self, _who: &Principal) -> DomainResult<Vec<CertificateInfo>> {
        list(&self.db).await
    }

    /// One certificate with its PEM and the CA chain, to download again.
    pub async fn certificate(&self, _who: &Principal, id: &str) -> DomainResult<(CertificateInfo, String)> {
        crate::domain::ids::plausible(id, crate::domain::Entity::Certificate)?;
        get_with_chain(&self.db, id).await
    }

    pub async fn security_overview(&self, who: &Principal) -> DomainResult<SecurityOverview> {
        let app = self.application(who).await?;
        let certificates = list(&self.db).await?;
        let now = now_ms();
        // A renewed certificate is on its way out: neither counted nor
        // warned of (its renewal is).
        let live = || certificates.iter().filter(|c| c.renewable());
        let expiring = live()
            .filter(|c| expiring(c.not_before, c.not_after, now))
            .cloned()
            .collect();
        let active = live().count() as i64;
        let ca_left_secs = crate::domain::pki::ca::list(self.db.read())
            .await?
            .iter()
            .find(|c| c.is_current())
            .map_or(0, |c| ((c.not_after - now) / 1000).max(0) as u64);
        Ok(SecurityOverview {
            secure_mode: app.secure_mode,
            mtls: app.mtls,
            active,
            expiring,
            certificates,
            max_validity: self
                .lifetimes
                .cert_max_validity
                .min(std::time::Duration::from_secs(ca_left_secs)),
        })
    }

    /// The CA bundle (public): every CA whose certificates are accepted
    /// now, the current one first; once the application exists.
    pub async fn ca_pem(&self) -> DomainResult<String> {
        crate::domain::pki::ca::bundle_pem(&self.db)
            .await?
            .ok_or(DomainError::SetupRequired)
    }

    /// The CRLs of every CA trusted now, signed now (public).
    pub async fn crl_pem(&self) -> DomainResult<String> {
        crl_pem(&self.db, &self.master_key).await
    }
}

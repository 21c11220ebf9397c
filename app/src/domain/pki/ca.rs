//! The application's private CA: created with the application, its key
//! sealed with the master key, opened only to issue a certificate or sign
//! the CRL. Key and certificate handling is rcgen's; we choose the profile.

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
    SubjectPublicKeyInfo,
};
use sqlx::AnyConnection;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::domain::clock::now_ms;
use crate::domain::pki::csr::CheckedCsr;
use crate::domain::secrets::{sha256, MasterKey};
use crate::domain::storage::db::Db;
use crate::domain::{DomainError, DomainResult};

/// Binds the sealed key to its purpose (see `MasterKey::seal`).
const SEAL_CONTEXT: &str = "ca-key:1";
/// A CA's lifetime unless the application chose another (20 years).
pub const DEFAULT_VALIDITY_DAYS: i64 = 7300;
/// The shortest and longest CA lifetimes an admin may choose, in days.
pub const MIN_VALIDITY_DAYS: i64 = 1;
pub const MAX_VALIDITY_DAYS: i64 = 36_500;
/// Certificates start a little in the past, for clients whose clocks lag.
pub(crate) const BACKDATE_SECS: i64 = 60;

/// Re-seals every CA's private key with `new` (a master-key rotation).
pub(in crate::domain) async fn reseal(
    conn: &mut AnyConnection,
    old: &MasterKey,
    new: &MasterKey,
) -> DomainResult<usize> {
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT id, key_sealed FROM certificate_authorities")
        .fetch_all(&mut *conn)
        .await?;
    for (id, sealed) in &rows {
        sqlx::query("UPDATE certificate_authorities SET key_sealed = $1 WHERE id = $2")
            .bind(old.reseal(new, sealed, SEAL_CONTEXT)?)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(rows.len())
}

fn internal(what: &str) -> impl FnOnce(rcgen::Error) -> DomainError + '_ {
    move |e| DomainError::Internal(format!("{what}: {e}"))
}

fn time_of(ms: i64) -> DomainResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map_err(|e| DomainError::Internal(format!("timestamp out of range: {e}")))
}

/// A positive serial of 127 random bits, as RFC 5280 asks (≤ 20 octets).
pub fn random_serial() -> Vec<u8> {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // no leading zero octet to trim
    bytes.to_vec()
}

/// Makes CA number `id` (the first is 1) for `validity_days` and stores it,
/// its key sealed with the master key.
async fn insert(
    conn: &mut AnyConnection,
    master: &MasterKey,
    id: i64,
    app_name: &str,
    validity_days: i64,
    created_by: &str,
) -> DomainResult<()> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(internal("CA key"))?;
    let now = now_ms();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // Each CA its own name, so people (and tools) can tell them apart.
    let suffix = if id == 1 { " CA".to_owned() } else { format!(" CA {id}") };
    let keep = 64 - suffix.chars().count();
    let cn: String = app_name.chars().take(keep).chain(suffix.chars()).collect();
    dn.push(DnType::CommonName, DnValue::Utf8String(cn));
    dn.push(DnType::OrganizationName, DnValue::Utf8String("Keyward".into()));
    params.distinguished_name = dn;
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    params.not_before = time_of(now - BACKDATE_SECS * 1000)?;
    params.not_after = time_of(now)? + time::Duration::days(validity_days);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.key_identifier_method = KeyIdMethod::Sha256;
    let cert = params.self_signed(&key).map_err(internal("CA certificate"))?;
    let key_der = Zeroizing::new(key.serialize_der());
    let sealed = master.seal(&key_der, SEAL_CONTEXT)?;
    sqlx::query(
        "INSERT INTO certificate_authorities (id, cert_pem, key_sealed, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(cert.pem())
    .bind(sealed)
    .bind(now)
    .bind(created_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Creates the CA inside the change that creates the application.
pub async fn create(conn: &mut AnyConnection, master: &MasterKey, app_name: &str) -> DomainResult<()> {
    insert(conn, master, 1, app_name, DEFAULT_VALIDITY_DAYS, "system").await
}

/// Gives an application set up before certificates existed its CA.
pub(crate) async fn ensure(db: &Db, master: &MasterKey) -> DomainResult<()> {
    if !trusted(db.read(), now_ms()).await?.is_empty() {
        return Ok(());
    }
    // The application's name, read here: the PKI does not reach into the
    // application's module (which reaches into it, to create the CA).
    let app: Option<(String,)> = sqlx::query_as("SELECT name FROM application WHERE id = 1")
        .fetch_optional(db.read())
        .await?;
    let Some((app_name,)) = app else {
        return Ok(());
    };
    let mut change = db.change().await?;
    let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM certificate_authorities ORDER BY id LIMIT 1")
        .fetch_optional(change.conn())
        .await?;
    if exists.is_some() {
        return Ok(()); // another instance was first; dropping rolls back
    }
    create(change.conn(), master, &app_name).await?;
    change
        .commit(crate::domain::audit::AuditEvent::new("system", "ca.create", app_name))
        .await
}

/// The CAs whose certificates are accepted at `now`, the current one
/// first: (id, certificate PEM).
pub(crate) async fn trusted<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    now: i64,
) -> DomainResult<Vec<(i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT id, cert_pem FROM certificate_authorities WHERE retires_at IS NULL OR retires_at > $1 \
         ORDER BY id DESC",
    )
    .bind(now)
    .fetch_all(executor)
    .await?)
}

/// The CA bundle (public): every CA whose certificates are accepted now,
/// the current one first; `None` before the application exists.
pub(crate) async fn bundle_pem(db: &Db) -> DomainResult<Option<String>> {
    let cas = trusted(db.read(), now_ms()).await?;
    if cas.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        cas.iter().map(|(_, pem)| format!("{}\n", pem.trim_end())).collect(),
    ))
}

/// A CA as Settings > Security shows it.
#[derive(Debug, Clone)]
pub struct CaInfo {
    pub id: i64,
    pub subject: String,
    pub fingerprint: String,
    pub not_before: i64,
    pub not_after: i64,
    pub created_at: i64,
    pub created_by: String,
    /// Replaced by a newer CA: its certificates are accepted until then.
    pub retires_at: Option<i64>,
}

impl CaInfo {
    /// The CA new certificates come from.
    pub fn is_current(&self) -> bool {
        self.retires_at.is_none()
    }

    /// Are its certificates still accepted at `now`?
    pub fn is_trusted(&self, now: i64) -> bool {
        self.retires_at.is_none_or(|at| at > now) && self.not_after > now
    }
}

/// Reads a CA certificate's subject and validity.
fn describe(pem: &str) -> DomainResult<(String, [u8; 32], i64, i64)> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| DomainError::Internal(format!("stored CA certificate: {e}")))?;
    let cert = parsed
        .parse_x509()
        .map_err(|e| DomainError::Internal(format!("stored CA certificate: {e}")))?;
    let validity = cert.validity();
    Ok((
        cert.subject().to_string(),
        sha256(&parsed.contents),
        validity.not_before.timestamp() * 1000,
        validity.not_after.timestamp() * 1000,
    ))
}

/// The application's CAs, newest first: the current one, then those it
/// replaced (the last 20).
pub(crate) async fn list<'e>(executor: impl sqlx::Executor<'e, Database = sqlx::Any>) -> DomainResult<Vec<CaInfo>> {
    let rows: Vec<(i64, String, i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, cert_pem, created_at, created_by, retires_at FROM certificate_authorities \
         ORDER BY id DESC LIMIT 20",
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter()
        .map(|(id, pem, created_at, created_by, retires_at)| {
            let (subject, digest, not_before, not_after) = describe(&pem)?;
            Ok(CaInfo {
                id,
                subject,
                fingerprint: crate::domain::pki::certificates::fingerprint_text(&digest),
                not_before,
                not_after,
                created_at,
                created_by,
                retires_at,
            })
        })
        .collect()
}

/// The CA a rotation made, and when the ones it replaced retire.
#[derive(Debug, Clone)]
pub struct NewCa {
    /// The new, current CA's number.
    pub id: i64,
    /// When the CAs it replaced stop being trusted (now, for `0`).
    pub old_retires_at: i64,
}

/// Makes a new current CA for `validity_days`; every CA trusted now is
/// trusted until `now + overlap_ms` at most. Inside the caller's change.
pub(crate) async fn rotate(
    conn: &mut AnyConnection,
    master: &MasterKey,
    created_by: &str,
    validity_days: i64,
    overlap_ms: i64,
    now: i64,
) -> DomainResult<NewCa> {
    let app: Option<(String,)> = sqlx::query_as("SELECT name FROM application WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?;
    let (app_name,) = app.ok_or(DomainError::SetupRequired)?;
    let (last,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM certificate_authorities")
        .fetch_one(&mut *conn)
        .await?;
    let old_retires_at = now.saturating_add(overlap_ms);
    // An earlier rotation's overlap may end sooner: it is not extended.
    sqlx::query("UPDATE certificate_authorities SET retires_at = $1 WHERE retires_at IS NULL OR retires_at > $1")
        .bind(old_retires_at)
        .execute(&mut *conn)
        .await?;
    let id = last.unwrap_or(0) + 1;
    insert(conn, master, id, &app_name, validity_days, created_by).await?;
    Ok(NewCa { id, old_retires_at })
}

/// The CA, ready to sign. Read through `conn` so issuing can happen under
/// a change's lock.
pub struct Ca {
    id: i64,
    cert_pem: String,
    not_after_ms: i64,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// The current CA: the one new certificates come from.
    pub async fn load(conn: &mut AnyConnection, master: &MasterKey) -> DomainResult<Ca> {
        let row: Option<(i64, String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, cert_pem, key_sealed FROM certificate_authorities WHERE retires_at IS NULL \
             ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?;
        let (id, cert_pem, sealed) = row.ok_or(DomainError::SetupRequired)?;
        Ca::open(id, cert_pem, &sealed, master)
    }

    /// CA number `id`, current or not (to sign its CRL).
    pub async fn load_id(conn: &mut AnyConnection, master: &MasterKey, id: i64) -> DomainResult<Ca> {
        let row: Option<(String, Vec<u8>)> =
            sqlx::query_as("SELECT cert_pem, key_sealed FROM certificate_authorities WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        let (cert_pem, sealed) = row.ok_or(DomainError::SetupRequired)?;
        Ca::open(id, cert_pem, &sealed, master)
    }

    fn open(id: i64, cert_pem: String, sealed: &[u8], master: &MasterKey) -> DomainResult<Ca> {
        let key_der = Zeroizing::new(master.open(sealed, SEAL_CONTEXT)?);
        let key = KeyPair::try_from(key_der.as_slice()).map_err(internal("CA key"))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(internal("CA certificate"))?;
        let (_, _, _, not_after_ms) = describe(&cert_pem)?;
        Ok(Ca {
            id,
            cert_pem,
            not_after_ms,
            issuer,
        })
    }

    /// No certificate it issues outlives it.
    pub fn not_after_ms(&self) -> i64 {
        self.not_after_ms
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a client certificate for a checked CSR: its subject and key,
    /// our profile (clientAuth only, not a CA), a fresh random serial.
    pub fn issue(&self, csr: &CheckedCsr, not_after_ms: i64) -> DomainResult<Issued> {
        if not_after_ms > self.not_after_ms {
            return Err(DomainError::invalid_field(
                "validity",
                format!(
                    "The CA expires on {}: a certificate cannot outlive it. Choose a shorter validity, or rotate the CA.",
                    crate::domain::clock::display(self.not_after_ms)
                ),
            ));
        }
        let now = now_ms();
        let serial = random_serial();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        for (oid, value) in &csr.subject {
            let value = match rcgen::string::PrintableString::try_from(value.as_str()) {
                Ok(p) => DnValue::PrintableString(p),
                Err(_) => DnValue::Utf8String(value.clone()),
            };
            dn.push(DnType::from_oid(oid), value);
        }
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let not_before_ms = now - BACKDATE_SECS * 1000;
        params.not_before = time_of(not_before_ms)?;
        params.not_after = time_of(not_after_ms)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let public_key = SubjectPublicKeyInfo::from_der(&csr.spki)
            .map_err(|e| DomainError::invalid(format!("The CSR's public key cannot be certified: {e}")))?;
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .map_err(internal("issuing a certificate"))?;
        Ok(Issued {
            ca_id: self.id,
            pem: cert.pem(),
            fingerprint: sha256(cert.der()),
            serial_hex: hex::encode(&serial),
            not_before_ms: not_before_ms.div_euclid(1000) * 1000,
            not_after_ms: not_after_ms.div_euclid(1000) * 1000,
        })
    }

    /// A CRL listing `revoked` (serial in hex, revocation time), valid for a day.
    pub fn crl_pem(&self, revoked: &[(String, i64)]) -> DomainResult<String> {
        let now = now_ms();
        let mut revoked_certs = Vec::with_capacity(revoked.len());
        for (serial_hex, at) in revoked {
            let serial = hex::decode(serial_hex).map_err(|e| DomainError::Internal(format!("stored serial: {e}")))?;
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial),
                revocation_time: time_of(*at)?,
                reason_code: None,
                invalidity_date: None,
            });
        }
        let this_update = time_of(now)?;
        let params = CertificateRevocationListParams {
            this_update,
            next_update: this_update + time::Duration::days(1),
            // Seconds since the epoch: increases with every CRL we sign.
            crl_number: SerialNumber::from_slice(&now.div_euclid(1000).to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).map_err(internal("signing the CRL"))?;
        crl.pem().map_err(internal("encoding the CRL"))
    }
}

/// A freshly issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The CA that issued it.
    pub ca_id: i64,
    pub pem: String,
    pub fingerprint: [u8; 32],
    pub serial_hex: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
}

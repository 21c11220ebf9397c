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
const CA_YEARS: i64 = 20;
/// Certificates start a little in the past, for clients whose clocks lag.
pub(crate) const BACKDATE_SECS: i64 = 60;

/// Re-seals the CA's private key with `new` (a master-key rotation).
pub(in crate::domain) async fn reseal(
    conn: &mut AnyConnection,
    old: &MasterKey,
    new: &MasterKey,
) -> DomainResult<usize> {
    // One CA (its row is id 1), or none before setup.
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT key_sealed FROM ca WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?;
    let Some((sealed,)) = row else { return Ok(0) };
    sqlx::query("UPDATE ca SET key_sealed = $1 WHERE id = 1")
        .bind(old.reseal(new, &sealed, SEAL_CONTEXT)?)
        .execute(&mut *conn)
        .await?;
    Ok(1)
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

/// Creates the CA inside the change that creates the application.
pub async fn create(conn: &mut AnyConnection, master: &MasterKey, app_name: &str) -> DomainResult<()> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(internal("CA key"))?;
    let now = now_ms();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    let cn: String = format!("{app_name} CA").chars().take(64).collect();
    dn.push(DnType::CommonName, DnValue::Utf8String(cn));
    dn.push(DnType::OrganizationName, DnValue::Utf8String("Keyward".into()));
    params.distinguished_name = dn;
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    params.not_before = time_of(now - BACKDATE_SECS * 1000)?;
    params.not_after = params.not_before + time::Duration::days(365 * CA_YEARS);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.key_identifier_method = KeyIdMethod::Sha256;
    let cert = params.self_signed(&key).map_err(internal("CA certificate"))?;
    let key_der = Zeroizing::new(key.serialize_der());
    let sealed = master.seal(&key_der, SEAL_CONTEXT)?;
    sqlx::query("INSERT INTO ca (id, cert_pem, key_sealed, created_at) VALUES (1, $1, $2, $3)")
        .bind(cert.pem())
        .bind(sealed)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Gives an application set up before certificates existed its CA.
pub(crate) async fn ensure(db: &Db, master: &MasterKey) -> DomainResult<()> {
    if cert_pem(db).await?.is_some() {
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
    let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM ca WHERE id = 1")
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

/// The CA certificate (public), once the application exists.
pub(crate) async fn cert_pem(db: &Db) -> DomainResult<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT cert_pem FROM ca WHERE id = 1")
        .fetch_optional(db.read())
        .await?;
    Ok(row.map(|(pem,)| pem))
}

/// The CA, ready to sign. Read through `conn` so issuing can happen under
/// a change's lock.
pub struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub async fn load(conn: &mut AnyConnection, master: &MasterKey) -> DomainResult<Ca> {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as("SELECT cert_pem, key_sealed FROM ca WHERE id = 1")
            .fetch_optional(conn)
            .await?;
        let (cert_pem, sealed) = row.ok_or(DomainError::SetupRequired)?;
        let key_der = Zeroizing::new(master.open(&sealed, SEAL_CONTEXT)?);
        let key = KeyPair::try_from(key_der.as_slice()).map_err(internal("CA key"))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(internal("CA certificate"))?;
        Ok(Ca { cert_pem, issuer })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a client certificate for a checked CSR: its subject and key,
    /// our profile (clientAuth only, not a CA), a fresh random serial.
    pub fn issue(&self, csr: &CheckedCsr, not_after_ms: i64) -> DomainResult<Issued> {
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
    pub pem: String,
    pub fingerprint: [u8; 32],
    pub serial_hex: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
}

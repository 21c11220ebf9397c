//! Reading a certificate signing request an admin pasted: PEM → PKCS#10,
//! the key type and size we accept, and the self-signature. Every refusal
//! says what is wrong, in words an admin can act on.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::domain::{DomainError, DomainResult};

/// The largest CSR we read; real ones are a few KiB at most.
pub const MAX_PEM_LEN: usize = 16 * 1024;
const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa(usize),
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

impl KeyType {
    pub fn label(self) -> String {
        match self {
            KeyType::Rsa(bits) => format!("RSA {bits}"),
            KeyType::EcdsaP256 => "ECDSA P-256".into(),
            KeyType::EcdsaP384 => "ECDSA P-384".into(),
            KeyType::Ed25519 => "Ed25519".into(),
        }
    }
}

/// A subject as (attribute OID, value) pairs, in order.
pub type Subject = Vec<(Vec<u64>, String)>;

/// A CSR whose key is acceptable and whose signature checks out.
#[derive(Debug, Clone)]
pub struct CheckedCsr {
    /// The DER SubjectPublicKeyInfo to certify.
    pub spki: Vec<u8>,
    pub key_type: KeyType,
    /// The requested subject as (attribute OID, value) pairs, in order.
    pub subject: Subject,
    /// The subject in RFC 4514-like text, for people.
    pub subject_text: String,
}

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::invalid_field("csr", message)
}

/// Decodes the one `CERTIFICATE REQUEST` block of `pem`.
fn der_from_pem(pem: &str) -> DomainResult<Vec<u8>> {
    if pem.len() > MAX_PEM_LEN {
        return Err(invalid("The CSR is too long (at most 16 KiB of PEM)."));
    }
    let begin = pem.find("-----BEGIN ");
    let Some(begin) = begin else {
        return Err(invalid(
            "The CSR must be PEM: it starts with -----BEGIN CERTIFICATE REQUEST-----.",
        ));
    };
    let rest = &pem[begin + "-----BEGIN ".len()..];
    let label_end = rest
        .find("-----")
        .ok_or_else(|| invalid("The CSR's PEM header is incomplete."))?;
    let label = &rest[..label_end];
    if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
        return Err(invalid(format!(
            "Expected a CERTIFICATE REQUEST, but the PEM holds a {label}."
        )));
    }
    let body = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let body_end = body
        .find(&end_marker)
        .ok_or_else(|| invalid("The CSR's PEM has no END line: was it pasted whole?"))?;
    let b64: String = body[..body_end].chars().filter(|c| !c.is_whitespace()).collect();
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| invalid("The CSR's PEM body is not valid base64: it may be truncated or altered."))
}

/// Bits of an unsigned big-endian integer, leading zero bytes ignored.
fn bit_len(bytes: &[u8]) -> usize {
    let trimmed: &[u8] = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => return 0,
    };
    (trimmed.len() - 1) * 8 + (8 - trimmed[0].leading_zeros() as usize)
}

/// A CA reads requests as DER, not as the laxer BER most parsers accept
/// (x509-parser among them): a request openssl refuses (an altered tag, a
/// signature with unused bits, parameters its algorithm does not take) is
/// refused here too, even when its signed part is intact. Decoded with
/// RustCrypto's strict `der`, and encoded again to the same bytes.
fn strict_der(der: &[u8]) -> DomainResult<()> {
    use x509_cert::der::{Decode, Encode, Tag, Tagged};
    use x509_cert::spki::AlgorithmIdentifierOwned;

    let malformed = |what: &str| invalid(format!("The CSR is not valid DER ({what}): it may have been altered."));
    let req = x509_cert::request::CertReq::from_der(der).map_err(|_| malformed("its structure"))?;
    if req.to_der().map_err(|_| malformed("its structure"))? != der {
        return Err(malformed("a non-canonical encoding"));
    }
    if req.signature.unused_bits() != 0 || req.info.public_key.subject_public_key.unused_bits() != 0 {
        return Err(malformed("a bit string with unused bits"));
    }
    // RSA's algorithms (but PSS) take NULL parameters, or none; ECDSA's
    // and Ed25519 signatures none; an EC key names its curve.
    const RSA_ARC: &str = "1.2.840.113549.1.1.";
    const RSA_PSS: &str = "1.2.840.113549.1.1.10";
    const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    let tag_of = |alg: &AlgorithmIdentifierOwned| alg.parameters.as_ref().map(|p| (p.tag(), p.value().len()));
    let params_fit = |alg: &AlgorithmIdentifierOwned| {
        let oid = alg.oid.to_string();
        match tag_of(alg) {
            None => oid != EC_PUBLIC_KEY,
            Some((Tag::Null, 0)) => oid.starts_with(RSA_ARC) && oid != RSA_PSS,
            Some((Tag::ObjectIdentifier, _)) => oid == EC_PUBLIC_KEY,
            Some((Tag::Sequence, _)) => oid == RSA_PSS,
            Some(_) => false,
        }
    };
    if !params_fit(&req.algorithm) {
        return Err(malformed("signature algorithm parameters"));
    }
    if !params_fit(&req.info.public_key.algorithm) {
        return Err(malformed("key algorithm parameters"));
    }
    Ok(())
}

pub fn check(pem: &str) -> DomainResult<CheckedCsr> {
    let der = der_from_pem(pem.trim())?;
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|_| invalid("The CSR could not be read as PKCS#10: it may be truncated or altered."))?;
    if !rest.is_empty() {
        return Err(invalid("The CSR has trailing data after the request."));
    }
    // What reads as PKCS#10 at all must also be it in strict DER.
    strict_der(&der)?;
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    // The key first: an unacceptable key is the clearer message.
    let key_type = key_type_of(spki)?;

    csr.verify_signature().map_err(|_| {
        invalid("The CSR's signature does not match its public key: it was altered or not signed by its key.")
    })?;

    let (subject, subject_text) = subject_of(&info.subject)?;
    Ok(CheckedCsr {
        spki: spki.raw.to_vec(),
        key_type,
        subject,
        subject_text,
    })
}

/// The key a CSR (or a certificate Keyward issued) carries, if acceptable.
fn key_type_of(spki: &x509_parser::x509::SubjectPublicKeyInfo) -> DomainResult<KeyType> {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_PKCS1_RSAENCRYPTION {
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => {
                let bits = bit_len(rsa.modulus);
                if bits < MIN_RSA_BITS {
                    return Err(invalid(format!(
                        "The CSR's RSA key has {bits} bits; at least {MIN_RSA_BITS} are required."
                    )));
                }
                Ok(KeyType::Rsa(bits))
            }
            _ => Err(invalid("The CSR's RSA public key could not be read.")),
        }
    } else if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
        match curve {
            Some(c) if c == OID_EC_P256 => Ok(KeyType::EcdsaP256),
            Some(c) if c == OID_NIST_EC_P384 => Ok(KeyType::EcdsaP384),
            Some(c) => Err(invalid(format!(
                "The CSR's ECDSA key is on curve {c}; only P-256 and P-384 are accepted."
            ))),
            None => Err(invalid("The CSR's ECDSA key does not name its curve.")),
        }
    } else if *alg == OID_SIG_ED25519 {
        Ok(KeyType::Ed25519)
    } else {
        Err(invalid(format!(
            "The CSR's key type ({alg}) is not accepted: use RSA (2048 bits or more), ECDSA P-256/P-384 or Ed25519."
        )))
    }
}

/// A subject as (attribute OID, value) pairs, in order, and as text.
fn subject_of(name: &x509_parser::x509::X509Name) -> DomainResult<(Subject, String)> {
    let mut subject = Vec::new();
    for attr in name.iter_attributes() {
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .map(|i| i.collect())
            .ok_or_else(|| invalid("The CSR's subject has an attribute Keyward cannot read."))?;
        let value = attr
            .as_str()
            .map_err(|_| invalid("The CSR's subject holds a value that is not text."))?;
        subject.push((oid, value.to_string()));
    }
    let text = name.to_string();
    Ok((subject, if text.is_empty() { "(empty)".into() } else { text }))
}

/// The key and subject of a certificate Keyward issued, to issue it again
/// (a renewal): what its CSR said, without the CSR.
pub fn from_certificate(pem: &str) -> DomainResult<CheckedCsr> {
    let internal = |what: &str| DomainError::Internal(format!("a stored certificate: {what}"));
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| internal("not PEM"))?;
    let cert = block.parse_x509().map_err(|_| internal("not X.509"))?;
    let spki = cert.public_key();
    let key_type = key_type_of(spki)?;
    let (subject, subject_text) = subject_of(cert.subject())?;
    Ok(CheckedCsr {
        spki: spki.raw.to_vec(),
        key_type,
        subject,
        subject_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr_for(alg: &'static rcgen::SignatureAlgorithm) -> String {
        let key = rcgen::KeyPair::generate_for(alg).expect("key");
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name.push(rcgen::DnType::CommonName, "backend-1");
        params.serialize_request(&key).expect("csr").pem().expect("pem")
    }

    #[test]
    fn accepts_p256_p384_and_ed25519() {
        let p256 = check(&csr_for(&rcgen::PKCS_ECDSA_P256_SHA256)).expect("p256");
        assert_eq!(p256.key_type, KeyType::EcdsaP256);
        assert_eq!(p256.subject_text, "CN=backend-1");
        let p384 = check(&csr_for(&rcgen::PKCS_ECDSA_P384_SHA384)).expect("p384");
        assert_eq!(p384.key_type, KeyType::EcdsaP384);
        let ed = check(&csr_for(&rcgen::PKCS_ED25519)).expect("ed25519");
        assert_eq!(ed.key_type, KeyType::Ed25519);
    }

    #[test]
    fn refuses_what_is_not_a_csr() {
        let msg = |r: DomainResult<CheckedCsr>| match r {
            Err(DomainError::Invalid { message, .. }) => message,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(msg(check("hello")).contains("must be PEM"));
        assert!(
            msg(check("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")).contains("CERTIFICATE REQUEST")
        );
        let good = csr_for(&rcgen::PKCS_ECDSA_P256_SHA256);
        let truncated = good.replace("-----END CERTIFICATE REQUEST-----", "");
        assert!(msg(check(&truncated)).contains("no END line"));
        assert!(msg(check(&"x".repeat(MAX_PEM_LEN + 1))).contains("too long"));
    }

    #[test]
    fn counts_modulus_bits() {
        assert_eq!(bit_len(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_len(&[0x01, 0xff]), 9);
        assert_eq!(bit_len(&[0, 0]), 0);
    }
}

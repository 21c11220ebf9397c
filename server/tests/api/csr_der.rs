//! A certificate authority refuses a malformed request, even one whose
//! signed body is intact: CSRs are read as strict DER (issue 21).

use base64::Engine;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::process::{Command, Stdio};

use crate::certificates::{create_certificate, openssl_csr, ops_token, Key};
use crate::helpers::*;

fn der_of(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

fn pem_of(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        lines.join("\n")
    )
}

/// (where the content starts, its length) of the TLV at `at`.
fn tlv(der: &[u8], at: usize) -> (usize, usize) {
    let first = der[at + 1];
    if first < 0x80 {
        return (at + 2, first as usize);
    }
    let n = (first & 0x7f) as usize;
    let len = der[at + 2..at + 2 + n]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    (at + 2 + n, len)
}

/// Where the signature algorithm and the signature BIT STRING start.
fn after_info(der: &[u8]) -> (usize, usize) {
    let (outer, _) = tlv(der, 0);
    let (info, info_len) = tlv(der, outer);
    let alg = info + info_len;
    let (alg_content, alg_len) = tlv(der, alg);
    let _ = alg_content;
    (alg, alg_content + alg_len)
}

/// The three mutants the DER mutation study found accepted.
fn mutants(der: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let (alg, sig) = after_info(der);
    let mut application_tag = der.to_vec();
    application_tag[0] = 0x70;
    let mut oid_as_octets = der.to_vec();
    let (alg_content, _) = tlv(der, alg);
    assert_eq!(oid_as_octets[alg_content], 0x06, "the algorithm starts with its OID");
    oid_as_octets[alg_content] = 0x04;
    let mut unused_bits = der.to_vec();
    let (sig_content, _) = tlv(der, sig);
    assert_eq!(
        (der[sig], der[sig_content]),
        (0x03, 0x00),
        "a BIT STRING, no unused bits"
    );
    unused_bits[sig_content] = 0x03;
    vec![
        ("outer SEQUENCE as an application tag", application_tag),
        ("signature algorithm OID as OCTET STRING", oid_as_octets),
        ("signature with unused bits", unused_bits),
    ]
}

fn openssl_verifies(pem: &str) -> bool {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["req", "-verify", "-noout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl runs");
    child.stdin.take().unwrap().write_all(pem.as_bytes()).unwrap();
    child.wait().unwrap().success()
}

const KEYS: [Key; 3] = [Key::Rsa(2048), Key::P256, Key::Ed25519];

#[tokio::test]
async fn malformed_requests_with_an_intact_signed_body_are_refused() {
    let app = TestApp::ready().await;
    let token = ops_token(&app).await;
    let dir = tempfile::tempdir().unwrap();
    for key in KEYS {
        let (_, pem) = openssl_csr(dir.path(), key, "backend");
        assert!(app::domain::pki::csr::check(&pem).is_ok(), "the request itself is fine");
        for (what, der) in mutants(&der_of(&pem)) {
            let mutant = pem_of(&der);
            assert!(!openssl_verifies(&mutant), "{what}: openssl refuses it too");
            let res = create_certificate(&app, &token, json!({ "name": "m", "csr": mutant })).await;
            let message = envelope(res, 400, 400000).await;
            assert!(
                message.contains("not valid DER") || message.contains("could not be read as PKCS#10"),
                "{what}: {message}"
            );
        }
    }
    let listed = app.bearer_json("/api/v1/certificates", &token).await;
    assert_eq!(listed["certificates"], json!([]), "nothing was issued");
}

/// Thousands of one-byte mutants of real requests: none that openssl
/// refuses is accepted.
#[test]
fn no_mutant_openssl_refuses_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261127);
    let mut accepted_wrongly = Vec::new();
    let mut tried = 0;
    for key in KEYS {
        let (_, pem) = openssl_csr(dir.path(), key, "backend");
        let der = der_of(&pem);
        for _ in 0..1000 {
            let mut m = der.clone();
            let at = rng.gen_range(0..m.len());
            let was = m[at];
            while m[at] == was {
                m[at] = rng.gen();
            }
            tried += 1;
            let mutant = pem_of(&m);
            if app::domain::pki::csr::check(&mutant).is_ok() && !openssl_verifies(&mutant) {
                accepted_wrongly.push(format!("{key:?} byte {at}: {was:#04x} -> {:#04x}", m[at]));
            }
        }
    }
    assert_eq!(tried, 3000);
    assert!(
        accepted_wrongly.is_empty(),
        "accepted, refused by openssl: {accepted_wrongly:#?}"
    );
}

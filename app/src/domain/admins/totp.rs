//! Time-based one-time passwords (RFC 6238) as authenticator apps compute
//! them: HMAC-SHA-1, 30-second steps, 6 digits. Pure arithmetic; which
//! codes are accepted, and once only, is `second_factor`'s.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Seconds per step, as every authenticator app assumes.
pub const STEP_SECONDS: i64 = 30;
/// 160 bits: RFC 4226's recommended secret length for HMAC-SHA-1.
pub const SECRET_BYTES: usize = 20;

/// The step a moment in Unix milliseconds falls in.
pub fn step_at(unix_ms: i64) -> i64 {
    unix_ms.div_euclid(1000 * STEP_SECONDS)
}

/// The 6-digit code of `step` (RFC 4226's dynamic truncation).
pub fn code(secret: &[u8], step: i64) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let bin = u32::from_be_bytes([
        digest[offset],
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]) & 0x7fff_ffff;
    format!("{:06}", bin % 1_000_000)
}

/// The step among `now`'s and one on either side (clock skew) whose code
/// `typed` is, if any. Every candidate is compared, in constant time.
pub fn matching_step(secret: &[u8], typed: &str, now_ms: i64) -> Option<i64> {
    let now = step_at(now_ms);
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        if bool::from(code(secret, step).as_bytes().ct_eq(typed.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// The secret as authenticator apps take it typed in: base32, no padding.
pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` address an app reads from the QR code.
pub fn provisioning_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
        percent(issuer),
        percent(account),
        base32(secret),
        percent(issuer)
    )
}

/// Percent-encodes all but unreserved characters (and `@`, which
/// usernames hold and apps show as is).
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The QR code of `uri` as an SVG document (black on white, scalable).
pub fn qr_svg(uri: &str) -> Option<String> {
    let qr = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        qr.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 rows (8-digit codes there; the
    /// last 6 digits are what a 6-digit code is).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (unix, eight) in [
            (59_i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code(secret, step_at(unix * 1000)), eight[2..], "at {unix}");
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let secret = b"12345678901234567890";
        let now = 1_234_567_890_000;
        let here = step_at(now);
        for skew in [-1, 0, 1] {
            assert_eq!(
                matching_step(secret, &code(secret, here + skew), now),
                Some(here + skew)
            );
        }
        for far in [-2, 2] {
            assert_eq!(matching_step(secret, &code(secret, here + far), now), None);
        }
        assert_eq!(matching_step(secret, "", now), None);
        assert_eq!(matching_step(secret, "12345", now), None);
    }

    #[test]
    fn the_provisioning_uri_names_issuer_account_and_secret() {
        let uri = provisioning_uri("Acme Chat", "ops@example", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20Chat:ops@example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Chat&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }
}

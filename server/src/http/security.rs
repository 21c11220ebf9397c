//! Browser-facing protections applied to every response, and the refusal
//! of cross-origin writes to the console.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use app::auth::ClientAddr;
use app::domain::pki::mtls::Transport;

use crate::config::ClientCertHeader;
use crate::tls::Peer;

/// Records, for every request, the client's address (for throttling and the
/// audit log) and how it arrived (for mTLS). Behind a configured trusted
/// proxy, both come from the proxy's headers; from anyone else those
/// headers are ignored.
pub async fn client_info(State(proxy): State<Option<Arc<ClientCertHeader>>>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|ConnectInfo(p)| p.clone());
    let peer_ip = peer.as_ref().map(|p| p.addr.ip());
    let (mut addr, mut transport) = match peer {
        Some(p) => (p.addr.ip().to_string(), p.transport),
        None => ("unknown".to_string(), Transport::PlainHttp),
    };
    if let (Some(proxy), Some(ip)) = (&proxy, peer_ip) {
        if proxy.proxies.contains(&ip) {
            let headers = req.headers();
            // The proxy always appends the address it saw; without one
            // readable, the request is from nobody we can name (not from
            // the proxy itself, whose address many clients share).
            addr = last_forwarded_for(headers).unwrap_or_else(|| "unknown (behind the proxy)".into());
            // The proxy terminated TLS; it passes the client's certificate.
            let cert = headers
                .get(&proxy.name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.trim().is_empty())
                .map(|v| certificate_from_header(v).ok_or(()));
            transport = match cert {
                None => Transport::Tls { client_cert: None },
                Some(Ok(der)) => Transport::Tls { client_cert: Some(der) },
                // Unreadable: treated like a certificate nobody issued.
                Some(Err(())) => Transport::Tls {
                    client_cert: Some(Arc::from(&b"unreadable"[..])),
                },
            };
        }
    }
    req.extensions_mut().insert(ClientAddr(addr));
    req.extensions_mut().insert(transport);
    next.run(req).await
}

/// The address the trusted proxy appended: the last value of the last
/// `X-Forwarded-For` line. A client may send lines (or values) of its own
/// before it; only the proxy's own entry is believed.
/// Read as bytes: a client may put non-ASCII into a line the proxy then
/// appends to, and that must not make the whole header unreadable.
fn last_forwarded_for(headers: &HeaderMap) -> Option<String> {
    let value = headers.get_all("x-forwarded-for").iter().next_back()?.as_bytes();
    let last = value.rsplit(|b| *b == b',').next()?;
    let last = std::str::from_utf8(last).ok()?.trim();
    last.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
}

/// A URL-encoded PEM certificate (nginx's `$ssl_client_escaped_cert`) → DER.
fn certificate_from_header(value: &str) -> Option<Arc<[u8]>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let pem = percent_decode(value.trim())?;
    let der = CertificateDer::from_pem_slice(&pem).ok()?;
    Some(Arc::from(der.as_ref()))
}

/// Percent-decoding that leaves `+` alone (base64 uses it).
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// State-changing console requests must come from a page of this site.
/// SameSite=Strict cookies already stop most cross-site posts; this check
/// also covers sibling subdomains and older browsers. The REST API under
/// `/api/` authenticates with headers, never cookies, so it is exempt.
pub async fn same_origin_writes(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // The API authenticates with headers, never cookies: nothing to forge.
    if safe || super::api::is_api_path(req.uri().path()) {
        return next.run(req).await;
    }
    if is_same_origin(req.headers()) {
        next.run(req).await
    } else {
        tracing::warn!(path = %req.uri().path(), "refused a cross-origin write");
        (StatusCode::FORBIDDEN, "Cross-origin request refused.").into_response()
    }
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn is_same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let source = headers
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null")
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match source.and_then(host_of) {
        Some(origin_host) => origin_host == host.to_ascii_lowercase(),
        None => false,
    }
}

/// Security headers. Pages set their own nonce-based Content-Security-
/// Policy; everything else gets one that allows nothing.
///
/// Referrer-Policy is `same-origin`, not `no-referrer`: forms posted
/// without JavaScript are sent back to the page they came from by its
/// Referer, and `same-origin` still never leaks a URL to another site.
pub async fn headers(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_asset = path.starts_with("/pkg/") || path.starts_with("/favicon.");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    if !is_asset {
        // Pages and answers may hold secrets: never keep them in a cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Request spans carry the path but not the query, where tokens may sit.
pub fn span_without_query(req: &Request) -> tracing::Span {
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_needs_a_matching_origin_or_referer() {
        assert!(is_same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000")
        ])));
        assert!(is_same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("referer", "http://127.0.0.1:3000/login?x=1")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.example")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000.evil.example")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "null")
        ])));
        assert!(!is_same_origin(&headers(&[("host", "127.0.0.1:3000")])));
    }

    #[test]
    fn percent_decoding_keeps_plus_signs() {
        assert_eq!(percent_decode("a%20b+c%0A").unwrap(), b"a b+c\n");
        assert!(percent_decode("bad%2").is_none());
        assert!(percent_decode("bad%zz").is_none());
    }

    #[test]
    fn forwarded_for_takes_the_proxys_entry() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 198.51.100.7")]);
        assert_eq!(last_forwarded_for(&h).as_deref(), Some("198.51.100.7"));
        assert_eq!(last_forwarded_for(&headers(&[("x-forwarded-for", "junk")])), None);
        let mut two_lines = headers(&[("x-forwarded-for", "203.0.113.66")]);
        two_lines.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1, 198.51.100.7"));
        assert_eq!(last_forwarded_for(&two_lines).as_deref(), Some("198.51.100.7"));
        let mut non_ascii = HeaderMap::new();
        non_ascii.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff\xfe, 198.51.100.8").unwrap(),
        );
        assert_eq!(last_forwarded_for(&non_ascii).as_deref(), Some("198.51.100.8"));
    }
}

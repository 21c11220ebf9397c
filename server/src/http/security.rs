//! Browser-facing protections applied to every response, and the refusal
//! of cross-origin writes to the console.

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

use app::auth::ClientAddr;

/// Records the client's address for throttling and the audit log.
pub async fn client_addr(mut req: Request, next: Next) -> Response {
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    req.extensions_mut().insert(ClientAddr(addr));
    next.run(req).await
}

/// State-changing console requests must come from a page of this site.
/// SameSite=Strict cookies already stop most cross-site posts; this check
/// also covers sibling subdomains and older browsers. The REST API under
/// `/api/` authenticates with headers, never cookies, so it is exempt.
pub async fn same_origin_writes(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || req.uri().path().starts_with("/api/") {
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
    let is_asset = req.uri().path().starts_with("/pkg/");
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
}

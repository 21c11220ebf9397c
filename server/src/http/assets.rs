//! The console's browser bundle (script, wasm, stylesheet) under `/pkg/`.
//!
//! Built into the binary by `server/build.rs`: the file names carry the
//! bundle's content hash, so they are cached for a year and a new release,
//! with new names, is never served stale. `--site-root` serves a folder
//! instead (a development override: unhashed names, never cached).

use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::path::PathBuf;
use tower::ServiceExt;
use tower_http::services::ServeDir;

const HASH: &str = env!("KEYWARD_CONSOLE_HASH");

/// One embedded file: its name inside the bundle, plain and gzipped bytes.
struct Embedded {
    suffix: &'static str,
    content_type: &'static str,
    plain: &'static [u8],
    gzip: &'static [u8],
}

macro_rules! embedded {
    ($suffix:literal, $file:literal, $content_type:literal) => {
        Embedded {
            suffix: $suffix,
            content_type: $content_type,
            plain: include_bytes!(concat!(env!("OUT_DIR"), "/console/", $file)),
            gzip: include_bytes!(concat!(env!("OUT_DIR"), "/console/", $file, ".gz")),
        }
    };
}

/// The names the hydration script asks for are `{output_name}.js` and
/// `{output_name}_bg.wasm`; the shell links `{output_name}.css`.
static BUNDLE: [Embedded; 3] = [
    embedded!(".js", "keyward.js", "text/javascript; charset=utf-8"),
    embedded!("_bg.wasm", "keyward_bg.wasm", "application/wasm"),
    embedded!(".css", "keyward.css", "text/css; charset=utf-8"),
];

/// Where the bundle comes from.
#[derive(Clone, Debug)]
pub enum Console {
    Embedded,
    Folder(PathBuf),
}

impl Console {
    pub fn new(site_root: Option<PathBuf>) -> Console {
        site_root.map_or(Console::Embedded, Console::Folder)
    }

    /// The bundle's base name under `/pkg/`, what Leptos calls the output name.
    pub fn output_name(&self) -> String {
        match self {
            Console::Embedded => format!("keyward-{HASH}"),
            Console::Folder(_) => "keyward".to_owned(),
        }
    }

    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let icon = Router::new()
            .route("/favicon.svg", get(favicon))
            .route("/favicon.ico", get(favicon));
        icon.merge(self.bundle())
    }

    fn bundle<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        match self {
            Console::Embedded => Router::new().route("/pkg/{file}", get(embedded)),
            Console::Folder(root) => {
                let dir = ServeDir::new(root.join("pkg")).precompressed_gzip().precompressed_br();
                Router::new().nest_service(
                    "/pkg",
                    tower::service_fn(move |req: Request| {
                        let dir = dir.clone();
                        async move {
                            let mut res = dir.oneshot(req).await.into_response();
                            res.headers_mut()
                                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                            Ok::<_, std::convert::Infallible>(res)
                        }
                    }),
                )
            }
        }
    }
}

/// The product's icon (browsers ask for `/favicon.ico` whatever the page
/// links; an SVG under that name is what they then get).
async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("favicon.svg"),
    )
        .into_response()
}

async fn embedded(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = file
        .strip_prefix("keyward-")
        .and_then(|rest| rest.strip_prefix(HASH))
        .and_then(|suffix| BUNDLE.iter().find(|a| a.suffix == suffix))
    else {
        // Another release's names, or no such file: never a stale answer.
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = HeaderValue::from_str(&format!("\"{HASH}{}\"", asset.suffix)).expect("hash and suffix are ASCII");
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let gzip = accepts_gzip(&headers);
    let mut res = Response::new(Body::from(if gzip { asset.gzip } else { asset.plain }));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::ETAG, etag);
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    res
}

/// `Accept-Encoding` names gzip with a weight above zero.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        assert!(accepts_gzip(&with("gzip, deflate, br")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}

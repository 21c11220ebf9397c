//! The HTTP surface: console pages and server functions, the REST API
//! under `/api`, health and metrics endpoints, and the layers every
//! response passes.

mod api;
mod assets;
mod audit_export;
mod console;
mod health;
mod metrics;
mod security;

use axum::extract::FromRef;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use app::domain::admins::console_sessions::SqlSessionStore;
use app::domain::Keyward;
use app::{shell, App};

use crate::config::ClientCertHeader;

pub use api::ApiError;
pub use audit_export::csv_cell;

/// Request bodies larger than this are refused before they are read.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Cloned for every request that extracts it: both fields are shared, so a
/// clone is two reference counts, not a copy of Leptos's options.
#[derive(Clone)]
pub struct AppState {
    pub leptos: Arc<LeptosOptions>,
    pub keyward: Keyward,
    pub recorder: metrics::Recorder,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        (*state.leptos).clone()
    }
}

pub struct Parts {
    pub keyward: Keyward,
    pub store: SqlSessionStore,
    /// A folder to serve the browser bundle from instead of the embedded one.
    pub site_root: Option<PathBuf>,
    pub client_cert_header: Option<ClientCertHeader>,
}

pub fn router(parts: Parts) -> Router {
    let console_assets = assets::Console::new(parts.site_root);
    let leptos = LeptosOptions::builder()
        .output_name(console_assets.output_name())
        .site_pkg_dir("pkg")
        .build();
    let state = AppState {
        leptos: Arc::new(leptos.clone()),
        keyward: parts.keyward.clone(),
        recorder: metrics::Recorder {
            exposition: Arc::new(metrics::Exposition::new(parts.keyward.clone())),
            traces: parts.keyward.traces().clone(),
        },
    };
    let secure_cookie = parts.keyward.public_url().starts_with("https://");
    let idle = time::Duration::try_from(parts.keyward.console_idle()).unwrap_or(time::Duration::minutes(30));
    let sessions = SessionManagerLayer::new(parts.store)
        // `__Host-` binds the cookie to this host and path, HTTPS only.
        .with_name(if secure_cookie { "__Host-keyward" } else { "keyward" })
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(secure_cookie)
        .with_path("/")
        // Activity pushes this back: `auth::require_admin` touches the
        // session (at most once a minute). No `always_save`: every request,
        // even for a stylesheet, would write back its own stale copy of the
        // session and could undo what a concurrent request stored.
        .with_expiry(Expiry::OnInactivity(idle));

    let routes = console_routes();
    let keyward = parts.keyward.clone();
    let context = move || {
        provide_context(keyward.clone());
        provide_context(app::server_fns::api_reference::ApiDocument(api::openapi_document()));
    };
    // Any other path is a page the console does not have: rendered, with
    // its 404, and never looked up on disk.
    let not_found = leptos_axum::render_app_to_stream_with_context(context.clone(), {
        let leptos = leptos.clone();
        move || shell(leptos.clone())
    });

    // Console sessions (cookies) are the console's alone: the API and the
    // health checks authenticate with headers and never pay for them.
    let console = Router::new()
        .merge(console::router())
        .leptos_routes_with_context(&state, routes, context, {
            let leptos = leptos.clone();
            move || shell(leptos.clone())
        })
        .fallback(move |req: axum::extract::Request| not_found(req))
        .layer(axum::middleware::from_fn(console::answers))
        .layer(sessions);

    // The bundle is public and cached by anyone for a year: outside the
    // console's session layer, so no answer for it can carry a cookie.
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(console_assets.router())
        .nest("/api", api::router())
        .nest("/admin", api::admin_router())
        .merge(console)
        .layer(axum::middleware::from_fn(security::same_origin_writes))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(axum::middleware::from_fn(api::envelope_everything))
        .layer(axum::middleware::from_fn_with_state(
            parts.client_cert_header.map(Arc::new),
            security::client_info,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.recorder.clone(),
            metrics::record,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(security::span_without_query))
        .with_state(state)
}

/// The console's routes, walked out of the app once per process.
///
/// While leptos walks them it sets a process-wide flag, and any resource
/// first polled meanwhile, on any server in the process, waits forever
/// (leptos-rs/leptos#4773). One server per process never meets it; the
/// tests, which start many servers at once, hung a page now and then.
fn console_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

//! `GET /api/openapi.json`: the API's OpenAPI 3.1 document, generated from
//! the handlers' own annotations and types (utoipa), so it cannot drift
//! from the code. Social Plus's names for an endpoint Keyward also serves
//! under its own are listed as operations of their own.

use axum::http::header;
use axum::response::IntoResponse;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

use super::{admin, audit_stream, auth_tokens, certificates, sessions, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keyward",
        description = "The authentication API of a self-hosted Keyward, wire-compatible with Social Plus (Amity). \
                       Errors are the envelope `{status, code, message, data?}`; code 400100 means a bad \
                       credential and nothing else."
    ),
    paths(
        sessions::create,
        sessions::verify,
        sessions::delete,
        sessions::chat_network_settings,
        auth_tokens::mint_v3,
        auth_tokens::mint_v4,
        admin::revoke_user_sessions,
        admin::me,
        admin::rotate_token,
        admin::revoke_token,
        admin::revoke_token_by_body,
        admin::settings,
        admin::update_settings,
        admin::generate_server_key,
        admin::list_server_keys,
        admin::audit_events,
        audit_stream::export,
        certificates::list,
        certificates::create,
        certificates::get,
        certificates::revoke,
        certificates::renew,
        certificates::ca_pem,
        certificates::crl_pem,
        webhooks::list,
        webhooks::create,
        webhooks::get,
        webhooks::update,
        webhooks::delete,
        webhooks::test,
    ),
    modifiers(&Credentials, &Aliases)
)]
struct ApiDoc;

/// How each credential is presented.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "The application's API key (public: client SDKs embed it)",
            ))),
        );
        components.add_security_scheme(
            "serverKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-server-key",
                "A server key (secret: the customer's backend only)",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token (kwat_…) or an admin token (kwadm_…), as the endpoint says",
                    ))
                    .build(),
            ),
        );
    }
}

/// The same operation under a second path: (method, documented path, alias).
const ALIASES: &[(&str, &str, &str)] = &[
    ("post", "/api/v3/sessions", "/api/v4/sessions"),
    ("post", "/api/v3/sessions", "/api/v5/sessions"),
    ("get", "/api/v3/sessions", "/api/v3/sessions/current"),
    (
        "delete",
        "/api/v4/sessions/users/{userId}",
        "/api/v4/users/{userId}/sessions",
    ),
    ("post", "/api/v1/admin-token", "/admin/v1/token"),
];

struct Aliases;

impl Modify for Aliases {
    fn modify(&self, doc: &mut Document) {
        for (method, from, to) in ALIASES {
            let Some(source) = doc.paths.paths.get(*from) else {
                continue;
            };
            let operation = match *method {
                "get" => source.get.clone(),
                "post" => source.post.clone(),
                "delete" => source.delete.clone(),
                _ => None,
            };
            let Some(mut operation) = operation else { continue };
            operation.operation_id = operation.operation_id.map(|id| format!("{id}_at_{}", slug(to)));
            let item = doc.paths.paths.entry((*to).to_string()).or_default();
            match *method {
                "get" => item.get = Some(operation),
                "post" => item.post = Some(operation),
                "delete" => item.delete = Some(operation),
                _ => {}
            }
        }
    }
}

fn slug(path: &str) -> String {
    path.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .to_string()
}

/// The document, rendered once per process.
pub fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| ApiDoc::openapi().to_json().expect("the OpenAPI document serialises"))
}

pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

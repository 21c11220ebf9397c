//! `GET /api/openapi.json`: Keyward's own OpenAPI 3.1 document.

use serde_json::Value;
use std::collections::BTreeSet;

use crate::helpers::*;

/// Every endpoint the API serves, Social Plus's names included.
const ENDPOINTS: &[(&str, &str)] = &[
    ("post", "/api/v3/sessions"),
    ("get", "/api/v3/sessions"),
    ("post", "/api/v4/sessions"),
    ("delete", "/api/v4/sessions"),
    ("post", "/api/v5/sessions"),
    ("get", "/api/v3/sessions/current"),
    ("get", "/api/v3/network-settings/chat"),
    ("get", "/api/v3/authentication/token"),
    ("post", "/api/v4/authentication/token"),
    ("delete", "/api/v4/users/{userId}/sessions"),
    ("delete", "/api/v4/sessions/users/{userId}"),
    ("get", "/api/v1/admins/me"),
    ("post", "/api/v1/admin-token"),
    ("delete", "/api/v1/admin-token"),
    ("post", "/admin/v1/token"),
    ("delete", "/admin/v1/token"),
    ("get", "/api/v1/settings"),
    ("patch", "/api/v1/settings"),
    ("get", "/api/v1/server-keys"),
    ("post", "/api/v1/server-keys"),
    ("get", "/api/v1/certificates"),
    ("post", "/api/v1/certificates"),
    ("get", "/api/v1/certificates/{id}"),
    ("delete", "/api/v1/certificates/{id}"),
    ("post", "/api/v1/certificates/{id}/renew"),
    ("get", "/api/v1/audit-events"),
    ("get", "/api/v1/audit-events/export"),
    ("get", "/api/v1/ca.pem"),
    ("get", "/api/v1/crl.pem"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks/{id}"),
    ("patch", "/api/v1/webhooks/{id}"),
    ("delete", "/api/v1/webhooks/{id}"),
    ("post", "/api/v1/webhooks/{id}/test"),
];

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint_with_its_errors() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = res.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ENDPOINTS.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, served);

    // Each operation names its answers; each error is the envelope.
    for (method, path) in &served {
        let op = &doc["paths"][path][method];
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.contains_key("200"), "{method} {path}");
        for (status, answer) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &answer["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {status}");
            }
        }
    }
    // The credentials, as schemes.
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for name in ["apiKey", "serverKey", "bearer"] {
        assert!(schemes.contains_key(name), "{name}");
    }
    let error = &doc["components"]["schemas"]["ErrorBody"]["properties"];
    for field in ["status", "code", "message", "data"] {
        assert!(error.get(field).is_some(), "the envelope documents {field}");
    }
}

/// Settings > API reference renders the document in the console: every
/// operation, with its answers; signed out, it sends to sign-in.
#[tokio::test]
async fn the_console_renders_the_api_reference() {
    let app = TestApp::ready().await;
    let res = app.client.get(app.url("/settings/api")).send().await.unwrap();
    assert_eq!(res.status(), 302, "signed out");
    app.login().await;
    let page = app.html("/settings/api").await;
    assert!(page.contains("API reference"));
    assert!(page.contains("/api/openapi.json"), "it links the document");
    for (method, path) in ENDPOINTS {
        // Each operation's card is anchored by method and path.
        let anchor = format!("id=\"{method}-{}\"", path.replace(['/', '{', '}'], "-"));
        assert!(page.contains(&anchor), "{method} {path} is on the page ({anchor})");
    }
    assert_eq!(page.matches("data-testid=\"operation\"").count(), ENDPOINTS.len());
    assert!(page.contains("userId Not Found."), "answers are described");
    assert!(page.contains("X-Server-Key header"), "credentials are named");
}

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::ApiReference;

/// The REST API's OpenAPI document, as the server serves it at
/// `/api/openapi.json` (it is generated in the server crate, which hands
/// it to the console through this context).
#[cfg(feature = "ssr")]
#[derive(Clone, Copy, Debug)]
pub struct ApiDocument(pub &'static str);

/// The API reference, read from the OpenAPI document: every operation with
/// its credential, parameters, body and answers.
#[server(prefix = "/console/fn", endpoint = "api_reference")]
pub async fn load_api_reference() -> Result<ApiReference, AppError> {
    use crate::model::{ApiOperation, ApiParam};
    use serde_json::Value;

    crate::auth::require_admin().await?;
    let ApiDocument(text) = use_context::<ApiDocument>().ok_or(AppError::Internal)?;
    let doc: Value = serde_json::from_str(text).map_err(|_| AppError::Internal)?;
    let schema_name = |v: &Value| -> Option<String> {
        let r = v.get("$ref").or_else(|| v.pointer("/items/$ref"))?.as_str()?;
        r.rsplit('/').next().map(str::to_owned)
    };
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in ["get", "post", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let credential = op["security"]
                .as_array()
                .and_then(|s| s.first())
                .and_then(Value::as_object)
                .and_then(|s| s.keys().next().cloned())
                .map(|scheme| match scheme.as_str() {
                    "apiKey" => "X-API-Key header".to_owned(),
                    "serverKey" => "X-Server-Key header".to_owned(),
                    "bearer" => "Authorization: Bearer token".to_owned(),
                    other => other.to_owned(),
                })
                .unwrap_or_else(|| "none".to_owned());
            let params = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| ApiParam {
                    name: p["name"].as_str().unwrap_or_default().to_owned(),
                    place: p["in"].as_str().unwrap_or_default().to_owned(),
                    required: p["required"].as_bool().unwrap_or(false),
                    description: p["description"].as_str().unwrap_or_default().to_owned(),
                })
                .collect();
            let body = op["requestBody"]["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .and_then(|media| schema_name(&media["schema"]));
            let responses = op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, answer)| {
                    let schema = answer["content"]
                        .as_object()
                        .and_then(|c| c.values().next())
                        .and_then(|media| schema_name(&media["schema"]));
                    let description = answer["description"].as_str().unwrap_or_default();
                    (
                        status.clone(),
                        match schema {
                            Some(s) => format!("{description} ({s})"),
                            None => description.to_owned(),
                        },
                    )
                })
                .collect();
            operations.push(ApiOperation {
                tag: op["tags"][0].as_str().unwrap_or("Other").to_owned(),
                method: method.to_uppercase(),
                path: path.clone(),
                summary: op["summary"].as_str().unwrap_or_default().to_owned(),
                credential,
                params,
                body,
                responses,
            });
        }
    }
    operations.sort_by(|a, b| (&a.tag, &a.path, &a.method).cmp(&(&b.tag, &b.path, &b.method)));
    Ok(ApiReference {
        title: doc["info"]["title"].as_str().unwrap_or("Keyward").to_owned(),
        version: doc["openapi"].as_str().unwrap_or_default().to_owned(),
        operations,
    })
}

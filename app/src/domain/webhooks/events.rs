//! The events a webhook can subscribe to, and which audit events raise
//! them. Every webhook event is an audit event first: its payload carries
//! the event's sequence number and chain hash, so a receiver can match it
//! with the audit stream.

use serde_json::Value;

/// Every event name, with what it announces (the README and the console
/// list them from here).
pub const EVENTS: &[(&str, &str)] = &[
    ("server_key.generated", "A server key was generated"),
    ("server_key.retired", "A server key was removed"),
    ("secure_mode.on", "Secure mode was turned on"),
    ("secure_mode.off", "Secure mode was turned off"),
    ("mtls.on", "mTLS was turned on"),
    ("mtls.off", "mTLS was turned off"),
    ("admin_token.generated", "An admin token was generated"),
    ("admin_token.revoked", "An admin's tokens were revoked"),
    ("admin_token.expiring", "An admin token expires in 30, 7 or 1 days"),
    ("admin_token.expired", "An admin token expired"),
    ("certificate.issued", "A client certificate was issued"),
    ("certificate.revoked", "A client certificate was revoked"),
    (
        "certificate.renewed",
        "A client certificate was renewed (the same key, issued again; the old one kept for an overlap)",
    ),
    (
        "certificate.expiring",
        "A client certificate expires in 30, 7 or 1 days",
    ),
    ("certificate.expired", "A client certificate expired"),
    (
        "ca.rotated",
        "The application's CA was rotated: a new CA issues from now on, the old one trusted until the overlap ends",
    ),
    ("admin.created", "A console admin was created"),
    ("admin.disabled", "A console admin was disabled"),
    ("admin.enabled", "A console admin was enabled again"),
    (
        "admin.locked_out",
        "A console admin was locked out after failed sign-ins",
    ),
    (
        "second_factor.changed",
        "An admin enrolled, removed or reset a second factor, or new recovery codes were made",
    ),
    (
        "second_factor.requirement_changed",
        "The second factor was made required or optional for every admin",
    ),
    (
        "master_key.rotated",
        "The master key was rotated (every sealed secret re-sealed)",
    ),
    ("webhook.created", "A webhook endpoint was added"),
    ("webhook.deleted", "A webhook endpoint was deleted"),
    ("webhook.enabled", "A webhook endpoint was enabled"),
    (
        "webhook.disabled",
        "A webhook endpoint was disabled, by an admin or by Keyward after a day of failures",
    ),
    (
        "webhook.test",
        "A test event, sent from Settings > Webhooks to one endpoint",
    ),
];

/// Subscribes to every event, present and future.
pub const ALL: &str = "*";

pub fn is_event(name: &str) -> bool {
    EVENTS.iter().any(|(n, _)| *n == name)
}

/// The webhook events an audit event raises (most raise none). A settings
/// change that flips two switches raises one event for each.
pub fn raised_by(action: &str, detail: &Value) -> Vec<&'static str> {
    let one = |e: &'static str| vec![e];
    match action {
        "server_key.generate" => one("server_key.generated"),
        "server_key.remove" => one("server_key.retired"),
        "ca.rotate" => one("ca.rotated"),
        "admin_token.generate" | "admin_token.issue_at_sign_in" => one("admin_token.generated"),
        "admin_token.revoke" => one("admin_token.revoked"),
        "admin_token.expiring" => one("admin_token.expiring"),
        "admin_token.expired" => one("admin_token.expired"),
        "certificate.issue" => one("certificate.issued"),
        "certificate.revoke" => one("certificate.revoked"),
        "certificate.renew" => one("certificate.renewed"),
        "certificate.expiring" => one("certificate.expiring"),
        "certificate.expired" => one("certificate.expired"),
        "admin.create" => one("admin.created"),
        "admin.disable" => one("admin.disabled"),
        "admin.enable" => one("admin.enabled"),
        "admin.lockout" => one("admin.locked_out"),
        "admin.second_factor.enrol"
        | "admin.second_factor.remove"
        | "admin.second_factor.reset"
        | "admin.recovery_codes.regenerate" => one("second_factor.changed"),
        "master_key.rotated" => one("master_key.rotated"),
        "webhook.create" => one("webhook.created"),
        "webhook.delete" => one("webhook.deleted"),
        "webhook.enable" => one("webhook.enabled"),
        "webhook.disable" | "webhook.auto_disable" => one("webhook.disabled"),
        "webhook.test" => one("webhook.test"),
        "settings.update" => {
            let turned = |setting: &str| detail.get(setting).and_then(|c| c.get("to")).and_then(Value::as_bool);
            let mut raised = Vec::new();
            match turned("secure_mode") {
                Some(true) => raised.push("secure_mode.on"),
                Some(false) => raised.push("secure_mode.off"),
                None => {}
            }
            match turned("mtls") {
                Some(true) => raised.push("mtls.on"),
                Some(false) => raised.push("mtls.off"),
                None => {}
            }
            if turned("require_second_factor").is_some() {
                raised.push("second_factor.requirement_changed");
            }
            raised
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_raised_event_is_listed() {
        let actions = [
            ("server_key.generate", json!(null)),
            ("server_key.remove", json!(null)),
            ("admin_token.generate", json!(null)),
            ("admin_token.issue_at_sign_in", json!(null)),
            ("admin_token.revoke", json!(null)),
            ("admin_token.expiring", json!(null)),
            ("admin_token.expired", json!(null)),
            ("certificate.issue", json!(null)),
            ("certificate.revoke", json!(null)),
            ("certificate.renew", json!(null)),
            ("certificate.expiring", json!(null)),
            ("certificate.expired", json!(null)),
            ("admin.create", json!(null)),
            ("admin.disable", json!(null)),
            ("admin.enable", json!(null)),
            ("admin.lockout", json!(null)),
            ("admin.second_factor.enrol", json!(null)),
            ("admin.recovery_codes.regenerate", json!(null)),
            ("webhook.test", json!(null)),
            ("master_key.rotated", json!(null)),
            ("ca.rotate", json!(null)),
            ("webhook.create", json!(null)),
            ("webhook.delete", json!(null)),
            ("webhook.enable", json!(null)),
            ("webhook.auto_disable", json!(null)),
            (
                "settings.update",
                json!({"secure_mode": {"from": false, "to": true}, "mtls": {"from": true, "to": false},
                       "require_second_factor": {"from": false, "to": true}}),
            ),
            (
                "settings.update",
                json!({"secure_mode": {"from": true, "to": false}, "mtls": {"from": false, "to": true}}),
            ),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (action, detail) in &actions {
            let raised = raised_by(action, detail);
            assert!(!raised.is_empty(), "{action} raises nothing");
            for e in raised {
                assert!(is_event(e), "{e} is not listed");
                seen.insert(e);
            }
        }
        assert_eq!(seen.len(), EVENTS.len(), "an event is listed that nothing raises");
    }

    /// The README's table of events is the receivers' reference.
    #[test]
    fn the_readme_lists_every_event() {
        let readme = include_str!("../../../../README.md");
        for (name, _) in EVENTS {
            assert!(readme.contains(&format!("`{name}`")), "README.md does not list {name}");
        }
    }

    #[test]
    fn a_settings_change_raises_what_it_turned() {
        let d = json!({"secure_mode": {"from": true, "to": false}});
        assert_eq!(raised_by("settings.update", &d), ["secure_mode.off"]);
        assert!(raised_by("settings.update", &json!({})).is_empty());
        assert!(raised_by("admin.sign_in", &json!(null)).is_empty());
        assert!(raised_by("admin_token.retrieve", &json!(null)).is_empty());
    }
}

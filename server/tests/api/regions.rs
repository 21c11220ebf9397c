//! Custom regions (SPEC §3): besides eu, sg and us, a label of the
//! operator's choosing with its own public base URL, set at setup or
//! `keyward init`, changed by a super admin (console, CLI), audited, and
//! shown on Integrations and by the settings API.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

fn init(app: &TestApp, region: &str, url: Option<&str>) -> std::process::Output {
    let mut args = vec![
        "init",
        "--app-name",
        "Acme Chat",
        "--region",
        region,
        "--admin-username",
        ADMIN,
        "--admin-password-stdin",
    ];
    if let Some(url) = url {
        args.extend(["--region-url", url]);
    }
    app.keyward(&args, Some(&format!("{PASSWORD}\n")))
}

#[tokio::test]
async fn a_custom_region_through_the_cli_and_the_api() {
    let app = TestApp::spawn().await;
    // Refused, and nothing set up: a custom label without its URL, a
    // built-in one with a URL, a label that is no label, URLs that are not
    // a public base URL.
    for (region, url, expect) in [
        ("acme-eu", None, "base URL"),
        ("eu", Some("https://chat.acme.example/"), "no URL of its own"),
        (
            "Acme EU!",
            Some("https://chat.acme.example/"),
            "letters, digits and hyphens",
        ),
        ("acme-eu", Some("ftp://chat.acme.example/"), "https://"),
        (
            "acme-eu",
            Some("https://user:pw@chat.acme.example/"),
            "user name or password",
        ),
        ("acme-eu", Some("https://chat.acme.example/?x=1"), "query"),
        ("acme-eu", Some("not a url"), "not a URL"),
    ] {
        let out = init(&app, region, url);
        assert!(!out.status.success(), "{region} {url:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{region} {url:?}: {err}");
    }
    let out = init(&app, "Acme-EU", Some("https://chat.acme.example"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let admin = app.admin_with_token("ops");
    app.settle().await;
    let settings = app.bearer_json("/api/v1/settings", &admin).await;
    assert_eq!(settings["region"], "acme-eu", "{settings}");
    assert_eq!(
        settings["regionUrl"], "https://chat.acme.example/",
        "a base URL ends with /"
    );

    // Changing it is a super admin's: an admin token cannot.
    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&admin)
        .json(&json!({ "region": "us" }))
        .send()
        .await
        .unwrap();
    envelope(res, 403, 400301).await;
    let events = app::domain::audit::recent(app.kw().db(), 5).await.unwrap();
    let refused = events
        .iter()
        .find(|e| e.action == "settings.region_change_refused")
        .expect("a refused change is on record");
    assert_eq!(refused.actor, "ops");
    let res = app
        .client
        .patch(app.url("/api/v1/settings"))
        .bearer_auth(&admin)
        .json(&json!({ "regionUrl": "https://elsewhere.example/" }))
        .send()
        .await
        .unwrap();
    envelope(res, 400, 400000).await;

    // The operator can, audited.
    let out = app.keyward(&["region", "set", "--region", "us"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.settle().await;
    let settings = app.bearer_json("/api/v1/settings", &admin).await;
    assert_eq!(
        (&settings["region"], &settings["regionUrl"]),
        (&json!("us"), &Value::Null)
    );
    let events = app::domain::audit::recent(app.kw().db(), 10).await.unwrap();
    let change = events
        .iter()
        .find(|e| e.action == "settings.region_change")
        .expect("audited");
    assert_eq!(change.source, "cli");
    assert!(
        change.detail.contains("acme-eu") && change.detail.contains("\"us\""),
        "{}",
        change.detail
    );
    let out = app.keyward(&["region", "set", "--region", "acme-eu"], None);
    assert!(!out.status.success(), "a custom label needs its URL");
}

#[tokio::test]
async fn a_super_admin_moves_the_application_to_a_custom_region_in_the_console() {
    let app = TestApp::ready().await;
    let res = app.login().await;
    assert_eq!(location(&res), "/settings/integrations");
    let page = app.html("/settings/integrations").await;
    assert!(page.contains("Change the region"), "a super admin may");

    let res = app
        .form(
            &app.client,
            "set_region",
            "/settings/integrations",
            &[
                ("region", "custom"),
                ("custom_region", "acme-eu"),
                ("region_url", "https://chat.acme.example/"),
            ],
        )
        .await;
    assert_eq!(location(&res), "/settings/integrations");
    let page = app.html("/settings/integrations").await;
    assert!(page.contains("ACME-EU"), "the custom region is named");
    let row = page
        .split("<tr class=\"highlight\">")
        .nth(1)
        .expect("the application's region is highlighted");
    assert!(row.contains("https://chat.acme.example/"), "{row}");

    // A bad URL: a readable refusal, and the region stays.
    let (status, body) = app
        .call(
            &app.client,
            "set_region",
            &[
                ("region", "custom"),
                ("custom_region", "acme-eu"),
                ("region_url", "ftp://x"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("https://"), "{body}");
    // A built-in region again: no URL kept.
    let (status, body) = app
        .call(
            &app.client,
            "set_region",
            &[
                ("region", "sg"),
                ("custom_region", "ignored"),
                ("region_url", "https://ignored.example/"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let page = app.html("/settings/integrations").await;
    assert!(!page.contains("chat.acme.example") && !page.contains("ignored"));

    // An admin (not super) sees no form, and the server function refuses.
    let out = app.keyward(
        &["admin", "create", "--username", "ops", "--password-stdin"],
        Some(&format!("{ADMIN_PASSWORD}\n")),
    );
    assert!(out.status.success());
    let ops = browser(&app.base);
    app.login_with(&ops, "ops", ADMIN_PASSWORD).await;
    let page = app.html_as(&ops, "/settings/integrations").await;
    assert!(!page.contains("Change the region"));
    let (status, _) = app.call(&ops, "set_region", &[("region", "us")]).await;
    assert_eq!(status, 403);
    let res = app.bearer(Method::GET, "/api/v1/settings", "kwadm_nothing").await;
    assert_eq!(res.status(), 401);
}

/// Without JavaScript a refused region form comes back as typed (the page
/// is new), once; the region in use stays.
#[tokio::test]
async fn a_refused_region_form_comes_back_as_typed_without_javascript() {
    let app = TestApp::ready().await;
    app.login().await;
    let in_use = |page: &str| {
        let at = page
            .find(r#"data-testid="endpoint-region">"#)
            .expect("the region is shown");
        page[at..].split(['>', '<']).nth(1).unwrap_or_default().to_owned()
    };
    let before = in_use(&app.html("/settings/integrations").await);
    let res = app
        .form(
            &app.client,
            "set_region",
            "/settings/integrations",
            &[
                ("region", "custom"),
                ("custom_region", "typed-label"),
                ("region_url", "ftp://typed.example/"),
            ],
        )
        .await;
    assert!(location(&res).contains("__err="), "{}", location(&res));
    let page = app.html("/settings/integrations").await;
    assert!(page.contains(r#"value="typed-label""#), "the label is lost");
    assert!(page.contains(r#"value="ftp://typed.example/""#), "the URL is lost");
    assert!(
        page.contains(r#"<option value="custom" selected"#),
        "the custom choice is lost: {}",
        &page[page.find("<select").unwrap_or(0)..][..600]
    );
    assert_eq!(in_use(&page), before, "the region in use changed");
    // Shown once: the next visit shows the region in use.
    let page = app.html("/settings/integrations").await;
    assert!(!page.contains("typed-label"));
}

use crate::helpers::*;

#[tokio::test]
async fn setup_page_is_served_while_setup_is_open() {
    let app = TestApp::spawn().await;
    assert!(app.setup_token.as_deref().unwrap().starts_with("kwsetup_"));
    let res = app.client.get(app.url("/setup")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Set up Keyward"), "{html}");
    // The console itself sends a fresh install to setup.
    let res = app.client.get(app.url("/settings/integrations")).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/setup");
}

#[tokio::test]
async fn setup_refuses_a_wrong_token_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let res = app.setup("kwsetup_wrongwrongwrongwrongwrongwrong", PASSWORD).await;
    assert_eq!(res.status(), 302);
    let back = location(&res);
    assert!(back.contains("__err="), "error travels back to the form: {back}");
    let (_, open) = app.call(&app.client, "setup_open", &[]).await;
    assert_eq!(open, "true");
}

#[tokio::test]
async fn setup_works_once_and_then_the_page_is_gone() {
    let app = TestApp::spawn().await;
    let token = app.setup_token.clone().unwrap();
    let res = app.setup(&token, PASSWORD).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/login?setup=done");

    let res = app.setup(&token, PASSWORD).await;
    assert!(location(&res).contains("__err="), "the token is single use");
    let (_, open) = app.call(&app.client, "setup_open", &[]).await;
    assert_eq!(open, "false");
    let res = app.client.get(app.url("/setup")).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/login");
}

#[tokio::test]
async fn setup_validates_its_fields() {
    let app = TestApp::spawn().await;
    let token = app.setup_token.clone().unwrap();
    let cases: [(&str, &str, &str, &str, &str); 4] = [
        ("", "eu", ADMIN, PASSWORD, "name"),
        ("Acme", "mars", ADMIN, PASSWORD, "region"),
        ("Acme", "eu", "x", PASSWORD, "username"),
        ("Acme", "eu", ADMIN, "short", "12 characters"),
    ];
    for (name, region, user, pw, expect) in cases {
        let fields = [
            ("token", token.as_str()),
            ("app_name", name),
            ("region", region),
            ("username", user),
            ("password", pw),
            ("password_confirm", pw),
        ];
        let (status, body) = app.call(&app.client, "setup", &fields).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(expect), "{expect:?} not in {body}");
    }
    let fields = [
        ("token", token.as_str()),
        ("app_name", "Acme"),
        ("region", "eu"),
        ("username", ADMIN),
        ("password", PASSWORD),
        ("password_confirm", "another password!"),
    ];
    let (_, body) = app.call(&app.client, "setup", &fields).await;
    assert!(body.contains("do not match"), "{body}");
    let (_, open) = app.call(&app.client, "setup_open", &[]).await;
    assert_eq!(open, "true", "nothing was created by the refused attempts");
}

/// Without JavaScript a refused setup form comes back as typed, never the
/// token or a password; and only for whoever holds the setup link, so a
/// stranger's posts keep nothing they typed.
#[tokio::test]
async fn a_refused_setup_form_comes_back_as_typed_for_the_link_holder_only() {
    let app = TestApp::spawn().await;
    let token = app.setup_token.clone().unwrap();
    let typed = |token: &'static str| {
        [
            ("token", token),
            ("app_name", "Typed Acme"),
            ("region", "custom"),
            ("custom_region", "moon-1"),
            ("region_url", "https://moon.example/"),
            ("username", "typed-admin"),
            ("password", "typed password one"),
            ("password_confirm", "typed password two"),
        ]
    };
    let stranger = browser(&app.base);
    let res = app
        .form(
            &stranger,
            "setup",
            "/setup?token=kwsetup_wrong",
            &typed("kwsetup_wrong"),
        )
        .await;
    assert!(location(&res).contains("__err="));
    let page = app.html_as(&stranger, "/setup").await;
    assert!(!page.contains("Typed Acme"), "kept for someone without the link");

    let holder = browser(&app.base);
    let token: &'static str = Box::leak(token.into_boxed_str());
    let res = app
        .form(&holder, "setup", &format!("/setup?token={token}"), &typed(token))
        .await;
    assert!(location(&res).contains("__err="));
    let page = app.html_as(&holder, &format!("/setup?token={token}")).await;
    for kept in [
        r#"value="Typed Acme""#,
        r#"value="moon-1""#,
        r#"value="https://moon.example/""#,
        r#"value="typed-admin""#,
    ] {
        assert!(page.contains(kept), "{kept} is lost");
    }
    assert!(
        page.contains(r#"<option value="custom" selected"#),
        "the custom choice is lost"
    );
    assert!(!page.contains("typed password"), "a password came back");
    // Shown once.
    let page = app.html_as(&holder, "/setup").await;
    assert!(!page.contains("Typed Acme"));
}

//! The researcher's pages: the start page, assignment, and every refusal.

use crate::helpers::{crd_command, spawn_app, spawn_app_on_sqlite, RequestOutcome, TestApp};

#[actix_web::test]
async fn the_start_page_shows_the_free_count_and_the_form() {
    let app = spawn_app().await;
    app.free_vms(2).await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html")));
    let html = response.text().await.expect("html");
    assert!(
        html.contains(r#"<strong id="unassigned_vms_count">2</strong>"#),
        "{html}"
    );
    assert!(html.contains(r#"action="/api/request_vm""#));
    assert!(html.contains(r#"name="viewport""#), "usable on a phone");
    for asset in ["/static/lablink.css", "/static/lablink.js"] {
        assert!(html.contains(asset));
        assert_eq!(app.get(asset).await.status(), 200, "{asset}");
    }
    assert_eq!(app.get("/static/../Cargo.toml").await.status(), 404);
}

#[actix_web::test]
async fn the_free_count_endpoint_counts_only_assignable_vms() {
    let app = spawn_app().await;
    async fn count(app: &TestApp) -> i64 {
        let body: serde_json::Value = app
            .get("/api/unassigned_vms_count")
            .await
            .json()
            .await
            .expect("json");
        body["count"].as_i64().expect("count")
    }
    assert_eq!(count(&app).await, 0);
    let healthy = app.register_vm("healthy").await;
    app.make_ready("healthy", &healthy, "Healthy").await;
    let sick = app.register_vm("sick").await;
    app.make_ready("sick", &sick, "Unhealthy").await;
    let no_gpu = app.register_vm("no-gpu").await;
    app.make_ready("no-gpu", &no_gpu, "N/A").await;
    app.register_vm("booting").await;
    assert_eq!(count(&app).await, 2);
    app.request_vm("a@example.org", &crd_command("a")).await;
    assert_eq!(count(&app).await, 1);
}

async fn assignment_is_what_the_database_holds(app: &TestApp) {
    app.free_vms(2).await;
    let outcome = app.request_vm("Ada@Example.org", &crd_command("ada")).await;
    let RequestOutcome::Assigned { hostname, pin } = outcome else {
        panic!("not assigned: {outcome:?}");
    };
    assert_eq!(pin.len(), 6);
    assert!(pin.chars().all(|c| c.is_ascii_digit()));
    let vms = app.vms();
    let stored = vms.iter().find(|vm| vm.hostname == hostname).expect("row");
    assert_eq!(stored.user_email.as_deref(), Some("ada@example.org"));
    assert_eq!(stored.pin.as_deref(), Some(pin.as_str()));
    assert_eq!(
        stored.crd_command.as_deref(),
        Some(crd_command("ada").as_str())
    );

    // The same person asking again, however they type their email, gets the same VM.
    let again = app
        .request_vm(" ada@example.ORG ", &crd_command("ada2"))
        .await;
    assert_eq!(
        again,
        RequestOutcome::Assigned {
            hostname: hostname.clone(),
            pin
        }
    );
    assert_eq!(
        app.vms()
            .iter()
            .filter(|vm| vm.user_email.is_some())
            .count(),
        1,
        "asking again must not take a second VM"
    );

    // Someone else gets the other VM, with a PIN of their own.
    let other = app
        .request_vm("grace@example.org", &crd_command("grace"))
        .await;
    let RequestOutcome::Assigned {
        hostname: other_host,
        ..
    } = other
    else {
        panic!("not assigned: {other:?}");
    };
    assert_ne!(other_host, hostname);
    // Then nobody else.
    let refused = app
        .request_vm("linus@example.org", &crd_command("linus"))
        .await;
    assert!(
        matches!(&refused, RequestOutcome::Refused { status: 503, error } if error.contains("No VM is free")),
        "{refused:?}"
    );
}

#[actix_web::test]
async fn assignment_shows_what_the_database_holds_on_postgres() {
    assignment_is_what_the_database_holds(&spawn_app().await).await;
}

#[actix_web::test]
async fn assignment_shows_what_the_database_holds_on_sqlite() {
    assignment_is_what_the_database_holds(&spawn_app_on_sqlite().await).await;
}

#[actix_web::test]
async fn pins_differ_between_assignments() {
    let app = spawn_app().await;
    app.free_vms(12).await;
    let mut pins = std::collections::HashSet::new();
    for i in 0..12 {
        match app
            .request_vm(&format!("r{i}@example.org"), &crd_command(&format!("r{i}")))
            .await
        {
            RequestOutcome::Assigned { pin, .. } => {
                pins.insert(pin);
            }
            refused => panic!("{refused:?}"),
        }
    }
    assert!(pins.len() >= 10, "12 assignments shared PINs: {pins:?}");
}

#[actix_web::test]
async fn bad_input_is_refused_with_the_form_still_filled_in_and_nothing_written() {
    let app = spawn_app().await;
    app.free_vms(1).await;
    let cases = [
        ("not-an-email", crd_command("x"), "email"),
        ("", crd_command("x"), "email"),
        (
            "ada@example.org",
            "echo hello".to_owned(),
            "Chrome Remote Desktop",
        ),
        (
            "ada@example.org",
            format!("{}; rm -rf ~", crd_command("x")),
            "Chrome Remote Desktop",
        ),
        ("ada@example.org", String::new(), "Chrome Remote Desktop"),
    ];
    for (email, command, complaint) in cases {
        let response = app.request_vm_raw(email, &command).await;
        assert_eq!(response.status(), 400, "{email:?} / {command:?}");
        let html = response.text().await.expect("page");
        let outcome = crate::helpers::read_outcome(400, &html);
        assert!(
            matches!(&outcome, RequestOutcome::Refused { error, .. } if error.contains(complaint)),
            "{outcome:?}"
        );
        if !email.is_empty() {
            assert!(
                html.contains(&format!(r#"value="{email}""#)),
                "email kept: {html}"
            );
        }
    }
    // Missing fields altogether.
    let response = app
        .client
        .post(app.url("/api/request_vm"))
        .form(&[("unrelated", "x")])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    assert!(
        app.vms().iter().all(|vm| vm.user_email.is_none()),
        "nothing assigned"
    );
}

#[actix_web::test]
async fn what_researchers_typed_is_escaped_on_the_page() {
    let app = spawn_app().await;
    let html = app
        .request_vm_raw(
            "\"><script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
        )
        .await
        .text()
        .await
        .expect("page");
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
}

//! The API and the dashboard perform admin actions through one layer: the same validation,
//! the same refusals, the same audit record whichever surface asked.

use reqwest::redirect::Policy;
use serde_json::json;

use crate::helpers::{spawn_app_with, TestApp};

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Signs a browser in and returns the dashboard's CSRF token.
async fn signed_in(app: &TestApp, browser: &reqwest::Client) -> String {
    let page = crate::dashboard::signed_in_page(app, browser, "/admin").await;
    crate::dashboard::between(&page, r#"name="csrf_token" value=""#, "\"").expect("csrf")
}

fn audit(app: &TestApp) -> Vec<lablink_schema::audit_events::AuditEvent> {
    let mut conn = app.connection();
    let mut events =
        lablink_schema::audit_events::AuditEvent::list_recent(&mut conn, 50).expect("audit");
    events.retain(|e| e.action.starts_with("vms."));
    events.reverse();
    events
}

#[actix_web::test]
async fn a_creation_leaves_the_same_audit_record_from_both_surfaces() {
    let app = spawn_app_with(|config| {
        config.provider.local.agent_binary = Some("/nonexistent/lablink-client".into());
    })
    .await;
    let from_api = app
        .post_json_as_admin("/api/admin/vms", &json!({"count": 2}))
        .await;
    assert_eq!(from_api.status(), 202);
    let browser = browser();
    let csrf = signed_in(&app, &browser).await;
    let from_dashboard = browser
        .post(app.url("/admin/vms/create"))
        .form(&[("csrf_token", csrf.as_str()), ("count", "2")])
        .send()
        .await
        .expect("create");
    assert_eq!(from_dashboard.status(), 303);
    let events = audit(&app);
    assert_eq!(events.len(), 2, "{events:?}");
    let shape = |e: &lablink_schema::audit_events::AuditEvent| {
        let detail = e.detail.clone().unwrap_or_default();
        let without_id = detail
            .rsplit_once(' ')
            .map_or(detail.clone(), |(d, _)| d.to_owned());
        (
            e.actor.clone(),
            e.action.clone(),
            e.target.clone(),
            without_id,
        )
    };
    assert_eq!(shape(&events[0]), shape(&events[1]));
    assert_eq!(
        shape(&events[0]),
        (
            "admin".to_owned(),
            "vms.create".to_owned(),
            None,
            "2 VMs, operation".to_owned()
        )
    );
}

#[actix_web::test]
async fn the_dashboard_refuses_a_count_above_max_vms_as_the_api_does() {
    let app = spawn_app_with(|config| config.provider.max_vms = 3).await;
    let api = app
        .post_json_as_admin("/api/admin/vms", &json!({"count": 4}))
        .await;
    assert_eq!(api.status(), 400);
    let api_error = api.json::<serde_json::Value>().await.expect("json")["error"]["message"]
        .as_str()
        .expect("error")
        .to_owned();
    let browser = browser();
    let csrf = signed_in(&app, &browser).await;
    let page = browser.get(app.url("/admin")).send().await.expect("page");
    let html = page.text().await.expect("html");
    assert!(html.contains(r#"max="3""#), "the form says the limit");
    let refused = browser
        .post(app.url("/admin/vms/create"))
        .form(&[("csrf_token", csrf.as_str()), ("count", "4")])
        .send()
        .await
        .expect("create");
    assert_eq!(refused.status(), 400);
    let html = refused.text().await.expect("html");
    let shown = crate::dashboard::between(&html, r#"id="error">"#, "</p>").expect("error shown");
    assert_eq!(shown.replace("&#x60;", "`"), api_error);
    assert!(audit(&app).is_empty(), "a refusal is not an action");
}

#[actix_web::test]
async fn the_dashboards_release_checks_the_hostname_as_the_api_does() {
    let app = spawn_app_with(|_| {}).await;
    let api = app.release("bad%20name").await;
    assert_eq!(api.status(), 400);
    let browser = browser();
    let csrf = signed_in(&app, &browser).await;
    let dashboard = browser
        .post(app.url("/admin/vms/bad%20name/release"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("release");
    assert_eq!(dashboard.status(), 400);
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A form that cannot be read, on the researchers' page or the dashboard, is answered with a
/// page, as every other refusal there is, not with the API's JSON body.
#[actix_web::test]
async fn unreadable_forms_on_pages_are_answered_with_pages() {
    let app = spawn_app_with(|_| {}).await;
    let missing_field = app
        .client
        .post(app.url("/api/request_vm"))
        .form(&[("unrelated", "x")])
        .send()
        .await
        .expect("send");
    assert_eq!(missing_field.status(), 400);
    assert!(
        content_type(&missing_field).starts_with("text/html"),
        "{}",
        content_type(&missing_field)
    );
    let browser = browser();
    let csrf = signed_in(&app, &browser).await;
    let bad_id = browser
        .post(app.url("/admin/enrollment/not-a-number/revoke"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("send");
    assert_eq!(bad_id.status(), 400);
    assert!(
        content_type(&bad_id).starts_with("text/html"),
        "{}",
        content_type(&bad_id)
    );
    let body = bad_id.text().await.expect("body");
    assert!(body.contains("<h1>"), "{body}");
    // The API keeps answering JSON.
    let api = app.get_as_admin("/api/admin/operations/not-a-number").await;
    assert_eq!(api.status(), 400);
    assert!(content_type(&api).starts_with("application/json"));
}

/// The admin API takes the dashboard's session as well as HTTP Basic: the admin caller is
/// one extractor for both.
#[actix_web::test]
async fn the_admin_api_accepts_a_dashboard_session() {
    let app = spawn_app_with(|_| {}).await;
    let browser = browser();
    let anonymous = browser
        .get(app.url("/api/admin/operations"))
        .send()
        .await
        .expect("send");
    assert_eq!(anonymous.status(), 401);
    signed_in(&app, &browser).await;
    let with_session = browser
        .get(app.url("/api/admin/operations"))
        .send()
        .await
        .expect("send");
    assert_eq!(with_session.status(), 200);
}

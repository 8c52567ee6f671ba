//! The admin dashboard: sign-in, the session cookie, CSRF on every form, expiry, the
//! failed-sign-in limit, sign-out, and actions landing in the audit trail.

use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::StatusCode;

use crate::helpers::{crd_command, spawn_app_with, TestApp, ADMIN_PASSWORD};

/// A browser: keeps cookies, does not follow redirects (so they can be checked).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

pub fn between(html: &str, start: &str, end: &str) -> Option<String> {
    let from = html.find(start)? + start.len();
    let to = html[from..].find(end)? + from;
    Some(html[from..to].to_owned())
}

async fn sign_in(app: &TestApp, browser: &reqwest::Client, password: &str) -> reqwest::Response {
    let form = browser
        .get(app.url("/admin/login"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("html");
    let nonce = between(&form, r#"name="login_nonce" value=""#, "\"").expect("nonce");
    browser
        .post(app.url("/admin/login"))
        .form(&[
            ("user", "admin"),
            ("password", password),
            ("login_nonce", &nonce),
        ])
        .send()
        .await
        .expect("sign in")
}

/// Signs `browser` in and returns the page at `path`.
pub async fn signed_in_page(app: &TestApp, browser: &reqwest::Client, path: &str) -> String {
    sign_in(app, browser, ADMIN_PASSWORD).await;
    browser
        .get(app.url(path))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html")
}

/// The CSRF token on the dashboard.
async fn csrf(app: &TestApp, browser: &reqwest::Client) -> String {
    let html = browser
        .get(app.url("/admin"))
        .send()
        .await
        .expect("dashboard")
        .text()
        .await
        .expect("html");
    between(&html, r#"name="csrf_token" value=""#, "\"").expect("csrf token")
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[actix_web::test]
async fn signing_in_opens_the_dashboard_and_a_wrong_password_does_not() {
    let app = spawn_app_with(|_| {}).await;
    let browser = browser();
    let closed = browser
        .get(app.url("/admin"))
        .send()
        .await
        .expect("dashboard");
    assert_eq!(closed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&closed), "/admin/login");

    let wrong = sign_in(&app, &browser, "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong
        .text()
        .await
        .expect("html")
        .contains("Wrong user name or password"));
    assert_eq!(
        browser
            .get(app.url("/admin"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::SEE_OTHER
    );

    let right = sign_in(&app, &browser, ADMIN_PASSWORD).await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&right), "/admin");
    let cookie = right
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("lablink_admin="))
        .expect("session cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let page = browser
        .get(app.url("/admin"))
        .send()
        .await
        .expect("dashboard");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .text()
        .await
        .expect("html")
        .contains("<h1>Instances</h1>"));
}

#[actix_web::test]
async fn a_form_without_the_session_csrf_token_changes_nothing() {
    let app = spawn_app_with(|_| {}).await;
    let browser = browser();
    sign_in(&app, &browser, ADMIN_PASSWORD).await;
    for token in [None, Some("forged")] {
        let mut form = vec![("count", "1")];
        if let Some(token) = token {
            form.push(("csrf_token", token));
        }
        let response = browser
            .post(app.url("/admin/vms/create"))
            .form(&form)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "token {token:?}");
    }
    let listed: serde_json::Value = app
        .get_as_admin("/api/admin/operations")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed, serde_json::json!([]), "nothing was queued");

    // With the token it works, and a bad count is refused clearly.
    let token = csrf(&app, &browser).await;
    let bad = browser
        .post(app.url("/admin/vms/create"))
        .form(&[("count", "zero"), ("csrf_token", &token)])
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let queued = browser
        .post(app.url("/admin/vms/create"))
        .form(&[("count", "1"), ("csrf_token", &token)])
        .send()
        .await
        .expect("post");
    assert_eq!(queued.status(), StatusCode::SEE_OTHER);
    assert!(location(&queued).starts_with("/admin/operations#op-"));
}

#[actix_web::test]
async fn release_and_destroy_from_the_dashboard_are_audited_and_sign_out_closes_it() {
    let app = spawn_app_with(|_| {}).await;
    app.free_vms(2).await;
    app.request_vm("ada@example.org", &crd_command("ada")).await;
    let assigned = app
        .vms()
        .into_iter()
        .find(|vm| vm.user_email.is_some())
        .expect("assigned")
        .hostname;
    let browser = browser();
    sign_in(&app, &browser, ADMIN_PASSWORD).await;
    let token = csrf(&app, &browser).await;

    let released = browser
        .post(app.url(&format!("/admin/vms/{assigned}/release")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("release");
    assert_eq!(released.status(), StatusCode::SEE_OTHER);
    assert!(app.vms().iter().all(|vm| vm.user_email.is_none()));

    let unconfirmed = browser
        .post(app.url("/admin/vms/destroy"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("hostname", "vm-000"),
            ("hostname", "ghost"),
        ])
        .send()
        .await
        .expect("destroy");
    assert_eq!(unconfirmed.status(), StatusCode::NOT_FOUND);
    let destroyed = browser
        .post(app.url("/admin/vms/destroy"))
        .form(&[("csrf_token", token.as_str()), ("hostname", "vm-000")])
        .send()
        .await
        .expect("destroy");
    assert_eq!(destroyed.status(), StatusCode::SEE_OTHER);

    let audit = browser
        .get(app.url("/admin/audit"))
        .send()
        .await
        .expect("audit")
        .text()
        .await
        .expect("html");
    for action in ["admin.login", "vm.release", "vms.destroy"] {
        assert!(
            audit.contains(action),
            "{action} missing from the audit page"
        );
    }
    let operations = browser
        .get(app.url("/admin/operations"))
        .send()
        .await
        .expect("ops");
    assert_eq!(operations.status(), StatusCode::OK);

    let out = browser
        .post(app.url("/admin/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let closed = browser
        .get(app.url("/admin"))
        .send()
        .await
        .expect("dashboard");
    assert_eq!(
        closed.status(),
        StatusCode::SEE_OTHER,
        "the dashboard is closed after sign-out"
    );
}

#[actix_web::test]
async fn sessions_expire() {
    let app = spawn_app_with(|config| config.admin.session_ttl_secs = 1).await;
    let browser = browser();
    sign_in(&app, &browser, ADMIN_PASSWORD).await;
    assert_eq!(
        browser
            .get(app.url("/admin"))
            .send()
            .await
            .expect("get")
            .status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let expired = browser.get(app.url("/admin")).send().await.expect("get");
    assert_eq!(expired.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&expired), "/admin/login?expired=1");
}

#[actix_web::test]
async fn repeated_failed_sign_ins_lock_the_address_out() {
    let app = spawn_app_with(|config| config.admin.max_failed_logins = 2).await;
    let browser = browser();
    for _ in 0..2 {
        assert_eq!(
            sign_in(&app, &browser, "guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = sign_in(&app, &browser, ADMIN_PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(locked
        .text()
        .await
        .expect("html")
        .contains("Too many failed sign-ins"));
}

#[actix_web::test]
async fn a_sign_in_form_posted_from_elsewhere_is_refused() {
    let app = spawn_app_with(|_| {}).await;
    let response = browser()
        .post(app.url("/admin/login"))
        .form(&[
            ("user", "admin"),
            ("password", ADMIN_PASSWORD),
            ("login_nonce", "made-up"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// Reads from an event stream until `needle` appears.
async fn until_streamed(response: &mut reqwest::Response, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("`{needle}` never arrived; got {seen:?}"))
            .expect("stream")
            .expect("stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

#[actix_web::test]
async fn logs_and_instances_update_live() {
    let app = spawn_app_with(|_| {}).await;
    let token = app.register_vm("vm-1").await;
    let post_line = |line: &'static str| {
        let body = serde_json::json!({"log_group": "g", "log_stream": "vm-1", "messages": [line]});
        let app = &app;
        let token = token.clone();
        async move {
            assert_eq!(
                app.post_json("/api/vm-logs", Some(&token), &body)
                    .await
                    .status(),
                200
            )
        }
    };
    post_line("first line <b>").await;
    let browser = browser();
    sign_in(&app, &browser, ADMIN_PASSWORD).await;

    let page = browser
        .get(app.url("/admin/logs/vm-1"))
        .send()
        .await
        .expect("logs")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("first line &lt;b&gt;"),
        "escaped and shown: {page}"
    );
    let after = between(&page, r#"data-after=""#, "\"").expect("after");
    let mut stream = browser
        .get(app.url(&format!("/admin/logs/vm-1/stream?after={after}")))
        .send()
        .await
        .expect("stream");
    assert_eq!(
        stream
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    post_line("second line").await;
    let streamed = until_streamed(&mut stream, "data: second line").await;
    assert!(
        !streamed.contains("first line"),
        "only new lines: {streamed}"
    );

    let mut events = browser
        .get(app.url("/admin/events"))
        .send()
        .await
        .expect("events");
    let opening = until_streamed(&mut events, "event: vms").await;
    assert_eq!(
        opening.matches("event: vms").count(),
        1,
        "the stream opens with one event, so a page re-reads what changed before it subscribed"
    );
    app.make_ready("vm-1", &token, "Healthy").await;
    until_streamed(&mut events, "event: vms").await;
    let rows = browser
        .get(app.url("/admin/instances/rows"))
        .send()
        .await
        .expect("rows")
        .text()
        .await
        .expect("html");
    assert!(rows.contains("Healthy"), "{rows}");

    assert_eq!(
        reqwest::get(app.url("/admin/events"))
            .await
            .expect("anonymous")
            .url()
            .path(),
        "/admin/login",
        "streams need a session too"
    );
}

#[actix_web::test]
async fn the_operations_stream_starts_with_where_each_operation_stands() {
    // Creating fails at once (no agent program), before any page could subscribe.
    let app = spawn_app_with(|config| {
        config.provider.local.agent_binary = Some("/nonexistent/lablink-client".into());
    })
    .await;
    let queued = app
        .post_json_as_admin("/api/admin/vms", &serde_json::json!({"count": 1}))
        .await;
    let id = queued.json::<serde_json::Value>().await.expect("json")["operation_id"]
        .as_i64()
        .expect("id");
    assert_eq!(app.finished_operation(id).await["state"], "failed");

    let browser = browser();
    sign_in(&app, &browser, ADMIN_PASSWORD).await;
    let mut stream = browser
        .get(app.url("/admin/operations/events"))
        .send()
        .await
        .expect("stream");
    let streamed = until_streamed(&mut stream, r#""state":"failed""#).await;
    assert!(
        streamed.contains(&format!(r#""event":"finished","operation_id":{id}"#)),
        "{streamed}"
    );
}

#[actix_web::test]
async fn the_instance_summary_counts_free_and_assigned_vms() {
    let app = spawn_app_with(|_| {}).await;
    app.free_vms(2).await;
    app.request_vm("ada@example.org", &crd_command("ada")).await;
    let browser = browser();
    sign_in(&app, &browser, ADMIN_PASSWORD).await;
    let summary = browser
        .get(app.url("/admin/instances/summary"))
        .send()
        .await
        .expect("summary")
        .text()
        .await
        .expect("text");
    assert_eq!(summary.trim(), "2 VMs · 1 free · 1 assigned.");
    let stranger = super::dashboard::browser();
    assert_eq!(
        stranger
            .get(app.url("/admin/instances/summary"))
            .send()
            .await
            .expect("anonymous")
            .status(),
        StatusCode::SEE_OTHER,
        "needs a session"
    );
}

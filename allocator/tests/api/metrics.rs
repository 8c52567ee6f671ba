//! `GET /metrics`: who may read it, and that its figures follow what happens.

use std::time::Duration;

use crate::helpers::{crd_command, spawn_app_with, RequestOutcome, TestApp};

const SCRAPER_TOKEN: &str = "a-token-for-the-prometheus-scraper";

async fn scrape(app: &TestApp) -> String {
    let response = app.get_with_token("/metrics", SCRAPER_TOKEN).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("header")
        .starts_with("text/plain; version=0.0.4"));
    response.text().await.expect("body")
}

/// Scrapes until `done` holds for the text (for at most 5 s), and returns the last text.
async fn scrape_until(app: &TestApp, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(app).await;
        if done(&text) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    text
}

/// The value of the sample named exactly `series` (name and labels as exposed), or 0 when
/// the series is absent (Prometheus reads a missing counter as not yet counted).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().expect("a number"))
        })
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn only_the_admin_or_the_scraper_token_may_read_metrics() {
    let app = spawn_app_with(|config| config.metrics.token = Some(SCRAPER_TOKEN.into())).await;
    assert_eq!(app.get("/metrics").await.status(), 401);
    assert_eq!(
        app.get_with_token("/metrics", "not-the-scraper-token-at-all")
            .await
            .status(),
        401
    );
    assert_eq!(app.get_as_admin("/metrics").await.status(), 200);
    assert_eq!(
        app.get_with_token("/metrics", SCRAPER_TOKEN).await.status(),
        200
    );

    let off = spawn_app_with(|config| config.metrics.enabled = false).await;
    assert_eq!(off.get_as_admin("/metrics").await.status(), 404);
}

#[actix_web::test]
async fn counters_and_gauges_follow_what_happens() {
    let app = spawn_app_with(|config| {
        config.metrics.token = Some(SCRAPER_TOKEN.into());
        // Creating VMs fails at once: the agent program does not exist.
        config.provider.local.agent_binary = Some("/nonexistent/lablink-client".into());
    })
    .await;
    let before = scrape(&app).await;
    assert_eq!(sample(&before, "lablink_vms_free"), 0.0);
    assert_eq!(sample(&before, "lablink_agents_waiting"), 0.0);
    assert!(
        before.contains("lablink_db_pool_max_connections 8"),
        "{before}"
    );

    // Two VMs become free; one researcher gets one, asks again, and one more is refused
    // for a bad email.
    let vms = app.free_vms(2).await;
    match app.request_vm("ada@example.org", &crd_command("ada")).await {
        RequestOutcome::Assigned { .. } => {}
        refused => panic!("{refused:?}"),
    }
    app.request_vm("ada@example.org", &crd_command("ada")).await;
    app.request_vm("not-an-email", &crd_command("x")).await;

    // An agent waits for its assignment on the VM still free.
    let free = vms
        .iter()
        .find(|(hostname, _)| {
            app.vms()
                .iter()
                .any(|vm| &vm.hostname == hostname && vm.user_email.is_none())
        })
        .expect("one VM is still free")
        .clone();
    // The agent's connection, by hand, so that the test can hang it up.
    let body = serde_json::json!({"hostname": free.0}).to_string();
    let mut agent = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    let request = format!(
        "POST /vm_startup HTTP/1.1\r\nHost: lablink\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        free.1,
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut agent, request.as_bytes())
        .await
        .expect("send");
    let during = scrape_until(&app, |text| sample(text, "lablink_agents_waiting") == 1.0).await;
    assert_eq!(sample(&during, "lablink_agents_waiting"), 1.0, "{during}");
    drop(agent);
    let after = scrape_until(&app, |text| sample(text, "lablink_agents_waiting") == 0.0).await;
    assert_eq!(
        sample(&after, "lablink_agents_waiting"),
        0.0,
        "an agent that hung up is no longer counted: {after}"
    );

    // A provisioning operation that fails.
    let created = app
        .post_json_as_admin("/api/admin/vms", &serde_json::json!({"count": 1}))
        .await;
    assert_eq!(created.status(), 202);
    let operation: serde_json::Value = created.json().await.expect("json");
    let finished = app
        .finished_operation(operation["operation_id"].as_i64().expect("id"))
        .await;
    assert_eq!(finished["state"], "failed", "{finished}");

    let text = scrape(&app).await;
    assert_eq!(
        sample(&text, r#"lablink_assignments_total{kind="new"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"lablink_assignments_total{kind="existing"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"lablink_refusals_total{reason="invalid_email"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"lablink_vms{status="running",assigned="true",in_use="false"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"lablink_vms{status="running",assigned="false",in_use="false"}"#
        ),
        1.0
    );
    assert_eq!(sample(&text, "lablink_vms_free"), 1.0);
    assert_eq!(
        sample(&text, r#"lablink_operations{kind="create",state="failed"}"#),
        1.0,
        "{text}"
    );
    let form_posts = r#"lablink_http_request_duration_seconds_count{method="POST",route="/api/request_vm",status="200"}"#;
    assert_eq!(sample(&text, form_posts), 2.0, "{text}");
    let refused_posts = r#"lablink_http_request_duration_seconds_count{method="POST",route="/api/request_vm",status="400"}"#;
    assert_eq!(sample(&text, refused_posts), 1.0);
    let status_reports = r#"lablink_http_request_duration_seconds_count{method="POST",route="/api/vm-status",status="200"}"#;
    assert_eq!(
        sample(&text, status_reports),
        4.0,
        "two VMs registered, then running"
    );
    let by_hostname = r#"lablink_http_request_duration_seconds_count{method="GET",route="/api/vm-status/{hostname}",status="401"}"#;
    assert_eq!(sample(&text, by_hostname), 0.0);
    app.get("/api/vm-status/vm-000").await;
    app.get("/no/such/page/abc").await;
    let text = scrape(&app).await;
    assert_eq!(
        sample(&text, by_hostname),
        1.0,
        "one label for every hostname"
    );
    assert_eq!(
        sample(
            &text,
            r#"lablink_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}"#
        ),
        1.0,
        "{text}"
    );
    assert!(
        sample(&text, r#"lablink_db_pool_connections{state="idle"}"#)
            + sample(&text, r#"lablink_db_pool_connections{state="in_use"}"#)
            >= 1.0
    );
}

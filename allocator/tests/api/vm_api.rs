//! The VM-facing endpoints: status, GPU health, in-use and logs, and every way a request can
//! be malformed. A refused request writes nothing.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

#[actix_web::test]
async fn reports_arrive_in_the_database() {
    let app = spawn_app().await;
    let token = app.register_vm("vm-1").await;
    for (path, body) in [
        (
            "/api/vm-status",
            json!({"hostname": "vm-1", "status": "running"}),
        ),
        (
            "/api/gpu_health",
            json!({"hostname": "vm-1", "gpu_status": "N/A"}),
        ),
        (
            "/api/update_inuse_status",
            json!({"hostname": "vm-1", "status": true}),
        ),
    ] {
        let response = app.post_json(path, Some(&token), &body).await;
        assert_eq!(response.status(), 200, "{path}");
        let answer: serde_json::Value = response.json().await.expect("json");
        assert!(answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("successfully")));
    }
    let vm = &app.vms()[0];
    assert_eq!(vm.status, "running");
    assert_eq!(vm.gpu_health.as_deref(), Some("N/A"));
    assert!(vm.in_use);
}

#[actix_web::test]
async fn log_lines_are_appended_and_read_back_in_order() {
    let app = spawn_app().await;
    let token = app.register_vm("vm-1").await;
    // No lines yet while installing: the original's 503.
    assert_eq!(app.get_as_admin("/api/vm-logs/vm-1").await.status(), 503);
    for batch in [vec!["one", "two"], vec!["three"]] {
        let body = json!({"log_group": "cloud-init", "log_stream": "vm-1", "messages": batch});
        assert_eq!(
            app.post_json("/api/vm-logs", Some(&token), &body)
                .await
                .status(),
            200
        );
    }
    let logs: serde_json::Value = app
        .get_as_admin("/api/vm-logs/vm-1")
        .await
        .json()
        .await
        .expect("json");
    // The original's two keys, as it answered them (the newer keys come beside them).
    assert_eq!(
        (&logs["hostname"], &logs["logs"]),
        (&json!("vm-1"), &json!("one\ntwo\nthree"))
    );
    let empty = json!({"log_group": "g", "log_stream": "vm-1", "messages": []});
    assert_eq!(
        app.post_json("/api/vm-logs", Some(&token), &empty)
            .await
            .status(),
        400
    );
    let unknown = json!({"log_group": "g", "log_stream": "ghost", "messages": ["x"]});
    assert_eq!(
        app.post_json_as_admin("/api/vm-logs", &unknown)
            .await
            .status(),
        404
    );
}

#[actix_web::test]
async fn malformed_requests_get_a_clear_4xx_and_write_nothing() {
    let app = spawn_app_with(|config| config.server.max_json_bytes = 4096).await;
    let token = app.register_vm("vm-1").await;
    let cases = [
        (
            "/api/gpu_health",
            json!({"hostname": "vm-1", "gpu_status": "melting"}),
            400,
        ),
        ("/api/gpu_health", json!({"hostname": "vm-1"}), 400),
        (
            "/api/update_inuse_status",
            json!({"hostname": "vm-1", "status": "yes"}),
            400,
        ),
        (
            "/api/update_inuse_status",
            json!({"hostname": 7, "status": true}),
            400,
        ),
        (
            "/api/vm-status",
            json!({"hostname": "vm-1", "status": "exploded"}),
            400,
        ),
        (
            "/api/vm-status",
            json!({"hostname": "bad host!", "status": "running"}),
            400,
        ),
        ("/api/vm-status", json!(["not", "an", "object"]), 400),
        (
            "/vm_startup",
            json!({"hostname": "vm-1", "assignment_id": "x"}),
            400,
        ),
        (
            "/api/gpu_health",
            json!({"hostname": "ghost", "gpu_status": "Healthy"}),
            401,
        ),
    ];
    for (path, body, status) in cases {
        let response = app.post_json(path, Some(&token), &body).await;
        assert_eq!(response.status(), status, "{path} {body}");
        let answer: serde_json::Value = response.json().await.expect("a JSON error body");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }
    // The admin may name any VM, so an unknown one is a plain 404.
    let ghost = json!({"hostname": "ghost", "gpu_status": "Healthy"});
    assert_eq!(
        app.post_json_as_admin("/api/gpu_health", &ghost)
            .await
            .status(),
        404
    );

    let not_json = app
        .client
        .post(app.url("/api/gpu_health"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(r#"{"hostname": "vm-1", "gpu_status": "Healthy"}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(not_json.status(), 415);
    let broken = app
        .client
        .post(app.url("/api/gpu_health"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(broken.status(), 400);
    let huge = json!({"log_group": "g", "log_stream": "vm-1", "messages": ["x".repeat(8192)]});
    assert_eq!(
        app.post_json("/api/vm-logs", Some(&token), &huge)
            .await
            .status(),
        413
    );

    let vm = &app.vms()[0];
    assert_eq!(
        (vm.status.as_str(), vm.gpu_health.as_deref(), vm.in_use),
        ("initializing", None, false)
    );
    let mut conn = app.connection();
    assert!(
        lablink_schema::vm_logs::VmLogLine::list_for_host(&mut conn, "vm-1", None, 10)
            .expect("logs")
            .is_empty()
    );
}

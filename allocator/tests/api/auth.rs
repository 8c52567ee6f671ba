//! Per-VM tokens, admin credentials and the legacy switch.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, ADMIN_PASSWORD};

#[actix_web::test]
async fn a_token_is_given_once_and_acts_only_on_its_own_vm() {
    let app = spawn_app().await;
    let token_a = app.register_vm("vm-a").await;
    let token_b = app.register_vm("vm-b").await;
    assert_ne!(token_a, token_b);

    // No token, a wrong token, or another VM's token: refused, nothing written.
    let report = json!({"hostname": "vm-a", "gpu_status": "Healthy"});
    for token in [None, Some("not-a-token"), Some(token_b.as_str())] {
        let response = app.post_json("/api/gpu_health", token, &report).await;
        assert_eq!(response.status(), 401, "token {token:?}");
        assert!(response.headers().contains_key("www-authenticate"));
    }
    assert!(app.vms().iter().all(|vm| vm.gpu_health.is_none()));
    // The right one works.
    let response = app
        .post_json("/api/gpu_health", Some(&token_a), &report)
        .await;
    assert_eq!(response.status(), 200);

    // Registering again without the token neither works nor hands out a new token.
    let again = app
        .post_json(
            "/api/vm-status",
            None,
            &json!({"hostname": "vm-a", "status": "running"}),
        )
        .await;
    assert_eq!(again.status(), 401);
    let with_token = app
        .post_json(
            "/api/vm-status",
            Some(&token_a),
            &json!({"hostname": "vm-a", "status": "running"}),
        )
        .await;
    assert_eq!(with_token.status(), 200);
    let body: serde_json::Value = with_token.json().await.expect("json");
    assert!(
        body.get("token").is_none(),
        "a token is shown only once: {body}"
    );

    // Only a hash is stored.
    let stored = app.vms();
    let vm_a = stored.iter().find(|vm| vm.hostname == "vm-a").expect("row");
    assert_ne!(vm_a.token_hash.as_deref(), Some(token_a.as_str()));
    assert_eq!(vm_a.token_hash.as_deref().map(str::len), Some(64));
}

#[actix_web::test]
async fn reading_statuses_and_logs_needs_the_admin_or_the_vm_itself() {
    let app = spawn_app().await;
    let token_a = app.register_vm("vm-a").await;
    let token_b = app.register_vm("vm-b").await;
    let logs = json!({"log_group": "g", "log_stream": "vm-a", "messages": ["booted"]});
    assert_eq!(
        app.post_json("/api/vm-logs", Some(&token_a), &logs)
            .await
            .status(),
        200
    );

    assert_eq!(app.get("/api/vm-status").await.status(), 401);
    assert_eq!(app.get("/api/vm-status/vm-a").await.status(), 401);
    assert_eq!(app.get("/api/vm-logs/vm-a").await.status(), 401);
    assert_eq!(
        app.get_with_token("/api/vm-logs/vm-a", &token_b)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get_with_token("/api/vm-logs/vm-a", &token_a)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_with_token("/api/vm-status/vm-a", &token_a)
            .await
            .status(),
        200
    );
    let all = app.get_as_admin("/api/vm-status").await;
    assert_eq!(all.status(), 200);
    let body: serde_json::Value = all.json().await.expect("json");
    assert_eq!(
        body,
        json!({"vm-a": "initializing", "vm-b": "initializing"})
    );

    let wrong = app
        .client
        .get(app.url("/api/vm-status"))
        .basic_auth("admin", Some("wrong-password"))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(r#"Basic realm="LabLink admin""#)
    );
}

#[actix_web::test]
async fn release_is_for_the_admin_only_and_is_audited() {
    let app = spawn_app().await;
    let vms = app.free_vms(1).await;
    app.request_vm("ada@example.org", &crate::helpers::crd_command("ada"))
        .await;
    let as_vm = app
        .post_json("/api/admin/vms/vm-000/release", Some(&vms[0].1), &json!({}))
        .await;
    assert_eq!(as_vm.status(), 401);
    assert_eq!(app.release("ghost").await.status(), 404);
    assert_eq!(app.release("vm-000").await.status(), 200);
    let mut conn = app.connection();
    let events: Vec<_> = lablink_schema::audit_events::AuditEvent::list_recent(&mut conn, 10)
        .expect("audit")
        .into_iter()
        .filter(|e| !crate::helpers::is_enrollment_action(&e.action))
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "vm.release");
    assert_eq!(events[0].target.as_deref(), Some("vm-000"));
    assert_eq!(events[0].actor, "admin");
}

#[actix_web::test]
async fn without_an_admin_password_admin_endpoints_refuse_everyone() {
    let app = spawn_app_with(|config| config.admin.password = None).await;
    let response = app
        .client
        .get(app.url("/api/vm-status"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
}

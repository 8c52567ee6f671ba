//! The admin's provisioning API: refusals change nothing, a failed creation leaves no VM
//! behind, assigned VMs need confirmation, and every action is audited.

use serde_json::{json, Value};

use crate::helpers::{crd_command, spawn_app_with, TestApp};

async fn finished(app: &TestApp, queued: reqwest::Response) -> Value {
    assert_eq!(queued.status(), 202);
    let id = queued.json::<Value>().await.expect("json")["operation_id"]
        .as_i64()
        .expect("id");
    app.finished_operation(id).await
}

#[actix_web::test]
async fn creation_refusals_and_a_failed_creation_leave_nothing_behind() {
    let app = spawn_app_with(|config| {
        config.provider.max_vms = 3;
        config.provider.local.agent_binary = Some("/nonexistent/lablink-client".into());
    })
    .await;
    let anonymous = app
        .post_json("/api/admin/vms", None, &json!({"count": 1}))
        .await;
    assert_eq!(anonymous.status(), 401);
    for body in [
        json!({"count": 0}),
        json!({"count": 4}),
        json!({"count": -1}),
        json!({"count": "two"}),
    ] {
        let response = app.post_json_as_admin("/api/admin/vms", &body).await;
        assert_eq!(response.status(), 400, "{body}");
    }
    // The agent program does not exist: the operation fails and its VM rows are removed.
    let op = finished(
        &app,
        app.post_json_as_admin("/api/admin/vms", &json!({"count": 2}))
            .await,
    )
    .await;
    assert_eq!(op["state"], "failed", "{op}");
    assert!(
        op["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot start the agent")),
        "{op}"
    );
    assert!(app.vms().is_empty(), "nothing half-done: {:?}", app.vms());
    let listed: Value = app
        .get_as_admin("/api/admin/operations")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
}

#[actix_web::test]
async fn destroying_an_assigned_vm_needs_confirmation_and_is_audited() {
    let app = spawn_app_with(|_| {}).await;
    app.free_vms(2).await;
    app.request_vm("ada@example.org", &crd_command("ada")).await;
    let assigned = app
        .vms()
        .into_iter()
        .find(|vm| vm.user_email.is_some())
        .expect("assigned")
        .hostname;

    let unknown = app
        .post_json_as_admin("/api/admin/vms/destroy", &json!({"hostnames": ["ghost"]}))
        .await;
    assert_eq!(unknown.status(), 404);
    let refused = app
        .post_json_as_admin("/api/admin/vms/destroy", &json!({"hostnames": [assigned]}))
        .await;
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|e| e.contains("confirm")),
        "{body}"
    );
    let all_refused = app
        .post_json_as_admin("/api/admin/vms/destroy-all", &json!({}))
        .await;
    assert_eq!(all_refused.status(), 409);
    assert_eq!(app.vms().len(), 2, "refusals change nothing");

    let op = finished(
        &app,
        app.post_json_as_admin(
            "/api/admin/vms/destroy",
            &json!({"hostnames": [assigned], "confirm_assigned": true}),
        )
        .await,
    )
    .await;
    assert_eq!(op["state"], "succeeded", "{op}");
    let left: Vec<String> = app.vms().into_iter().map(|vm| vm.hostname).collect();
    assert_eq!(left.len(), 1);
    assert!(!left.contains(&assigned));

    let mut conn = app.connection();
    let actions: Vec<String> = lablink_schema::audit_events::AuditEvent::list_recent(&mut conn, 10)
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .filter(|action| !crate::helpers::is_enrollment_action(action))
        .collect();
    assert_eq!(actions, ["vms.destroy"]);
}

//! VM lifecycle over HTTP: the admin's view of every VM (`GET /api/admin/vms`), a GPU
//! quarantine that holds through a rush of claims until the admin clears it, the heartbeat
//! interval told to agents, and the refusals of recovery actions that do not apply.

use serde_json::{json, Value};

use lablink_schema::vm_lifecycle::{ReadState, Transition};
use lablink_schema::vms::Vm;
use lablink_schema::wire::LifecycleState;

use crate::helpers::{crd_command, spawn_app_with, RequestOutcome, TestApp};

/// Writes the VM's lifecycle state directly, as another allocator would.
fn set_state(app: &TestApp, hostname: &str, change: Transition) {
    let mut conn = app.connection();
    let vm = Vm::find_by_hostname(&mut conn, hostname)
        .expect("read")
        .expect("vm");
    let now = chrono::Utc::now().naive_utc();
    Vm::transition(&mut conn, hostname, ReadState::of(&vm), &change, now)
        .expect("write")
        .expect("unchanged meanwhile");
}

async fn admin_vm(app: &TestApp, hostname: &str) -> Value {
    let response = app
        .get_as_admin(&format!("/api/admin/vms/{hostname}"))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

/// Waits until the VM's lifecycle state is `state`; returns the admin's view of it.
async fn until_state(app: &TestApp, hostname: &str, state: &str) -> Value {
    for _ in 0..300 {
        let vm = admin_vm(app, hostname).await;
        if vm["state"] == state {
            return vm;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!(
        "{hostname} never became {state}: {}",
        admin_vm(app, hostname).await
    );
}

#[actix_web::test]
async fn a_gpu_fault_quarantines_the_vm_through_a_rush_until_the_admin_clears_it() {
    let app = spawn_app_with(|_| {}).await;
    let vms = app.free_vms(2).await;
    let (sick, sick_token) = &vms[0];
    until_state(&app, sick, "ready").await;
    let reported = app
        .post_json(
            "/api/gpu_health",
            Some(sick_token),
            &json!({"hostname": sick, "gpu_status": "Unhealthy"}),
        )
        .await;
    assert_eq!(reported.status(), 200);
    let quarantined = until_state(&app, sick, "quarantined").await;
    assert_eq!(
        quarantined["state_reason"],
        "the agent reports an unhealthy GPU"
    );
    assert!(
        quarantined["next_action"].as_str().is_some(),
        "{quarantined}"
    );

    // The GPU recovers by itself: the quarantine stays until the admin lifts it.
    app.make_ready(sick, sick_token, "Healthy").await;
    // A rush of ten researchers: only the healthy VM is handed out.
    let rush: Vec<_> = (0..10)
        .map(|i| {
            let app = &app;
            async move {
                app.request_vm(
                    &format!("rush-{i}@lab.example"),
                    &crd_command(&format!("r{i}")),
                )
                .await
            }
        })
        .collect();
    let outcomes = futures_util::future::join_all(rush).await;
    let assigned: Vec<&String> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            RequestOutcome::Assigned { hostname, .. } => Some(hostname),
            RequestOutcome::Refused { .. } => None,
        })
        .collect();
    assert_eq!(assigned, [&vms[1].0], "only the healthy VM is assigned");
    assert_eq!(admin_vm(&app, sick).await["state"], "quarantined");

    let cleared = app
        .post_json_as_admin(
            &format!("/api/admin/vms/{sick}/clear-quarantine"),
            &json!({}),
        )
        .await;
    assert_eq!(cleared.status(), 200);
    let cleared: Value = cleared.json().await.expect("json");
    assert_eq!(cleared["state"], "booting");
    assert_eq!(
        cleared["gpu_health"],
        Value::Null,
        "waits for the next GPU report"
    );
    let again = app
        .post_json_as_admin(
            &format!("/api/admin/vms/{sick}/clear-quarantine"),
            &json!({}),
        )
        .await;
    assert_eq!(again.status(), 409, "not quarantined any more");

    app.make_ready(sick, sick_token, "Healthy").await;
    until_state(&app, sick, "ready").await;
    match app
        .request_vm("late@lab.example", &crd_command("late"))
        .await
    {
        RequestOutcome::Assigned { hostname, .. } => assert_eq!(&hostname, sick),
        refused => panic!("the cleared VM is assignable again: {refused:?}"),
    }
    let assigned = until_state(&app, sick, "assigned").await;
    assert_eq!(assigned["assigned_to"], "late@lab.example");

    let mut conn = app.connection();
    let actions: Vec<String> = lablink_schema::audit_events::AuditEvent::list_recent(&mut conn, 50)
        .expect("audit")
        .into_iter()
        .map(|event| event.action)
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "vm.clear_quarantine")
            .count(),
        1,
        "the clearing is audited once: {actions:?}"
    );
}

#[actix_web::test]
async fn the_admin_lists_every_vm_with_its_state_and_agents_learn_their_heartbeat() {
    let app = spawn_app_with(|config| config.lifecycle.heartbeat_timeout_secs = 4.5).await;
    let token = app.register_vm("vm-a").await;
    let answer: Value = app
        .post_json(
            "/api/vm-status",
            Some(&token),
            &json!({"hostname": "vm-a", "status": "running"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        answer["heartbeat_interval_ms"], 1500,
        "a third of the timeout"
    );

    let listed: Value = app
        .get_as_admin("/api/admin/vms")
        .await
        .json()
        .await
        .expect("json");
    let vms = listed.as_array().expect("an array");
    assert_eq!(vms.len(), 1);
    let vm = &vms[0];
    for key in [
        "hostname",
        "state",
        "state_reason",
        "state_since",
        "assigned_to",
        "gpu_health",
        "in_use",
        "last_heartbeat_at",
        "recovery_attempts",
        "next_action",
    ] {
        assert!(vm.get(key).is_some(), "{key} missing from {vm}");
    }
    assert_eq!(vm["hostname"], "vm-a");
    assert_eq!(vm["assigned_to"], Value::Null);
    assert_eq!(vm["recovery_attempts"], 0);

    let unauthenticated = app.get("/api/admin/vms").await;
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(app.get_as_admin("/api/admin/vms/ghost").await.status(), 404);
    assert_eq!(
        app.get_as_admin("/api/admin/vms/bad%20name").await.status(),
        400
    );
}

#[actix_web::test]
async fn recovery_actions_that_do_not_apply_are_refused_and_change_nothing() {
    let app = spawn_app_with(|config| {
        config.provider.local.agent_binary = Some("/nonexistent/lablink-client".into());
    })
    .await;
    let vms = app.free_vms(1).await;
    let (hostname, _) = &vms[0];
    until_state(&app, hostname, "ready").await;
    for path in ["reboot", "replace", "clear-quarantine"] {
        let response = app
            .post_json_as_admin(&format!("/api/admin/vms/ghost/{path}"), &json!({}))
            .await;
        assert_eq!(response.status(), 404, "{path} of an unknown VM");
    }
    let response = app
        .post_json_as_admin(
            &format!("/api/admin/vms/{hostname}/clear-quarantine"),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not quarantined"),
        "{body}"
    );

    // An assigned VM is replaced only when that is confirmed.
    let RequestOutcome::Assigned { .. } =
        app.request_vm("ada@lab.example", &crd_command("a")).await
    else {
        panic!("the VM is free");
    };
    let refused = app
        .post_json_as_admin(&format!("/api/admin/vms/{hostname}/replace"), &json!({}))
        .await;
    assert_eq!(refused.status(), 409);
    assert_eq!(
        admin_vm(&app, hostname).await["assigned_to"],
        "ada@lab.example"
    );

    // A VM already being replaced is neither replaced again nor rebooted.
    let replacing = Transition {
        to: LifecycleState::Replacing,
        reason: "replaced by the test".to_owned(),
        recovery_attempts: 0,
        next_action: None,
    };
    set_state(&app, hostname, replacing);
    for path in ["replace", "reboot"] {
        let response = app
            .post_json_as_admin(
                &format!("/api/admin/vms/{hostname}/{path}"),
                &json!({"confirm_assigned": true}),
            )
            .await;
        assert_eq!(response.status(), 409, "{path} of a VM being replaced");
    }
    let assigned = Transition {
        to: LifecycleState::Assigned,
        reason: "back".to_owned(),
        recovery_attempts: 0,
        next_action: None,
    };
    set_state(&app, hostname, assigned);

    let queued = app
        .post_json_as_admin(
            &format!("/api/admin/vms/{hostname}/replace"),
            &json!({"confirm_assigned": true}),
        )
        .await;
    assert_eq!(queued.status(), 202);
    let operation: Value = queued.json().await.expect("json");
    assert_eq!(operation["kind"], "replace");
    // The agent program does not exist here, so the replacement fails: that is recorded on
    // the operation, and nothing half-made is left (the new VM's row is gone).
    let finished = app
        .finished_operation(operation["operation_id"].as_i64().expect("id"))
        .await;
    assert_eq!(finished["state"], "failed", "{finished}");
    let hostnames: Vec<String> = app.vms().into_iter().map(|vm| vm.hostname).collect();
    assert_eq!(
        hostnames,
        std::slice::from_ref(hostname),
        "no half-created replacement"
    );
    let vm = admin_vm(&app, hostname).await;
    assert!(
        vm["state_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("the replacement failed"),
        "the failure is recorded on the VM: {vm}"
    );
}

/// An original agent never reports `running` again after a session, so a released legacy
/// VM would stay `initializing` for ever: it is replaced instead.
#[actix_web::test]
async fn a_released_vm_of_an_original_agent_is_replaced() {
    let app = spawn_app_with(|config| {
        config.clients.legacy_unauthenticated = true;
        config.provider.local.agent_binary = Some("/nonexistent/lablink-client".into());
    })
    .await;
    for (path, body) in [
        (
            "/api/vm-status",
            json!({"hostname": "old-1", "status": "running"}),
        ),
        (
            "/api/gpu_health",
            json!({"hostname": "old-1", "gpu_status": "N/A"}),
        ),
    ] {
        assert_eq!(
            app.post_json(path, None, &body).await.status(),
            200,
            "{path}"
        );
    }
    until_state(&app, "old-1", "ready").await;
    let RequestOutcome::Assigned { .. } =
        app.request_vm("ada@lab.example", &crd_command("o")).await
    else {
        panic!("the legacy VM is free");
    };
    assert_eq!(app.release("old-1").await.status(), 200);
    let operations: Value = app
        .get_as_admin("/api/admin/operations")
        .await
        .json()
        .await
        .expect("json");
    let replace = operations
        .as_array()
        .expect("array")
        .iter()
        .find(|op| op["kind"] == "replace")
        .unwrap_or_else(|| panic!("a replacement was queued: {operations}"));
    assert_eq!(replace["targets"][0], "old-1");
    assert_eq!(replace["requested_by"], "release");
}

/// A VM with its own agent is reset on release under the local provider's default policy:
/// no replacement.
#[actix_web::test]
async fn a_released_vm_with_its_own_agent_is_not_replaced_under_the_reset_policy() {
    let app = spawn_app_with(|_| {}).await;
    let vms = app.free_vms(1).await;
    let RequestOutcome::Assigned { .. } =
        app.request_vm("ada@lab.example", &crd_command("n")).await
    else {
        panic!("free");
    };
    assert_eq!(app.release(&vms[0].0).await.status(), 200);
    let operations: Value = app
        .get_as_admin("/api/admin/operations")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(operations, json!([]), "nothing queued");
}

/// Two allocators on one database both supervise every VM and both notice a silent one at
/// the same deadline: the state change applies for one of them, so exactly one replacement
/// is queued.
#[actix_web::test]
async fn two_allocators_replace_a_dead_vm_exactly_once() {
    use std::os::unix::fs::PermissionsExt;
    let database = lablink_schema::testing::TestDatabase::migrated();
    let dir = tempfile::tempdir().expect("dir");
    // A stand-in agent for the replacement: it runs, and never reports (nor needs to here).
    let agent = dir.path().join("agent.sh");
    std::fs::write(&agent, "#!/bin/sh\nexec sleep 600\n").expect("script");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let allocator = |data: &str| {
        let mut config = crate::helpers::test_config();
        config.database.url = Some(database.url().to_owned());
        config.database.data_dir = dir.path().join(data);
        config.provider.local.agent_binary = Some(agent.clone());
        config.lifecycle.heartbeat_timeout_secs = 0.6;
        config.lifecycle.reboot_attempts = 0;
        config.lifecycle.recovery_delay_secs = 0.0;
        config
    };
    let first = crate::helpers::start(allocator("first")).await;
    let second = crate::helpers::start(allocator("second")).await;
    let token = first.register_vm("dying").await;
    first.make_ready("dying", &token, "Healthy").await;
    // It stops heartbeating now. Both allocators' actors wake at its deadline.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let replacements = loop {
        let operations: Value = second
            .get_as_admin("/api/admin/operations")
            .await
            .json()
            .await
            .expect("json");
        let replacements: Vec<Value> = operations
            .as_array()
            .expect("array")
            .iter()
            .filter(|op| op["kind"] == "replace")
            .cloned()
            .collect();
        if replacements
            .iter()
            .any(|op| op["finished_at"] != Value::Null)
        {
            break replacements;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no replacement finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // Give a second, wrongful replacement every chance to appear.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let operations: Value = first
        .get_as_admin("/api/admin/operations")
        .await
        .json()
        .await
        .expect("json");
    let all: Vec<&Value> = operations
        .as_array()
        .expect("array")
        .iter()
        .filter(|op| op["kind"] == "replace")
        .collect();
    assert_eq!(all.len(), 1, "exactly one replacement: {operations}");
    assert_eq!(replacements[0]["state"], "succeeded", "{}", replacements[0]);
    let hostnames: Vec<String> = {
        let mut conn = database.connect();
        Vm::list_all(&mut conn)
            .expect("vms")
            .into_iter()
            .map(|vm| vm.hostname)
            .collect()
    };
    assert_eq!(hostnames.len(), 1, "the pool keeps its size: {hostnames:?}");
    assert_ne!(hostnames[0], "dying");
}

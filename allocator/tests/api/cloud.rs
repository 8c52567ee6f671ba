//! The cloud's API (a scripted stand-in for AWS): no VMs on an instance type without an
//! NVIDIA GPU, rebooting a VM by its provider id, and the credentials in effect shown to
//! the admin (never the secrets).

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use lablink_actors::provisioning::cloud::{CloudIdentity, ScriptedCloud};
use serde_json::{json, Value};

use crate::helpers::spawn_app_with_cloud;

fn cloud(gpu_types: &[&str]) -> ScriptedCloud {
    ScriptedCloud::new(
        Some(CloudIdentity {
            account: "123456789012".to_owned(),
            arn: "arn:aws:iam::123456789012:user/lab-admin".to_owned(),
        }),
        gpu_types,
    )
}

#[actix_web::test]
async fn vms_are_not_created_on_an_instance_type_without_an_nvidia_gpu() {
    let app = spawn_app_with_cloud(
        |config| config.provider.aws.instance_type = Some("t3.large".to_owned()),
        Arc::new(cloud(&["g4dn.xlarge"])),
    )
    .await;
    let refused = app
        .post_json_as_admin("/api/admin/vms", &json!({"count": 1}))
        .await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|e| e.contains("t3.large") && e.contains("NVIDIA")),
        "{body}"
    );
    let listed: Value = app
        .get_as_admin("/api/admin/operations")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed, json!([]), "nothing was queued");
}

#[actix_web::test]
async fn a_vm_is_rebooted_by_its_provider_id_and_the_reboot_is_audited() {
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = dir.path().join("agent.sh");
    std::fs::write(&agent, "#!/bin/sh\nexec sleep 600\n").expect("script");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let scripted = cloud(&["g4dn.xlarge"]);
    let app = spawn_app_with_cloud(
        |config| config.provider.local.agent_binary = Some(agent.clone()),
        Arc::new(scripted.clone()),
    )
    .await;
    let queued: Value = app
        .post_json_as_admin("/api/admin/vms", &json!({"count": 1}))
        .await
        .json()
        .await
        .expect("json");
    let op = app
        .finished_operation(queued["operation_id"].as_i64().expect("id"))
        .await;
    assert_eq!(op["state"], "succeeded", "{op}");

    let rebooted = app
        .post_json_as_admin("/api/admin/vms/lablink-vm-local-1/reboot", &json!({}))
        .await;
    assert_eq!(rebooted.status(), 200);
    let ids = scripted.rebooted();
    assert_eq!(ids.len(), 1);
    assert!(ids[0].starts_with("local-pid-"), "{ids:?}");
    let unknown = app
        .post_json_as_admin("/api/admin/vms/ghost/reboot", &json!({}))
        .await;
    assert_eq!(unknown.status(), 404);
    let anonymous = app
        .post_json("/api/admin/vms/lablink-vm-local-1/reboot", None, &json!({}))
        .await;
    assert_eq!(anonymous.status(), 401);

    let mut conn = app.connection();
    let actions: Vec<String> = lablink_schema::audit_events::AuditEvent::list_recent(&mut conn, 10)
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"vm.reboot".to_owned()), "{actions:?}");

    let queued: Value = app
        .post_json_as_admin("/api/admin/vms/destroy-all", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    app.finished_operation(queued["operation_id"].as_i64().expect("id"))
        .await;
}

#[actix_web::test]
async fn the_dashboard_shows_whose_credentials_are_in_effect_and_offers_reboot() {
    let app = spawn_app_with_cloud(|_| {}, Arc::new(cloud(&["g4dn.xlarge"]))).await;
    app.free_vms(1).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let form = browser
        .get(app.url("/admin/login"))
        .send()
        .await
        .expect("login")
        .text()
        .await
        .expect("html");
    let start = form.find(r#"name="login_nonce" value=""#).expect("nonce")
        + r#"name="login_nonce" value=""#.len();
    let nonce = &form[start..start + form[start..].find('"').expect("end")];
    let dashboard = browser
        .post(app.url("/admin/login"))
        .form(&[
            ("user", "admin"),
            ("password", crate::helpers::ADMIN_PASSWORD),
            ("login_nonce", nonce),
        ])
        .send()
        .await
        .expect("sign in")
        .text()
        .await
        .expect("html");
    assert!(
        dashboard.contains("account 123456789012 as arn:aws:iam::123456789012:user/lab-admin"),
        "{dashboard}"
    );
    assert!(dashboard.contains("/admin/vms/vm-000/reboot"));
}

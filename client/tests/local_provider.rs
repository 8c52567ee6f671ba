//! The local provider end to end, with the real agent binary: the admin creates 2 VMs, the
//! agents register, a researcher is assigned, that VM's agent starts the (logged) remote
//! desktop, the admin releases the VM, the agent waits again, and destroying all stops them.

use std::path::Path;

use lablink_schema::vms::Vm;
use serde_json::json;

#[path = "support/lab.rs"]
mod lab;
use lab::{ready, Lab, ADMIN_PASSWORD};

#[actix_web::test]
async fn admin_creates_vms_a_researcher_gets_one_and_release_frees_it() {
    let lab = Lab::start("lablink-vm-e2e").await;

    let created = lab
        .operation(lab.admin_post("/api/admin/vms", json!({"count": 2})).await)
        .await;
    assert_eq!(created["state"], "succeeded", "{created}");
    let vms = lab
        .until("both agents registered and ready", |vms| {
            vms.len() == 2 && vms.iter().all(ready)
        })
        .await;
    assert_eq!(
        vms.iter()
            .map(|vm| vm.hostname.as_str())
            .collect::<Vec<_>>(),
        ["lablink-vm-e2e-1", "lablink-vm-e2e-2"]
    );

    // A researcher asks; the assigned VM's agent starts the remote desktop.
    let command =
        "DISPLAY= /opt/google/chrome-remote-desktop/start-host --code=\"4/0AVG7fiQendtoend\" \
        --redirect-url=\"https://remotedesktop.google.com/_/oauthredirect\" --name=$(hostname)";
    let page = lab
        .client
        .post(format!("{}/api/request_vm", lab.base))
        .form(&[("email", "ada@example.org"), ("crd_command", command)])
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("page");
    let marker = r#"<strong id="hostname">"#;
    let start = page.find(marker).expect("assigned page") + marker.len();
    let hostname = page[start..start + page[start..].find('<').expect("end")].to_owned();
    lab.until_logged(&hostname, "Chrome Remote Desktop would start now", 1)
        .await;
    for secret in ["0AVG7fiQendtoend", "ada@example.org"] {
        assert!(
            !lab.agent_log(&hostname).contains(secret),
            "the agent logged `{secret}`"
        );
    }

    // The admin releases it: the session ends and the VM is free again.
    let released = lab
        .client
        .post(format!("{}/api/admin/vms/{hostname}/release", lab.base))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        // A script, not a form another site could post.
        .header("x-lablink-client", "tests")
        .send()
        .await
        .expect("release");
    assert_eq!(released.status(), 200);
    lab.until_logged(&hostname, "session would end now", 1)
        .await;
    lab.until("both VMs free again", |vms| {
        vms.len() == 2 && vms.iter().all(ready)
    })
    .await;

    // Destroy everything: the agents stop and the rows go.
    let destroyed = lab
        .operation(
            lab.admin_post("/api/admin/vms/destroy-all", json!({}))
                .await,
        )
        .await;
    assert_eq!(destroyed["state"], "succeeded", "{destroyed}");
    lab.until("no VMs left", <[Vm]>::is_empty).await;
    assert!(Path::new(&lab.data_dir.path().join("agents")).is_dir());
}

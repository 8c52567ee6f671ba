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

/// Whether a zombie whose program is named `name` (as the kernel cuts it, 15 bytes) exists.
fn zombie_named(name: &str) -> bool {
    let comm: String = name.chars().take(15).collect();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .any(|stat| stat.contains(&format!("({comm}) Z ")))
}

/// The VM as `GET /api/admin/vms/{hostname}` shows it.
async fn vm_view(lab: &Lab, hostname: &str) -> serde_json::Value {
    lab.client
        .get(lab.url(&format!("/api/admin/vms/{hostname}")))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[actix_web::test]
async fn an_agent_that_exits_at_once_fails_its_creation_and_its_vm_says_why() {
    use std::os::unix::fs::PermissionsExt;
    let scripts = tempfile::tempdir().expect("dir");
    // A broken image: the agent says why on standard error and exits.
    let agent = scripts.path().join("dies-at-once");
    std::fs::write(
        &agent,
        "#!/bin/sh\necho 'lablink-client: LABLINK_VM_TOKEN: the GPU driver is missing' >&2\nexit 3\n",
    )
    .expect("script");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("mode");
    let lab = Lab::start_with("lablink-vm-dies", |config| {
        config.provider.local.agent_binary = Some(agent.clone());
    })
    .await;

    let created = lab
        .operation(lab.admin_post("/api/admin/vms", json!({"count": 1})).await)
        .await;
    let finished = std::time::Instant::now();
    assert_eq!(created["state"], "failed", "{created}");
    let error = created["error"].as_str().unwrap_or_default();
    assert!(error.contains("exited with status 3"), "{error}");
    assert!(error.contains("the GPU driver is missing"), "{error}");
    assert!(
        !created["output_tail"]
            .as_str()
            .unwrap_or_default()
            .contains("agent started"),
        "{created}"
    );

    // The VM left the pool at once, saying why; the exited agent was reaped.
    let vms = lab
        .until("the VM failed to boot", |vms| {
            vms.len() == 1 && vms[0].state == "boot_failed"
        })
        .await;
    assert!(
        finished.elapsed() < std::time::Duration::from_secs(1),
        "took {:?}",
        finished.elapsed()
    );
    assert!(
        vms[0].state_reason.contains("the GPU driver is missing"),
        "{}",
        vms[0].state_reason
    );
    let view = vm_view(&lab, "lablink-vm-dies-1").await;
    assert!(
        view["state_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("exited with status 3"),
        "{view}"
    );
    assert!(!zombie_named("dies-at-once"), "the agent was left a zombie");
}

#[actix_web::test]
async fn an_agent_killed_after_it_registered_takes_its_vm_out_of_the_pool_within_a_second() {
    let lab = Lab::start("lablink-vm-killed").await;
    let created = lab
        .operation(lab.admin_post("/api/admin/vms", json!({"count": 1})).await)
        .await;
    assert_eq!(created["state"], "succeeded", "{created}");
    assert!(
        created["output_tail"]
            .as_str()
            .unwrap_or_default()
            .contains("agent started and registered"),
        "{created}"
    );
    lab.until("the VM is ready", |vms| vms.len() == 1 && ready(&vms[0]))
        .await;

    let pid_file = lab.data_dir.path().join("agents/lablink-vm-killed-1.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .split_whitespace()
        .next()
        .and_then(|pid| pid.parse().ok())
        .expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let killed = std::time::Instant::now();
    let vms = lab
        .until("the VM is unreachable", |vms| vms[0].state == "unreachable")
        .await;
    assert!(
        killed.elapsed() < std::time::Duration::from_secs(1),
        "took {:?}",
        killed.elapsed()
    );
    assert!(
        vms[0].state_reason.contains("killed by signal 9"),
        "{}",
        vms[0].state_reason
    );
    // Reaped: its pid is no zombie of ours.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(!stat.contains(") Z "), "a zombie is left: {stat}");
}

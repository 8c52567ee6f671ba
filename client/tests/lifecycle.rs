//! VM supervision end to end, with real agents started by the local provider and killed or
//! stopped with real signals: a dead or frozen agent's VM becomes unreachable within the
//! heartbeat timeout, is never assigned while so, and is rebooted (its agent restarted)
//! until it is ready again; an assigned VM's agent that freezes and comes back keeps its
//! participant, and a participant whose VM broke gets another; a VM that never boots is
//! replaced; a released VM is reset (software stopped, files removed) for the next one.

use std::time::Duration;

use lablink_schema::vms::Vm;
use lablink_schema::wire::LifecycleState;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

#[path = "support/lab.rs"]
mod lab;
#[path = "../../allocator/tests/support/receivers.rs"]
mod receivers;
use lab::{Lab, ADMIN_PASSWORD};
use lablink_allocator::config::WebhookConfig;
use receivers::WebhookReceiver;

const HOOK_SECRET: &str = "lifecycle-test-webhook-secret";

/// Heartbeat timeout of these labs: agents are told to report every 0.5 s.
const HEARTBEAT_TIMEOUT_SECS: f64 = 1.5;

/// The pid of the agent process for `hostname` of this lab (read from `/proc`).
fn agent_pid(lab: &Lab, hostname: &str) -> Option<i32> {
    let wanted_name = format!("VM_NAME={hostname}");
    let wanted_url = format!("ALLOCATOR_URL={}", lab.base);
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
            let has = |want: &str| vars.contains(&want.as_bytes());
            let alive = std::fs::read_to_string(entry.path().join("stat"))
                .is_ok_and(|stat| !stat.contains(") Z "));
            (has(&wanted_name) && has(&wanted_url) && alive).then_some(pid)
        })
}

fn signal(pid: i32, signal: Signal) {
    kill(Pid::from_raw(pid), signal).expect("signal the agent");
}

fn state_of(vms: &[Vm], hostname: &str) -> Option<LifecycleState> {
    vms.iter().find(|vm| vm.hostname == hostname).map(Vm::state)
}

async fn all_ready(lab: &Lab, count: usize) -> Vec<Vm> {
    lab.until("every VM is ready", |vms| {
        vms.len() == count && vms.iter().all(|vm| vm.state() == LifecycleState::Ready)
    })
    .await
}

async fn request(lab: &Lab, email: &str) -> reqwest::StatusCode {
    // Open the start page first, as a participant's browser does (it sets the browser key).
    lab.client
        .get(lab.url("/"))
        .send()
        .await
        .expect("start page");
    let code: String = format!("4/0AVG7fiQ{email}xxxxxxxxxx")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '/')
        .collect();
    let command = format!(
        "DISPLAY= /opt/google/chrome-remote-desktop/start-host --code=\"{code}\" \
         --redirect-url=\"https://remotedesktop.google.com/_/oauthredirect\" --name=$(hostname)"
    );
    lab.client
        .post(lab.url("/api/request_vm"))
        .form(&[("email", email), ("crd_command", command.as_str())])
        .send()
        .await
        .expect("request")
        .status()
}

async fn admin_vm(lab: &Lab, hostname: &str) -> Value {
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
async fn a_killed_or_frozen_agent_is_noticed_never_assigned_and_rebooted() {
    let lab = Lab::start_with("lablink-vm-life", |config| {
        config.lifecycle.heartbeat_timeout_secs = HEARTBEAT_TIMEOUT_SECS;
        // Long enough to ask for VMs while one is unreachable.
        config.lifecycle.recovery_delay_secs = 2.0;
        config.lifecycle.reboot_timeout_secs = 15.0;
    })
    .await;
    lab.create_ready_vms(2).await;
    all_ready(&lab, 2).await;
    let (first, second) = ("lablink-vm-life-1", "lablink-vm-life-2");

    // SIGKILL: unreachable within the timeout (and some slack for a slow machine).
    let killed = agent_pid(&lab, first).expect("the first agent runs");
    signal(killed, Signal::SIGKILL);
    let started = tokio::time::Instant::now();
    lab.until("the killed agent's VM is unreachable", |vms| {
        state_of(vms, first) == Some(LifecycleState::Unreachable)
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs_f64(HEARTBEAT_TIMEOUT_SECS + 2.0),
        "noticed after {:?}",
        started.elapsed()
    );
    // While it is unreachable only the other VM can be had.
    assert_eq!(request(&lab, "ada@lab.example").await, 200);
    let vms = lab
        .until("ada has a VM", |vms| {
            vms.iter().any(|vm| vm.user_email.is_some())
        })
        .await;
    let given = vms
        .iter()
        .find(|vm| vm.user_email.is_some())
        .expect("assigned");
    assert_eq!(
        given.hostname, second,
        "the unreachable VM is never assigned"
    );
    assert_ne!(
        request(&lab, "grace@lab.example").await,
        200,
        "no VM is free for grace"
    );

    // Rebooted: a new agent process, and the VM is ready again.
    let vms = lab
        .until("the killed agent's VM is ready again", |vms| {
            state_of(vms, first) == Some(LifecycleState::Ready)
        })
        .await;
    let recovered = vms.iter().find(|vm| vm.hostname == first).expect("vm");
    assert!(
        recovered.state_reason.contains("recovered after reboot 1"),
        "{recovered:?}"
    );
    assert_eq!(recovered.recovery_attempts, 0);
    let restarted = agent_pid(&lab, first).expect("a new agent runs");
    assert_ne!(restarted, killed);
    assert_eq!(vms.len(), 2, "the pool keeps its size");

    // SIGSTOP for less than the timeout: nothing happens to the VM.
    signal(restarted, Signal::SIGSTOP);
    tokio::time::sleep(Duration::from_millis(400)).await;
    signal(restarted, Signal::SIGCONT);
    tokio::time::sleep(Duration::from_secs_f64(HEARTBEAT_TIMEOUT_SECS)).await;
    let vm = admin_vm(&lab, first).await;
    assert_eq!(
        vm["state"], "ready",
        "an agent back in time keeps its VM: {vm}"
    );

    // SIGSTOP for longer: unreachable, then rebooted (the frozen process is killed).
    signal(restarted, Signal::SIGSTOP);
    lab.until("the frozen agent's VM is unreachable", |vms| {
        state_of(vms, first) == Some(LifecycleState::Unreachable)
    })
    .await;
    lab.until("the frozen agent's VM is ready again", |vms| {
        state_of(vms, first) == Some(LifecycleState::Ready)
    })
    .await;
    let third = agent_pid(&lab, first).expect("a new agent runs");
    assert_ne!(
        third, restarted,
        "the frozen agent was replaced by a new process"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{restarted}")).exists(),
        "the frozen agent is gone, not left stopped"
    );
}

#[actix_web::test]
async fn an_assigned_vm_whose_agent_freezes_is_shown_to_the_admin_and_its_participant_moves() {
    let lab = Lab::start_with("lablink-vm-held", |config| {
        config.lifecycle.heartbeat_timeout_secs = HEARTBEAT_TIMEOUT_SECS;
        config.lifecycle.recovery_delay_secs = 0.2;
    })
    .await;
    lab.create_ready_vms(2).await;
    all_ready(&lab, 2).await;
    assert_eq!(request(&lab, "ada@lab.example").await, 200);
    let vms = lab
        .until("assigned", |vms| {
            vms.iter().any(|vm| vm.state() == LifecycleState::Assigned)
        })
        .await;
    let held = vms
        .iter()
        .find(|vm| vm.user_email.is_some())
        .expect("ada's VM")
        .clone();
    let hostname = held.hostname.as_str();
    let pid = agent_pid(&lab, hostname).expect("agent");
    signal(pid, Signal::SIGSTOP);
    lab.until("unreachable", |vms| {
        state_of(vms, hostname) == Some(LifecycleState::Unreachable)
    })
    .await;
    let seen = admin_vm(&lab, hostname).await;
    assert_eq!(seen["assigned_to"], "ada@lab.example", "{seen}");
    assert!(
        seen["next_action"]
            .as_str()
            .unwrap_or_default()
            .contains("alert the admin"),
        "{seen}"
    );
    // Not rebooted behind the participant's back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(agent_pid(&lab, hostname), Some(pid));

    // The agent comes back in time: the participant keeps the VM.
    signal(pid, Signal::SIGCONT);
    let vms = lab
        .until("assigned again", |vms| {
            state_of(vms, hostname) == Some(LifecycleState::Assigned)
        })
        .await;
    let back = vms.iter().find(|vm| vm.hostname == hostname).expect("vm");
    assert_eq!(back.user_email.as_deref(), Some("ada@lab.example"));

    // It freezes for good and the participant asks again with the same email: a new VM
    // with a new PIN; the broken one is freed and recovered in the background.
    signal(pid, Signal::SIGSTOP);
    lab.until("unreachable again", |vms| {
        state_of(vms, hostname) == Some(LifecycleState::Unreachable)
    })
    .await;
    assert_eq!(request(&lab, "ada@lab.example").await, 200);
    let vms = lab
        .until("ada holds the other VM", |vms| {
            vms.iter().any(|vm| {
                vm.hostname != hostname && vm.user_email.as_deref() == Some("ada@lab.example")
            })
        })
        .await;
    let moved = vms
        .iter()
        .find(|vm| vm.hostname != hostname)
        .expect("other VM");
    assert_ne!(moved.pin, held.pin, "a new PIN");
    let broken = vms
        .iter()
        .find(|vm| vm.hostname == hostname)
        .expect("broken VM");
    assert_eq!(broken.user_email, None);
    assert!(
        broken.state_reason.contains("was given another VM"),
        "{broken:?}"
    );
    lab.until("the broken VM is recovered", |vms| {
        state_of(vms, hostname) == Some(LifecycleState::Ready)
    })
    .await;
    assert_ne!(
        agent_pid(&lab, hostname),
        Some(pid),
        "rebooted: a new agent"
    );
}

#[actix_web::test]
async fn a_vm_that_never_boots_fails_to_boot_and_is_replaced() {
    let dir = tempfile::tempdir().expect("dir");
    let never_boots = dir.path().join("never-boots.sh");
    std::fs::write(&never_boots, "#!/bin/sh\nexec sleep 600\n").expect("script");
    std::fs::set_permissions(
        &never_boots,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let lab = Lab::start_with("lablink-vm-boot", |config| {
        config.provider.local.agent_binary = Some(never_boots.clone());
        config.lifecycle.boot_timeout_secs = 1.0;
        config.lifecycle.reboot_attempts = 0;
        config.lifecycle.recovery_delay_secs = 0.0;
    })
    .await;
    let created = lab
        .operation(lab.admin_post("/api/admin/vms", json!({"count": 1})).await)
        .await;
    assert_eq!(created["state"], "succeeded", "{created}");
    let vms = lab
        .until("the first VM is replaced by a second", |vms| {
            vms.iter().all(|vm| vm.hostname != "lablink-vm-boot-1")
                && vms.iter().any(|vm| vm.hostname == "lablink-vm-boot-2")
        })
        .await;
    assert!(vms.len() <= 2, "{vms:?}");
    let operations: Value = lab
        .client
        .get(lab.url("/api/admin/operations"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let replaced = operations
        .as_array()
        .expect("array")
        .iter()
        .find(|op| op["kind"] == "replace" && op["targets"][0] == "lablink-vm-boot-1")
        .unwrap_or_else(|| panic!("a replacement of the first VM: {operations}"));
    assert_eq!(replaced["requested_by"], "supervisor");
    assert_eq!(replaced["targets"][1], "lablink-vm-boot-2");

    // Stop the lab before the replacement fails to boot in turn.
    let destroyed = lab
        .operation(
            lab.admin_post("/api/admin/vms/destroy-all", json!({}))
                .await,
        )
        .await;
    assert_eq!(destroyed["state"], "succeeded", "{destroyed}");
    lab.until("no VMs left", <[Vm]>::is_empty).await;
}

#[actix_web::test]
async fn an_image_that_never_boots_is_replaced_three_times_with_growing_delays_then_no_more() {
    let dir = tempfile::tempdir().expect("dir");
    // An image whose agent starts (and logs that it reached the allocator, as the real one
    // does, so its creation is not held for a first report) but never reports ready.
    let never_boots = dir.path().join("never-boots.sh");
    std::fs::write(
        &never_boots,
        format!(
            "#!/bin/sh\necho '{{\"message\":\"{}\"}}'\nexec sleep 600\n",
            lablink_schema::wire::FIRST_REPORT_LOGGED
        ),
    )
    .expect("script");
    std::fs::set_permissions(
        &never_boots,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let hook = WebhookReceiver::start(HOOK_SECRET);
    let url = hook.url.clone();
    let lab = Lab::start_with("lablink-vm-bad", |config| {
        config.provider.local.agent_binary = Some(never_boots.clone());
        config.lifecycle.boot_timeout_secs = 0.5;
        config.lifecycle.reboot_attempts = 0;
        config.lifecycle.recovery_delay_secs = 0.0;
        config.lifecycle.max_failed_boot_replacements = 3;
        config.notifications.webhooks = vec![WebhookConfig {
            name: "lab".to_owned(),
            url: url.clone().into(),
            secret: HOOK_SECRET.into(),
        }];
        config.notifications.retry_first_secs = 0.3;
    })
    .await;
    let created = lab
        .operation(lab.admin_post("/api/admin/vms", json!({"count": 1})).await)
        .await;
    assert_eq!(created["state"], "succeeded", "{created}");

    // Three replacements, then the last VM is quarantined with the reason and no fourth.
    let vms = lab
        .until("replacements stopped", |vms| {
            vms.iter()
                .any(|vm| vm.state == LifecycleState::Quarantined.as_str())
        })
        .await;
    let stopped = vms
        .iter()
        .find(|vm| vm.state == LifecycleState::Quarantined.as_str())
        .expect("quarantined");
    assert_eq!(vms.len(), 1, "only the last replacement is left: {vms:?}");
    assert!(
        stopped.state_reason.contains("replacements stopped")
            && stopped.state_reason.contains("not ready"),
        "{}",
        stopped.state_reason
    );
    let operations: Value = lab
        .client
        .get(lab.url("/api/admin/operations"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let replacements: Vec<&Value> = operations
        .as_array()
        .expect("array")
        .iter()
        .filter(|op| op["kind"] == "replace")
        .collect();
    let made: Vec<chrono::NaiveDateTime> = replacements
        .iter()
        .filter(|op| op["state"] == "succeeded")
        .map(|op| {
            chrono::NaiveDateTime::parse_from_str(
                op["created_at"]
                    .as_str()
                    .expect("created_at")
                    .trim_end_matches('Z'),
                "%Y-%m-%dT%H:%M:%S%.f",
            )
            .expect("time")
        })
        .collect();
    assert_eq!(made.len(), 3, "three replacements were made: {operations}");
    let mut made = made;
    made.sort();
    let gaps: Vec<i64> = made
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).num_milliseconds())
        .collect();
    // Each waits twice the boot timeout's doubling: at least 1 s, then at least 2 s.
    assert!(gaps[0] >= 900 && gaps[1] >= 1900, "gaps {gaps:?} ms");
    assert!(gaps[1] > gaps[0], "growing delays: {gaps:?}");
    let failed: Vec<&&Value> = replacements
        .iter()
        .filter(|op| op["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{operations}");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("replacements stopped"),
        "{}",
        failed[0]
    );

    // The admins are told once, and the dashboard says it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !hook
        .requests()
        .iter()
        .any(|r| r.body["event"] == "vm.replacements_stopped")
    {
        assert!(tokio::time::Instant::now() < deadline, "no notification");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stopped_banner = lab.dashboard_page("/admin").await;
    assert!(
        stopped_banner.contains("replacements-stopped")
            && stopped_banner.contains("VMs of no workshop never become ready"),
        "{stopped_banner}"
    );

    // No fourth replacement, however long one waits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let vms = lab.until("settled", |_| true).await;
    assert_eq!(vms.len(), 1, "{vms:?}");
    assert_eq!(
        hook.requests()
            .iter()
            .filter(|r| r.body["event"] == "vm.replacements_stopped")
            .count(),
        1
    );
}

#[actix_web::test]
async fn release_resets_the_vm_so_the_next_participant_finds_nothing_of_the_last() {
    let lab = Lab::start("lablink-vm-reset").await;
    lab.create_ready_vms(1).await;
    let hostname = "lablink-vm-reset-1";
    all_ready(&lab, 1).await;
    assert_eq!(request(&lab, "ada@lab.example").await, 200);
    lab.until("assigned", |vms| {
        state_of(vms, hostname) == Some(LifecycleState::Assigned)
    })
    .await;

    // Ada works: files in her directory, and the research software running from it.
    let session = lab
        .data_dir
        .path()
        .join("agents")
        .join(format!("{hostname}.session"));
    std::fs::create_dir_all(session.join("project")).expect("mkdir");
    std::fs::write(session.join("project/labels.slp"), "ada's labels").expect("write");
    std::fs::write(session.join(".bash_history"), "sleap-label").expect("write");
    let bin = tempfile::tempdir().expect("dir");
    let sleap = bin.path().join("sleap");
    std::os::unix::fs::symlink("/bin/sleep", &sleap).expect("link");
    let mut software = std::process::Command::new(&sleap)
        .arg("600")
        .current_dir(&session)
        .spawn()
        .expect("start the software");
    // The same program running elsewhere is not hers and stays.
    let mut elsewhere = std::process::Command::new(&sleap)
        .arg("600")
        .current_dir(bin.path())
        .spawn()
        .expect("start another");

    let released = lab
        .client
        .post(lab.url(&format!("/api/admin/vms/{hostname}/release")))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("x-lablink-client", "tests")
        .send()
        .await
        .expect("release");
    assert_eq!(released.status(), 200);
    lab.until_logged(hostname, "session reset", 1).await;
    all_ready(&lab, 1).await;

    let mut stopped = None;
    for _ in 0..100 {
        stopped = software.try_wait().expect("poll");
        if stopped.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(status) = stopped else {
        let _ = software.kill();
        panic!("the research software still runs after the reset");
    };
    assert!(!status.success(), "the software was stopped: {status}");
    assert!(
        elsewhere.try_wait().expect("poll").is_none(),
        "another process is left alone"
    );
    let _ = elsewhere.kill();
    let _ = elsewhere.wait();
    assert_eq!(
        std::fs::read_dir(&session).expect("dir").count(),
        0,
        "none of ada's files are left"
    );
    // The next participant gets the same VM, clean.
    assert_eq!(request(&lab, "grace@lab.example").await, 200);
    lab.until("grace has it", |vms| {
        vms[0].user_email.as_deref() == Some("grace@lab.example")
    })
    .await;
}

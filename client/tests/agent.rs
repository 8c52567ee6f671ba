//! The agent against a real allocator (started here, on real PostgreSQL): it registers,
//! waits, starts the remote desktop with the researcher's code and PIN, reports GPU health
//! and use, survives an allocator restart, and waits again after a release.

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::dev::ServerHandle;
use diesel::{Connection, RunQueryDsl};
use lablink_allocator::config::Config;
use lablink_allocator::startup::Application;
use lablink_client::agent::{Agent, AgentParts};
use lablink_client::allocator_client::AllocatorClient;
use lablink_client::desktop::{DesktopCall, RecordingDesktop};
use lablink_client::desktop_activity::{LoggedNotices, NoDesktop};
use lablink_client::doubles::{RecordingNotifier, ScriptedInput};
use lablink_client::gpu::{GpuReading, HealthPolicy, ProbeError, ScriptedProbe};
use lablink_client::settings::AgentSettings;
use lablink_client::status::{SetStatus, StatusReporter};
use lablink_client::usage::ScriptedProcesses;
use lablink_client::wire::VmStatus;
use lablink_schema::backoff::Backoff;
use lablink_schema::testing::TestDatabase;
use lablink_schema::vms::Vm;

const ADMIN_PASSWORD: &str = "agent-test-admin-password";
/// Generous: each step takes milliseconds, but CI machines stall.
const PATIENCE: Duration = Duration::from_secs(20);

async fn start_allocator(database: &TestDatabase, port: u16) -> (ServerHandle, u16) {
    start_allocator_with(database, port, |_| {}).await
}

async fn start_allocator_with(
    database: &TestDatabase,
    port: u16,
    adjust: impl FnOnce(&mut Config),
) -> (ServerHandle, u16) {
    let mut config = Config::default();
    config.server.bind = format!("127.0.0.1:{port}").parse().expect("address");
    config.server.workers = 1;
    config.server.shutdown_timeout_secs = 1;
    config.database.url = Some(database.url().to_owned());
    config.database.pool_size = 8;
    config.database.writer_threads = 2;
    config.admin.password = Some(ADMIN_PASSWORD.into());
    adjust(&mut config);
    let app = Application::build(config).await.expect("allocator starts");
    let port = app.address().port();
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    (handle, port)
}

struct Fakes {
    desktop: RecordingDesktop,
    probe: ScriptedProbe,
    processes: ScriptedProcesses,
    input: ScriptedInput,
    notices: RecordingNotifier,
}

fn healthy() -> Result<Vec<GpuReading>, ProbeError> {
    Ok(vec![GpuReading {
        temperature_c: 45,
        uncorrected_ecc_errors: 0,
        utilization_percent: 0,
        memory_used_mib: 0,
    }])
}

/// An enrollment token made by the admin, as a lab's own machine gets one.
async fn enrollment_token(port: u16) -> String {
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/api/admin/enrollment-tokens"
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({"label": "agent tests"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    created["token"].as_str().expect("token").to_owned()
}

/// Settings for an agent on a machine that enrolls with an admin-made token.
async fn enrolling(port: u16) -> AgentSettings {
    let mut settings = AgentSettings::new(&format!("http://127.0.0.1:{port}"), "vm-1");
    settings.enrollment_token = Some(enrollment_token(port).await);
    // These tests are about the other actors (log shipping has tests of its own), and each
    // would otherwise share the default spool of `vm-1`.
    settings.log_shipping = false;
    settings
}

async fn start_agent(port: u16) -> (Agent, Fakes) {
    let mut settings = enrolling(port).await;
    settings.heartbeat_interval = Duration::from_millis(300);
    settings.gpu_check_interval = Duration::from_millis(100);
    settings.gpu_resend_interval = Duration::from_secs(2);
    settings.usage_check_interval = Duration::from_millis(100);
    settings.retry_initial = Duration::from_millis(50);
    settings.retry_max = Duration::from_millis(400);
    let fakes = Fakes {
        desktop: RecordingDesktop::new(),
        probe: ScriptedProbe::new([healthy()]),
        processes: ScriptedProcesses::new(),
        input: ScriptedInput::default(),
        notices: RecordingNotifier::default(),
    };
    let parts = AgentParts {
        own_log: None,
        desktop: Arc::new(fakes.desktop.clone()),
        gpu_probe: Box::new(fakes.probe.clone()),
        processes: Box::new(fakes.processes.clone()),
        health_policy: HealthPolicy::default(),
        input: Box::new(fakes.input.clone()),
        notifier: Arc::new(fakes.notices.clone()),
    };
    (Agent::start(&settings, parts).expect("agent starts"), fakes)
}

/// Waits until `check` holds of the VM row.
async fn until_vm(database: &TestDatabase, what: &str, check: impl Fn(&Vm) -> bool) -> Vm {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut conn = database.connect();
        if let Some(vm) = Vm::find_by_hostname(&mut conn, "vm-1").expect("query") {
            if check(&vm) {
                return vm;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting until {what}: {vm:?}"
            );
        } else {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting until {what}: no VM row"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn until_calls(desktop: &RecordingDesktop, what: &str, count: usize) -> Vec<DesktopCall> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let calls = desktop.calls();
        if calls.len() >= count {
            return calls;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {calls:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn crd_command(code: &str) -> String {
    format!(
        "DISPLAY= /opt/google/chrome-remote-desktop/start-host --code=\"{code}\" \
         --redirect-url=\"https://remotedesktop.google.com/_/oauthredirect\" --name=$(hostname)"
    )
}

/// A researcher asks for a VM; returns the PIN the page shows.
async fn researcher_asks(port: u16, email: &str, code: &str) -> String {
    let page = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/request_vm"))
        .form(&[("email", email), ("crd_command", &crd_command(code))])
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("page");
    let marker = r#"<strong id="pin" class="pin">"#;
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("not assigned: {page}"))
        + marker.len();
    page[start..start + 6].to_owned()
}

fn started(code: &str, pin: &str) -> DesktopCall {
    DesktopCall::Started {
        args: vec![
            format!("--code={code}"),
            "--redirect-url=https://remotedesktop.google.com/_/oauthredirect".to_owned(),
            "--name=vm-1".to_owned(),
        ],
        pin: pin.to_owned(),
    }
}

#[actix_web::test]
async fn the_agent_registers_gets_assigned_reports_and_waits_again_after_release() {
    let database = TestDatabase::migrated();
    let (_allocator, port) = start_allocator(&database, 0).await;
    let (agent, fakes) = start_agent(port).await;

    let vm = until_vm(
        &database,
        "the agent registered and reported a healthy GPU",
        |vm| vm.status == "running" && vm.gpu_health.as_deref() == Some("Healthy"),
    )
    .await;
    assert!(vm.token_hash.is_some(), "registration gave the VM a token");
    assert!(agent.client().has_token());
    assert!(!vm.in_use);
    assert!(fakes.desktop.calls().is_empty());

    // A researcher is assigned; the launcher gets exactly their code and PIN.
    let pin = researcher_asks(port, "ada@example.org", "4/0AVG7fiQfirstsession").await;
    let calls = until_calls(&fakes.desktop, "the remote desktop to start", 1).await;
    assert_eq!(calls, [started("4/0AVG7fiQfirstsession", &pin)]);

    // The research software starts and stops.
    fakes
        .processes
        .set(&[&["/usr/bin/python3", "-m", "sleap.gui.app"], &["bash"]]);
    until_vm(&database, "in use", |vm| vm.in_use).await;
    fakes
        .processes
        .set(&[&["bash"], &["vim", "/home/client/sleap/notes.txt"]]);
    until_vm(&database, "no longer in use", |vm| !vm.in_use).await;

    // The admin releases the VM: the session ends, the VM becomes free, the agent waits again.
    let release = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/api/admin/vms/vm-1/release"
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        // A script, not a form another site could post.
        .header("x-lablink-client", "tests")
        .send()
        .await
        .expect("release");
    assert_eq!(release.status(), 200);
    let calls = until_calls(&fakes.desktop, "the session to end", 2).await;
    assert_eq!(calls[1], DesktopCall::Ended);
    until_vm(&database, "free again", |vm| {
        vm.status == "running" && vm.user_email.is_none()
    })
    .await;
    let second_pin = researcher_asks(port, "grace@example.org", "4/0AVG7fiQsecondsession").await;
    let calls = until_calls(&fakes.desktop, "the second session", 3).await;
    assert_eq!(calls[2], started("4/0AVG7fiQsecondsession", &second_pin));

    // The GPU falls off the bus.
    fakes
        .probe
        .push(Err(ProbeError::GpuLost("fell off the bus".to_owned())));
    until_vm(&database, "the GPU reported unhealthy", |vm| {
        vm.gpu_health.as_deref() == Some("Unhealthy")
    })
    .await;
    agent.stop();
}

#[actix_web::test]
async fn an_agent_waiting_through_an_allocator_restart_still_gets_its_assignment() {
    let database = TestDatabase::migrated();
    let (allocator, port) = start_allocator(&database, 0).await;
    let (agent, fakes) = start_agent(port).await;
    until_vm(&database, "ready", |vm| {
        vm.status == "running" && vm.gpu_health.as_deref() == Some("Healthy")
    })
    .await;
    // Let the agent settle into its long poll, then take the allocator away under it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    allocator.stop(true).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_restarted, same_port) = start_allocator(&database, port).await;
    assert_eq!(same_port, port);

    let pin = researcher_asks(port, "ada@example.org", "4/0AVG7fiQafterrestart").await;
    let calls = until_calls(&fakes.desktop, "the remote desktop to start", 1).await;
    assert_eq!(calls, [started("4/0AVG7fiQafterrestart", &pin)]);
    agent.stop();
}

#[actix_web::test]
async fn without_nvml_the_gpu_is_reported_not_available() {
    let database = TestDatabase::migrated();
    let (_allocator, port) = start_allocator(&database, 0).await;
    let mut settings = enrolling(port).await;
    settings.gpu_check_interval = Duration::from_millis(100);
    settings.retry_initial = Duration::from_millis(50);
    let parts = AgentParts {
        own_log: None,
        desktop: Arc::new(RecordingDesktop::new()),
        gpu_probe: Box::new(ScriptedProbe::new([Err(ProbeError::NoNvml(
            "libnvidia-ml.so.1: cannot open shared object file".to_owned(),
        ))])),
        processes: Box::new(ScriptedProcesses::new()),
        health_policy: HealthPolicy::default(),
        input: Box::new(NoDesktop),
        notifier: Arc::new(LoggedNotices),
    };
    let agent = Agent::start(&settings, parts).expect("agent");
    until_vm(&database, "GPU reported N/A", |vm| {
        vm.gpu_health.as_deref() == Some("N/A")
    })
    .await;
    agent.stop();
}

/// Status reports the allocator has answered with 200, from its own metrics.
async fn status_reports_answered(port: u16) -> u64 {
    answered(port, "/api/vm-status", 200).await
}

/// Requests to `route` the allocator answered with `status`, from its own metrics.
async fn answered(port: u16, route: &str, status: u16) -> u64 {
    let metrics = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let line = format!(
        r#"lablink_http_request_duration_seconds_count{{method="POST",route="{route}",status="{status}"}} "#
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// A status set while a report is on its way is reported again once that one is answered,
/// even when it ends where the report in flight started: meanwhile the allocator may have
/// set the VM `initializing` (a release), and without another report the VM would stay so
/// until the next heartbeat.
#[actix_web::test]
async fn a_status_set_while_a_report_is_in_flight_is_reported_after_it() {
    let database = TestDatabase::migrated();
    let (_server, port) = start_allocator(&database, 0).await;
    let settings = enrolling(port).await;
    let client = AllocatorClient::new(&settings).expect("client");
    // No heartbeat during the test: only the first report and changes go out.
    let reporter = StatusReporter::new(
        client,
        Duration::from_secs(3_600),
        Backoff::new(Duration::from_millis(50), Duration::from_millis(400)),
    )
    .start();
    until_vm(&database, "registered", |vm| vm.status == "running").await;
    reporter.do_send(SetStatus(VmStatus::Initializing));
    until_vm(&database, "initializing", |vm| vm.status == "initializing").await;

    // Hold the row: the next report (running) stays in flight.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let mut conn = diesel::PgConnection::establish(database.url()).expect("connect");
    let holder = std::thread::spawn(move || {
        conn.transaction(|conn| {
            diesel::sql_query("SELECT 1 FROM vms WHERE hostname = 'vm-1' FOR UPDATE")
                .execute(conn)?;
            let _ = locked.send(());
            let _ = released.recv();
            Ok::<_, diesel::result::Error>(())
        })
        .expect("lock");
    });
    is_locked.recv().expect("locked");
    let before = status_reports_answered(port).await;
    reporter.do_send(SetStatus(VmStatus::Running));
    // While it is in flight: cleaned up and ready again, ending where it started.
    tokio::time::sleep(Duration::from_millis(300)).await;
    reporter.do_send(SetStatus(VmStatus::Initializing));
    reporter.do_send(SetStatus(VmStatus::Running));
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(release);
    holder.join().expect("lock holder");

    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let answered = status_reports_answered(port).await - before;
        if answered >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{answered} report(s) after the statuses were set; the last status was never reported again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        until_vm(&database, "running", |vm| vm.status == "running")
            .await
            .status,
        "running"
    );
}

/// The GPU and in-use reports wait for registration: before, they raced it, were refused
/// (401, no VM and no token yet) and waited for the next check, so a fresh VM was not
/// assignable for a whole check interval and its log began with warnings.
#[actix_web::test]
async fn reports_start_after_registration_and_none_is_refused() {
    let database = TestDatabase::migrated();
    let (_allocator, port) = start_allocator(&database, 0).await;
    let mut settings = enrolling(port).await;
    // Long intervals: only the first check of each monitor happens during the test.
    settings.gpu_check_interval = Duration::from_secs(3_600);
    settings.usage_check_interval = Duration::from_secs(3_600);
    let parts = AgentParts {
        own_log: None,
        desktop: Arc::new(RecordingDesktop::new()),
        gpu_probe: Box::new(ScriptedProbe::new([healthy()])),
        processes: Box::new(ScriptedProcesses::new()),
        health_policy: HealthPolicy::default(),
        input: Box::new(NoDesktop),
        notifier: Arc::new(LoggedNotices),
    };
    let agent = Agent::start(&settings, parts).expect("agent");
    until_vm(&database, "GPU reported at its first check", |vm| {
        vm.gpu_health.as_deref() == Some("Healthy")
    })
    .await;
    for route in [
        "/api/gpu_health",
        "/api/update_inuse_status",
        "/api/vm-status",
    ] {
        assert_eq!(answered(port, route, 401).await, 0, "{route} was refused");
    }
    assert_eq!(answered(port, "/api/gpu_health", 200).await, 1);
    agent.stop();
}

#[actix_web::test]
async fn desktop_use_is_reported_as_activity_and_a_warning_is_shown_once() {
    let database = TestDatabase::migrated();
    // Heartbeats every 0.3 s: each carries the warning.
    let (_allocator, port) = start_allocator_with(&database, 0, |config| {
        config.lifecycle.heartbeat_timeout_secs = 0.9;
    })
    .await;
    let (agent, fakes) = start_agent(port).await;
    until_vm(&database, "ready", |vm| {
        vm.status == "running" && vm.gpu_health.as_deref() == Some("Healthy")
    })
    .await;
    researcher_asks(port, "ada@example.org", "4/0AVG7fiQdesktopuse").await;
    let assigned = until_vm(&database, "assigned", |vm| vm.user_email.is_some()).await;

    // Nobody at the desktop: no activity is reported beyond the first software check.
    fakes.input.set_idle(Some(Duration::from_secs(600)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let quiet = until_vm(&database, "read", |_| true).await;
    let settled = quiet.last_active_at;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        until_vm(&database, "read", |_| true).await.last_active_at,
        settled
    );

    // Someone types: each check reports activity, the software's state unchanged.
    fakes.input.set_idle(Some(Duration::from_millis(10)));
    let active = until_vm(&database, "activity reported", |vm| {
        vm.last_active_at > settled && vm.last_active_at > assigned.assigned_at
    })
    .await;
    assert!(!active.in_use);

    // A warning for the session reaches the desktop once, however many heartbeats carry it.
    {
        use diesel::prelude::*;
        use lablink_schema::schema::vms;
        let mut conn = database.connect();
        diesel::update(vms::table.find("vm-1"))
            .set(vms::session_notice.eq("Your session ends in 5 minutes: save your work now."))
            .execute(&mut conn)
            .expect("set the warning");
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while fakes.notices.shown().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no notice shown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        fakes.notices.shown(),
        ["Your session ends in 5 minutes: save your work now."]
    );
    agent.stop();
}

/// Waits until `check` holds of vm-1's latest participant session.
async fn until_session(
    database: &TestDatabase,
    what: &str,
    check: impl Fn(&lablink_schema::journey::ParticipantSession) -> bool,
) -> lablink_schema::journey::ParticipantSession {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut conn = database.connect();
        let latest = lablink_schema::journey::of_workshop(&mut conn, None)
            .expect("query")
            .pop();
        if let Some(session) = latest.as_ref().filter(|s| check(s)) {
            return session.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}: {latest:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn the_session_figures_come_from_a_real_process_and_the_gpu_probe_in_the_heartbeats() {
    let database = TestDatabase::migrated();
    // Heartbeats every 0.3 s: the counters ride on them.
    let (_allocator, port) = start_allocator_with(&database, 0, |config| {
        config.lifecycle.heartbeat_timeout_secs = 0.9;
    })
    .await;
    let mut settings = enrolling(port).await;
    settings.heartbeat_interval = Duration::from_millis(300);
    settings.gpu_check_interval = Duration::from_millis(100);
    settings.usage_check_interval = Duration::from_millis(100);
    settings.subject_software = "sleap".to_owned();
    let desktop = RecordingDesktop::new();
    let busy_gpu = Ok(vec![GpuReading {
        temperature_c: 60,
        uncorrected_ecc_errors: 0,
        utilization_percent: 70,
        memory_used_mib: 3000,
    }]);
    let parts = AgentParts {
        own_log: None,
        desktop: Arc::new(desktop.clone()),
        gpu_probe: Box::new(ScriptedProbe::new([busy_gpu])),
        // The real process table: the research software is a real process started below.
        processes: Box::new(lablink_client::usage::ProcFs::default()),
        health_policy: HealthPolicy::default(),
        input: Box::new(NoDesktop),
        notifier: Arc::new(LoggedNotices),
    };
    let agent = Agent::start(&settings, parts).expect("agent starts");
    until_vm(&database, "ready", |vm| vm.status == "running").await;
    researcher_asks(port, "ada@example.org", "4/0AVG7fiQjourneyfigures").await;

    // The command arrives and the desktop's host starts: both steps recorded, nothing else.
    let up = until_session(&database, "the desktop is up", |s| {
        s.command_received_at.is_some() && s.desktop_up_at.is_some()
    })
    .await;
    assert_eq!(up.software_first_used_at, None);
    assert_eq!(up.software_secs, 0);

    // The research software: a real program named like SLEAP's (a copy of `sleep`).
    let dir = tempfile::tempdir().expect("temp dir");
    let program = dir.path().join("sleap-label");
    std::fs::copy("/bin/sleep", &program).expect("copy sleep");
    // A copy just written can be briefly "busy" while another test's fork still holds it.
    let mut tries = 0;
    let mut software = loop {
        match std::process::Command::new(&program).arg("30").spawn() {
            Ok(child) => break child,
            Err(err) if err.raw_os_error() == Some(26) && tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("start the stand-in software: {err}"),
        }
    };
    let used = until_session(&database, "the software ran for a while", |s| {
        s.software_first_used_at.is_some() && s.software_secs >= 1 && s.gpu_active_secs >= 1
    })
    .await;
    assert!(used.gpu_measured);
    assert_eq!(
        (used.gpu_peak_utilization, used.gpu_peak_memory_mib),
        (70, 3000)
    );
    assert!(used.last_activity_at.is_some());
    let _ = software.kill();
    let _ = software.wait();

    // Once it stops, its time stops growing.
    until_vm(&database, "the software stopped", |vm| !vm.in_use).await;
    let stopped = until_session(&database, "read", |_| true)
        .await
        .software_secs;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = until_session(&database, "read", |_| true).await;
    assert!(
        later.software_secs <= stopped + 1,
        "{} then {}",
        stopped,
        later.software_secs
    );
    agent.stop();
}

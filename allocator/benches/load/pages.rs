//! The admin's instances page with many VMs, the admin API with Basic credentials (no slow
//! password hash per request), and the allocator's cold start and idle memory.

use std::time::{Duration, Instant};

use lablink_schema::testing::TestDatabase;

use crate::{against_goal, free_vms, quantile_ms, summary, Allocator, ADMIN_PASSWORD, BINARY};

/// Page loads timed, one after another.
const PAGE_LOADS: usize = 200;
/// Cold starts timed.
const STARTS: usize = 5;
/// How long an idle allocator settles before its memory is read.
const IDLE_SETTLE: Duration = Duration::from_secs(2);

/// Signs in through the form, as a browser does; the client keeps the session cookie.
pub(crate) async fn sign_in(client: &reqwest::Client, base: &str) {
    let form = client
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("html");
    let marker = r#"name="login_nonce" value=""#;
    let start = form.find(marker).expect("nonce field") + marker.len();
    let nonce = &form[start..start + form[start..].find('"').expect("end")];
    let signed_in = client
        .post(format!("{base}/admin/login"))
        .form(&[
            ("user", "admin"),
            ("password", ADMIN_PASSWORD),
            ("login_nonce", nonce),
        ])
        .send()
        .await
        .expect("sign in");
    assert!(signed_in.status().is_success(), "{}", signed_in.status());
}

pub(crate) async fn time_loads(client: &reqwest::Client, url: &str, basic: bool) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for _ in 0..PAGE_LOADS {
        let mut request = client.get(url);
        if basic {
            request = request.basic_auth("admin", Some(ADMIN_PASSWORD));
        }
        let sent = Instant::now();
        let response = request.send().await.expect("load");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        let _ = response.bytes().await.expect("body");
        latencies.push(sent.elapsed());
    }
    latencies
}

/// The instances page and the admin API with `vms` VMs.
pub async fn admin_pages(vms: usize) {
    let database = TestDatabase::migrated();
    let allocator = Allocator::start(&database);
    free_vms(&reqwest::Client::new(), &allocator.base, vms).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    sign_in(&browser, &allocator.base).await;
    let cpu_before = allocator.cpu_secs();
    let page = time_loads(&browser, &format!("{}/admin", allocator.base), false).await;
    let rows = time_loads(
        &browser,
        &format!("{}/admin/instances/rows", allocator.base),
        false,
    )
    .await;
    let api = time_loads(
        &reqwest::Client::new(),
        &format!("{}/api/vm-status", allocator.base),
        true,
    )
    .await;
    let page_p50 = quantile_ms(&page, 0.5);
    println!(
        "admin with {vms} VMs: /admin {} ({} at p50); live rows {}; GET /api/vm-status with Basic {}; \
         allocator CPU {:.2} s for {} requests",
        summary(page),
        against_goal(page_p50, 20.0, "ms"),
        summary(rows),
        summary(api),
        allocator.cpu_secs() - cpu_before,
        3 * PAGE_LOADS,
    );
}

/// The instructor's view of a workshop with `participants` participants at mixed steps:
/// the page, its live part and the JSON API.
pub async fn instructor_view(participants: usize) {
    use diesel::prelude::*;
    use lablink_schema::schema::participant_sessions;
    let database = TestDatabase::migrated();
    let allocator = Allocator::start(&database);
    let client = reqwest::Client::new();
    let vms = free_vms(&client, &allocator.base, participants).await;
    let at = |secs: i64| {
        (chrono::Utc::now() + chrono::Duration::seconds(secs))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let created: serde_json::Value = client
        .post(format!("{}/api/admin/workshops", allocator.base))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({
            "name": "Benchmark workshop",
            "starts_at": at(5),
            "ends_at": at(3600),
            "headcount": participants,
            "spare_vms": 0,
            "warmup_lead_secs": 0,
        }))
        .send()
        .await
        .expect("workshop")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_i64().expect("id");
    {
        // Its VMs are the free ones (so the warm-up makes none), all given out.
        let mut conn = database.connect();
        for (hostname, _) in &vms {
            lablink_schema::vms::Vm::set_workshop(&mut conn, hostname, Some(id)).expect("move");
        }
    }
    crate::agents::assign_all(&database, participants, Some(id));
    {
        // A quarter at each step; some claimed long ago without a desktop: stuck.
        let mut conn = database.connect();
        let now = chrono::Utc::now().naive_utc();
        let ids: Vec<i64> = participant_sessions::table
            .select(participant_sessions::id)
            .load(&mut conn)
            .expect("sessions");
        for (n, session) in ids.iter().enumerate() {
            let row = participant_sessions::table.find(*session);
            let update = diesel::update(row);
            match n % 4 {
                0 => update
                    .set(participant_sessions::claimed_at.eq(now - chrono::Duration::minutes(20)))
                    .execute(&mut conn),
                1 => update
                    .set(participant_sessions::command_received_at.eq(now))
                    .execute(&mut conn),
                2 => update
                    .set((
                        participant_sessions::command_received_at.eq(now),
                        participant_sessions::desktop_up_at.eq(now),
                    ))
                    .execute(&mut conn),
                _ => update
                    .set((
                        participant_sessions::command_received_at.eq(now),
                        participant_sessions::desktop_up_at.eq(now),
                        participant_sessions::software_first_used_at.eq(now),
                        participant_sessions::gpu_measured.eq(true),
                    ))
                    .execute(&mut conn),
            }
            .expect("step");
        }
    }
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    sign_in(&browser, &allocator.base).await;
    let path = format!("{}/admin/workshops/{id}/participants", allocator.base);
    let page = time_loads(&browser, &path, false).await;
    let live = time_loads(&browser, &format!("{path}/live"), false).await;
    let api = time_loads(
        &client,
        &format!("{}/api/admin/workshops/{id}/participants", allocator.base),
        true,
    )
    .await;
    let page_p50 = quantile_ms(&page, 0.5);
    println!(
        "instructor's view with {participants} participants: page {} ({} at p50); live part {}; \
         JSON {}",
        summary(page),
        against_goal(page_p50, 50.0, "ms"),
        summary(live),
        summary(api),
    );
}

/// From starting the binary to `/readyz` answering 200, on PostgreSQL and on SQLite; then
/// the idle allocator's memory.
pub async fn startup() {
    let client = reqwest::Client::new();
    for backend in ["postgres", "sqlite"] {
        let mut ready_after = Vec::new();
        let mut idle_rss = Vec::new();
        for _ in 0..STARTS {
            let database = TestDatabase::migrated();
            let data_dir = tempfile::tempdir().expect("data dir");
            let started = Instant::now();
            let allocator = if backend == "postgres" {
                Allocator::start(&database)
            } else {
                Allocator::start_on_sqlite(data_dir.path())
            };
            loop {
                let ready = client
                    .get(format!("{}/readyz", allocator.base))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(30), "never ready");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            ready_after.push(started.elapsed());
            tokio::time::sleep(IDLE_SETTLE).await;
            idle_rss.push(allocator.rss_mib());
        }
        idle_rss.sort_by(f64::total_cmp);
        let median_rss = idle_rss[idle_rss.len() / 2];
        println!(
            "startup on {backend} (migrated database{}): ready after {} ({} at p50); \
             idle RSS median {median_rss:.1} MiB ({}; min {:.1}, max {:.1})",
            if backend == "sqlite" {
                " created first"
            } else {
                ""
            },
            summary(ready_after.clone()),
            against_goal(quantile_ms(&ready_after, 0.5), 1000.0, "ms"),
            against_goal(median_rss, 20.0, "MiB"),
            idle_rss[0],
            idle_rss[idle_rss.len() - 1],
        );
    }
}

/// Agent start-ups timed.
const AGENT_STARTS: usize = 10;

/// How long from starting the agent on a machine that enrolls with a token until the
/// allocator holds its GPU health (the VM can be assigned from then on). Goal: under 1 s.
pub async fn agent_start() {
    let agent = std::path::Path::new(BINARY).with_file_name("lablink-client");
    assert!(
        agent.exists(),
        "{} is missing: cargo build --release -p lablink-client",
        agent.display()
    );
    let database = TestDatabase::migrated();
    let allocator = Allocator::start(&database);
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{}/api/admin/enrollment-tokens", allocator.base))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({"label": "agent-start bench"}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let enrollment = created["token"].as_str().expect("token").to_owned();
    let mut conn = database.connect();
    let mut samples = Vec::new();
    for i in 0..AGENT_STARTS {
        let hostname = format!("start-bench-{i}");
        let started = Instant::now();
        let mut child = std::process::Command::new(&agent)
            .env_clear()
            .env("ALLOCATOR_URL", &allocator.base)
            .env("VM_NAME", &hostname)
            .env("LABLINK_ENROLLMENT_TOKEN", &enrollment)
            .env("LABLINK_DESKTOP", "log")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the agent");
        loop {
            let vm = lablink_schema::vms::Vm::find_by_hostname(&mut conn, &hostname).expect("read");
            if vm.is_some_and(|vm| vm.gpu_health.is_some()) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no GPU report");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(started.elapsed());
        let _ = child.kill();
        let _ = child.wait();
    }
    let slowest_ms = samples
        .iter()
        .max()
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!(
        "agent start to GPU health stored ({AGENT_STARTS} starts): {}; slowest {}",
        summary(samples),
        against_goal(slowest_ms, 1000.0, "ms"),
    );
}

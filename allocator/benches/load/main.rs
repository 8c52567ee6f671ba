//! Load benchmark, run by hand (never in CI):
//!
//!     cargo bench -p lablink-allocator --bench load            # every scenario
//!     cargo bench -p lablink-allocator --bench load -- rush     # one scenario
//!
//! Starts the optimised `lablink-allocator` binary on a fresh PostgreSQL database
//! (`TEST_DATABASE_URL`) and drives it over real HTTP:
//! - `rush`: N free VMs, M researchers pressing the button at once (M = N and M = 2N), each
//!   on a new connection as browsers do; then checks every invariant in the database;
//! - `delivery`: K agents waiting in `/vm_startup`, then assignments as fast as possible (32
//!   researchers at a time) and at a steady 100 a second; how long from each researcher's
//!   request, and from the assignment, until that VM's agent has its command;
//! - `status`: agents reporting status flat out;
//! - `heartbeats`: 10,000 agents reporting every 30 s, and what that costs PostgreSQL, also
//!   with every VM serving a participant whose session figures ride on the heartbeats;
//! - `supervision`: the same 10,000 agents with supervision off and on: the allocator's CPU
//!   and memory per supervised VM, and, for 1,000 agents that go silent, how long after their
//!   deadline they are marked unreachable;
//! - `ceiling` / `claims`: pgbench's one-commit-per-claim ceiling beside the batched claim path;
//! - `logs`: 100 agents posting log batches flat out (lines per second, PostgreSQL CPU per
//!   line), then one VM's log page with 100,000 kept lines;
//! - `admin`: the instances page with 1,000 VMs, the admin API with Basic credentials, and
//!   the instructor's view of a workshop with 1,000 participants;
//! - `journey`: the session-figure heartbeats and the instructor's view alone;
//! - `startup`: cold start to ready, and idle memory;
//! - `desktop`: the browser desktop's relay through the allocator and a real agent (build
//!   `lablink-client` in release first): round trip added, throughput of one stream, memory
//!   and CPU per open desktop, what a stream whose browser stopped reading holds;
//! - `agent-start`: from starting a real `lablink-client` (build it first with `cargo build
//!   --release -p lablink-client`) on an enrolled machine until its GPU health is stored.
//!
//! Prints p50/p95/p99 latency, throughput, errors, the invariant check and the allocator's
//! CPU time and peak RSS. Figures go to docs/benchmarks.md.

// A benchmark's report is its standard output.
#![allow(clippy::print_stdout)]

mod agents;
mod claims;
mod desktop;
mod logs;
mod pages;
mod supervision;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use lablink_schema::testing::TestDatabase;
use lablink_schema::vms::Vm;
use serde_json::json;

pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_lablink-allocator");
pub(crate) const ADMIN_PASSWORD: &str = "benchmark-admin-password";
/// Concurrency used while setting VMs up (not measured).
const SETUP_CONCURRENCY: usize = 64;

pub(crate) struct Allocator {
    child: Child,
    base: String,
}

impl Allocator {
    pub(crate) fn start(database: &TestDatabase) -> Allocator {
        Self::launch(&[("DATABASE_URL", database.url())])
    }

    /// [`Allocator::start`] with further settings.
    pub(crate) fn start_with(database: &TestDatabase, settings: &[(&str, &str)]) -> Allocator {
        let mut all = vec![("DATABASE_URL", database.url())];
        all.extend_from_slice(settings);
        Self::launch(&all)
    }

    /// An allocator on its embedded SQLite database in `data_dir`.
    pub(crate) fn start_on_sqlite(data_dir: &std::path::Path) -> Allocator {
        Self::launch(&[(
            "LABLINK__DATABASE__DATA_DIR",
            data_dir.to_str().expect("utf-8 path"),
        )])
    }

    fn launch(settings: &[(&str, &str)]) -> Allocator {
        let port = free_port();
        let mut command = Command::new(BINARY);
        command
            .env("LABLINK__SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("LABLINK__ADMIN__PASSWORD", ADMIN_PASSWORD)
            // The bench's agents enroll themselves, up to 10,000 of them.
            .env("LABLINK__PROVIDER__MAX_VMS", "20000")
            .env("LABLINK__LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (name, value) in settings {
            command.env(name, value);
        }
        let child = command.spawn().expect("start the allocator");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the allocator did not start");
            std::thread::sleep(Duration::from_millis(2));
        }
        Allocator { child, base }
    }

    /// Peak resident memory so far, in MiB (`VmHWM`).
    pub(crate) fn peak_rss_mib(&self) -> f64 {
        proc_status_kib(self.child.id(), "VmHWM:") / 1024.0
    }

    pub(crate) fn rss_mib(&self) -> f64 {
        proc_status_kib(self.child.id(), "VmRSS:") / 1024.0
    }

    /// CPU time the allocator has used so far (user + system), in seconds.
    pub(crate) fn cpu_secs(&self) -> f64 {
        cpu_secs_of(self.child.id())
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU time of a process, in seconds.
pub(crate) fn cpu_secs_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / TICKS_PER_SEC)
        })
        .unwrap_or(f64::NAN)
}

/// CPU time used by every PostgreSQL process on this machine, in seconds.
pub(crate) fn postgres_cpu_secs() -> f64 {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
                .filter(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|comm| comm.trim() == "postgres")
                })
                .map(cpu_secs_of)
                .filter(|secs| secs.is_finite())
                .sum()
        })
        .unwrap_or(f64::NAN)
}

impl Drop for Allocator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn crd_command(seed: usize) -> String {
    format!(
        "DISPLAY= /opt/google/chrome-remote-desktop/start-host --code=\"4/0AVG7fiQbench{seed:08}\" \
         --redirect-url=\"https://remotedesktop.google.com/_/oauthredirect\" --name=$(hostname)"
    )
}

/// The `q` quantile of `samples` in milliseconds (0 when there are none).
pub(crate) fn quantile_ms(samples: &[Duration], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * q).round() as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// How a figure stands against its goal, where lower is better: met, or missed by how much.
/// Memory goals in "MB" are read as MiB, as the figures are printed.
pub(crate) fn against_goal(measured: f64, goal: f64, unit: &str) -> String {
    if measured < goal {
        format!("goal < {goal} {unit}: met")
    } else {
        format!(
            "goal < {goal} {unit}: MISSED by {:.1} {unit}",
            measured - goal
        )
    }
}

/// Latency summary in milliseconds.
pub(crate) fn summary(mut samples: Vec<Duration>) -> String {
    if samples.is_empty() {
        return "no samples".to_owned();
    }
    samples.sort();
    let at = |q: f64| quantile_ms(&samples, q);
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n = {})",
        at(0.5),
        at(0.95),
        at(0.99),
        at(1.0),
        samples.len()
    )
}

/// Enrolls `count` VMs with one enrollment token, reports them running and healthy; returns
/// (hostname, token).
pub(crate) async fn free_vms(
    client: &reqwest::Client,
    base: &str,
    count: usize,
) -> Vec<(String, String)> {
    let created: serde_json::Value = client
        .post(format!("{base}/api/admin/enrollment-tokens"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&json!({"label": "benchmark agents"}))
        .send()
        .await
        .expect("enrollment token")
        .json()
        .await
        .expect("json");
    let enrollment = created["token"].as_str().expect("token").to_owned();
    stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            let base = base.to_owned();
            let enrollment = enrollment.clone();
            async move {
                let hostname = format!("bench-vm-{i:05}");
                let registered: serde_json::Value = client
                    .post(format!("{base}/api/vm-status"))
                    .bearer_auth(&enrollment)
                    .json(&json!({"hostname": hostname, "status": "running"}))
                    .send()
                    .await
                    .expect("register")
                    .json()
                    .await
                    .expect("json");
                let token = registered["token"].as_str().expect("token").to_owned();
                let health = client
                    .post(format!("{base}/api/gpu_health"))
                    .bearer_auth(&token)
                    .json(&json!({"hostname": hostname, "gpu_status": "Healthy"}))
                    .send()
                    .await
                    .expect("health");
                assert!(health.status().is_success());
                (hostname, token)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await
}

/// Researcher `i` submits the start page's form; returns the status and the page.
pub(crate) async fn request_vm(
    client: &reqwest::Client,
    base: &str,
    i: usize,
) -> Result<(u16, String), String> {
    let response = client
        .post(format!("{base}/api/request_vm"))
        .form(&[
            ("email", format!("researcher{i}@example.org")),
            ("crd_command", crd_command(i)),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let page = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, page))
}

/// The hostname an assigned page shows.
pub(crate) fn hostname_on_page(page: &str) -> Option<String> {
    let marker = r#"<strong id="hostname">"#;
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find('<')?;
    Some(page[start..start + end].to_owned())
}

/// A client that opens a new connection per request, as separate browsers do.
pub(crate) fn browser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// One answered form post: latency, status code, page.
type PageAnswer = (Duration, u16, String);

/// The VMs as stored, how many are held by a researcher, and whether every holder holds
/// a different VM (no researcher twice).
pub(crate) fn stored_assignments(database: &TestDatabase) -> (Vec<Vm>, usize, bool) {
    let mut conn = database.connect();
    let stored = Vm::list_all(&mut conn).expect("list");
    let holders: Vec<&String> = stored
        .iter()
        .filter_map(|vm| vm.user_email.as_ref())
        .collect();
    let distinct: HashSet<&&String> = holders.iter().collect();
    let (held, no_double) = (holders.len(), distinct.len() == holders.len());
    (stored, held, no_double)
}

/// N VMs, M researchers at once; checks the invariants in the database.
async fn rush(vms: usize, researchers: usize) {
    let database = TestDatabase::migrated();
    let allocator = Allocator::start(&database);
    let setup = reqwest::Client::new();
    free_vms(&setup, &allocator.base, vms).await;

    let client = browser_client();
    let cpu_before = allocator.cpu_secs();
    let started = Instant::now();
    let results: Vec<(usize, Result<PageAnswer, String>)> =
        futures_util::future::join_all((0..researchers).map(|i| {
            let client = client.clone();
            let base = allocator.base.clone();
            async move {
                let sent = Instant::now();
                let outcome = request_vm(&client, &base, i)
                    .await
                    .map(|(status, page)| (sent.elapsed(), status, page));
                (i, outcome)
            }
        }))
        .await;
    let wall = started.elapsed();

    let mut latencies = Vec::new();
    let (mut assigned_pages, mut refused, mut errors) = (HashMap::new(), 0, 0);
    for (i, result) in results {
        match result {
            Ok((latency, 200, page)) => {
                latencies.push(latency);
                assigned_pages.insert(
                    format!("researcher{i}@example.org"),
                    hostname_on_page(&page).unwrap_or_default(),
                );
            }
            Ok((latency, 503, _)) => {
                latencies.push(latency);
                refused += 1;
            }
            Ok((_, status, _)) => {
                eprintln!("unexpected status {status}");
                errors += 1;
            }
            Err(err) => {
                eprintln!("request failed: {err}");
                errors += 1;
            }
        }
    }

    // The invariants, from the database.
    let (stored, held, no_double) = stored_assignments(&database);
    let none_left_free = held == vms.min(researchers);
    let pages_true = assigned_pages.iter().all(|(email, host)| {
        stored
            .iter()
            .any(|vm| vm.user_email.as_ref() == Some(email) && &vm.hostname == host)
    });
    let refusals_justified = refused == 0 || held == vms;
    let ok = no_double && none_left_free && pages_true && refusals_justified && errors == 0;
    println!(
        "rush N={vms:>5} M={researchers:>5}: {:.0} req/s, {}; assigned {}, refused {refused}, errors {errors}; \
         invariants {} (one VM each: {no_double}, no VM left free: {none_left_free}, pages match DB: {pages_true}, \
         refusals only when full: {refusals_justified}); allocator CPU {:.2} s, peak RSS {:.1} MiB",
        researchers as f64 / wall.as_secs_f64(),
        summary(latencies),
        held,
        if ok { "OK" } else { "VIOLATED" },
        allocator.cpu_secs() - cpu_before,
        allocator.peak_rss_mib(),
    );
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
        println!("open-files limit: {soft} → {hard}");
    }
    println!(
        "machine: {} CPUs; allocator binary {BINARY}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if wanted("ceiling") || wanted("claims") {
            let ceiling = claims::pgbench_ceiling();
            claims::lone_claims().await;
            for n in [1_000, 5_000] {
                claims::batched_rush(n, n, ceiling).await;
                claims::batched_rush(n, 2 * n, ceiling).await;
            }
        }
        if wanted("rush") {
            for n in [100, 1_000, 5_000] {
                rush(n, n).await;
                rush(n, 2 * n).await;
            }
        }
        if wanted("delivery") {
            use agents::Arrivals::{FlatOut, PerSecond};
            agents::delivery(1_000, 1_000, FlatOut(32)).await;
            agents::delivery(10_000, 10_000, FlatOut(32)).await;
            agents::delivery(1_000, 1_000, PerSecond(100)).await;
            agents::delivery(10_000, 1_000, PerSecond(100)).await;
        }
        if wanted("status") {
            agents::status_reports(1_000).await;
        }
        if wanted("heartbeats") {
            agents::heartbeats(10_000, false).await;
        }
        if wanted("heartbeats") || wanted("journey") {
            agents::heartbeats(10_000, true).await;
        }
        if wanted("supervision") {
            supervision::supervision(10_000).await;
        }
        if wanted("logs") {
            logs::logs().await;
        }
        if wanted("admin") {
            pages::admin_pages(1_000).await;
        }
        if wanted("admin") || wanted("journey") {
            pages::instructor_view(1_000).await;
        }
        if wanted("startup") {
            pages::startup().await;
        }
        if wanted("desktop") {
            desktop::relay().await;
        }
        if wanted("agent-start") {
            pages::agent_start().await;
        }
    });
}

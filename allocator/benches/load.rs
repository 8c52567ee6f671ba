//! Load benchmark, run by hand (never in CI):
//!
//!     cargo bench -p lablink-allocator --bench load            # every scenario
//!     cargo bench -p lablink-allocator --bench load -- rush     # one scenario
//!
//! Starts the optimised `lablink-allocator` binary on a fresh PostgreSQL database
//! (`TEST_DATABASE_URL`) and drives it over real HTTP:
//! - `rush`: N free VMs, M researchers pressing the button at once (M = N and M = 2N), each
//!   on a new connection as browsers do; then checks every invariant in the database;
//! - `delivery`: K agents waiting in `/vm_startup`, then K assignments; how long from each
//!   researcher's request until that VM's agent has its command;
//! - `status`: agents reporting status flat out.
//!
//! Prints p50/p99 latency, throughput, errors, the invariant check and the allocator's peak
//! RSS. Figures go to docs/benchmarks.md.

// A benchmark's report is its standard output.
#![allow(clippy::print_stdout)]

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use lablink_schema::testing::TestDatabase;
use lablink_schema::vms::Vm;
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_lablink-allocator");
const ADMIN_PASSWORD: &str = "benchmark-admin-password";
/// Concurrency used while setting VMs up (not measured).
const SETUP_CONCURRENCY: usize = 64;
/// How long the status scenario hammers the endpoint.
const STATUS_DURATION: Duration = Duration::from_secs(10);
const STATUS_CONCURRENCY: usize = 64;

struct Allocator {
    child: Child,
    base: String,
}

impl Allocator {
    fn start(database: &TestDatabase) -> Allocator {
        let port = free_port();
        let child = Command::new(BINARY)
            .env("DATABASE_URL", database.url())
            .env("LABLINK__SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("LABLINK__ADMIN__PASSWORD", ADMIN_PASSWORD)
            .env("LABLINK__LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the allocator");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the allocator did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Allocator { child, base }
    }

    /// Peak resident memory so far, in MiB (`VmHWM`).
    fn peak_rss_mib(&self) -> f64 {
        proc_status_kib(self.child.id(), "VmHWM:") / 1024.0
    }

    fn rss_mib(&self) -> f64 {
        proc_status_kib(self.child.id(), "VmRSS:") / 1024.0
    }
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

/// Latency summary in milliseconds.
fn summary(mut samples: Vec<Duration>) -> String {
    if samples.is_empty() {
        return "no samples".to_owned();
    }
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n = {})",
        at(0.5),
        at(0.99),
        at(1.0),
        samples.len()
    )
}

/// Registers `count` VMs, reports them running and healthy; returns (hostname, token).
async fn free_vms(client: &reqwest::Client, base: &str, count: usize) -> Vec<(String, String)> {
    stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            let base = base.to_owned();
            async move {
                let hostname = format!("bench-vm-{i:05}");
                let registered: serde_json::Value = client
                    .post(format!("{base}/api/vm-status"))
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
async fn request_vm(
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
fn hostname_on_page(page: &str) -> Option<String> {
    let marker = r#"<strong id="hostname">"#;
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find('<')?;
    Some(page[start..start + end].to_owned())
}

/// A client that opens a new connection per request, as separate browsers do.
fn browser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// One answered form post: latency, status code, page.
type PageAnswer = (Duration, u16, String);

/// N VMs, M researchers at once; checks the invariants in the database.
async fn rush(vms: usize, researchers: usize) {
    let database = TestDatabase::migrated();
    let allocator = Allocator::start(&database);
    let setup = reqwest::Client::new();
    free_vms(&setup, &allocator.base, vms).await;

    let client = browser_client();
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
    let mut conn = database.connect();
    let stored = Vm::list_all(&mut conn).expect("list");
    let holders: Vec<&String> = stored
        .iter()
        .filter_map(|vm| vm.user_email.as_ref())
        .collect();
    let distinct: HashSet<&&String> = holders.iter().collect();
    let no_double = distinct.len() == holders.len();
    let none_left_free = holders.len() == vms.min(researchers);
    let pages_true = assigned_pages.iter().all(|(email, host)| {
        stored
            .iter()
            .any(|vm| vm.user_email.as_ref() == Some(email) && &vm.hostname == host)
    });
    let refusals_justified = refused == 0 || holders.len() == vms;
    let ok = no_double && none_left_free && pages_true && refusals_justified && errors == 0;
    println!(
        "rush N={vms:>5} M={researchers:>5}: {:.0} req/s, {}; assigned {}, refused {refused}, errors {errors}; \
         invariants {} (one VM each: {no_double}, no VM left free: {none_left_free}, pages match DB: {pages_true}, \
         refusals only when full: {refusals_justified}); allocator peak RSS {:.1} MiB",
        researchers as f64 / wall.as_secs_f64(),
        summary(latencies),
        holders.len(),
        if ok { "OK" } else { "VIOLATED" },
        allocator.peak_rss_mib(),
    );
}

/// K agents wait; then K researchers are assigned one after another in parallel streams;
/// measures request start → that VM's agent holding its command.
async fn delivery(agents: usize) {
    let database = TestDatabase::migrated();
    let allocator = Allocator::start(&database);
    let setup = reqwest::Client::new();
    let vms = free_vms(&setup, &allocator.base, agents).await;
    let idle_rss = allocator.rss_mib();

    // One kept-alive connection per agent.
    let agent_client = reqwest::Client::builder()
        .pool_max_idle_per_host(agents)
        .timeout(Duration::from_secs(300))
        .build()
        .expect("client");
    let received: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut waiting = Vec::new();
    for (hostname, token) in &vms {
        let client = agent_client.clone();
        let base = allocator.base.clone();
        let (hostname, token) = (hostname.clone(), token.clone());
        let received = received.clone();
        waiting.push(tokio::spawn(async move {
            let answer = client
                .post(format!("{base}/vm_startup"))
                .bearer_auth(&token)
                .json(&json!({"hostname": hostname}))
                .send()
                .await;
            let ok = matches!(&answer, Ok(r) if r.status() == 200);
            let body: Option<serde_json::Value> = match answer {
                Ok(r) => r.json().await.ok(),
                Err(_) => None,
            };
            let at = Instant::now();
            if ok && body.is_some_and(|b| b["status"] == "success") {
                received.lock().expect("lock").insert(hostname, at);
            }
        }));
    }
    // Give every agent time to be waiting.
    let settle = Duration::from_millis((agents as u64 / 5).max(1_000));
    tokio::time::sleep(settle).await;
    let waiting_rss = allocator.rss_mib();

    let researcher_client = browser_client();
    let sent_at: Vec<(usize, Instant, Option<String>)> = stream::iter(0..agents)
        .map(|i| {
            let client = researcher_client.clone();
            let base = allocator.base.clone();
            async move {
                let sent = Instant::now();
                let host = request_vm(&client, &base, i)
                    .await
                    .ok()
                    .and_then(|(_, page)| hostname_on_page(&page));
                (i, sent, host)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for task in waiting {
        let _ = tokio::time::timeout(Duration::from_secs(60), task).await;
    }
    let received = received.lock().expect("lock");
    let mut lags = Vec::new();
    let mut missing = 0;
    for (_, sent, host) in &sent_at {
        match host.as_ref().and_then(|h| received.get(h)) {
            Some(at) => lags.push(at.saturating_duration_since(*sent)),
            None => missing += 1,
        }
    }
    println!(
        "delivery K={agents:>5}: request→agent {}; not delivered {missing}; allocator RSS idle {idle_rss:.1} MiB, \
         with {agents} waiting {waiting_rss:.1} MiB, peak {:.1} MiB",
        summary(lags),
        allocator.peak_rss_mib(),
    );
}

/// Agents reporting their status as fast as they can.
async fn status_reports(vms: usize) {
    let database = TestDatabase::migrated();
    let allocator = Allocator::start(&database);
    let client = reqwest::Client::new();
    let registered = Arc::new(free_vms(&client, &allocator.base, vms).await);
    let deadline = Instant::now() + STATUS_DURATION;
    let started = Instant::now();
    let per_worker: Vec<(Vec<Duration>, usize)> =
        futures_util::future::join_all((0..STATUS_CONCURRENCY).map(|w| {
            let client = client.clone();
            let base = allocator.base.clone();
            let registered = registered.clone();
            async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                let mut n = w;
                while Instant::now() < deadline {
                    let (hostname, token) = &registered[n % registered.len()];
                    n += STATUS_CONCURRENCY;
                    let sent = Instant::now();
                    let response = client
                        .post(format!("{base}/api/vm-status"))
                        .bearer_auth(token)
                        .json(&json!({"hostname": hostname, "status": "running"}))
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status().is_success() => latencies.push(sent.elapsed()),
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            }
        }))
        .await;
    let wall = started.elapsed();
    let errors: usize = per_worker.iter().map(|(_, e)| e).sum();
    let latencies: Vec<Duration> = per_worker.into_iter().flat_map(|(l, _)| l).collect();
    println!(
        "status reports ({vms} VMs, {STATUS_CONCURRENCY} concurrent): {:.0} req/s, {}, errors {errors}; allocator peak RSS {:.1} MiB",
        latencies.len() as f64 / wall.as_secs_f64(),
        summary(latencies),
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
        if wanted("rush") {
            for n in [100, 500, 1000] {
                rush(n, n).await;
                rush(n, 2 * n).await;
            }
        }
        if wanted("delivery") {
            delivery(1_000).await;
            delivery(10_000).await;
        }
        if wanted("status") {
            status_reports(1_000).await;
        }
    });
}

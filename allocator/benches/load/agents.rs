//! Scenarios of agents: waiting for their assignment (`delivery`), reporting status flat
//! out (`status`), and reporting every 30 seconds as 10,000 agents would (`heartbeats`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use diesel::RunQueryDsl;
use futures_util::{stream, StreamExt};
use lablink_schema::testing::TestDatabase;
use lablink_schema::vms::Vm;
use serde_json::json;

use crate::{
    browser_client, free_vms, hostname_on_page, postgres_cpu_secs, request_vm, summary, Allocator,
};

/// How long the status scenario hammers the endpoint.
const STATUS_DURATION: Duration = Duration::from_secs(10);
const STATUS_CONCURRENCY: usize = 64;

/// WAL flushes (fsyncs) PostgreSQL has done so far, cluster-wide: about one per commit that
/// wrote something, fewer when commits share a flush.
fn wal_flushes(database: &TestDatabase) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Flushes {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        wal_sync: i64,
    }
    diesel::sql_query("SELECT wal_sync FROM pg_stat_wal")
        .get_result::<Flushes>(&mut database.connect())
        .map(|row| row.wal_sync)
        .unwrap_or(0)
}

/// K agents wait; then K researchers are assigned, 32 at a time. Two figures per VM: from
/// the researcher's request leaving the bench until that VM's agent holds its command, and
/// from the assignment (the `assigned_at` the claim stored, taken before its transaction
/// commits) until then.
pub(crate) async fn delivery(agents: usize) {
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
    let received: Arc<std::sync::Mutex<HashMap<String, (Instant, SystemTime)>>> = Arc::default();
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
            let at = (Instant::now(), SystemTime::now());
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
    let assigned_at: HashMap<String, chrono::NaiveDateTime> = Vm::list_all(&mut database.connect())
        .expect("list")
        .into_iter()
        .filter_map(|vm| vm.assigned_at.map(|at| (vm.hostname, at)))
        .collect();
    let (mut lags, mut from_assignment) = (Vec::new(), Vec::new());
    let mut missing = 0;
    for (_, sent, host) in &sent_at {
        match host
            .as_ref()
            .and_then(|h| received.get(h).map(|at| (h, at)))
        {
            Some((hostname, (at, wall))) => {
                lags.push(at.saturating_duration_since(*sent));
                if let Some(assigned) = assigned_at.get(hostname) {
                    let assigned = assigned.and_utc();
                    let wall = chrono::DateTime::<chrono::Utc>::from(*wall);
                    from_assignment.push((wall - assigned).to_std().unwrap_or_default());
                }
            }
            None => missing += 1,
        }
    }
    println!(
        "delivery K={agents:>5}: request→agent {}; assignment→agent {}; not delivered {missing}; \
         allocator RSS idle {idle_rss:.1} MiB, with {agents} waiting {waiting_rss:.1} MiB, peak {:.1} MiB",
        summary(lags),
        summary(from_assignment),
        allocator.peak_rss_mib(),
    );
}

/// Agents reporting their status as fast as they can.
pub(crate) async fn status_reports(vms: usize) {
    let database = TestDatabase::migrated();
    let allocator = Allocator::start(&database);
    let client = reqwest::Client::new();
    let registered = Arc::new(free_vms(&client, &allocator.base, vms).await);
    let flushes_before = wal_flushes(&database);
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
    let flushes = wal_flushes(&database) - flushes_before;
    println!(
        "status reports ({vms} VMs, {STATUS_CONCURRENCY} concurrent): {:.0} req/s, {}, errors {errors}; \
         {:.2} WAL flushes per report; allocator peak RSS {:.1} MiB",
        latencies.len() as f64 / wall.as_secs_f64(),
        summary(latencies.clone()),
        flushes as f64 / latencies.len().max(1) as f64,
        allocator.peak_rss_mib(),
    );
}

/// How often each agent reports in the heartbeat scenario, as the agent does by default.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// `agents` VMs each reporting once per [`HEARTBEAT_INTERVAL`], spread evenly, for one
/// interval: what that costs PostgreSQL and the allocator, in CPU.
pub(crate) async fn heartbeats(agents: usize) {
    let database = TestDatabase::migrated();
    let allocator = Allocator::start(&database);
    let client = reqwest::Client::new();
    let registered = Arc::new(free_vms(&client, &allocator.base, agents).await);
    let gap = HEARTBEAT_INTERVAL / agents as u32;
    let (pg_before, cpu_before) = (postgres_cpu_secs(), allocator.cpu_secs());
    let flushes_before = wal_flushes(&database);
    let started = Instant::now();
    let mut ticker = tokio::time::interval(gap);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut reports = Vec::with_capacity(agents);
    for n in 0..agents {
        ticker.tick().await;
        let client = client.clone();
        let base = allocator.base.clone();
        let registered = registered.clone();
        reports.push(tokio::spawn(async move {
            let (hostname, token) = &registered[n];
            let sent = Instant::now();
            let ok = client
                .post(format!("{base}/api/vm-status"))
                .bearer_auth(token)
                .json(&json!({"hostname": hostname, "status": "running"}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            (sent.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for report in reports {
        match report.await {
            Ok((latency, true)) => latencies.push(latency),
            _ => errors += 1,
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let pg = (postgres_cpu_secs() - pg_before) / wall;
    let own = (allocator.cpu_secs() - cpu_before) / wall;
    let flushes = wal_flushes(&database) - flushes_before;
    println!(
        "heartbeats: {agents} agents every {}s ({:.0} reports/s) for {wall:.1} s: {}, errors {errors}; \
         PostgreSQL {:.1}% of one core (goal < 30%), allocator {:.1}%; {:.2} WAL flushes per report",
        HEARTBEAT_INTERVAL.as_secs(),
        agents as f64 / HEARTBEAT_INTERVAL.as_secs_f64(),
        summary(latencies),
        pg * 100.0,
        own * 100.0,
        flushes as f64 / agents as f64,
    );
}

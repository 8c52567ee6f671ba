//! Scenarios of agents: waiting for their assignment (`delivery`), reporting status flat
//! out (`status`), and reporting every 30 seconds as 10,000 agents would (`heartbeats`), also
//! with every VM serving a participant whose figures ride on each heartbeat.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use diesel::RunQueryDsl;
use futures_util::{stream, StreamExt};
use lablink_schema::testing::TestDatabase;
use lablink_schema::vms::Vm;
use serde_json::json;

use crate::{
    against_goal, browser_client, free_vms, hostname_on_page, postgres_cpu_secs, quantile_ms,
    request_vm, summary, Allocator, ADMIN_PASSWORD,
};

/// How long the status scenario hammers the endpoint.
const STATUS_DURATION: Duration = Duration::from_secs(10);
const STATUS_CONCURRENCY: usize = 64;

/// One PostgreSQL statistics counter, read with `sql` (which names it `n`); 0 if unreadable.
fn pg_counter(conn: &mut lablink_schema::DbConnection, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Counter {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .get_result::<Counter>(conn)
        .map(|row| row.n)
        .unwrap_or(0)
}

/// WAL flushes (fsyncs) PostgreSQL has done so far, cluster-wide: about one per commit that
/// wrote something, fewer when commits share a flush.
fn wal_flushes(database: &TestDatabase) -> i64 {
    pg_counter(
        &mut database.connect(),
        "SELECT wal_sync AS n FROM pg_stat_wal",
    )
}

/// Waits until the allocator counts `agents` agents waiting (its `/metrics` gauge), so that
/// nothing of their arrival is still going on when the measurement starts.
async fn until_all_waiting(client: &reqwest::Client, base: &str, agents: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let page = client
            .get(format!("{base}/metrics"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .expect("metrics");
        let text = page.text().await.expect("metrics text");
        let waiting = text
            .lines()
            .find_map(|line| line.strip_prefix("lablink_agents_waiting "))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if waiting as usize >= agents {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {waiting} of {agents} agents are waiting"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until this database has committed no transaction for a while (PostgreSQL publishes
/// its counters about once a second, hence the long look).
async fn until_database_quiet(database: &TestDatabase) {
    let mut conn = database.connect();
    let mut commits = || {
        pg_counter(
            &mut conn,
            "SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()",
        )
    };
    let mut before = commits();
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        // Our own queries are a commit each.
        let now = commits();
        if now <= before + 2 {
            return;
        }
        before = now;
    }
}

/// How researchers arrive in the delivery scenario.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arrivals {
    /// This many at a time, each starting as another finishes: as fast as the machine goes.
    FlatOut(usize),
    /// This many a second, whatever happens to the others: a steady rush.
    PerSecond(u32),
}

/// K agents wait; then `assignments` researchers are assigned a VM as `arrivals` says. Two
/// figures per VM: from the researcher's request leaving the bench until that VM's agent
/// holds its command, and from the assignment (the `assigned_at` the claim stored, taken
/// before its transaction commits) until then.
pub(crate) async fn delivery(agents: usize, assignments: usize, arrivals: Arrivals) {
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
    until_all_waiting(&setup, &allocator.base, agents).await;
    // Each new waiter's VM actor reads its row once; let those reads finish too.
    until_database_quiet(&database).await;
    let waiting_rss = allocator.rss_mib();

    let researcher_client = browser_client();
    let researcher = |i: usize| {
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
    };
    let sent_at: Vec<(usize, Instant, Option<String>)> = match arrivals {
        Arrivals::FlatOut(at_once) => {
            stream::iter(0..assignments)
                .map(researcher)
                .buffer_unordered(at_once)
                .collect()
                .await
        }
        Arrivals::PerSecond(rate) => {
            let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
            let mut researchers = Vec::with_capacity(assignments);
            for i in 0..assignments {
                ticker.tick().await;
                researchers.push(tokio::spawn(researcher(i)));
            }
            futures_util::future::join_all(researchers)
                .await
                .into_iter()
                .filter_map(Result::ok)
                .collect()
        }
    };
    // Every assigned agent has its answer within a minute, or counts as not delivered.
    let expected: Vec<&String> = sent_at.iter().filter_map(|(_, _, h)| h.as_ref()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let done = {
            let received = received.lock().expect("lock");
            expected.iter().all(|h| received.contains_key(*h))
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for task in &waiting {
        task.abort();
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
    let arrivals = match arrivals {
        Arrivals::FlatOut(at_once) => format!("{at_once} at a time"),
        Arrivals::PerSecond(rate) => format!("{rate}/s"),
    };
    let p99 = quantile_ms(&from_assignment, 0.99);
    println!(
        "delivery K={agents:>5} waiting, {assignments} assigned, {arrivals}: request→agent {}; assignment→agent {} \
         (p99 {}); not delivered {missing}; allocator RSS idle {idle_rss:.1} MiB, with {agents} waiting \
         {waiting_rss:.1} MiB ({}), peak {:.1} MiB",
        summary(lags),
        summary(from_assignment),
        against_goal(p99, 20.0, "ms"),
        against_goal(waiting_rss, 100.0, "MiB"),
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
/// Gives every VM to a participant straight in the database (with their journey's session
/// rows, as a claim opens them); returns each VM's assignment id.
pub(crate) fn assign_all(
    database: &TestDatabase,
    count: usize,
    workshop_id: Option<i64>,
) -> HashMap<String, i64> {
    let mut conn = database.connect();
    let now = chrono::Utc::now().naive_utc();
    let mut assigned = HashMap::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let claims: Vec<(String, String, String, Option<String>)> = chunk
            .iter()
            .map(|i| {
                (
                    format!("participant-{i:05}@lab.example"),
                    "benchmark command".to_owned(),
                    "123456".to_owned(),
                    None,
                )
            })
            .collect();
        // Rows the supervisors are writing just now are skipped (SKIP LOCKED): ask again for
        // the participants left without a VM.
        let mut waiting = claims;
        for _ in 0..100 {
            if waiting.is_empty() {
                break;
            }
            let claimed =
                Vm::claim_free_many(&mut conn, &waiting, workshop_id, now).expect("claims");
            let got: std::collections::HashSet<String> = claimed
                .iter()
                .filter_map(|vm| vm.user_email.clone())
                .collect();
            for vm in claimed {
                assigned.insert(vm.hostname, vm.assignment_seq);
            }
            waiting.retain(|claim| !got.contains(&claim.0));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(assigned.len(), count, "every VM assigned");
    assigned
}

/// `agents` agents heartbeating every 30 s. `with_sessions`: every VM serves a participant
/// and each heartbeat carries the session's figures (steps, software time, GPU, activity).
pub(crate) async fn heartbeats(agents: usize, with_sessions: bool) {
    let database = TestDatabase::migrated();
    let allocator = Allocator::start(&database);
    let client = reqwest::Client::new();
    let registered = Arc::new(free_vms(&client, &allocator.base, agents).await);
    let sessions = Arc::new(if with_sessions {
        assign_all(&database, agents, None)
    } else {
        HashMap::new()
    });
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
        let sessions = sessions.clone();
        reports.push(tokio::spawn(async move {
            let (hostname, token) = &registered[n];
            let body = match sessions.get(hostname) {
                Some(assignment_id) => json!({
                    "hostname": hostname,
                    "status": "running",
                    "session": {
                        "assignment_id": assignment_id,
                        "command_received": true,
                        "desktop_up": true,
                        "software_used": n % 2 == 0,
                        "software_secs": n % 600,
                        "gpu": {"active_secs": n % 300, "peak_utilization": n % 100, "peak_memory_mib": 4096},
                        "idle_secs": n % 60,
                    },
                }),
                None => json!({"hostname": hostname, "status": "running"}),
            };
            let sent = Instant::now();
            let ok = client
                .post(format!("{base}/api/vm-status"))
                .bearer_auth(token)
                .json(&body)
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
        "heartbeats{}: {agents} agents every {}s ({:.0} reports/s) for {wall:.1} s: {}, errors {errors}; \
         PostgreSQL {:.1}% of one core ({}), allocator {:.1}%; {:.2} WAL flushes per report",
        if with_sessions {
            " with session figures"
        } else {
            ""
        },
        HEARTBEAT_INTERVAL.as_secs(),
        agents as f64 / HEARTBEAT_INTERVAL.as_secs_f64(),
        summary(latencies),
        pg * 100.0,
        against_goal(pg * 100.0, 30.0, "%"),
        own * 100.0,
        flushes as f64 / agents as f64,
    );
}

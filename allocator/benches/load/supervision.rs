//! The `supervision` scenario: what supervising every VM costs, and how fast a silent one is
//! noticed. Two runs on fresh databases, supervision off (`lifecycle.enabled=false`) and on,
//! each with 10,000 enrolled agents heartbeating every 30 s for two rounds; the allocator's
//! CPU over the rounds and its memory are compared. In the supervised run 1,000 agents then
//! fall silent, and each one's detection delay is read from the database: the time from its
//! deadline (last heartbeat + the 90 s timeout) to the moment it was marked unreachable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lablink_schema::testing::TestDatabase;
use lablink_schema::vms::Vm;
use lablink_schema::wire::LifecycleState;
use serde_json::json;

use crate::{against_goal, free_vms, summary, Allocator};

const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(90);
/// Agents that fall silent in the supervised run.
const SILENT: usize = 1_000;

struct Run {
    cpu_share: f64,
    rss_mib: f64,
    errors: usize,
}

/// One heartbeat round: each of `agents` reports once, spread evenly over the interval.
async fn round(client: &reqwest::Client, base: &str, agents: &Arc<Vec<(String, String)>>) -> usize {
    let gap = HEARTBEAT_INTERVAL / u32::try_from(agents.len()).unwrap_or(1).max(1);
    let mut ticker = tokio::time::interval(gap);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut reports = Vec::with_capacity(agents.len());
    for n in 0..agents.len() {
        ticker.tick().await;
        let (client, base, agents) = (client.clone(), base.to_owned(), agents.clone());
        reports.push(tokio::spawn(async move {
            let (hostname, token) = &agents[n];
            client
                .post(format!("{base}/api/vm-status"))
                .bearer_auth(token)
                .json(&json!({"hostname": hostname, "status": "running"}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }));
    }
    let mut errors = 0;
    for report in reports {
        if !matches!(report.await, Ok(true)) {
            errors += 1;
        }
    }
    errors
}

async fn run(agents: usize, supervised: bool) -> (Run, Option<Vec<Duration>>) {
    let database = TestDatabase::migrated();
    let enabled = if supervised { "true" } else { "false" };
    let allocator = Allocator::start_with(
        &database,
        &[
            ("LABLINK__LIFECYCLE__ENABLED", enabled),
            // Noticing is measured, not recovering: no reboot starts within the run.
            ("LABLINK__LIFECYCLE__RECOVERY_DELAY_SECS", "3600"),
        ],
    );
    let client = reqwest::Client::new();
    let registered = Arc::new(free_vms(&client, &allocator.base, agents).await);
    let cpu_before = allocator.cpu_secs();
    let started = Instant::now();
    let mut errors = round(&client, &allocator.base, &registered).await;
    errors += round(&client, &allocator.base, &registered).await;
    let wall = started.elapsed().as_secs_f64();
    let measured = Run {
        cpu_share: (allocator.cpu_secs() - cpu_before) / wall,
        rss_mib: allocator.rss_mib(),
        errors,
    };
    if !supervised {
        return (measured, None);
    }
    // The first SILENT agents stop; the others go on until every deadline has passed.
    let talking = Arc::new(registered[SILENT..].to_vec());
    let deadline = Instant::now() + HEARTBEAT_TIMEOUT + Duration::from_secs(5);
    while Instant::now() < deadline {
        round(&client, &allocator.base, &talking).await;
    }
    let mut conn = database.connect();
    let vms = Vm::list_all(&mut conn).expect("vms");
    let silent: std::collections::HashSet<&str> = registered[..SILENT]
        .iter()
        .map(|(h, _)| h.as_str())
        .collect();
    let timeout = chrono::Duration::from_std(HEARTBEAT_TIMEOUT).expect("timeout");
    let mut delays = Vec::new();
    let mut missed = 0;
    for vm in vms
        .iter()
        .filter(|vm| silent.contains(vm.hostname.as_str()))
    {
        match (vm.state(), vm.last_heartbeat_at) {
            (LifecycleState::Unreachable, Some(last)) => {
                let delay = (vm.state_since - (last + timeout))
                    .to_std()
                    .unwrap_or_default();
                delays.push(delay);
            }
            _ => missed += 1,
        }
    }
    let wrongly = vms
        .iter()
        .filter(|vm| !silent.contains(vm.hostname.as_str()))
        .filter(|vm| vm.state() != LifecycleState::Ready)
        .count();
    println!(
        "supervision: {missed} of {SILENT} silent VMs not marked unreachable; \
         {wrongly} heartbeating VMs not ready"
    );
    (measured, Some(delays))
}

pub(crate) async fn supervision(agents: usize) {
    let (without, _) = run(agents, false).await;
    let (with, delays) = run(agents, true).await;
    let extra = (with.cpu_share - without.cpu_share) * 100.0;
    let per_vm_kib = (with.rss_mib - without.rss_mib) * 1024.0 / agents as f64;
    println!(
        "supervision: {agents} agents every {}s; allocator CPU {:.1}% of one core unsupervised, \
         {:.1}% supervised: {extra:+.1} points ({}); RSS {:.0} MiB → {:.0} MiB, {per_vm_kib:.1} KiB \
         per supervised VM; errors {} / {}",
        HEARTBEAT_INTERVAL.as_secs(),
        without.cpu_share * 100.0,
        with.cpu_share * 100.0,
        against_goal(extra, 5.0, "points"),
        without.rss_mib,
        with.rss_mib,
        without.errors,
        with.errors,
    );
    if let Some(delays) = delays {
        let p99 = {
            let mut sorted = delays.clone();
            sorted.sort_unstable();
            sorted
                .get((sorted.len() * 99 / 100).min(sorted.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "supervision: detection delay after the deadline: {} ({})",
            summary(delays),
            against_goal(p99.as_secs_f64() * 1000.0, 1000.0, "ms (p99)"),
        );
    }
}

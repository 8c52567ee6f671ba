//! Claims per second. PostgreSQL's ceiling for one commit per claim is measured with pgbench
//! running the claim statement itself; beside it, the allocator's claim path (the
//! `ClaimBatcher`, no HTTP) serving a rush, and a lone claim on an idle batcher.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use lablink_actors::change_feed::VmEvent;
use lablink_actors::claim_batcher::{AssignVm, ClaimBatcher};
use lablink_schema::testing::TestDatabase;
use lablink_schema::vms::Vm;
use lablink_schema::Backend;

use crate::{stored_assignments, summary};

/// pgbench's clients and run time for the ceiling.
const PGBENCH_CLIENTS: u32 = 16;
const PGBENCH_SECONDS: u32 = 10;
/// Free VMs for pgbench to claim: more than it can take in its run.
const PGBENCH_VMS: usize = 200_000;
/// Lone claims timed one after another.
const LONE_CLAIMS: usize = 200;
/// Claim workers, as `database.writer_threads` defaults to.
const WORKERS: usize = 4;

/// The claim statement of `Vm::claim_free` on PostgreSQL, with pgbench's variables in place
/// of the bound parameters (keep the two in step).
const CLAIM_SCRIPT: &str = "\\set id random(1, 1000000000000)
UPDATE vms SET user_email = 'p' || :id || '@example.org', crd_command = 'cmd', pin = '123456', \
in_use = FALSE, assigned_at = now(), updated_at = now(), assignment_seq = assignment_seq + 1 \
WHERE user_email IS NULL AND hostname = ( \
SELECT hostname FROM vms \
WHERE status = 'running' AND user_email IS NULL AND gpu_health IN ('Healthy', 'N/A') \
ORDER BY hostname LIMIT 1 FOR UPDATE SKIP LOCKED) \
RETURNING *;
";

/// `count` free VMs, inserted directly, with the table's statistics brought up to date (as
/// autovacuum would), so that the planner uses the free-VM index.
pub fn insert_free_vms(database: &TestDatabase, count: usize) {
    let mut conn = database.connect();
    conn.batch_execute(&format!(
        "INSERT INTO vms (hostname, status, gpu_health, created_at, updated_at) \
         SELECT 'vm-' || lpad(g::text, 7, '0'), 'running', 'Healthy', now(), now() \
         FROM generate_series(1, {count}) AS g; \
         ANALYZE vms"
    ))
    .expect("insert VMs");
}

/// Claims per second with one commit per claim, measured by pgbench; `None` without pgbench.
pub fn pgbench_ceiling() -> Option<f64> {
    let database = TestDatabase::migrated();
    insert_free_vms(&database, PGBENCH_VMS);
    let script = tempfile::Builder::new()
        .suffix(".sql")
        .tempfile()
        .expect("script file");
    std::fs::write(script.path(), CLAIM_SCRIPT).expect("write script");
    let output = std::process::Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &PGBENCH_CLIENTS.to_string(),
            "-j",
            "2",
            "-T",
            &PGBENCH_SECONDS.to_string(),
            "-f",
        ])
        .arg(script.path())
        .arg(database.url())
        .output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            eprintln!(
                "pgbench failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            return None;
        }
        Err(err) => {
            eprintln!("pgbench is not installed ({err}): the ceiling is not measured");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let tps = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    let mut conn = database.connect();
    let taken = Vm::list_all(&mut conn)
        .map(|vms| vms.iter().filter(|vm| vm.user_email.is_some()).count())
        .unwrap_or(0);
    println!(
        "ceiling: pgbench, {PGBENCH_CLIENTS} clients for {PGBENCH_SECONDS} s, one claim per \
         transaction: {:.0} claims/s ({taken} VMs taken)",
        tps.unwrap_or(f64::NAN)
    );
    tps
}

fn claim(i: usize) -> AssignVm {
    AssignVm {
        email: format!("claimant{i}@example.org"),
        crd_command: "cmd".to_owned(),
        pin: "123456".to_owned(),
        claimed_by: Some(format!("browser of {}", i)),
        workshop_id: None,
    }
}

/// `claimants` claims at once for `vms` free VMs through the batcher; prints claims/s beside
/// the ceiling and checks that nobody got two VMs and nobody was refused while one was free.
pub async fn batched_rush(vms: usize, claimants: usize, ceiling: Option<f64>) {
    let database = TestDatabase::migrated();
    insert_free_vms(&database, vms);
    let (feed, _events) = tokio::sync::mpsc::unbounded_channel::<VmEvent>();
    let batcher = ClaimBatcher::start(database.pool(), Backend::Postgres, Arc::new(feed), WORKERS);
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..claimants).map(|i| {
        let batcher = batcher.clone();
        async move {
            let sent = Instant::now();
            let answer = batcher.assign(claim(i)).await;
            (sent.elapsed(), answer)
        }
    }))
    .await;
    let wall = started.elapsed();
    let (mut assigned, mut refused, mut errors, mut latencies) = (0, 0, 0, Vec::new());
    for (latency, answer) in answers {
        latencies.push(latency);
        match answer {
            Ok(_) => assigned += 1,
            Err(lablink_actors::db_writer::WriteError::NoFreeVm) => refused += 1,
            Err(err) => {
                eprintln!("claim failed: {err}");
                errors += 1;
            }
        }
    }
    let (_, held, no_double) = stored_assignments(&database);
    let ok = no_double && held == assigned && assigned == vms.min(claimants) && errors == 0;
    let (claims, transactions) = batcher.counts();
    let rate = assigned as f64 / wall.as_secs_f64();
    println!(
        "claims N={vms:>5} M={claimants:>5}: {rate:.0} claims/s ({}); {}; assigned {assigned}, \
         refused {refused}, errors {errors}; {claims} claims in {transactions} transactions \
         ({:.1} per transaction); invariants {}",
        match ceiling {
            Some(ceiling) => format!("{:.1}× the ceiling of {ceiling:.0}", rate / ceiling),
            None => "no ceiling measured".to_owned(),
        },
        summary(latencies),
        claims as f64 / transactions.max(1) as f64,
        if ok { "OK" } else { "VIOLATED" },
    );
}

/// One claim at a time on an idle batcher: the time a lone researcher waits for the claim.
pub async fn lone_claims() {
    let database = TestDatabase::migrated();
    insert_free_vms(&database, LONE_CLAIMS);
    let (feed, _events) = tokio::sync::mpsc::unbounded_channel::<VmEvent>();
    let batcher = ClaimBatcher::start(database.pool(), Backend::Postgres, Arc::new(feed), WORKERS);
    let mut latencies = Vec::new();
    for i in 0..LONE_CLAIMS {
        let sent = Instant::now();
        batcher.assign(claim(i)).await.expect("a free VM");
        latencies.push(sent.elapsed());
        // Idle between researchers.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut conn = database.connect();
    let commit = {
        let started = Instant::now();
        for _ in 0..LONE_CLAIMS {
            conn.batch_execute(
                "BEGIN; UPDATE vms SET in_use = in_use WHERE hostname = 'vm-0000001'; COMMIT;",
            )
            .expect("commit");
        }
        started.elapsed() / LONE_CLAIMS as u32
    };
    println!(
        "lone claims: {}; one plain commit on this server takes {:.2} ms",
        summary(latencies),
        commit.as_secs_f64() * 1e3
    );
}

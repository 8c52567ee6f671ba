//! The `logs` scenario: VM log ingestion and reading. 100 enrolled agents post numbered
//! batches of 200 lines flat out for 20 s (as their shippers do after an outage): lines
//! stored per second, batch latency, and PostgreSQL's CPU per line. Then one VM holding
//! 100,000 kept lines: its log page, the API's newest page, and a text search and the
//! errors-only filter over them. Goal: the page under 50 ms.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use lablink_schema::testing::TestDatabase;
use serde_json::json;

use crate::pages::{sign_in, time_loads};
use crate::{against_goal, free_vms, postgres_cpu_secs, quantile_ms, summary, Allocator};

const AGENTS: usize = 100;
const LINES_PER_BATCH: usize = 200;
const INGEST_FOR: Duration = Duration::from_secs(20);
const KEPT_LINES: usize = 100_000;

/// A batch of `LINES_PER_BATCH` numbered lines of about 80 bytes, every 20th an error.
fn batch(hostname: &str, first_seq: usize) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = (first_seq..first_seq + LINES_PER_BATCH)
        .map(|seq| {
            let text = if seq % 20 == 0 {
                format!("ERROR step {seq}: CUDA out of memory while loading frame batch")
            } else {
                format!("INFO step {seq}: epoch 3/10 loss 0.0412 lr 1e-4 frames 128/4096")
            };
            json!({"source": "software", "seq": seq, "text": text})
        })
        .collect();
    json!({"log_group": "lablink", "log_stream": hostname, "stream": "bench", "entries": entries})
}

pub(crate) async fn logs() {
    let database = TestDatabase::migrated();
    let allocator = Allocator::start_with(
        &database,
        &[
            // Ingestion flat out is measured, not the per-VM rate limit.
            ("LABLINK__CLIENTS__MAX_LOG_BYTES_PER_MINUTE", "1073741824"),
            ("LABLINK__VM_LOGS__MAX_LINES_PER_VM", "1000000"),
            ("LABLINK__VM_LOGS__MAX_BYTES_PER_VM", "1073741824"),
        ],
    );
    let client = reqwest::Client::new();
    let base = allocator.base.clone();
    let agents = free_vms(&client, &base, AGENTS).await;

    let (pg_before, cpu_before) = (postgres_cpu_secs(), allocator.cpu_secs());
    let started = Instant::now();
    let stored = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let latencies: Vec<Vec<Duration>> = stream::iter(agents.clone())
        .map(|(hostname, token)| {
            let (client, base, stored, errors) =
                (client.clone(), base.clone(), stored.clone(), errors.clone());
            async move {
                let mut latencies = Vec::new();
                let mut seq = 1;
                while started.elapsed() < INGEST_FOR {
                    let body = batch(&hostname, seq);
                    let sent = Instant::now();
                    let ok = client
                        .post(format!("{base}/api/vm-logs"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    latencies.push(sent.elapsed());
                    if ok {
                        stored.fetch_add(LINES_PER_BATCH, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    seq += LINES_PER_BATCH;
                }
                latencies
            }
        })
        .buffer_unordered(AGENTS)
        .collect()
        .await;
    let wall = started.elapsed().as_secs_f64();
    let lines = stored.load(Ordering::Relaxed) as f64;
    let pg = postgres_cpu_secs() - pg_before;
    let latencies: Vec<Duration> = latencies.into_iter().flatten().collect();
    println!(
        "logs: {AGENTS} agents, batches of {LINES_PER_BATCH} lines for {:.0} s: {:.0} lines/s stored, \
         {} errors; batch {}; allocator CPU {:.2} s ({:.1} % of a core); PostgreSQL CPU {:.1} % of a \
         core, {:.1} µs per line",
        wall,
        lines / wall,
        errors.load(Ordering::Relaxed),
        summary(latencies),
        allocator.cpu_secs() - cpu_before,
        100.0 * (allocator.cpu_secs() - cpu_before) / wall,
        100.0 * pg / wall,
        1e6 * pg / lines.max(1.0),
    );

    // One VM with exactly KEPT_LINES lines (the cap), read as an admin does.
    let capped_database = TestDatabase::migrated();
    let capped = Allocator::start_with(
        &capped_database,
        &[
            ("LABLINK__CLIENTS__MAX_LOG_BYTES_PER_MINUTE", "1073741824"),
            ("LABLINK__VM_LOGS__MAX_LINES_PER_VM", "100000"),
        ],
    );
    let base = capped.base.clone();
    let (hostname, token) = free_vms(&client, &base, 1).await.remove(0);
    for first in (1..=KEPT_LINES + 10_000).step_by(LINES_PER_BATCH) {
        let answer = client
            .post(format!("{base}/api/vm-logs"))
            .bearer_auth(&token)
            .json(&batch(&hostname, first))
            .send()
            .await
            .expect("post");
        assert!(answer.status().is_success(), "{}", answer.status());
    }
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    sign_in(&browser, &base).await;
    let page = time_loads(&browser, &format!("{base}/admin/logs/{hostname}"), false).await;
    let api = time_loads(&client, &format!("{base}/api/vm-logs/{hostname}"), true).await;
    let search = time_loads(
        &client,
        &format!("{base}/api/vm-logs/{hostname}?q=out%20of%20memory&limit=100"),
        true,
    )
    .await;
    let errors_only = time_loads(
        &client,
        &format!("{base}/api/vm-logs/{hostname}?errors=true&limit=100"),
        true,
    )
    .await;
    let p99 = quantile_ms(&page, 0.99);
    println!(
        "logs: one VM with {KEPT_LINES} kept lines: the log page {} ({}); the API's newest page {}; \
         a text search {}; errors only {}",
        summary(page),
        against_goal(p99, 50.0, "ms"),
        summary(api),
        summary(search),
        summary(errors_only),
    );
}

//! Prometheus metrics for `GET /metrics`: what this process counts as it serves (requests,
//! assignments, refusals, waiting agents), and what it reads from the database when scraped
//! (VMs by state, provisioning operations by outcome, connection pool use).
//!
//! Counters are per process; the database figures are the same on every allocator of one
//! deployment, so a dashboard sums the first and takes any one of the second.

use std::sync::Mutex;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Smallest latency bucket, in seconds; each next one is [`LATENCY_BUCKET_FACTOR`] times larger.
const LATENCY_FIRST_BUCKET_SECS: f64 = 0.001;
const LATENCY_BUCKET_FACTOR: f64 = 2.5;
/// 1 ms … about 60 s: the slowest requests are agents' long polls.
const LATENCY_BUCKETS: u16 = 13;
/// The route label of requests that matched no route, so that scanning random paths cannot
/// create a label per path.
const UNMATCHED_ROUTE: &str = "unmatched";

/// One served request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    /// The route's pattern, such as `/api/vm-status/{hostname}`.
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AssignmentLabels {
    /// `new`, or `existing` when the researcher already held the VM.
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VmLabels {
    status: String,
    assigned: &'static str,
    in_use: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    kind: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// Why a researcher was not given a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    InvalidEmail,
    InvalidCommand,
    NoFreeVm,
    Contended,
    RateLimited,
    /// The email holds a VM but the request could not prove it is that person.
    NeedsProof,
    /// The workshop is closed, or the email or invite code is not admitted.
    NotAdmitted,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::InvalidEmail => "invalid_email",
            Refusal::InvalidCommand => "invalid_command",
            Refusal::NoFreeVm => "no_free_vm",
            Refusal::Contended => "contended",
            Refusal::RateLimited => "rate_limited",
            Refusal::NeedsProof => "needs_proof",
            Refusal::NotAdmitted => "not_admitted",
        }
    }
}

/// What the database says at scrape time.
#[derive(Debug, Default)]
pub struct DatabaseSnapshot {
    pub vms: Vec<lablink_schema::vms::VmStateCount>,
    pub free_vms: i64,
    pub operations: Vec<(String, String, i64)>,
}

/// The metrics registry and handles to each metric; shared by all workers.
#[derive(Debug)]
pub struct Metrics {
    /// Locked while the scrape-time gauges are refreshed and everything is encoded, so two
    /// scrapes at once cannot interleave clearing and setting.
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    assignments: Family<AssignmentLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    agents_waiting: Gauge,
    vms: Family<VmLabels, Gauge>,
    free_vms: Gauge,
    operations: Family<OperationLabels, Gauge>,
    pool_connections: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        LATENCY_FIRST_BUCKET_SECS,
        LATENCY_BUCKET_FACTOR,
        LATENCY_BUCKETS,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let metrics = Metrics {
            registry: Mutex::new(Registry::with_prefix("lablink")),
            requests: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            assignments: Family::default(),
            refusals: Family::default(),
            agents_waiting: Gauge::default(),
            vms: Family::default(),
            free_vms: Gauge::default(),
            operations: Family::default(),
            pool_connections: Family::default(),
            pool_max: Gauge::default(),
        };
        {
            let mut registry = metrics.registry.lock().unwrap_or_else(|e| e.into_inner());
            registry.register(
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by method, route and status",
                metrics.requests.clone(),
            );
            registry.register(
                "assignments",
                "Researchers shown a VM: `new` assignments, or the VM they `existing`ly held",
                metrics.assignments.clone(),
            );
            registry.register(
                "refusals",
                "Researchers not given a VM, by reason",
                metrics.refusals.clone(),
            );
            registry.register(
                "agents_waiting",
                "VM agents waiting in POST /vm_startup on this allocator",
                metrics.agents_waiting.clone(),
            );
            registry.register(
                "vms",
                "VMs by reported status, whether assigned and whether in use",
                metrics.vms.clone(),
            );
            registry.register(
                "vms_free",
                "VMs a researcher could be given now",
                metrics.free_vms.clone(),
            );
            registry.register(
                "operations",
                "Provisioning operations on record, by kind and state (succeeded, failed, ...)",
                metrics.operations.clone(),
            );
            registry.register(
                "db_pool_connections",
                "Database connections held by this allocator's pool, idle or in use",
                metrics.pool_connections.clone(),
            );
            registry.register(
                "db_pool_max_connections",
                "Most database connections this allocator's pool opens",
                metrics.pool_max.clone(),
            );
        }
        metrics
    }

    /// Counts a researcher shown a VM.
    pub fn assigned(&self, newly: bool) {
        let kind = if newly { "new" } else { "existing" };
        self.assignments
            .get_or_create(&AssignmentLabels { kind })
            .inc();
    }

    /// Counts a researcher refused a VM.
    pub fn refused(&self, reason: Refusal) {
        self.refusals
            .get_or_create(&RefusalLabels {
                reason: reason.label(),
            })
            .inc();
    }

    /// Counts an agent as waiting until the returned guard is dropped (answered, or hung up).
    pub fn agent_waiting(&self) -> WaitingAgent {
        self.agents_waiting.inc();
        WaitingAgent {
            gauge: self.agents_waiting.clone(),
        }
    }

    fn observe_request(&self, method: &Method, route: String, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method_label(method),
                route,
                status,
            })
            .observe(seconds);
    }

    /// The exposition in Prometheus' text format, with the database figures of `snapshot`
    /// and the pool's current use.
    pub fn render(&self, snapshot: &DatabaseSnapshot, pool: &lablink_schema::DbPool) -> String {
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        self.vms.clear();
        for count in &snapshot.vms {
            self.vms
                .get_or_create(&VmLabels {
                    status: count.status.clone(),
                    assigned: yes_no(count.assigned),
                    in_use: yes_no(count.in_use),
                })
                .set(count.count);
        }
        self.free_vms.set(snapshot.free_vms);
        self.operations.clear();
        for (kind, state, count) in &snapshot.operations {
            self.operations
                .get_or_create(&OperationLabels {
                    kind: kind.clone(),
                    state: state.clone(),
                })
                .set(*count);
        }
        let pool_state = pool.state();
        let idle = i64::from(pool_state.idle_connections);
        self.pool_connections
            .get_or_create(&PoolLabels { state: "idle" })
            .set(idle);
        self.pool_connections
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(i64::from(pool_state.connections) - idle);
        self.pool_max.set(i64::from(pool.max_size()));

        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }
}

/// Content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Keeps an agent counted as waiting while it lives.
#[derive(Debug)]
pub struct WaitingAgent {
    gauge: Gauge,
}

impl Drop for WaitingAgent {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "true"
    } else {
        "false"
    }
}

/// The standard methods by name; anything else as `other`, so made-up methods cannot create
/// labels.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: times every request and records it under its route's pattern.
pub async fn record_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // Registered beside the application state (not read through it), so this module does
    // not depend on the state that holds it.
    let metrics = request.app_data::<web::Data<Metrics>>().cloned();
    let method = request.method().clone();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    let response = next.call(request).await?;
    if let Some(metrics) = metrics {
        metrics.observe_request(
            &method,
            route,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_agent_is_counted_until_its_guard_is_dropped() {
        let metrics = Metrics::new();
        let first = metrics.agent_waiting();
        let second = metrics.agent_waiting();
        assert_eq!(metrics.agents_waiting.get(), 2);
        drop(first);
        assert_eq!(metrics.agents_waiting.get(), 1);
        drop(second);
        assert_eq!(metrics.agents_waiting.get(), 0);
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let made_up = Method::from_bytes(b"BREW").expect("method");
        assert_eq!(method_label(&made_up), "other");
        assert_eq!(method_label(&Method::GET), "GET");
    }
}

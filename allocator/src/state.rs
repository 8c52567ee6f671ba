//! What every request handler can reach: the read pool, the actors' addresses, the pages and
//! the authorisation rules.

use std::sync::Arc;

use actix::Addr;
use actix_web::web;
use lablink_actors::change_feed::ChangeHub;
use lablink_actors::claim_batcher::ClaimBatcher;
use lablink_actors::db_writer::DbWriter;
use lablink_actors::provisioning::cloud::CloudApi;
use lablink_actors::provisioning_queue::ProvisioningQueue;
use lablink_actors::report_batcher::ReportBatcher;
use lablink_actors::vm_supervisor::VmSupervisor;
use lablink_schema::vms::Vm;
use lablink_schema::{Backend, DbConnection, DbPool};

use crate::auth::{Authorizer, CookieSigner, LoginGuard};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::pages::Pages;

/// Shared by all workers; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// For reads (pages, lists) run in `web::block`; every write goes through `writer`.
    pub pool: DbPool,
    pub backend: Backend,
    pub writer: Addr<DbWriter>,
    /// Researchers' claims, batched.
    pub claims: ClaimBatcher,
    /// Agents' status, heartbeat, GPU and in-use reports, batched.
    pub reports: ReportBatcher,
    pub supervisor: Addr<VmSupervisor>,
    /// The queue of provisioning operations.
    pub executor: Addr<ProvisioningQueue>,
    /// VM change events, for whoever subscribes (VM actors, live pages).
    pub changes: ChangeHub,
    pub pages: Arc<Pages>,
    pub auth: Arc<Authorizer>,
    /// Signs session and login cookies.
    pub signer: CookieSigner,
    pub login_guard: Arc<LoginGuard>,
    /// How long a dashboard sign-in lasts.
    pub session_ttl: std::time::Duration,
    /// Becomes `true` when the allocator starts stopping.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The cloud's API, when configured (`provider.aws.enabled`).
    pub cloud: Option<Arc<dyn CloudApi>>,
    /// What a release does with a VM whose agent can reset itself.
    pub release_policy: crate::config::ReleasePolicy,
    /// Whether VMs can be rebooted: through the cloud's API, or by the local provider.
    pub can_reboot: bool,
    /// The instance type new VMs get, when it must have an NVIDIA GPU.
    pub required_gpu_instance_type: Option<String>,
    pub metrics: Arc<Metrics>,
    /// Who a request's client is (trusted proxies resolved).
    pub client_addresses: crate::client_address::ClientAddresses,
    /// How fast researchers may ask for VMs.
    pub admission: Arc<crate::rate_limit::Admission>,
    /// Each VM's allowance of log bytes per minute.
    pub log_budget: Arc<crate::rate_limit::LogBudget>,
    /// Most log text in one batch, in bytes.
    pub max_log_bytes_per_batch: usize,
    /// How much of each VM's log is kept, and the longest line.
    pub log_retention: lablink_schema::vm_logs::Retention,
    pub max_log_line_bytes: usize,
    /// `provider.max_vms`: the most VMs one creation may ask for, and the most that may join
    /// by themselves (enrollment, legacy registration), counted apart from the provider's.
    pub provider_max_vms: u32,
    /// How often agents are told to heartbeat (a third of `lifecycle.heartbeat_timeout_secs`).
    pub heartbeat_interval: std::time::Duration,
    /// `None` when `GET /metrics` is turned off.
    pub metrics_access: Option<MetricsAccess>,
    /// Prices, warm-up defaults and notification channels, for workshops.
    pub workshops: Arc<crate::admin_actions::workshops::WorkshopSettings>,
    /// How long each step of a participant's journey usually takes, measured.
    pub usual_times: Arc<crate::participant_journey::UsualTimesCache>,
    /// How long an admin's take-over of a free VM lasts (`desktop.take_over_secs`).
    pub take_over_for: std::time::Duration,
    /// The agents' desktop tunnels to this allocator, and the streams asked of them.
    pub desktops: Arc<crate::desktop::DesktopLinks>,
    /// The other allocators on the database, for desktops whose tunnel one of them holds.
    pub peers: Arc<crate::desktop::peers::DesktopPeers>,
}

/// Who may read `GET /metrics`: the admin, or a scraper with this SHA-256 of its token.
#[derive(Debug, Clone)]
pub struct MetricsAccess {
    pub token_hash: Option<[u8; 32]>,
}

impl AppState {
    /// Refuses to create VMs when they would get an instance type without an NVIDIA GPU.
    pub async fn check_launchable(&self) -> Result<(), ApiError> {
        let (Some(cloud), Some(instance_type)) = (&self.cloud, &self.required_gpu_instance_type)
        else {
            return Ok(());
        };
        match cloud.has_nvidia_gpu(instance_type).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ApiError::BadRequest(format!(
                "the instance type `{instance_type}` has no NVIDIA GPU, which the client image \
                 needs: choose a GPU type (g4dn, g5, g6, p3, …) in provider.aws.instance_type or \
                 provider.terraform.variables.instance_type"
            ))),
            Err(err) => Err(ApiError::Unavailable(format!(
                "cannot check the instance type with AWS: {err}"
            ))),
        }
    }

    /// Records an action in the audit trail. A failure to record is logged, not shown: the
    /// action itself has happened.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: Option<String>,
        detail: Option<String>,
    ) {
        let event = lablink_schema::audit_events::NewAuditEvent {
            occurred_at: chrono::Utc::now().naive_utc(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target,
            detail,
        };
        let recorded = self
            .writer
            .send(lablink_actors::db_writer::RecordAuditEvent(event))
            .await;
        if !matches!(recorded, Ok(Ok(_))) {
            tracing::error!(action, "cannot record the audit event");
        }
    }

    /// Resolves when the allocator starts stopping.
    pub async fn until_stopping(&self) {
        let mut stopping = self.stopping.clone();
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }
}

impl AppState {
    /// Runs a read on a pooled connection off the worker thread.
    pub async fn read<T, F>(&self, query: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> diesel::QueryResult<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get().map_err(|_| {
                ApiError::Unavailable("The database is unavailable; please try again.".to_owned())
            })?;
            query(&mut conn).map_err(ApiError::from_query)
        })
        .await?
    }

    /// Runs one bookkeeping statement (a token's last use, an idempotency key) on a pooled
    /// connection off the worker thread: writes that need no audit record and no batching,
    /// so they skip the writer's queue.
    pub async fn small_write<T, F>(&self, write: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> diesel::QueryResult<T> + Send + 'static,
    {
        self.read(write).await
    }

    /// The VM named `hostname`, if any.
    pub async fn find_vm(&self, hostname: &str) -> Result<Option<Vm>, ApiError> {
        let hostname = hostname.to_owned();
        self.read(move |conn| Vm::find_by_hostname(conn, &hostname))
            .await
    }
}

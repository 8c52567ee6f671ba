//! `ProvisioningQueue`: the one queue of provisioning operations (create N VMs, destroy some,
//! destroy all, replace a broken one), whichever provider carries them out (Terraform or
//! local agents), and the reboots of single VMs ([`recovery`]). Each operation is an
//! `operations` row written before it runs; operations
//! run one at a time through the configured [`Provisioner`] (Terraform, or local agents), so
//! two admin clicks never run two Terraform processes on one state. Progress lines stream
//! to subscribers (the dashboard) and the tail is stored with the operation.
//!
//! Operations are durable jobs: each is leased to the allocator that holds it, which renews
//! the lease. At start, and then every few seconds, an allocator takes over the operations
//! whose holder stopped (its lease ran out, or it is known to be gone) and runs them again.
//! At start it also stops any provider run a previous process on this machine left behind.
//! How one operation runs is in [`operation_run`].

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, ResponseActFuture,
    WrapFuture,
};
use chrono::Utc;
use lablink_schema::operations::{NewOperation, Operation, OperationKind, OperationState};
use lablink_schema::vms::Vm;
use lablink_schema::DbPool;
use tokio::sync::broadcast;

use crate::db_writer::{
    DbWriter, FinishOperation, QueueOperation, RemoveVms, RenewOperationLeases,
    TakeOverAbandonedOperations,
};
use crate::lease::{self, LEASE_DURATION, LEASE_RENEWAL};
use crate::provisioning::cloud::CloudApi;
use crate::provisioning::{ProvisionError, Provisioner, Recovered};

mod operation_run;
mod recovery;

pub use recovery::{RebootVm, ReplaceVm};

use operation_run::{run_operation, Plan, Runner};

/// Progress events buffered for slow dashboard streams before they skip ahead.
const EVENT_BUFFER: usize = 1024;
/// Why operations found unfinished at start failed.
pub const INTERRUPTED_REASON: &str =
    "interrupted: the allocator stopped while this operation was queued or running";

/// How VMs are named and how many there may be.
#[derive(Debug, Clone)]
pub struct ProvisioningSettings {
    /// New VMs are `<name_prefix>-<n>`, e.g. `lablink-vm-dev-3`.
    pub name_prefix: String,
    /// Most VMs that may exist (counting queued creations).
    pub max_vms: u32,
}

/// Something that happened to an operation, for live views.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum OperationEvent {
    Queued {
        operation_id: i64,
    },
    Started {
        operation_id: i64,
    },
    Line {
        operation_id: i64,
        level: String,
        message: String,
    },
    Finished {
        operation_id: i64,
        state: OperationState,
        error: Option<String>,
    },
}

/// Why an operation was refused (nothing was queued).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisioningError {
    #[error("the number of VMs must be between 1 and {max}")]
    InvalidCount { max: u32 },
    #[error("at most {max} VMs may exist; {existing} exist or are being created")]
    TooMany { max: u32, existing: u32 },
    #[error("no VM is named {}", .0.join(", "))]
    UnknownVms(Vec<String>),
    #[error("{} assigned to a researcher; confirm to destroy anyway", describe_assigned(.0))]
    AssignedVms(Vec<String>),
    #[error("nothing to destroy")]
    NothingToDestroy,
    #[error("database: {0}")]
    Database(String),
}

fn describe_assigned(hostnames: &[String]) -> String {
    match hostnames {
        [one] => format!("{one} is"),
        many => format!("{} are", many.join(", ")),
    }
}

/// The actor; see the module documentation.
pub struct ProvisioningQueue {
    pool: DbPool,
    writer: Addr<DbWriter>,
    provisioner: Arc<dyn Provisioner>,
    settings: ProvisioningSettings,
    queue: VecDeque<(i64, Plan)>,
    busy: bool,
    /// The operation running now, if any.
    running: Option<i64>,
    /// VMs the running operation is creating whose rows are not stored yet.
    running_creations: u32,
    events: broadcast::Sender<OperationEvent>,
    /// The cloud's API, for reboots the provider cannot do itself.
    cloud: Option<Arc<dyn CloudApi>>,
}

impl std::fmt::Debug for ProvisioningQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisioningQueue")
            .field("settings", &self.settings)
            .field("queued", &self.queue.len())
            .field("busy", &self.busy)
            .finish_non_exhaustive()
    }
}

impl ProvisioningQueue {
    pub fn new(
        pool: DbPool,
        writer: Addr<DbWriter>,
        provisioner: Arc<dyn Provisioner>,
        settings: ProvisioningSettings,
    ) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        ProvisioningQueue {
            pool,
            writer,
            provisioner,
            settings,
            queue: VecDeque::new(),
            busy: false,
            running: None,
            running_creations: 0,
            events,
            cloud: None,
        }
    }

    /// Reboots go through `cloud` where the provider cannot reboot by itself (Terraform).
    pub fn with_cloud(mut self, cloud: Option<Arc<dyn CloudApi>>) -> Self {
        self.cloud = cloud;
        self
    }

    /// VMs being created that are not in the database yet: queued creations, and the
    /// running one until it has stored its rows.
    fn pending_creations(&self) -> u32 {
        let queued: u32 = self
            .queue
            .iter()
            .map(|(_, plan)| match plan {
                Plan::Create { count, .. } => *count,
                _ => 0,
            })
            .sum();
        queued + self.running_creations
    }

    /// Extends the leases of the operations this queue holds.
    fn renew_leases(&self) {
        let ids: Vec<i64> = self
            .queue
            .iter()
            .map(|(id, _)| *id)
            .chain(self.running)
            .collect();
        if ids.is_empty() {
            return;
        }
        let renewal = RenewOperationLeases {
            owner: lease::this_process().to_owned(),
            ids,
            until: lease_end(),
        };
        let writer = self.writer.clone();
        actix::spawn(async move {
            if !matches!(writer.send(renewal).await, Ok(Ok(_))) {
                tracing::error!("cannot renew the leases of the queued operations");
            }
        });
    }

    fn enqueue(&mut self, operation: &Operation, plan: Plan, ctx: &mut Context<Self>) {
        let _ = self.events.send(OperationEvent::Queued {
            operation_id: operation.id,
        });
        self.queue.push_back((operation.id, plan));
        self.run_next(ctx);
    }

    fn run_next(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        let Some((id, plan)) = self.queue.pop_front() else {
            return;
        };
        self.busy = true;
        self.running = Some(id);
        if let Plan::Create { count, .. } = plan {
            self.running_creations = count;
        }
        let runner = Runner {
            operation_id: id,
            executor: ctx.address(),
            pool: self.pool.clone(),
            writer: self.writer.clone(),
            provisioner: self.provisioner.clone(),
            settings: self.settings.clone(),
            events: self.events.clone(),
        };
        let run = run_operation(id, plan, runner);
        ctx.spawn(run.into_actor(self).map(|(), executor, ctx| {
            executor.busy = false;
            executor.running = None;
            executor.running_creations = 0;
            executor.run_next(ctx);
        }));
    }
}

impl Actor for ProvisioningQueue {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Every operation this allocator holds, queued or running, keeps its lease, so an
        // allocator starting meanwhile leaves it alone; and every allocator takes over what
        // an allocator that stopped left behind.
        ctx.run_interval(LEASE_RENEWAL, |queue, ctx| {
            queue.renew_leases();
            let take_over = queue.take_over_abandoned();
            ctx.spawn(take_over);
        });
        let recovered = self.provisioner.recover().unwrap_or_else(|err| {
            tracing::error!(error = %err, "could not clean up after the previous allocator");
            Recovered::default()
        });
        if !recovered.adopted.is_empty() {
            tracing::info!(
                count = recovered.adopted.len(),
                vms = %recovered.adopted.join(", "),
                "adopted the VMs a previous allocator left running"
            );
        }
        // Before anything new is queued: the rows of VMs that died meanwhile go, so none is
        // handed to a participant; then what a previous process left unfinished runs.
        ctx.wait(forget_gone(self.writer.clone(), recovered.gone).into_actor(self));
        let take_over = self.take_over_abandoned();
        ctx.wait(take_over);
    }
}

impl ProvisioningQueue {
    /// Takes over the operations nobody holds any more and queues them to run again. Running
    /// one again is safe: the provider's own record (Terraform's state, the local agents
    /// that run) says what exists, and a creation makes only the VMs its names lack.
    fn take_over_abandoned(&self) -> impl actix::ActorFuture<Self, Output = ()> + 'static {
        let writer = self.writer.clone();
        let take_over = TakeOverAbandonedOperations {
            owner: lease::this_process().to_owned(),
            until: lease_end(),
        };
        async move { writer.send(take_over).await }
            .into_actor(self)
            .map(|taken, queue, ctx| {
                let taken = match taken {
                    Ok(Ok(taken)) => taken,
                    Ok(Err(err)) => {
                        tracing::error!(error = %err, "cannot take over abandoned operations");
                        return;
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "the database writer is gone");
                        return;
                    }
                };
                for operation in taken {
                    match resumed_plan(&operation) {
                        Some(plan) => {
                            tracing::warn!(
                                operation_id = operation.id,
                                kind = %operation.kind,
                                "taking over an operation whose allocator stopped"
                            );
                            queue.enqueue(&operation, plan, ctx);
                        }
                        None => queue.fail_unknown(&operation),
                    }
                }
            })
    }

    /// An operation this version cannot run again (a kind from a newer version) is failed.
    fn fail_unknown(&self, operation: &Operation) {
        let finish = FinishOperation {
            id: operation.id,
            state: OperationState::Failed,
            error: Some(format!(
                "{INTERRUPTED_REASON}, and this allocator cannot run a `{}` operation again",
                operation.kind
            )),
            output_tail: operation.output_tail.clone(),
        };
        let writer = self.writer.clone();
        actix::spawn(async move {
            let _ = writer.send(finish).await;
        });
    }
}

/// Removes the rows of VMs found gone at start-up.
async fn forget_gone(writer: Addr<DbWriter>, gone: Vec<String>) {
    if gone.is_empty() {
        return;
    }
    for hostname in &gone {
        tracing::warn!(
            %hostname,
            "this VM stopped while no allocator watched it: it is removed"
        );
    }
    if !matches!(writer.send(RemoveVms { hostnames: gone }).await, Ok(Ok(_))) {
        tracing::error!("cannot remove the VMs found gone; their supervisors replace them");
    }
}

/// How to run a taken-over operation again, from what its row says.
fn resumed_plan(operation: &Operation) -> Option<Plan> {
    let targets = operation.target_hostnames();
    match operation.kind.parse::<OperationKind>().ok()? {
        OperationKind::Create if targets.is_empty() => Some(Plan::Create {
            count: u32::try_from(operation.requested_count?).ok()?,
            workshop_id: operation.workshop_id,
        }),
        OperationKind::Create => Some(Plan::CreateNamed {
            hostnames: targets,
            workshop_id: operation.workshop_id,
        }),
        // The admin confirmed (or nothing was assigned) when it was asked for.
        OperationKind::Destroy => Some(Plan::Destroy {
            hostnames: targets,
            confirm_assigned: true,
        }),
        OperationKind::DestroyAll => Some(Plan::DestroyAll {
            confirm_assigned: true,
        }),
        OperationKind::Replace => {
            let mut targets = targets.into_iter();
            Some(Plan::Replace {
                hostname: targets.next()?,
                new_name: targets.next(),
            })
        }
    }
}

/// When a lease taken or renewed now runs out.
fn lease_end() -> chrono::NaiveDateTime {
    Utc::now().naive_utc()
        + chrono::Duration::from_std(LEASE_DURATION)
            .unwrap_or_else(|_| chrono::Duration::seconds(30))
}

/// Reads every VM (off the event loop).
async fn read_vms(pool: &DbPool) -> Result<Vec<Vm>, ProvisioningError> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        Vm::list_all(&mut conn).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ProvisioningError::Database(e.to_string()))?
    .map_err(ProvisioningError::Database)
}

/// VMs that did not enroll by themselves: the provider's own, counted against `max_vms`.
async fn count_provider_vms(pool: &DbPool) -> Result<usize, ProvisioningError> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        lablink_schema::enrollment::count_provider_vms(&mut conn)
            .map(|count| usize::try_from(count).unwrap_or(0))
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ProvisioningError::Database(e.to_string()))?
    .map_err(ProvisioningError::Database)
}

async fn queue_operation(
    writer: &Addr<DbWriter>,
    new: NewOperation,
) -> Result<Operation, ProvisioningError> {
    writer
        .send(QueueOperation(new))
        .await
        .map_err(|e| ProvisioningError::Database(e.to_string()))?
        .map_err(|e| ProvisioningError::Database(e.to_string()))
}

/// Create `count` more VMs.
#[derive(Debug, Message)]
#[rtype(result = "Result<Operation, ProvisioningError>")]
pub struct CreateVms {
    pub count: u32,
    pub requested_by: String,
    /// The workshop the VMs are for (`None`: the implicit one).
    pub workshop_id: Option<i64>,
}

impl Handler<CreateVms> for ProvisioningQueue {
    type Result = ResponseActFuture<Self, Result<Operation, ProvisioningError>>;

    fn handle(&mut self, msg: CreateVms, _: &mut Self::Context) -> Self::Result {
        let (pool, writer, max) = (
            self.pool.clone(),
            self.writer.clone(),
            self.settings.max_vms,
        );
        let queued = self.pending_creations();
        let count = msg.count;
        let workshop_id = msg.workshop_id;
        Box::pin(
            async move {
                if count == 0 || count > max {
                    return Err(ProvisioningError::InvalidCount { max });
                }
                // VMs that enrolled by themselves have a limit of their own, so junk that
                // enrolled can never block a real creation.
                let existing = u32::try_from(count_provider_vms(&pool).await?).unwrap_or(u32::MAX);
                let existing = existing.saturating_add(queued);
                if existing.saturating_add(count) > max {
                    return Err(ProvisioningError::TooMany { max, existing });
                }
                let mut new = NewOperation::queued(
                    OperationKind::Create,
                    &msg.requested_by,
                    Utc::now().naive_utc(),
                )
                .leased_to(lease::this_process(), lease_end());
                new.requested_count = i32::try_from(count).ok();
                new.workshop_id = workshop_id;
                queue_operation(&writer, new).await
            }
            .into_actor(self)
            .map(move |result, executor, ctx| {
                if let Ok(operation) = &result {
                    executor.enqueue(operation, Plan::Create { count, workshop_id }, ctx);
                }
                result
            }),
        )
    }
}

/// Destroy these VMs only. Assigned VMs need `confirm_assigned`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Operation, ProvisioningError>")]
pub struct DestroyVms {
    pub hostnames: Vec<String>,
    pub confirm_assigned: bool,
    pub requested_by: String,
}

impl Handler<DestroyVms> for ProvisioningQueue {
    type Result = ResponseActFuture<Self, Result<Operation, ProvisioningError>>;

    fn handle(&mut self, msg: DestroyVms, _: &mut Self::Context) -> Self::Result {
        let (pool, writer) = (self.pool.clone(), self.writer.clone());
        let hostnames: Vec<String> = msg
            .hostnames
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let confirm_assigned = msg.confirm_assigned;
        let plan_hostnames = hostnames.clone();
        Box::pin(
            async move {
                if hostnames.is_empty() {
                    return Err(ProvisioningError::NothingToDestroy);
                }
                let vms = read_vms(&pool).await?;
                let unknown: Vec<String> = hostnames
                    .iter()
                    .filter(|h| !vms.iter().any(|vm| &vm.hostname == *h))
                    .cloned()
                    .collect();
                if !unknown.is_empty() {
                    return Err(ProvisioningError::UnknownVms(unknown));
                }
                check_assigned(&vms, Some(&hostnames), confirm_assigned)?;
                let mut new = NewOperation::queued(
                    OperationKind::Destroy,
                    &msg.requested_by,
                    Utc::now().naive_utc(),
                )
                .leased_to(lease::this_process(), lease_end());
                new.targets = serde_json::to_string(&hostnames).ok();
                queue_operation(&writer, new).await
            }
            .into_actor(self)
            .map(move |result, executor, ctx| {
                if let Ok(operation) = &result {
                    let plan = Plan::Destroy {
                        hostnames: plan_hostnames,
                        confirm_assigned,
                    };
                    executor.enqueue(operation, plan, ctx);
                }
                result
            }),
        )
    }
}

/// Destroy every VM. Assigned VMs need `confirm_assigned`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Operation, ProvisioningError>")]
pub struct DestroyAllVms {
    pub confirm_assigned: bool,
    pub requested_by: String,
}

impl Handler<DestroyAllVms> for ProvisioningQueue {
    type Result = ResponseActFuture<Self, Result<Operation, ProvisioningError>>;

    fn handle(&mut self, msg: DestroyAllVms, _: &mut Self::Context) -> Self::Result {
        let (pool, writer) = (self.pool.clone(), self.writer.clone());
        let confirm_assigned = msg.confirm_assigned;
        Box::pin(
            async move {
                let vms = read_vms(&pool).await?;
                check_assigned(&vms, None, confirm_assigned)?;
                let new = NewOperation::queued(
                    OperationKind::DestroyAll,
                    &msg.requested_by,
                    Utc::now().naive_utc(),
                )
                .leased_to(lease::this_process(), lease_end());
                queue_operation(&writer, new).await
            }
            .into_actor(self)
            .map(move |result, executor, ctx| {
                if let Ok(operation) = &result {
                    executor.enqueue(operation, Plan::DestroyAll { confirm_assigned }, ctx);
                }
                result
            }),
        )
    }
}

/// Refuses when a VM to destroy is assigned and that was not confirmed.
fn check_assigned(
    vms: &[Vm],
    targets: Option<&[String]>,
    confirmed: bool,
) -> Result<(), ProvisioningError> {
    if confirmed {
        return Ok(());
    }
    let assigned: Vec<String> = vms
        .iter()
        .filter(|vm| targets.is_none_or(|t| t.contains(&vm.hostname)))
        .filter(|vm| vm.user_email.is_some())
        .map(|vm| vm.hostname.clone())
        .collect();
    if assigned.is_empty() {
        Ok(())
    } else {
        Err(ProvisioningError::AssignedVms(assigned))
    }
}

/// The running creation has stored its VMs' rows: they now count as existing.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
struct CreationsStored;

impl Handler<CreationsStored> for ProvisioningQueue {
    type Result = ();

    fn handle(&mut self, _: CreationsStored, _: &mut Self::Context) {
        self.running_creations = 0;
    }
}

/// The provider's id of the VM (for cloud calls such as reboot), if it exists.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<String>, ProvisionError>")]
pub struct FindInstanceId {
    pub hostname: String,
}

impl Handler<FindInstanceId> for ProvisioningQueue {
    type Result = actix::ResponseFuture<Result<Option<String>, ProvisionError>>;

    fn handle(&mut self, msg: FindInstanceId, _: &mut Self::Context) -> Self::Result {
        let ids = self.provisioner.instance_ids();
        Box::pin(async move { Ok(ids.await?.remove(&msg.hostname)) })
    }
}

/// A live feed of operation events (queued, started, each output line, finished).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "broadcast::Receiver<OperationEvent>")]
pub struct SubscribeOperations;

impl Handler<SubscribeOperations> for ProvisioningQueue {
    type Result = actix::MessageResult<SubscribeOperations>;

    fn handle(&mut self, _: SubscribeOperations, _: &mut Self::Context) -> Self::Result {
        actix::MessageResult(self.events.subscribe())
    }
}

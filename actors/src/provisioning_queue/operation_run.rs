//! How one provisioning operation runs: marked started, carried out by the provider with its
//! progress streamed to subscribers, its VMs recorded as they are made or removed, and its
//! outcome and output tail stored. Never fails: every outcome is recorded.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use actix::{Addr, Handler, Message};
use lablink_schema::operations::OperationState;
use lablink_schema::workshops::Workshop;
use lablink_schema::DbPool;
use tokio::sync::{broadcast, mpsc};

use super::{
    check_assigned, read_vms, CreationsStored, OperationEvent, ProvisioningError,
    ProvisioningQueue, ProvisioningSettings,
};
use crate::db_writer::{
    AddProvisionedVms, DbWriter, FinishOperation, RecordOperationTargets, RemoveVms, SetVmTokens,
    StartOperation,
};
use crate::lifecycle_writes::ChangeVmState;
use crate::provisioning::{ProgressLine, ProvisionError, Provisioner, VmSpec};
use crate::tokens::new_vm_token;
use lablink_schema::vm_lifecycle::{ReadState, Transition};
use lablink_schema::wire::LifecycleState;

/// Lines of output kept with a finished operation.
const OUTPUT_TAIL_LINES: usize = 200;

/// What an operation does.
#[derive(Debug, Clone)]
pub(super) enum Plan {
    Create {
        count: u32,
        workshop_id: Option<i64>,
    },
    /// Make these named VMs exist: an interrupted creation taken over after its names
    /// were recorded. The ones the provider has are kept; the others are made.
    CreateNamed {
        hostnames: Vec<String>,
        workshop_id: Option<i64>,
    },
    Destroy {
        hostnames: Vec<String>,
        confirm_assigned: bool,
    },
    DestroyAll {
        confirm_assigned: bool,
    },
    /// Create one VM in place of `hostname`, then destroy `hostname`. `new_name` is the
    /// replacement's name when an interrupted replacement is taken over.
    Replace {
        hostname: String,
        new_name: Option<String>,
    },
}

/// The next free `<prefix>-<n>` names.
fn next_names(prefix: &str, existing: &[String], count: u32) -> Vec<String> {
    let taken: BTreeSet<&str> = existing.iter().map(String::as_str).collect();
    (1u32..)
        .map(|n| format!("{prefix}-{n}"))
        .filter(|name| !taken.contains(name.as_str()))
        .take(count as usize)
        .collect()
}

/// What running an operation needs.
pub(super) struct Runner {
    pub(super) operation_id: i64,
    pub(super) executor: Addr<ProvisioningQueue>,
    pub(super) pool: DbPool,
    pub(super) writer: Addr<DbWriter>,
    pub(super) provisioner: Arc<dyn Provisioner>,
    pub(super) settings: ProvisioningSettings,
    pub(super) events: broadcast::Sender<OperationEvent>,
}

/// Runs one operation to its end; never fails (the outcome is recorded).
pub(super) async fn run_operation(id: i64, plan: Plan, runner: Runner) {
    let Runner { writer, events, .. } = &runner;
    if let Err(err) = writer
        .send(StartOperation(id))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        tracing::error!(operation_id = id, error = %err, "cannot mark the operation as started");
    }
    let _ = events.send(OperationEvent::Started { operation_id: id });
    tracing::info!(operation_id = id, ?plan, "provisioning started");

    // Progress lines go to live subscribers and into the stored tail.
    let (progress, mut lines) = mpsc::unbounded_channel::<ProgressLine>();
    let forward_events = events.clone();
    let collector = tokio::spawn(async move {
        let mut tail: VecDeque<String> = VecDeque::with_capacity(OUTPUT_TAIL_LINES);
        while let Some(line) = lines.recv().await {
            if tail.len() == OUTPUT_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.message.clone());
            let _ = forward_events.send(OperationEvent::Line {
                operation_id: id,
                level: line.level,
                message: line.message,
            });
        }
        tail.into_iter().collect::<Vec<_>>().join("\n")
    });

    let outcome = execute(&plan, &runner, progress).await;
    let output_tail = collector.await.unwrap_or_default();
    let (state, error) = match &outcome {
        Ok(()) => (OperationState::Succeeded, None),
        Err(err) => (OperationState::Failed, Some(err.0.clone())),
    };
    match &error {
        None => tracing::info!(operation_id = id, "provisioning succeeded"),
        Some(err) => tracing::error!(operation_id = id, error = %err, "provisioning failed"),
    }
    let finished = writer
        .send(FinishOperation {
            id,
            state,
            error: error.clone(),
            output_tail,
        })
        .await;
    if !matches!(finished, Ok(Ok(()))) {
        tracing::error!(operation_id = id, "cannot record the operation's outcome");
    }
    let _ = events.send(OperationEvent::Finished {
        operation_id: id,
        state,
        error,
    });
}

async fn execute(
    plan: &Plan,
    runner: &Runner,
    progress: crate::provisioning::ProgressSender,
) -> Result<(), ProvisionError> {
    let Runner {
        operation_id,
        pool,
        writer,
        provisioner,
        settings,
        ..
    } = runner;
    let db = |e: ProvisioningError| ProvisionError(e.to_string());
    let vms = read_vms(pool).await.map_err(db)?;
    let current: Vec<String> = vms.iter().map(|vm| vm.hostname.clone()).collect();
    // What the provisioner itself manages is the base of every change: a VM that registered
    // itself (not created by it) must never be created or touched by it.
    let managed = provisioner.provisioned().await?;
    let book = SpecBook::read(pool, &vms).await.map_err(db)?;
    match plan {
        Plan::Create { count, workshop_id } => {
            let taken: Vec<String> = current.iter().chain(&managed).cloned().collect();
            let names = next_names(&settings.name_prefix, &taken, *count);
            // Recorded first, so an allocator taking the run over makes these same VMs.
            send(
                writer,
                RecordOperationTargets {
                    id: *operation_id,
                    hostnames: names.clone(),
                },
            )
            .await?;
            create_named(&names, *workshop_id, &managed, &book, runner, progress).await
        }
        Plan::CreateNamed {
            hostnames,
            workshop_id,
        } => {
            let _ = progress.send(ProgressLine::info(format!(
                "taken over from an allocator that stopped: making {}",
                hostnames.join(", ")
            )));
            create_named(hostnames, *workshop_id, &managed, &book, runner, progress).await
        }
        Plan::Destroy {
            hostnames,
            confirm_assigned,
        } => {
            check_assigned(&vms, Some(hostnames), *confirm_assigned).map_err(db)?;
            let desired: Vec<VmSpec> = managed
                .iter()
                .filter(|h| !hostnames.contains(h))
                .map(|hostname| book.existing(hostname))
                .collect();
            let result = provisioner.converge(desired, progress).await;
            let exist = match &result {
                Ok(exist) => exist.clone(),
                Err(_) => provisioner
                    .provisioned()
                    .await
                    .unwrap_or_else(|_| managed.clone()),
            };
            let gone: Vec<String> = hostnames
                .iter()
                .filter(|h| !exist.contains(h))
                .cloned()
                .collect();
            forget(writer, gone).await?;
            result.map(|_| ())
        }
        Plan::Replace { hostname, new_name } => {
            let result = replace(
                hostname,
                new_name.as_deref(),
                (&current, &managed),
                &book,
                runner,
                progress,
            )
            .await;
            if let Err(err) = &result {
                record_failed_replacement(writer, &vms, hostname, err).await;
            }
            result
        }
        Plan::DestroyAll { confirm_assigned } => {
            check_assigned(&vms, None, *confirm_assigned).map_err(db)?;
            let result = provisioner.destroy_all(progress).await;
            let exist = provisioner.provisioned().await.unwrap_or_default();
            let gone: Vec<String> = current
                .iter()
                .filter(|h| !exist.contains(h))
                .cloned()
                .collect();
            if result.is_ok() || !gone.is_empty() {
                send(
                    writer,
                    RemoveVms {
                        hostnames: if result.is_ok() {
                            current.clone()
                        } else {
                            gone
                        },
                    },
                )
                .await?;
            }
            result
        }
    }
}

/// Stores rows for the VMs `names`, each with a new token, before they boot (so each agent's
/// token works at once), and returns them as specs carrying those tokens. A row left by an
/// interrupted run holds a token that was never kept: it is replaced.
async fn store_with_new_tokens(
    writer: &Addr<DbWriter>,
    names: &[String],
    workshop_id: Option<i64>,
    book: &SpecBook,
) -> Result<Vec<VmSpec>, ProvisionError> {
    let minted: Vec<(String, String, String)> = names
        .iter()
        .map(|name| {
            let (token, hash) = new_vm_token();
            (name.clone(), token, hash)
        })
        .collect();
    let hashes: Vec<(String, String)> = minted
        .iter()
        .map(|(n, _, h)| (n.clone(), h.clone()))
        .collect();
    send(
        writer,
        AddProvisionedVms {
            vms: hashes.clone(),
            workshop_id,
        },
    )
    .await?;
    send(writer, SetVmTokens { vms: hashes }).await?;
    Ok(minted
        .into_iter()
        .map(|(hostname, token, _)| VmSpec {
            hostname,
            token: Some(token),
            settings: book.of_workshop(workshop_id),
        })
        .collect())
}

/// Removes the rows of these VMs (none: nothing is written).
async fn forget(writer: &Addr<DbWriter>, hostnames: Vec<String>) -> Result<(), ProvisionError> {
    if hostnames.is_empty() {
        return Ok(());
    }
    send(writer, RemoveVms { hostnames }).await
}

/// Makes the VMs named `names` exist. Their rows are stored before the VMs boot (so each
/// agent's token works at once); a name the provider already has is kept as it is, the
/// others get a new token. After a failure the rows of the VMs not made are removed, so
/// nothing half-done is left.
async fn create_named(
    names: &[String],
    workshop_id: Option<i64>,
    managed: &[String],
    book: &SpecBook,
    runner: &Runner,
    progress: crate::provisioning::ProgressSender,
) -> Result<(), ProvisionError> {
    let Runner {
        executor,
        writer,
        provisioner,
        ..
    } = runner;
    let missing: Vec<String> = names
        .iter()
        .filter(|name| !managed.contains(name))
        .cloned()
        .collect();
    let new = store_with_new_tokens(writer, &missing, workshop_id, book).await?;
    executor.do_send(CreationsStored);
    let mut desired: Vec<VmSpec> = managed
        .iter()
        .map(|hostname| book.existing(hostname))
        .collect();
    desired.extend(new);
    let result = provisioner.converge(desired, progress).await;
    if result.is_err() {
        // Nothing half-done: forget the new VMs that were not created.
        let exist = provisioner.provisioned().await.unwrap_or_default();
        let not_made: Vec<String> = names
            .iter()
            .filter(|n| !exist.contains(n))
            .cloned()
            .collect();
        forget(writer, not_made).await?;
    }
    result.map(|_| ())
}

/// Creates one VM in place of `broken` and destroys `broken`, in one converge: rows are
/// stored for the new VM first (so a crash can tidy up) and removed afterwards for whichever
/// of the two does not exist.
async fn replace(
    broken: &str,
    new_name: Option<&str>,
    (current, managed): (&[String], &[String]),
    book: &SpecBook,
    runner: &Runner,
    progress: crate::provisioning::ProgressSender,
) -> Result<(), ProvisionError> {
    let Runner {
        operation_id,
        writer,
        provisioner,
        settings,
        ..
    } = runner;
    if !current.iter().any(|h| h == broken) {
        return Err(ProvisionError(format!("no VM is named {broken}")));
    }
    let taken: Vec<String> = current.iter().chain(managed).cloned().collect();
    let name = match new_name {
        Some(name) => name.to_owned(),
        None => next_names(&settings.name_prefix, &taken, 1)
            .pop()
            .ok_or_else(|| ProvisionError("no name is left for the replacement".to_owned()))?,
    };
    send(
        writer,
        RecordOperationTargets {
            id: *operation_id,
            hostnames: vec![broken.to_owned(), name.clone()],
        },
    )
    .await?;
    let workshop_id = book.workshop_of(broken);
    let new = store_with_new_tokens(writer, std::slice::from_ref(&name), workshop_id, book).await?;
    let _ = progress.send(ProgressLine::info(format!(
        "replacing {broken} with {name}"
    )));
    let mut desired: Vec<VmSpec> = managed
        .iter()
        .filter(|h| h.as_str() != broken)
        .map(|hostname| book.existing(hostname))
        .collect();
    desired.extend(new);
    let result = provisioner.converge(desired, progress).await;
    let exist = match &result {
        Ok(exist) => exist.clone(),
        Err(_) => provisioner
            .provisioned()
            .await
            .unwrap_or_else(|_| managed.to_vec()),
    };
    // The broken VM's row goes when the provider destroyed it, or, for a VM the provider
    // never managed (one that enrolled by itself), once the replacement stands.
    let broken_gone = if managed.iter().any(|h| h == broken) {
        !exist.iter().any(|h| h == broken)
    } else {
        result.is_ok()
    };
    let mut gone: Vec<String> = Vec::new();
    if broken_gone {
        gone.push(broken.to_owned());
    }
    if !exist.contains(&name) {
        gone.push(name);
    }
    forget(writer, gone).await?;
    result.map(|_| ())
}

/// A replacement that failed is recorded on the broken VM, which goes back to unreachable:
/// its supervisor tries again after the recovery delay.
async fn record_failed_replacement(
    writer: &Addr<DbWriter>,
    vms: &[lablink_schema::vms::Vm],
    hostname: &str,
    err: &ProvisionError,
) {
    let Some(vm) = vms.iter().find(|vm| vm.hostname == hostname) else {
        return;
    };
    if vm.state() != LifecycleState::Replacing {
        return;
    }
    let change = ChangeVmState {
        hostname: hostname.to_owned(),
        read: ReadState::of(vm),
        change: Transition {
            to: LifecycleState::Unreachable,
            reason: format!("the replacement failed: {err}"),
            recovery_attempts: vm.recovery_attempts,
            next_action: Some("try the replacement again".to_owned()),
        },
        asked_by: None,
    };
    if send(writer, change).await.is_err() {
        tracing::error!(%hostname, "cannot record the failed replacement on the VM");
    }
}

/// Which workshop each VM belongs to and the provider variables each workshop's VMs get,
/// read once per operation, so every VM keeps its own settings in every converge.
struct SpecBook {
    workshop_of: HashMap<String, i64>,
    settings: HashMap<i64, BTreeMap<String, String>>,
}

impl SpecBook {
    async fn read(
        pool: &DbPool,
        vms: &[lablink_schema::vms::Vm],
    ) -> Result<Self, ProvisioningError> {
        let workshop_of: HashMap<String, i64> = vms
            .iter()
            .filter_map(|vm| vm.workshop_id.map(|id| (vm.hostname.clone(), id)))
            .collect();
        let pool = pool.clone();
        let workshops = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            Workshop::list(&mut conn).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| ProvisioningError::Database(e.to_string()))?
        .map_err(ProvisioningError::Database)?;
        Ok(SpecBook {
            workshop_of,
            settings: workshops.iter().map(|w| (w.id, w.vm_settings())).collect(),
        })
    }

    fn workshop_of(&self, hostname: &str) -> Option<i64> {
        self.workshop_of.get(hostname).copied()
    }

    fn of_workshop(&self, workshop_id: Option<i64>) -> BTreeMap<String, String> {
        workshop_id
            .and_then(|id| self.settings.get(&id).cloned())
            .unwrap_or_default()
    }

    /// A VM that exists and stays as it is.
    fn existing(&self, hostname: &str) -> VmSpec {
        VmSpec {
            hostname: hostname.to_owned(),
            token: None,
            settings: self.of_workshop(self.workshop_of(hostname)),
        }
    }
}

/// Sends a write to the database writer; only success or failure matters here.
pub(super) async fn send<M, T>(writer: &Addr<DbWriter>, message: M) -> Result<(), ProvisionError>
where
    M: Message<Result = Result<T, crate::db_writer::WriteError>> + Send + 'static,
    T: Send + 'static,
    DbWriter: Handler<M>,
{
    writer
        .send(message)
        .await
        .map_err(|e| ProvisionError(format!("database writer unavailable: {e}")))?
        .map(|_| ())
        .map_err(|e| ProvisionError(format!("database: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_names_fill_gaps_and_never_reuse_a_taken_one() {
        let existing = vec!["lab-1".to_owned(), "lab-3".to_owned()];
        assert_eq!(next_names("lab", &existing, 3), ["lab-2", "lab-4", "lab-5"]);
        assert!(next_names("lab", &[], 0).is_empty());
    }
}

//! `WorkshopScheduler`: carries out the workshops' planned actions when they fall due (warm-up
//! batches, opening, warnings, the end, teardown) and watches their spend against the cap.
//!
//! Each due action is a row taken under a lease (see
//! [`lablink_schema::workshops::actions`]), so with several allocators on one database each
//! action is done once, and one whose allocator died is taken over when its lease lapses.
//! An action found late (every allocator was down at its time) is first checked with
//! [`plan::still_makes_sense`]: a teardown still runs, a stale warning is skipped, and the
//! decision is written on the action.

use std::collections::BTreeSet;
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, WrapFuture};
use chrono::{NaiveDateTime, Utc};
use lablink_schema::audit_events::NewAuditEvent;
use lablink_schema::operations::Operation;
use lablink_schema::outbox::NewEvent;
use lablink_schema::wire::{OperationKind, WorkshopActionKind, WorkshopActionState, WorkshopState};
use lablink_schema::workshops::actions::WorkshopAction;
use lablink_schema::workshops::{plan, SpendAlert, Workshop};
use lablink_schema::{vm_usage, DbPool};

use crate::db_writer::DbWriter;
use crate::lease::{self, LEASE_DURATION};
use crate::provisioning_queue::{CreateVms, DestroyVms, ProvisioningQueue};
use crate::workshop_writes::{
    ActionEffects, FinishWorkshopAction, RaiseSpendAlert, TakeDueWorkshopActions,
};

/// How often due actions are looked for. Actions are planned to the second, so a second.
pub const TICK: Duration = Duration::from_secs(1);
/// How often spend is checked against the caps.
pub const SPEND_CHECK: Duration = Duration::from_secs(5);

/// Share of the cap at which admins are warned, in percent.
pub const SPEND_WARNING_PERCENT: i64 = 80;

/// The actor; see the module documentation.
pub struct WorkshopScheduler {
    pool: DbPool,
    writer: Addr<DbWriter>,
    queue: Addr<ProvisioningQueue>,
    /// A round is under way: the next tick waits for it.
    busy: bool,
}

impl std::fmt::Debug for WorkshopScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkshopScheduler").finish_non_exhaustive()
    }
}

impl WorkshopScheduler {
    pub fn new(pool: DbPool, writer: Addr<DbWriter>, queue: Addr<ProvisioningQueue>) -> Self {
        WorkshopScheduler {
            pool,
            writer,
            queue,
            busy: false,
        }
    }
}

impl Actor for WorkshopScheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(TICK, |scheduler, ctx| {
            if scheduler.busy {
                return;
            }
            scheduler.busy = true;
            let round = due_round(
                scheduler.pool.clone(),
                scheduler.writer.clone(),
                scheduler.queue.clone(),
            );
            ctx.spawn(round.into_actor(scheduler).map(|(), scheduler, _| {
                scheduler.busy = false;
            }));
        });
        ctx.run_interval(SPEND_CHECK, |scheduler, ctx| {
            let check = spend_round(scheduler.pool.clone(), scheduler.writer.clone());
            ctx.spawn(check.into_actor(scheduler));
        });
    }
}

/// When a lease taken now runs out.
fn lease_end() -> NaiveDateTime {
    Utc::now().naive_utc()
        + chrono::Duration::from_std(LEASE_DURATION)
            .unwrap_or_else(|_| chrono::Duration::seconds(30))
}

/// Reads off the event loop.
async fn read<T, F>(pool: &DbPool, query: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(&mut lablink_schema::DbConnection) -> diesel::QueryResult<T> + Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        query(&mut conn).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Takes the due actions and does each.
async fn due_round(pool: DbPool, writer: Addr<DbWriter>, queue: Addr<ProvisioningQueue>) {
    let take = TakeDueWorkshopActions {
        owner: lease::this_process().to_owned(),
        until: lease_end(),
    };
    let taken = match writer.send(take).await {
        Ok(Ok(taken)) => taken,
        Ok(Err(err)) => {
            tracing::error!(error = %err, "cannot take the due workshop actions");
            return;
        }
        Err(_) => return,
    };
    for action in taken {
        let (state, outcome, effects) = match carry_out(&pool, &queue, &action).await {
            Ok(Done { outcome, effects }) => (WorkshopActionState::Done, outcome, effects),
            Err(Undone::Skipped(why)) => {
                (WorkshopActionState::Skipped, why, ActionEffects::default())
            }
            Err(Undone::Failed(why)) => {
                (WorkshopActionState::Failed, why, ActionEffects::default())
            }
        };
        tracing::info!(
            workshop_id = action.workshop_id,
            action = %action.kind,
            state = state.as_str(),
            %outcome,
            "workshop action"
        );
        let finish = FinishWorkshopAction {
            action,
            owner: lease::this_process().to_owned(),
            state,
            outcome,
            effects,
        };
        match writer.send(finish).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                tracing::warn!("a workshop action was taken over before it was recorded")
            }
            _ => tracing::error!("cannot record a workshop action's outcome"),
        }
    }
}

/// An action done: what it did, and what else changes with its record.
struct Done {
    outcome: String,
    effects: ActionEffects,
}

/// An action not done: skipped (it no longer made sense) or failed.
enum Undone {
    Skipped(String),
    Failed(String),
}

impl From<String> for Undone {
    fn from(err: String) -> Self {
        Undone::Failed(err)
    }
}

async fn carry_out(
    pool: &DbPool,
    queue: &Addr<ProvisioningQueue>,
    action: &WorkshopAction,
) -> Result<Done, Undone> {
    let id = action.workshop_id;
    let Some(workshop) = read(pool, move |conn| Workshop::find(conn, id)).await? else {
        return Err(Undone::Skipped("the workshop is gone".to_owned()));
    };
    let Some(kind) = action.kind() else {
        return Err(Undone::Skipped(format!(
            "this allocator does not know the action `{}`",
            action.kind
        )));
    };
    let now = Utc::now().naive_utc();
    plan::still_makes_sense(kind, action.amount, action.due_at, workshop.ends_at, now)
        .map_err(Undone::Skipped)?;
    let event = |name: &str, subject: String| NewEvent::new(name, subject).for_workshop(id);
    match kind {
        WorkshopActionKind::WarmUp => warm_up(pool, queue, &workshop, action.amount).await,
        WorkshopActionKind::Open => Ok(Done {
            outcome: "opened to participants".to_owned(),
            effects: ActionEffects {
                state: Some((
                    vec![WorkshopState::Scheduled, WorkshopState::WarmingUp],
                    WorkshopState::Open,
                )),
                event: Some(event(
                    "workshop.open",
                    format!("Workshop \"{}\" is open", workshop.name),
                )),
                ..ActionEffects::default()
            },
        }),
        WorkshopActionKind::Warning => {
            let notice = format!(
                "This workshop ends in {}. Save your work now: the VMs are {} at the end.",
                plan::minutes(u64::try_from(action.amount).unwrap_or(0)),
                if workshop.keep_after_end_secs > 0 {
                    "kept only a little while"
                } else {
                    "removed"
                }
            );
            Ok(Done {
                outcome: format!("warned: {} minutes left", action.amount),
                effects: ActionEffects {
                    notice: Some(Some(notice)),
                    event: Some(
                        event(
                            "workshop.warning",
                            format!(
                                "Workshop \"{}\" ends in {}",
                                workshop.name,
                                plan::minutes(u64::try_from(action.amount).unwrap_or(0))
                            ),
                        )
                        .with_details(serde_json::json!({ "minutes_left": action.amount })),
                    ),
                    ..ActionEffects::default()
                },
            })
        }
        WorkshopActionKind::End => Ok(Done {
            outcome: "ended: new participants are refused".to_owned(),
            effects: ActionEffects {
                state: Some((
                    vec![
                        WorkshopState::Scheduled,
                        WorkshopState::WarmingUp,
                        WorkshopState::Open,
                    ],
                    WorkshopState::Ended,
                )),
                notice: Some(Some("This workshop has ended.".to_owned())),
                event: Some(event(
                    "workshop.ended",
                    format!("Workshop \"{}\" has ended", workshop.name),
                )),
                ..ActionEffects::default()
            },
        }),
        WorkshopActionKind::Teardown => teardown(pool, queue, &workshop).await,
    }
}

/// VMs the workshop has or is getting: its rows, and what its unfinished creations will
/// add. Counted this way, a warm-up batch run twice asks for nothing the second time.
async fn vms_had_or_coming(pool: &DbPool, workshop_id: i64) -> Result<i64, String> {
    read(pool, move |conn| {
        let mut names: BTreeSet<String> = Workshop::vm_hostnames(conn, workshop_id)?
            .into_iter()
            .collect();
        let mut unnamed = 0i64;
        for operation in Operation::unfinished_for_workshop(conn, workshop_id)? {
            if operation.kind() != OperationKind::Create {
                continue;
            }
            let targets = operation.target_hostnames();
            if targets.is_empty() {
                unnamed += i64::from(operation.requested_count.unwrap_or(0));
            }
            names.extend(targets);
        }
        Ok(i64::try_from(names.len()).unwrap_or(i64::MAX) + unnamed)
    })
    .await
}

async fn warm_up(
    pool: &DbPool,
    queue: &Addr<ProvisioningQueue>,
    workshop: &Workshop,
    amount: i32,
) -> Result<Done, Undone> {
    if workshop.spend_alert() == SpendAlert::Reached {
        return Err(Undone::Skipped(
            "the spend cap is reached: no more VMs are made".to_owned(),
        ));
    }
    let have = vms_had_or_coming(pool, workshop.id).await?;
    let need = i64::from(amount) - have;
    let warming = ActionEffects {
        state: Some((vec![WorkshopState::Scheduled], WorkshopState::WarmingUp)),
        event: Some(
            NewEvent::new(
                "workshop.warming_up",
                format!(
                    "Workshop \"{}\" is warming up: {amount} of {} VMs on the way",
                    workshop.name,
                    workshop.vm_target()
                ),
            )
            .for_workshop(workshop.id),
        ),
        event_only_on_change: true,
        ..ActionEffects::default()
    };
    if need <= 0 {
        return Ok(Done {
            outcome: format!("nothing to make: the workshop has {have} VMs"),
            effects: warming,
        });
    }
    let count = u32::try_from(need).unwrap_or(u32::MAX);
    let operation = queue
        .send(CreateVms {
            count,
            requested_by: format!("workshop {}", workshop.id),
            workshop_id: Some(workshop.id),
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| Undone::Failed(format!("cannot make {count} VMs: {e}")))?;
    Ok(Done {
        outcome: format!(
            "asked for {count} VMs (operation {}); the workshop will have {amount}",
            operation.id
        ),
        effects: warming,
    })
}

async fn teardown(
    pool: &DbPool,
    queue: &Addr<ProvisioningQueue>,
    workshop: &Workshop,
) -> Result<Done, Undone> {
    let id = workshop.id;
    let hostnames = read(pool, move |conn| Workshop::vm_hostnames(conn, id)).await?;
    let torn_down = ActionEffects {
        state: Some((vec![WorkshopState::Ended], WorkshopState::TornDown)),
        event: Some(
            NewEvent::new(
                "workshop.torn_down",
                format!(
                    "Workshop \"{}\": {} VMs destroyed",
                    workshop.name,
                    hostnames.len()
                ),
            )
            .for_workshop(id),
        ),
        audit: Some(NewAuditEvent {
            occurred_at: Utc::now().naive_utc(),
            actor: format!("workshop {id}"),
            action: "workshop.teardown".to_owned(),
            target: Some(format!("workshop {id}")),
            detail: Some(format!("{} VMs", hostnames.len())),
        }),
        ..ActionEffects::default()
    };
    if hostnames.is_empty() {
        return Ok(Done {
            outcome: "no VMs were left to destroy".to_owned(),
            effects: torn_down,
        });
    }
    let count = hostnames.len();
    let operation = queue
        .send(DestroyVms {
            hostnames,
            confirm_assigned: true,
            requested_by: format!("workshop {id}"),
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| Undone::Failed(format!("cannot destroy the workshop's VMs: {e}")))?;
    Ok(Done {
        outcome: format!("destroying {count} VMs (operation {})", operation.id),
        effects: torn_down,
    })
}

/// A workshop's spend so far, in millionths of the currency.
pub fn spend_micros(vm_seconds: i64, price_per_vm_hour_micros: i64) -> i64 {
    i64::try_from(i128::from(vm_seconds) * i128::from(price_per_vm_hour_micros) / 3600)
        .unwrap_or(i64::MAX)
}

/// Checks each capped workshop's spend; raises its alert at 80 % and at the cap.
async fn spend_round(pool: DbPool, writer: Addr<DbWriter>) {
    let workshops = match read(&pool, Workshop::list_running).await {
        Ok(workshops) => workshops,
        Err(err) => {
            tracing::error!(error = %err, "cannot read the workshops' spend");
            return;
        }
    };
    for workshop in workshops {
        let Some(cap) = workshop.spend_cap_micros else {
            continue;
        };
        if workshop.spend_alert() == SpendAlert::Reached {
            continue;
        }
        let id = workshop.id;
        let now = Utc::now().naive_utc();
        let Ok(seconds) = read(&pool, move |conn| vm_usage::vm_seconds(conn, id, now)).await else {
            continue;
        };
        let spent = spend_micros(seconds, workshop.price_per_vm_hour_micros);
        let target = if spent >= cap {
            SpendAlert::Reached
        } else if spent.saturating_mul(100) >= cap.saturating_mul(SPEND_WARNING_PERCENT) {
            SpendAlert::Warned
        } else {
            continue;
        };
        // A check that finds the cap passed also announces the warning, if it was not yet:
        // admins hear of each threshold once, however fast the spend went.
        for level in [SpendAlert::Warned, SpendAlert::Reached] {
            if level > target || level <= workshop.spend_alert() {
                continue;
            }
            raise_spend_alert(&writer, &workshop, level, spent, cap, seconds, now).await;
        }
    }
}

/// Raises one spend alert, with its notification, audit record and (at the cap, if the
/// workshop says so) a teardown.
async fn raise_spend_alert(
    writer: &Addr<DbWriter>,
    workshop: &Workshop,
    level: SpendAlert,
    spent: i64,
    cap: i64,
    seconds: i64,
    now: NaiveDateTime,
) {
    let id = workshop.id;
    let (kind, subject) = match level {
        SpendAlert::Reached => (
            "workshop.spend_cap_reached",
            format!(
                "Workshop \"{}\" reached its spend cap: no more VMs are made{}",
                workshop.name,
                if workshop.teardown_at_cap {
                    ", and its VMs are destroyed"
                } else {
                    ""
                }
            ),
        ),
        _ => (
            "workshop.spend_warning",
            format!(
                "Workshop \"{}\" has spent {SPEND_WARNING_PERCENT} % of its cap",
                workshop.name
            ),
        ),
    };
    let details = serde_json::json!({
        "spent": spent as f64 / 1e6,
        "cap": cap as f64 / 1e6,
        "vm_hours": seconds as f64 / 3600.0,
    });
    let raise = RaiseSpendAlert {
        workshop_id: id,
        level,
        event: NewEvent::new(kind, subject.clone())
            .for_workshop(id)
            .with_details(details),
        audit: NewAuditEvent {
            occurred_at: now,
            actor: "system".to_owned(),
            action: format!("workshop.spend_{}", level.as_str()),
            target: Some(format!("workshop {id}")),
            detail: Some(subject),
        },
        teardown: level == SpendAlert::Reached && workshop.teardown_at_cap,
    };
    if !matches!(writer.send(raise).await, Ok(Ok(_))) {
        tracing::error!(workshop_id = id, "cannot record the spend alert");
    }
}

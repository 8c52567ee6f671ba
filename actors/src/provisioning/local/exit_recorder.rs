//! Writes what the local agents' exits mean for their VMs: each reported exit takes its VM out
//! of the pool at once ([`lifecycle::agent_exited`]), with the exit status and the agent's
//! last log lines as the state's reason, instead of leaving it to the boot or heartbeat
//! deadline. The VM's supervisor then recovers it by the usual rules.

use actix::Addr;
use chrono::Utc;
use lablink_schema::vm_lifecycle::ReadState;
use lablink_schema::vms::Vm;
use lablink_schema::DbPool;
use tokio::sync::mpsc;

use super::AgentExit;
use crate::db_writer::DbWriter;
use crate::lifecycle::{self, LifecyclePolicy};
use crate::lifecycle_writes::ChangeVmState;

/// Records every exit received on `exits` until the sender is gone.
pub async fn record_agent_exits(
    mut exits: mpsc::UnboundedReceiver<AgentExit>,
    pool: DbPool,
    writer: Addr<DbWriter>,
    policy: LifecyclePolicy,
) {
    while let Some(exit) = exits.recv().await {
        if let Err(err) = record(&exit, &pool, &writer, &policy).await {
            tracing::error!(hostname = %exit.hostname, error = %err, "cannot record a local agent's exit");
        }
    }
}

/// Times an exit is decided again when the VM's state changed between the read and the
/// write (its supervisor moved it from booting to ready at that moment, say): the exit must
/// not be lost to that race.
const STALE_RETRIES: usize = 5;

async fn record(
    exit: &AgentExit,
    pool: &DbPool,
    writer: &Addr<DbWriter>,
    policy: &LifecyclePolicy,
) -> Result<(), String> {
    for _ in 0..STALE_RETRIES {
        if record_once(exit, pool, writer, policy).await? {
            return Ok(());
        }
    }
    Err(format!(
        "the VM's state kept changing; the exit was not recorded after {STALE_RETRIES} tries"
    ))
}

/// Records the exit on the VM as read now; `false` when the state changed meanwhile.
async fn record_once(
    exit: &AgentExit,
    pool: &DbPool,
    writer: &Addr<DbWriter>,
    policy: &LifecyclePolicy,
) -> Result<bool, String> {
    let hostname = exit.hostname.clone();
    let pool = pool.clone();
    let vm = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        Vm::find_by_hostname(&mut conn, &hostname).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    let Some(vm) = vm else {
        return Ok(true);
    };
    let now = Utc::now().naive_utc();
    let Some(change) = lifecycle::agent_exited(&vm, policy, now, exit.reason()) else {
        return Ok(true);
    };
    let written = writer
        .send(ChangeVmState {
            hostname: exit.hostname.clone(),
            read: ReadState::of(&vm),
            change,
            asked_by: None,
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(written.is_some())
}

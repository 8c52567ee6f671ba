//! The `vm_usage` table: every provider VM's life (made, ready, gone), kept after the VM
//! itself is gone, for measured boot times (warm-up plans) and VM-hours (workshop spend).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::schema::vm_usage;
use crate::DbConnection;

/// Boot times looked at for the estimate: the most recent ones.
const BOOT_SAMPLES: i64 = 50;

/// Records that these VMs were made now, for `workshop_id` (or none).
pub fn made(
    conn: &mut DbConnection,
    hostnames: &[String],
    workshop_id: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    if hostnames.is_empty() {
        return Ok(0);
    }
    // A row left open by an interrupted run of the same name is closed first.
    gone(conn, hostnames, now)?;
    let rows: Vec<_> = hostnames
        .iter()
        .map(|hostname| {
            (
                vm_usage::hostname.eq(hostname),
                vm_usage::workshop_id.eq(workshop_id),
                vm_usage::created_at.eq(now),
            )
        })
        .collect();
    on_backend!(conn, |c| diesel::insert_into(vm_usage::table)
        .values(&rows)
        .execute(c))
}

/// Records the first time the VM was ready.
pub fn ready(conn: &mut DbConnection, hostname: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        vm_usage::table
            .filter(vm_usage::hostname.eq(hostname))
            .filter(vm_usage::destroyed_at.is_null())
            .filter(vm_usage::ready_at.is_null()),
    )
    .set(vm_usage::ready_at.eq(now))
    .execute(conn)
}

/// Records that these VMs are gone.
pub fn gone(
    conn: &mut DbConnection,
    hostnames: &[String],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        vm_usage::table
            .filter(vm_usage::hostname.eq_any(hostnames))
            .filter(vm_usage::destroyed_at.is_null()),
    )
    .set(vm_usage::destroyed_at.eq(now))
    .execute(conn)
}

/// How long a VM takes to be ready: the 90th percentile of the recent measured boots, or
/// `None` before any was measured.
pub fn boot_estimate(conn: &mut DbConnection) -> QueryResult<Option<Duration>> {
    let rows: Vec<(NaiveDateTime, Option<NaiveDateTime>)> = vm_usage::table
        .filter(vm_usage::ready_at.is_not_null())
        .order(vm_usage::id.desc())
        .limit(BOOT_SAMPLES)
        .select((vm_usage::created_at, vm_usage::ready_at))
        .load(conn)?;
    let mut boots: Vec<Duration> = rows
        .into_iter()
        .filter_map(|(made, ready)| ready.map(|ready| (ready - made).max(Duration::zero())))
        .collect();
    if boots.is_empty() {
        return Ok(None);
    }
    boots.sort();
    let at = (boots.len() * 9).div_ceil(10).saturating_sub(1);
    Ok(Some(boots[at]))
}

/// The workshop's VM time so far, in seconds: each VM from when it was made until it was
/// gone (or `now`).
pub fn vm_seconds(
    conn: &mut DbConnection,
    workshop_id: i64,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    let rows: Vec<(NaiveDateTime, Option<NaiveDateTime>)> = vm_usage::table
        .filter(vm_usage::workshop_id.eq(workshop_id))
        .select((vm_usage::created_at, vm_usage::destroyed_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(made, gone)| (gone.unwrap_or(now) - made).num_seconds().max(0))
        .sum())
}

/// The workshop's VMs that live now.
pub fn live_count(conn: &mut DbConnection, workshop_id: i64) -> QueryResult<i64> {
    vm_usage::table
        .filter(vm_usage::workshop_id.eq(workshop_id))
        .filter(vm_usage::destroyed_at.is_null())
        .count()
        .get_result(conn)
}

/// The boot of every VM that is not gone: `(hostname, made, first ready)`.
pub fn live_boots(
    conn: &mut DbConnection,
) -> QueryResult<Vec<(String, NaiveDateTime, Option<NaiveDateTime>)>> {
    vm_usage::table
        .filter(vm_usage::destroyed_at.is_null())
        .select((vm_usage::hostname, vm_usage::created_at, vm_usage::ready_at))
        .load(conn)
}

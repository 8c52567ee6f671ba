//! The `participant_sessions` table: one row per assignment of a VM, with when each step of
//! the participant's journey happened and the usage figures the agent reported. A row opens
//! with the claim, in the claim's statement's transaction, and closes when the assignment
//! ends; it is kept afterwards for the instructor's view and the exports. Where a session
//! stands is judged in [`steps`].

use std::sync::LazyLock;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::schema::participant_sessions;
use crate::vms::Vm;
use crate::wire::SessionFigures;
use crate::DbConnection;

pub mod steps;

/// Sessions looked at for the usual time of each step: the most recent ones.
const USUAL_SAMPLES: i64 = 200;

/// A participant's session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = participant_sessions)]
pub struct ParticipantSession {
    pub id: i64,
    pub hostname: String,
    pub assignment_seq: i64,
    pub email: String,
    pub workshop_id: Option<i64>,
    pub claimed_at: NaiveDateTime,
    pub command_received_at: Option<NaiveDateTime>,
    pub desktop_up_at: Option<NaiveDateTime>,
    pub software_first_used_at: Option<NaiveDateTime>,
    pub ended_at: Option<NaiveDateTime>,
    pub end_reason: Option<String>,
    pub software_secs: i64,
    pub gpu_measured: bool,
    pub gpu_active_secs: i64,
    pub gpu_peak_utilization: i32,
    pub gpu_peak_memory_mib: i64,
    pub last_activity_at: Option<NaiveDateTime>,
    pub step_changed_at: NaiveDateTime,
}

/// Why a session ended, as stored in `end_reason`.
pub mod end_reason {
    /// An admin or the participant's limits released the VM.
    pub const RELEASED: &str = "released";
    /// The VM broke and its participant took another.
    pub const VM_FAILED: &str = "vm_failed";
    /// The VM was destroyed.
    pub const DESTROYED: &str = "destroyed";
    /// The VM was assigned again without the end being seen (never on one allocator).
    pub const REASSIGNED: &str = "reassigned";
}

/// Opens a session for each newly claimed VM (in the claim's transaction).
pub fn opened(conn: &mut DbConnection, claimed: &[Vm], now: NaiveDateTime) -> QueryResult<usize> {
    let claimed: Vec<&Vm> = claimed
        .iter()
        .filter(|vm| vm.user_email.is_some())
        .collect();
    if claimed.is_empty() {
        return Ok(0);
    }
    let hostnames: Vec<String> = claimed.iter().map(|vm| vm.hostname.clone()).collect();
    close(conn, &hostnames, end_reason::REASSIGNED, now)?;
    let rows: Vec<_> = claimed
        .iter()
        .map(|vm| {
            (
                participant_sessions::hostname.eq(&vm.hostname),
                participant_sessions::assignment_seq.eq(vm.assignment_seq),
                participant_sessions::email.eq(vm.user_email.clone().unwrap_or_default()),
                participant_sessions::workshop_id.eq(vm.workshop_id),
                participant_sessions::claimed_at.eq(vm.assigned_at.unwrap_or(now)),
                participant_sessions::step_changed_at.eq(now),
            )
        })
        .collect();
    on_backend!(conn, |c| diesel::insert_into(participant_sessions::table)
        .values(&rows)
        .execute(c))
}

/// Ends the open sessions of these VMs, saying why.
pub fn close(
    conn: &mut DbConnection,
    hostnames: &[String],
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        participant_sessions::table
            .filter(participant_sessions::hostname.eq_any(hostnames))
            .filter(participant_sessions::ended_at.is_null()),
    )
    .set((
        participant_sessions::ended_at.eq(now),
        participant_sessions::end_reason.eq(reason),
        participant_sessions::step_changed_at.eq(now),
    ))
    .execute(conn)
}

/// The one statement a heartbeat with figures costs: steps seen for the first time get
/// `now`, counters only grow, peaks only rise. `$`-numbered; SQLite gets `?`-numbered.
fn record_sql(greatest: &str) -> String {
    format!(
        "UPDATE participant_sessions SET \
         command_received_at = COALESCE(command_received_at, CASE WHEN $3 THEN $1 END), \
         desktop_up_at = COALESCE(desktop_up_at, CASE WHEN $4 THEN $1 END), \
         software_first_used_at = COALESCE(software_first_used_at, CASE WHEN $5 THEN $1 END), \
         step_changed_at = CASE WHEN (command_received_at IS NULL AND $3) \
           OR (desktop_up_at IS NULL AND $4) OR (software_first_used_at IS NULL AND $5) \
           THEN $1 ELSE step_changed_at END, \
         software_secs = {greatest}(software_secs, $6), \
         gpu_measured = (gpu_measured OR $7), \
         gpu_active_secs = {greatest}(gpu_active_secs, $8), \
         gpu_peak_utilization = {greatest}(gpu_peak_utilization, $9), \
         gpu_peak_memory_mib = {greatest}(gpu_peak_memory_mib, $10), \
         last_activity_at = COALESCE($11, last_activity_at) \
         WHERE hostname = $2 AND assignment_seq = $12 AND ended_at IS NULL"
    )
}

static RECORD_POSTGRES: LazyLock<String> = LazyLock::new(|| record_sql("GREATEST"));
static RECORD_SQLITE: LazyLock<String> = LazyLock::new(|| record_sql("MAX").replace('$', "?"));

/// Records a heartbeat's figures on the VM's open session, if they are that session's.
/// Returns whether a session took them.
pub fn record(
    conn: &mut DbConnection,
    hostname: &str,
    figures: &SessionFigures,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamp};
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let gpu = figures.gpu;
    let last_activity = figures
        .idle_secs
        .map(|idle| now - Duration::seconds(clamp(idle).min(365 * 86_400)));
    macro_rules! bound {
        ($sql:expr) => {
            diesel::sql_query($sql)
                .bind::<Timestamp, _>(now)
                .bind::<Text, _>(hostname)
                .bind::<Bool, _>(figures.command_received)
                .bind::<Bool, _>(figures.desktop_up)
                .bind::<Bool, _>(figures.software_used)
                .bind::<BigInt, _>(clamp(figures.software_secs))
                .bind::<Bool, _>(gpu.is_some())
                .bind::<BigInt, _>(clamp(gpu.map_or(0, |g| g.active_secs)))
                .bind::<Integer, _>(
                    i32::try_from(gpu.map_or(0, |g| g.peak_utilization)).unwrap_or(i32::MAX),
                )
                .bind::<BigInt, _>(clamp(gpu.map_or(0, |g| g.peak_memory_mib)))
                .bind::<Nullable<Timestamp>, _>(last_activity)
                .bind::<BigInt, _>(figures.assignment_id)
        };
    }
    let changed = match conn {
        DbConnection::Pg(c) => bound!(RECORD_POSTGRES.as_str()).execute(c)?,
        DbConnection::Sqlite(c) => bound!(RECORD_SQLITE.as_str()).execute(c)?,
    };
    Ok(changed == 1)
}

/// The session of this assignment of the VM, open or not.
pub fn of_assignment(
    conn: &mut DbConnection,
    hostname: &str,
    assignment_seq: i64,
) -> QueryResult<Option<ParticipantSession>> {
    participant_sessions::table
        .filter(participant_sessions::hostname.eq(hostname))
        .filter(participant_sessions::assignment_seq.eq(assignment_seq))
        .order(participant_sessions::id.desc())
        .select(ParticipantSession::as_select())
        .first(conn)
        .optional()
}

/// Every session of a workshop (`None`: of no workshop), oldest first.
pub fn of_workshop(
    conn: &mut DbConnection,
    workshop_id: Option<i64>,
) -> QueryResult<Vec<ParticipantSession>> {
    let query = participant_sessions::table
        .select(ParticipantSession::as_select())
        .order(participant_sessions::id.asc())
        .into_boxed();
    match workshop_id {
        Some(id) => query.filter(participant_sessions::workshop_id.eq(id)),
        None => query.filter(participant_sessions::workshop_id.is_null()),
    }
    .load(conn)
}

/// When the workshop's sessions last changed step, and how many there are: a live view
/// re-renders only when this moves.
pub fn last_change(
    conn: &mut DbConnection,
    workshop_id: Option<i64>,
) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    use diesel::dsl::{count_star, max};
    let query = participant_sessions::table
        .select((count_star(), max(participant_sessions::step_changed_at)))
        .into_boxed();
    match workshop_id {
        Some(id) => query.filter(participant_sessions::workshop_id.eq(id)),
        None => query.filter(participant_sessions::workshop_id.is_null()),
    }
    .first(conn)
}

/// Sessions claimed in `[from, to)` (either end open), of one workshop or of all, oldest
/// first: the participants export.
pub fn claimed_between(
    conn: &mut DbConnection,
    workshop_id: Option<i64>,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> QueryResult<Vec<ParticipantSession>> {
    let mut query = participant_sessions::table
        .select(ParticipantSession::as_select())
        .order(participant_sessions::id.asc())
        .into_boxed();
    if let Some(id) = workshop_id {
        query = query.filter(participant_sessions::workshop_id.eq(id));
    }
    if let Some(from) = from {
        query = query.filter(participant_sessions::claimed_at.ge(from));
    }
    if let Some(to) = to {
        query = query.filter(participant_sessions::claimed_at.lt(to));
    }
    query.load(conn)
}

/// How long each step usually takes after the one before, measured over the most recent
/// sessions that reached it: see [`steps::UsualTimes`].
pub fn usual_times(conn: &mut DbConnection) -> QueryResult<steps::UsualTimes> {
    let recent: Vec<ParticipantSession> = participant_sessions::table
        .filter(participant_sessions::command_received_at.is_not_null())
        .order(participant_sessions::id.desc())
        .limit(USUAL_SAMPLES)
        .select(ParticipantSession::as_select())
        .load(conn)?;
    Ok(steps::UsualTimes::measure(&recent))
}

/// The lifecycle state of each of these VMs that exists, as `(hostname, state)`.
pub fn vm_states(
    conn: &mut DbConnection,
    hostnames: &[String],
) -> QueryResult<Vec<(String, String)>> {
    use crate::schema::vms;
    vms::table
        .filter(vms::hostname.eq_any(hostnames))
        .select((vms::hostname, vms::state))
        .load(conn)
}

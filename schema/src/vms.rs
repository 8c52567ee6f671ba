//! The `vms` table: one row per lab VM, its model and its queries.

use std::fmt;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::journey;
use crate::schema::vms;
use crate::wire::{GpuHealth, LifecycleState, VmStatus};
use crate::DbConnection;

diesel::define_sql_function! {
    /// SQL `COALESCE` over two nullable texts (same spelling on both backends).
    fn coalesce(first: diesel::sql_types::Nullable<diesel::sql_types::Text>, second: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// The free-VM rule, the one place it is written: a VM may be given to a researcher when
/// it is running, unassigned, its GPU is reported healthy or absent
/// ([`GpuHealth::ASSIGNABLE`]; a VM whose GPU has not reported yet waits), and its supervisor
/// has no verdict against it ([`LifecycleState::BLOCKS_ASSIGNMENT`]: not unreachable, failed
/// to boot, quarantined, recovering, being replaced or destroyed). [`Vm::is_free`]
/// says it of a row, `free_vms!` as a diesel query and [`FREE_VM_SQL`] as SQL for the claim
/// statements; the test `the_free_vm_rule_is_one_rule` holds the three to each other.
macro_rules! free_vm_sql {
    () => {
        "status = 'running' AND user_email IS NULL AND gpu_health IN ('Healthy', 'N/A') \
         AND state NOT IN ('unreachable', 'boot_failed', 'quarantined', 'recovering', \
         'replacing', 'destroyed')"
    };
}

/// [`free_vm_sql!`] as a value (for the test that ties it to [`GpuHealth::ASSIGNABLE`]).
pub const FREE_VM_SQL: &str = free_vm_sql!();

/// The free VMs as a diesel query (see [`free_vm_sql!`]). As a macro because the locking
/// clause differs per backend, which changes the expression's type.
macro_rules! free_vms {
    () => {
        vms::table
            .filter(vms::status.eq(VmStatus::Running.as_str()))
            .filter(vms::user_email.is_null())
            .filter(vms::gpu_health.eq_any(GpuHealth::ASSIGNABLE.map(GpuHealth::as_str)))
            .filter(
                vms::state.ne_all(LifecycleState::BLOCKS_ASSIGNMENT.map(LifecycleState::as_str)),
            )
    };
}

/// The claim on PostgreSQL. The inner `SELECT … FOR UPDATE SKIP LOCKED` locks one free row,
/// skipping rows other claims hold, and the outer `UPDATE` takes it; the outer
/// `user_email IS NULL` re-checks the row as locked.
const CLAIM_FREE_POSTGRES: &str = concat!(
    "\
    UPDATE vms SET user_email = $1, crd_command = $2, pin = $3, in_use = FALSE, \
        assigned_at = $4, updated_at = $4, assignment_seq = assignment_seq + 1, claimed_by = $5 \
    WHERE user_email IS NULL AND hostname = ( \
        SELECT hostname FROM vms \
        WHERE workshop_id IS NOT DISTINCT FROM $6 AND ",
    free_vm_sql!(),
    " \
        ORDER BY hostname LIMIT 1 FOR UPDATE SKIP LOCKED) \
    RETURNING *"
);

/// The claim on SQLite: the same statement without row locks, which SQLite does not have and
/// does not need (one writer thread).
const CLAIM_FREE_SQLITE: &str = concat!(
    "\
    UPDATE vms SET user_email = ?1, crd_command = ?2, pin = ?3, in_use = 0, \
        assigned_at = ?4, updated_at = ?4, assignment_seq = assignment_seq + 1, claimed_by = ?5 \
    WHERE user_email IS NULL AND hostname = ( \
        SELECT hostname FROM vms \
        WHERE workshop_id IS ?6 AND ",
    free_vm_sql!(),
    " \
        ORDER BY hostname LIMIT 1) \
    RETURNING *"
);

/// Many claims in one statement on PostgreSQL: the `n`-th free row (in hostname order, rows
/// locked by other transactions skipped) goes to the `n`-th requester. One index scan serves
/// them all, where one claim at a time would walk past the rows claimed before it.
const CLAIM_MANY_POSTGRES: &str = concat!(
    "\
    WITH wanted AS ( \
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $6::text[]) \
            WITH ORDINALITY AS w(email, command, pin, claimed_by, n)), \
    locked AS ( \
        SELECT hostname FROM vms \
        WHERE workshop_id IS NOT DISTINCT FROM $7 AND ",
    free_vm_sql!(),
    " \
        ORDER BY hostname LIMIT $4 FOR UPDATE SKIP LOCKED), \
    numbered AS ( \
        SELECT hostname, row_number() OVER (ORDER BY hostname) AS n FROM locked) \
    UPDATE vms SET user_email = wanted.email, crd_command = wanted.command, pin = wanted.pin, \
        in_use = FALSE, assigned_at = $5, updated_at = $5, \
        assignment_seq = vms.assignment_seq + 1, claimed_by = wanted.claimed_by \
    FROM numbered JOIN wanted ON wanted.n = numbered.n \
    WHERE vms.hostname = numbered.hostname AND vms.user_email IS NULL \
    RETURNING vms.*"
);

/// The columns that make a VM unassigned (no researcher, command, PIN, claimer, time or
/// use), for every statement that ends an assignment.
macro_rules! no_assignment {
    () => {
        (
            vms::user_email.eq(None::<String>),
            vms::crd_command.eq(None::<String>),
            vms::pin.eq(None::<String>),
            vms::claimed_by.eq(None::<String>),
            vms::assigned_at.eq(None::<NaiveDateTime>),
            vms::in_use.eq(false),
            vms::last_active_at.eq(None::<NaiveDateTime>),
            vms::session_notice.eq(None::<String>),
            vms::reserved_until.eq(None::<NaiveDateTime>),
        )
    };
}
pub(crate) use no_assignment;

/// A VM's current assignment, as its agent receives it.
#[derive(Clone, PartialEq, Eq)]
pub struct CurrentAssignment {
    pub assignment_id: i64,
    pub pin: String,
    pub command: String,
}

impl fmt::Debug for CurrentAssignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentAssignment")
            .field("assignment_id", &self.assignment_id)
            .finish_non_exhaustive()
    }
}

/// How many VMs share one state, as [`Vm::count_by_state`] counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmStateCount {
    pub status: String,
    pub assigned: bool,
    pub in_use: bool,
    pub count: i64,
}

/// A lab VM as stored.
#[derive(Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = vms, primary_key(hostname))]
pub struct Vm {
    pub hostname: String,
    /// A [`VmStatus`] spelling; see [`Vm::status`].
    pub status: String,
    pub user_email: Option<String>,
    pub crd_command: Option<String>,
    pub pin: Option<String>,
    /// How many times this VM has been assigned; the current assignment's id.
    pub assignment_seq: i64,
    pub in_use: bool,
    /// A [`GpuHealth`] spelling, or `None` until the agent first reports.
    pub gpu_health: Option<String>,
    pub token_hash: Option<String>,
    pub assigned_at: Option<NaiveDateTime>,
    pub last_heartbeat_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The SHA-256 of the browser key that claimed the current assignment: that browser may
    /// see the assignment again.
    pub claimed_by: Option<String>,
    /// A [`LifecycleState`] spelling, as the VM's supervisor last decided; see
    /// [`Vm::state`].
    pub state: String,
    pub state_reason: String,
    pub state_since: NaiveDateTime,
    /// Recoveries tried in a row since the VM was last healthy.
    pub recovery_attempts: i32,
    pub next_action: Option<String>,
    /// The workshop the VM was made for; `None`: the implicit, always-open one.
    pub workshop_id: Option<i64>,
    /// When the participant last used the VM (see `session_limits` in the actors).
    pub last_active_at: Option<NaiveDateTime>,
    /// The warning the participant and the desktop are shown now.
    pub session_notice: Option<String>,
    /// An admin took the VM over until then; its actor releases it at that time.
    pub reserved_until: Option<NaiveDateTime>,
    /// It failed to boot and is replaced no sooner than this (see [`crate::boot_failures`]).
    pub replace_not_before: Option<NaiveDateTime>,
}

/// The CRD command, PIN and token hash are secrets: debug output shows only whether they are set.
impl fmt::Debug for Vm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vm")
            .field("hostname", &self.hostname)
            .field("status", &self.status)
            .field("user_email", &self.user_email)
            .field("crd_command_set", &self.crd_command.is_some())
            .field("pin_set", &self.pin.is_some())
            .field("assignment_seq", &self.assignment_seq)
            .field("in_use", &self.in_use)
            .field("gpu_health", &self.gpu_health)
            .field("token_set", &self.token_hash.is_some())
            .field("assigned_at", &self.assigned_at)
            .field("last_heartbeat_at", &self.last_heartbeat_at)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("state", &self.state)
            .field("state_reason", &self.state_reason)
            .field("state_since", &self.state_since)
            .field("recovery_attempts", &self.recovery_attempts)
            .finish()
    }
}

impl Vm {
    /// The stored status; a value written outside LabLink reads as [`VmStatus::Unknown`].
    pub fn status(&self) -> VmStatus {
        self.status.parse().unwrap_or(VmStatus::Unknown)
    }

    /// Whether this VM may be given to a researcher now (the free-VM rule, see
    /// [`free_vm_sql!`]).
    pub fn is_free(&self) -> bool {
        self.status() == VmStatus::Running
            && self.user_email.is_none()
            && self.gpu_health().is_some_and(GpuHealth::allows_assignment)
            && !self.state().blocks_assignment()
    }

    /// The stored lifecycle state; a value written outside LabLink reads as
    /// [`LifecycleState::Booting`] (the supervisor then decides it afresh).
    pub fn state(&self) -> LifecycleState {
        self.state.parse().unwrap_or(LifecycleState::Booting)
    }

    /// The last reported GPU health, if any.
    pub fn gpu_health(&self) -> Option<GpuHealth> {
        self.gpu_health.as_deref().and_then(|h| h.parse().ok())
    }

    /// The assignment the VM's agent should act on, if the VM is assigned.
    pub fn current_assignment(&self) -> Option<CurrentAssignment> {
        match (&self.user_email, &self.pin, &self.crd_command) {
            (Some(_), Some(pin), Some(command)) => Some(CurrentAssignment {
                assignment_id: self.assignment_seq,
                pin: pin.clone(),
                command: command.clone(),
            }),
            _ => None,
        }
    }

    /// The VM with this hostname, if there is one.
    pub fn find_by_hostname(conn: &mut DbConnection, hostname: &str) -> QueryResult<Option<Vm>> {
        vms::table
            .find(hostname)
            .select(Vm::as_select())
            .first(conn)
            .optional()
    }

    /// Every VM, ordered by hostname.
    pub fn list_all(conn: &mut DbConnection) -> QueryResult<Vec<Vm>> {
        vms::table
            .order(vms::hostname)
            .select(Vm::as_select())
            .load(conn)
    }

    /// Every hostname, ordered.
    pub fn list_hostnames(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
        vms::table
            .order(vms::hostname)
            .select(vms::hostname)
            .load(conn)
    }

    /// How many VMs could be handed to a researcher right now.
    pub fn count_free(conn: &mut DbConnection) -> QueryResult<i64> {
        free_vms!().count().get_result(conn)
    }

    /// How many of one workshop's VMs are free (`None`: the implicit workshop's, the VMs
    /// made for no workshop).
    pub fn count_free_in(conn: &mut DbConnection, workshop_id: Option<i64>) -> QueryResult<i64> {
        match workshop_id {
            Some(id) => free_vms!()
                .filter(vms::workshop_id.eq(id))
                .count()
                .get_result(conn),
            None => free_vms!()
                .filter(vms::workshop_id.is_null())
                .count()
                .get_result(conn),
        }
    }

    /// How many VMs there are of each stored status, split by whether they are assigned,
    /// and how many of those are in use: `(status, assigned, in_use, count)`, for metrics.
    pub fn count_by_state(conn: &mut DbConnection) -> QueryResult<Vec<VmStateCount>> {
        let rows: Vec<(String, bool, bool)> = vms::table
            .select((vms::status, vms::user_email.is_not_null(), vms::in_use))
            .load(conn)?;
        let mut counts = std::collections::BTreeMap::<(String, bool, bool), i64>::new();
        for key in rows {
            *counts.entry(key).or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .map(|((status, assigned, in_use), count)| VmStateCount {
                status,
                assigned,
                in_use,
                count,
            })
            .collect())
    }

    /// The VM held by the researcher with this (normalised) email, if any.
    pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<Vm>> {
        vms::table
            .filter(vms::user_email.eq(email))
            .select(Vm::as_select())
            .first(conn)
            .optional()
    }

    /// Gives one free VM to `email` in a single statement and returns it, or `None` when no
    /// VM is free. On PostgreSQL the candidate row is locked with `SKIP LOCKED`, so
    /// concurrent claims take different VMs instead of queueing on the same one; the unique
    /// index on `user_email` refuses a second VM for the same researcher.
    pub fn claim_free(
        conn: &mut DbConnection,
        email: &str,
        crd_command: &str,
        pin: &str,
        claimed_by: Option<&str>,
        workshop_id: Option<i64>,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Vm>> {
        use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
        let claimed: Option<Vm> = match conn {
            DbConnection::Pg(c) => diesel::sql_query(CLAIM_FREE_POSTGRES)
                .bind::<Text, _>(email)
                .bind::<Text, _>(crd_command)
                .bind::<Text, _>(pin)
                .bind::<Timestamp, _>(now)
                .bind::<Nullable<Text>, _>(claimed_by)
                .bind::<Nullable<BigInt>, _>(workshop_id)
                .get_result(c)
                .optional()?,
            DbConnection::Sqlite(c) => diesel::sql_query(CLAIM_FREE_SQLITE)
                .bind::<Text, _>(email)
                .bind::<Text, _>(crd_command)
                .bind::<Text, _>(pin)
                .bind::<Timestamp, _>(now)
                .bind::<Nullable<Text>, _>(claimed_by)
                .bind::<Nullable<BigInt>, _>(workshop_id)
                .get_result(c)
                .optional()?,
        };
        // The participant's journey starts with the claim, in its transaction.
        if let Some(vm) = &claimed {
            journey::opened(conn, std::slice::from_ref(vm), now)?;
        }
        Ok(claimed)
    }

    /// The VMs held by any of these (normalised) emails.
    pub fn find_by_emails(conn: &mut DbConnection, emails: &[String]) -> QueryResult<Vec<Vm>> {
        vms::table
            .filter(vms::user_email.eq_any(emails))
            .select(Vm::as_select())
            .load(conn)
    }

    /// Gives free VMs to several researchers at once, one each, in one statement on
    /// PostgreSQL (one claim after another on SQLite). `claims` are `(email, crd_command,
    /// pin, claimed_by)` with distinct emails that hold no VM; returns the VMs claimed, fewer than asked
    /// when not enough are free. The unique index on `user_email` fails the whole statement
    /// if another request gave one of these researchers a VM meanwhile.
    pub fn claim_free_many(
        conn: &mut DbConnection,
        claims: &[(String, String, String, Option<String>)],
        workshop_id: Option<i64>,
        now: NaiveDateTime,
    ) -> QueryResult<Vec<Vm>> {
        use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};
        match conn {
            DbConnection::Pg(c) => {
                let emails: Vec<&str> = claims.iter().map(|c| c.0.as_str()).collect();
                let commands: Vec<&str> = claims.iter().map(|c| c.1.as_str()).collect();
                let pins: Vec<&str> = claims.iter().map(|c| c.2.as_str()).collect();
                let claimers: Vec<Option<&str>> = claims.iter().map(|c| c.3.as_deref()).collect();
                let claimed: Vec<Vm> = diesel::sql_query(CLAIM_MANY_POSTGRES)
                    .bind::<Array<Text>, _>(emails)
                    .bind::<Array<Text>, _>(commands)
                    .bind::<Array<Text>, _>(pins)
                    .bind::<BigInt, _>(i64::try_from(claims.len()).unwrap_or(i64::MAX))
                    .bind::<Timestamp, _>(now)
                    .bind::<Array<Nullable<Text>>, _>(claimers)
                    .bind::<Nullable<BigInt>, _>(workshop_id)
                    .load(c)?;
                journey::opened(conn, &claimed, now)?;
                Ok(claimed)
            }
            DbConnection::Sqlite(_) => {
                let mut claimed = Vec::new();
                for (email, command, pin, claimed_by) in claims {
                    let claimer = claimed_by.as_deref();
                    match Vm::claim_free(conn, email, command, pin, claimer, workshop_id, now)? {
                        Some(vm) => claimed.push(vm),
                        None => break,
                    }
                }
                Ok(claimed)
            }
        }
    }

    /// Ends the VM's session: clears the researcher, command and PIN, and sets the status back
    /// to `initializing`, so the VM is handed out again only after its agent reports it ready.
    /// Returns the updated row, or `None` for an unknown VM.
    pub fn release(
        conn: &mut DbConnection,
        hostname: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Vm>> {
        conn.transaction(|conn| {
            let released = on_backend!(conn, |c| diesel::update(vms::table.find(hostname))
                .set((
                    no_assignment!(),
                    vms::status.eq(VmStatus::Initializing.as_str()),
                    vms::updated_at.eq(now),
                ))
                .returning(Vm::as_returning())
                .get_result(c)
                .optional())?;
            journey::close(
                conn,
                &[hostname.to_owned()],
                journey::end_reason::RELEASED,
                now,
            )?;
            Ok(released)
        })
    }

    /// Registers the VM if it is new, else records its new status (the original
    /// `/api/vm-status` upsert); either way the report is the VM's heartbeat. `token_hash`, when given, becomes the VM's token hash only if
    /// it has none yet. Returns the row as stored.
    pub fn upsert_status(
        conn: &mut DbConnection,
        hostname: &str,
        status: VmStatus,
        token_hash: Option<&str>,
        now: NaiveDateTime,
    ) -> QueryResult<Vm> {
        on_backend!(conn, |c| diesel::insert_into(vms::table)
            .values((
                vms::hostname.eq(hostname),
                vms::status.eq(status.as_str()),
                vms::token_hash.eq(token_hash),
                vms::last_heartbeat_at.eq(now),
                vms::created_at.eq(now),
                vms::updated_at.eq(now),
                vms::state_since.eq(now),
            ))
            .on_conflict(vms::hostname)
            .do_update()
            .set((
                vms::status.eq(excluded(vms::status)),
                vms::token_hash.eq(coalesce(vms::token_hash, excluded(vms::token_hash))),
                vms::last_heartbeat_at.eq(excluded(vms::last_heartbeat_at)),
                vms::updated_at.eq(excluded(vms::updated_at)),
            ))
            .returning(Vm::as_returning())
            .get_result(c))
    }

    /// Records the status an existing VM reports; the report is also its heartbeat. Returns
    /// the updated row, or `None` for an unknown VM (a report never adds one).
    pub fn set_status(
        conn: &mut DbConnection,
        hostname: &str,
        status: VmStatus,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Vm>> {
        on_backend!(conn, |c| diesel::update(vms::table.find(hostname))
            .set((
                vms::status.eq(status.as_str()),
                vms::last_heartbeat_at.eq(now),
                vms::updated_at.eq(now),
            ))
            .returning(Vm::as_returning())
            .get_result(c)
            .optional())
    }

    /// Records the VM's GPU health. Returns the updated row, or `None` for an unknown VM.
    pub fn set_gpu_health(
        conn: &mut DbConnection,
        hostname: &str,
        health: GpuHealth,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Vm>> {
        on_backend!(conn, |c| diesel::update(vms::table.find(hostname))
            .set((vms::gpu_health.eq(health.as_str()), vms::updated_at.eq(now),))
            .returning(Vm::as_returning())
            .get_result(c)
            .optional())
    }

    /// Records whether the research software is running. Returns the updated row, or `None`
    /// for an unknown VM.
    pub fn set_in_use(
        conn: &mut DbConnection,
        hostname: &str,
        in_use: bool,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Vm>> {
        on_backend!(conn, |c| diesel::update(vms::table.find(hostname))
            .set((
                vms::in_use.eq(in_use),
                // Every report of the software's use is the participant's activity: the
                // idle clock starts again.
                vms::last_active_at.eq(now),
                vms::updated_at.eq(now),
            ))
            .returning(Vm::as_returning())
            .get_result(c)
            .optional())
    }

    /// Sets (or with `None` clears) the session's warning, if the VM still holds assignment
    /// `assignment_seq`; `false` when it does not.
    pub fn set_session_notice(
        conn: &mut DbConnection,
        hostname: &str,
        assignment_seq: i64,
        notice: Option<&str>,
    ) -> QueryResult<bool> {
        let changed = diesel::update(
            vms::table
                .filter(vms::hostname.eq(hostname))
                .filter(vms::assignment_seq.eq(assignment_seq))
                .filter(vms::user_email.is_not_null()),
        )
        .set(vms::session_notice.eq(notice))
        .execute(conn)?;
        Ok(changed == 1)
    }

    /// Ends the session of assignment `assignment_seq` if nothing happened since it was
    /// judged over: still that assignment, and no activity after `last_active_at`. Returns
    /// the released row, or `None` when the participant was active (or it ended) meanwhile.
    pub fn release_session(
        conn: &mut DbConnection,
        hostname: &str,
        assignment_seq: i64,
        last_active_at: Option<NaiveDateTime>,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Vm>> {
        let target = vms::table
            .filter(vms::hostname.eq(hostname))
            .filter(vms::assignment_seq.eq(assignment_seq))
            .filter(vms::user_email.is_not_null());
        let values = (
            no_assignment!(),
            vms::status.eq(VmStatus::Initializing.as_str()),
            vms::updated_at.eq(now),
        );
        conn.transaction(|conn| {
            let released = match last_active_at {
                Some(seen) => on_backend!(conn, |c| diesel::update(
                    target.filter(vms::last_active_at.eq(seen))
                )
                .set(values)
                .returning(Vm::as_returning())
                .get_result(c)
                .optional())?,
                None => on_backend!(conn, |c| diesel::update(
                    target.filter(vms::last_active_at.is_null())
                )
                .set(values)
                .returning(Vm::as_returning())
                .get_result(c)
                .optional())?,
            };
            if released.is_some() {
                let hostnames = [hostname.to_owned()];
                journey::close(conn, &hostnames, journey::end_reason::RELEASED, now)?;
            }
            Ok(released)
        })
    }

    /// The VM the browser with this claimer (the SHA-256 of its key) holds, if any.
    pub fn find_by_claimer(conn: &mut DbConnection, claimed_by: &str) -> QueryResult<Option<Vm>> {
        vms::table
            .filter(vms::claimed_by.eq(claimed_by))
            .filter(vms::user_email.is_not_null())
            .select(Vm::as_select())
            .first(conn)
            .optional()
    }

    /// The participant is still there: the idle clock starts again and the warning goes.
    /// Returns the row, or `None` when this browser holds no VM.
    pub fn extend_session(
        conn: &mut DbConnection,
        claimed_by: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Vm>> {
        on_backend!(conn, |c| diesel::update(
            vms::table
                .filter(vms::claimed_by.eq(claimed_by))
                .filter(vms::user_email.is_not_null())
        )
        .set((
            vms::last_active_at.eq(now),
            vms::session_notice.eq(None::<String>),
        ))
        .returning(Vm::as_returning())
        .get_result(c)
        .optional())
    }

    /// An admin takes this VM over, if it is free: assigned to `holder` with no command (a
    /// browser desktop), until `until`, when its actor releases it. `None` when the VM is not
    /// free.
    pub fn take_over(
        conn: &mut DbConnection,
        hostname: &str,
        holder: &str,
        pin: &str,
        until: NaiveDateTime,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Vm>> {
        on_backend!(conn, |c| diesel::update(
            free_vms!().filter(vms::hostname.eq(hostname))
        )
        .set((
            vms::user_email.eq(holder),
            vms::crd_command.eq(""),
            vms::pin.eq(pin),
            vms::in_use.eq(false),
            vms::assigned_at.eq(now),
            vms::updated_at.eq(now),
            vms::assignment_seq.eq(vms::assignment_seq + 1),
            vms::claimed_by.eq(None::<String>),
            vms::reserved_until.eq(until),
        ))
        .returning(Vm::as_returning())
        .get_result(c)
        .optional())
    }

    /// Replaces the VM's token hash (its old token stops working).
    pub fn set_token_hash(
        conn: &mut DbConnection,
        hostname: &str,
        hash: &str,
    ) -> QueryResult<usize> {
        diesel::update(vms::table.find(hostname))
            .set(vms::token_hash.eq(hash))
            .execute(conn)
    }

    /// Records the workshop the VM belongs to (`None`: the implicit one).
    pub fn set_workshop(
        conn: &mut DbConnection,
        hostname: &str,
        workshop_id: Option<i64>,
    ) -> QueryResult<usize> {
        diesel::update(vms::table.find(hostname))
            .set(vms::workshop_id.eq(workshop_id))
            .execute(conn)
    }

    /// Removes the VM and, through the foreign key, its log lines. Returns whether it existed.
    pub fn delete(conn: &mut DbConnection, hostname: &str) -> QueryResult<bool> {
        conn.transaction(|conn| {
            let now = chrono::Utc::now().naive_utc();
            let hostnames = [hostname.to_owned()];
            journey::close(conn, &hostnames, journey::end_reason::DESTROYED, now)?;
            diesel::delete(vms::table.find(hostname))
                .execute(conn)
                .map(|rows| rows > 0)
        })
    }
}

//! The `vms` table: one row per lab VM, its model and its queries.

use std::fmt;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::schema::vms;
use crate::wire::{GpuHealth, VmStatus};
use crate::DbConnection;

/// A lab VM as stored.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = vms, primary_key(hostname))]
pub struct Vm {
    pub hostname: String,
    /// A [`VmStatus`] spelling; see [`Vm::status`].
    pub status: String,
    pub user_email: Option<String>,
    pub crd_command: Option<String>,
    pub pin: Option<String>,
    pub in_use: bool,
    /// A [`GpuHealth`] spelling, or `None` until the agent first reports.
    pub gpu_health: Option<String>,
    pub token_hash: Option<String>,
    pub assigned_at: Option<NaiveDateTime>,
    pub last_heartbeat_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
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
            .field("in_use", &self.in_use)
            .field("gpu_health", &self.gpu_health)
            .field("token_set", &self.token_hash.is_some())
            .field("assigned_at", &self.assigned_at)
            .field("last_heartbeat_at", &self.last_heartbeat_at)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl Vm {
    /// The stored status; a value written outside LabLink reads as [`VmStatus::Unknown`].
    pub fn status(&self) -> VmStatus {
        self.status.parse().unwrap_or(VmStatus::Unknown)
    }

    /// The last reported GPU health, if any.
    pub fn gpu_health(&self) -> Option<GpuHealth> {
        self.gpu_health.as_deref().and_then(|h| h.parse().ok())
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

    /// How many VMs could be handed to a researcher right now: running, unassigned, and with
    /// a GPU reported healthy or absent.
    pub fn count_free(conn: &mut DbConnection) -> QueryResult<i64> {
        vms::table
            .filter(vms::status.eq(VmStatus::Running.as_str()))
            .filter(vms::user_email.is_null())
            .filter(vms::gpu_health.eq_any([
                GpuHealth::Healthy.as_str(),
                GpuHealth::NotAvailable.as_str(),
            ]))
            .count()
            .get_result(conn)
    }

    /// Registers the VM if it is new, else records its new status (the original
    /// `/api/vm-status` upsert). Returns the row as stored.
    pub fn upsert_status(
        conn: &mut DbConnection,
        hostname: &str,
        status: VmStatus,
        now: NaiveDateTime,
    ) -> QueryResult<Vm> {
        on_backend!(conn, |c| diesel::insert_into(vms::table)
            .values((
                vms::hostname.eq(hostname),
                vms::status.eq(status.as_str()),
                vms::created_at.eq(now),
                vms::updated_at.eq(now),
            ))
            .on_conflict(vms::hostname)
            .do_update()
            .set((
                vms::status.eq(excluded(vms::status)),
                vms::updated_at.eq(excluded(vms::updated_at)),
            ))
            .returning(Vm::as_returning())
            .get_result(c))
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
            .set((vms::in_use.eq(in_use), vms::updated_at.eq(now)))
            .returning(Vm::as_returning())
            .get_result(c)
            .optional())
    }

    /// Removes the VM and, through the foreign key, its log lines. Returns whether it existed.
    pub fn delete(conn: &mut DbConnection, hostname: &str) -> QueryResult<bool> {
        diesel::delete(vms::table.find(hostname))
            .execute(conn)
            .map(|rows| rows > 0)
    }
}

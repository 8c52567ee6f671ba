//! The `workshops` and `workshop_roster` tables: the events a lab runs a class on, who may
//! join them, and their queries. Their planned actions are in [`actions`], the warm-up and
//! warning plan in [`plan`].

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{vms, workshop_roster, workshops};
use crate::wire::{Admission, DesktopMode, WorkshopState, WorkshopVmCounts};
use crate::DbConnection;

pub mod actions;
pub mod plan;

/// A workshop as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = workshops)]
pub struct Workshop {
    pub id: i64,
    pub name: String,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub utc_offset_secs: i32,
    pub time_zone: Option<String>,
    pub headcount: i32,
    pub spare_vms: i32,
    pub warmup_lead_secs: i32,
    /// JSON object of provider variables.
    pub vm_settings: String,
    pub admission: String,
    /// SHA-256 (hex) of the invite code.
    pub invite_code_hash: Option<String>,
    /// JSON array of minutes before the end.
    pub warning_minutes: String,
    pub keep_after_end_secs: i32,
    pub price_per_vm_hour_micros: i64,
    pub spend_cap_micros: Option<i64>,
    pub teardown_at_cap: bool,
    pub state: String,
    pub spend_alert: String,
    pub notice: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub idle_release_secs: Option<i32>,
    pub idle_warning_secs: i32,
    pub max_session_secs: Option<i32>,
    /// `crd` or `browser`; unset: the allocator's `desktop.mode`.
    pub desktop_mode: Option<String>,
}

/// A workshop about to be stored.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = workshops)]
pub struct NewWorkshop {
    pub name: String,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub utc_offset_secs: i32,
    pub time_zone: Option<String>,
    pub headcount: i32,
    pub spare_vms: i32,
    pub warmup_lead_secs: i32,
    pub vm_settings: String,
    pub admission: String,
    pub invite_code_hash: Option<String>,
    pub warning_minutes: String,
    pub keep_after_end_secs: i32,
    pub price_per_vm_hour_micros: i64,
    pub spend_cap_micros: Option<i64>,
    pub teardown_at_cap: bool,
    pub state: String,
    pub spend_alert: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub idle_release_secs: Option<i32>,
    pub idle_warning_secs: i32,
    pub max_session_secs: Option<i32>,
    /// `crd` or `browser`; unset: the allocator's `desktop.mode`.
    pub desktop_mode: Option<String>,
}

/// The fields an edit sets (all of them, as checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkshopEdit {
    pub name: String,
    pub time_zone: Option<String>,
    pub headcount: i32,
    pub spare_vms: i32,
    /// A new invite code's hash (`None`: keep the code).
    pub invite_code_hash: Option<String>,
}

/// How far spend has come against the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SpendAlert {
    None,
    /// 80 % of the cap.
    Warned,
    /// The cap: no more VMs are made.
    Reached,
}

impl SpendAlert {
    pub fn as_str(self) -> &'static str {
        match self {
            SpendAlert::None => "none",
            SpendAlert::Warned => "warned",
            SpendAlert::Reached => "reached",
        }
    }

    pub fn parse(stored: &str) -> SpendAlert {
        match stored {
            "warned" => SpendAlert::Warned,
            "reached" => SpendAlert::Reached,
            _ => SpendAlert::None,
        }
    }
}

impl Workshop {
    /// Where it stands. An unknown value (from a newer version) reads as ended, which lets
    /// no one in and makes nothing.
    pub fn state(&self) -> WorkshopState {
        self.state.parse().unwrap_or(WorkshopState::Ended)
    }

    /// Who may join. An unknown value reads as a roster, which admits only listed emails.
    /// The workshop's own desktop mode, when it has one.
    pub fn desktop_mode(&self) -> Option<DesktopMode> {
        self.desktop_mode.as_deref().and_then(|m| m.parse().ok())
    }

    pub fn admission(&self) -> Admission {
        self.admission.parse().unwrap_or(Admission::Roster)
    }

    pub fn spend_alert(&self) -> SpendAlert {
        SpendAlert::parse(&self.spend_alert)
    }

    /// VMs it should have: the headcount plus the spare margin.
    pub fn vm_target(&self) -> i64 {
        i64::from(self.headcount) + i64::from(self.spare_vms)
    }

    pub fn warning_minutes(&self) -> Vec<u32> {
        serde_json::from_str(&self.warning_minutes).unwrap_or_default()
    }

    /// The limits of each participant's session.
    pub fn session_limits(&self) -> crate::wire::SessionLimits {
        let secs = |s: Option<i32>| s.and_then(|s| u64::try_from(s).ok()).filter(|s| *s > 0);
        crate::wire::SessionLimits {
            idle_release_secs: secs(self.idle_release_secs),
            idle_warning_secs: u64::try_from(self.idle_warning_secs).unwrap_or(0),
            max_session_secs: secs(self.max_session_secs),
        }
    }

    pub fn vm_settings(&self) -> std::collections::BTreeMap<String, String> {
        serde_json::from_str(&self.vm_settings).unwrap_or_default()
    }

    /// Stores a new workshop and its roster; returns it with its id.
    pub fn insert(
        conn: &mut DbConnection,
        new: &NewWorkshop,
        roster: &[String],
    ) -> QueryResult<Workshop> {
        let workshop: Workshop = on_backend!(conn, |c| diesel::insert_into(workshops::table)
            .values(new)
            .returning(Workshop::as_returning())
            .get_result(c))?;
        for chunk in roster.chunks(500) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|email| {
                    (
                        workshop_roster::workshop_id.eq(workshop.id),
                        workshop_roster::email.eq(email),
                    )
                })
                .collect();
            on_backend!(conn, |c| diesel::insert_into(workshop_roster::table)
                .values(&rows)
                .execute(c))?;
        }
        Ok(workshop)
    }

    pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Workshop>> {
        workshops::table
            .find(id)
            .select(Workshop::as_select())
            .first(conn)
            .optional()
    }

    /// Every workshop, the latest start first.
    pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<Workshop>> {
        workshops::table
            .order((workshops::starts_at.desc(), workshops::id.desc()))
            .select(Workshop::as_select())
            .load(conn)
    }

    /// Whether `email` (normalised) is on the workshop's roster.
    pub fn on_roster(conn: &mut DbConnection, id: i64, email: &str) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            workshop_roster::table
                .filter(workshop_roster::workshop_id.eq(id))
                .filter(workshop_roster::email.eq(email)),
        ))
        .get_result(conn)
    }

    pub fn roster_size(conn: &mut DbConnection, id: i64) -> QueryResult<i64> {
        workshop_roster::table
            .filter(workshop_roster::workshop_id.eq(id))
            .count()
            .get_result(conn)
    }

    /// Moves the workshop from `from` to `to`; `false` when it was no longer in `from`.
    pub fn change_state(
        conn: &mut DbConnection,
        id: i64,
        from: &[WorkshopState],
        to: WorkshopState,
        now: NaiveDateTime,
    ) -> QueryResult<bool> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let changed = diesel::update(
            workshops::table
                .filter(workshops::id.eq(id))
                .filter(workshops::state.eq_any(from)),
        )
        .set((
            workshops::state.eq(to.as_str()),
            workshops::updated_at.eq(now),
        ))
        .execute(conn)?;
        Ok(changed == 1)
    }

    /// Sets what participants are told now (`None`: nothing).
    pub fn set_notice(
        conn: &mut DbConnection,
        id: i64,
        notice: Option<&str>,
        now: NaiveDateTime,
    ) -> QueryResult<usize> {
        diesel::update(workshops::table.find(id))
            .set((workshops::notice.eq(notice), workshops::updated_at.eq(now)))
            .execute(conn)
    }

    /// Raises the spend alert to `to`; `false` when it was already there or beyond, so each
    /// level is announced once whichever allocator saw it first.
    pub fn raise_spend_alert(
        conn: &mut DbConnection,
        id: i64,
        to: SpendAlert,
        now: NaiveDateTime,
    ) -> QueryResult<bool> {
        let below: Vec<&str> = [SpendAlert::None, SpendAlert::Warned, SpendAlert::Reached]
            .into_iter()
            .filter(|level| *level < to)
            .map(SpendAlert::as_str)
            .collect();
        let changed = diesel::update(
            workshops::table
                .filter(workshops::id.eq(id))
                .filter(workshops::spend_alert.eq_any(below)),
        )
        .set((
            workshops::spend_alert.eq(to.as_str()),
            workshops::updated_at.eq(now),
        ))
        .execute(conn)?;
        Ok(changed == 1)
    }

    /// Changes what an edit may change.
    pub fn edit(
        conn: &mut DbConnection,
        id: i64,
        edit: &WorkshopEdit,
        now: NaiveDateTime,
    ) -> QueryResult<usize> {
        diesel::update(workshops::table.find(id))
            .set((
                workshops::name.eq(&edit.name),
                workshops::time_zone.eq(&edit.time_zone),
                workshops::headcount.eq(edit.headcount),
                workshops::spare_vms.eq(edit.spare_vms),
                workshops::updated_at.eq(now),
            ))
            .execute(conn)?;
        if let Some(hash) = &edit.invite_code_hash {
            diesel::update(workshops::table.find(id))
                .set(workshops::invite_code_hash.eq(hash))
                .execute(conn)?;
        }
        Ok(1)
    }

    /// Replaces the workshop's roster.
    pub fn replace_roster(conn: &mut DbConnection, id: i64, roster: &[String]) -> QueryResult<()> {
        diesel::delete(workshop_roster::table.filter(workshop_roster::workshop_id.eq(id)))
            .execute(conn)?;
        for chunk in roster.chunks(500) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|email| {
                    (
                        workshop_roster::workshop_id.eq(id),
                        workshop_roster::email.eq(email),
                    )
                })
                .collect();
            on_backend!(conn, |c| diesel::insert_into(workshop_roster::table)
                .values(&rows)
                .execute(c))?;
        }
        Ok(())
    }

    /// Moves the end (extend, or end early), clearing any notice.
    pub fn set_end(
        conn: &mut DbConnection,
        id: i64,
        ends_at: NaiveDateTime,
        now: NaiveDateTime,
    ) -> QueryResult<usize> {
        diesel::update(workshops::table.find(id))
            .set((
                workshops::ends_at.eq(ends_at),
                workshops::notice.eq(None::<String>),
                workshops::updated_at.eq(now),
            ))
            .execute(conn)
    }

    /// The workshop's VMs now: all, free and assigned.
    pub fn vm_counts(conn: &mut DbConnection, id: i64) -> QueryResult<WorkshopVmCounts> {
        let rows: Vec<crate::vms::Vm> = vms::table
            .filter(vms::workshop_id.eq(id))
            .select(crate::vms::Vm::as_select())
            .load(conn)?;
        Ok(WorkshopVmCounts {
            total: rows.len() as i64,
            free: rows.iter().filter(|vm| vm.is_free()).count() as i64,
            assigned: rows.iter().filter(|vm| vm.user_email.is_some()).count() as i64,
        })
    }

    /// The hostnames of the workshop's VMs.
    pub fn vm_hostnames(conn: &mut DbConnection, id: i64) -> QueryResult<Vec<String>> {
        vms::table
            .filter(vms::workshop_id.eq(id))
            .select(vms::hostname)
            .order(vms::hostname)
            .load(conn)
    }

    /// The workshops that are not over (for the spend watch).
    pub fn list_running(conn: &mut DbConnection) -> QueryResult<Vec<Workshop>> {
        workshops::table
            .filter(workshops::state.eq_any([
                WorkshopState::WarmingUp.as_str(),
                WorkshopState::Open.as_str(),
                WorkshopState::Ended.as_str(),
            ]))
            .select(Workshop::as_select())
            .load(conn)
    }
}

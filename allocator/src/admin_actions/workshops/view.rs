//! A workshop as admins see it: its row with its plan, VMs, boot estimate and spend, read in
//! one go.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};
use lablink_schema::wire::{SpendView, WorkshopView};
use lablink_schema::workshops::actions::WorkshopAction;
use lablink_schema::workshops::plan::{self, PlanInput};
use lablink_schema::workshops::Workshop;
use lablink_schema::{vm_usage, DbConnection};

use super::WorkshopSettings;

/// The workshop's time `at` in its own offset.
pub fn local(workshop: &Workshop, at: NaiveDateTime) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(workshop.utc_offset_secs)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
    at.and_utc().with_timezone(&offset)
}

/// How long a VM takes to be ready: measured, or the configured estimate until then.
pub fn boot_estimate(
    conn: &mut DbConnection,
    settings: &WorkshopSettings,
) -> diesel::QueryResult<Duration> {
    Ok(vm_usage::boot_estimate(conn)?.unwrap_or_else(|| {
        Duration::milliseconds((settings.config.boot_estimate_secs * 1000.0) as i64)
    }))
}

/// Reads everything the view shows.
pub fn read(
    conn: &mut DbConnection,
    workshop: Workshop,
    settings: &WorkshopSettings,
) -> diesel::QueryResult<WorkshopView> {
    let now = Utc::now().naive_utc();
    let actions = WorkshopAction::list_for(conn, workshop.id)?;
    let roster_size = Workshop::roster_size(conn, workshop.id)?;
    let vms = Workshop::vm_counts(conn, workshop.id)?;
    let seconds = vm_usage::vm_seconds(conn, workshop.id, now)?;
    let live = vm_usage::live_count(conn, workshop.id)?;
    let boot = boot_estimate(conn, settings)?;
    let input = PlanInput {
        starts_at: workshop.starts_at,
        ends_at: workshop.ends_at,
        warmup_lead: Duration::seconds(i64::from(workshop.warmup_lead_secs)),
        vm_target: i32::try_from(workshop.vm_target()).unwrap_or(i32::MAX),
        batch_size: i32::try_from(settings.config.warmup_batch_size).unwrap_or(10),
        boot_estimate: boot,
        warning_minutes: workshop.warning_minutes(),
        keep_after_end: Duration::seconds(i64::from(workshop.keep_after_end_secs)),
    };
    let price = workshop.price_per_vm_hour_micros as f64 / 1e6;
    let estimate = seconds as f64 / 3600.0 * price;
    // Until the end (and the straggler time), at least the planned VMs run.
    let until = workshop.ends_at + input.keep_after_end;
    let hours_left = ((until - now).num_seconds().max(0)) as f64 / 3600.0;
    let running = if workshop.state().is_over() {
        live
    } else {
        live.max(workshop.vm_target())
    };
    let projected = estimate + running as f64 * hours_left * price;
    Ok(WorkshopView {
        desktop_mode: settings.desktop_mode_of(Some(&workshop)),
        id: workshop.id,
        name: workshop.name.clone(),
        state: workshop.state(),
        starts_at: local(&workshop, workshop.starts_at),
        ends_at: local(&workshop, workshop.ends_at),
        time_zone: workshop.time_zone.clone(),
        headcount: workshop.headcount,
        spare_vms: workshop.spare_vms,
        warmup_lead_secs: workshop.warmup_lead_secs,
        vm_settings: workshop.vm_settings(),
        admission: workshop.admission(),
        roster_size,
        warning_minutes: workshop.warning_minutes(),
        keep_after_end_secs: workshop.keep_after_end_secs,
        session_limits: workshop.session_limits(),
        boot_estimate_secs: boot.num_seconds(),
        ready_estimate: local(&workshop, plan::ready_estimate(&input)),
        vms,
        spend: SpendView {
            currency: settings.config.currency.clone(),
            price_per_vm_hour: price,
            vm_hours: seconds as f64 / 3600.0,
            estimate: round_cents(estimate),
            projected: round_cents(projected),
            cap: workshop.spend_cap_micros.map(|cap| cap as f64 / 1e6),
            alert: workshop.spend_alert.clone(),
        },
        notice: workshop.notice.clone(),
        actions: actions.iter().map(WorkshopAction::view).collect(),
        link: format!("{}/w/{}", settings.public_url, workshop.id),
        created_by: workshop.created_by.clone(),
        created_at: workshop.created_at,
    })
}

fn round_cents(amount: f64) -> f64 {
    (amount * 100.0).round() / 100.0
}

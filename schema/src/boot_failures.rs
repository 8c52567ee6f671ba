//! The `boot_failure_streaks` table and the rule it serves: an image or agent that can never
//! boot is not replaced forever. Replacements of VMs that never became ready are counted in a
//! row per set of provider settings (a workshop's, or the default); each waits twice as long
//! as the one before, counted from the boot timeout, and after the configured number the next
//! is not made. A VM of those settings that becomes ready starts the count again.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{boot_failure_streaks, vm_usage, vms};
use crate::DbConnection;

/// One set of provider settings' replacements in a row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = boot_failure_streaks)]
pub struct BootFailureStreak {
    pub settings_key: String,
    pub replacements: i32,
    pub last_replaced_at: NaiveDateTime,
    /// Set once replacements stopped.
    pub gave_up_at: Option<NaiveDateTime>,
    /// Why the last VM failed, as its state said.
    pub reason: String,
}

/// What the back-off allows now for a VM that failed to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplacementGate {
    /// Replace it now (counted).
    Now,
    /// Not before this time.
    NotBefore(NaiveDateTime),
    /// No more: `replacements` in a row never became ready.
    GiveUp { replacements: i32 },
}

/// The key of a workshop's provider settings (`None`: the deployment's own).
pub fn settings_key(workshop_id: Option<i64>) -> String {
    workshop_id.map_or_else(|| "default".to_owned(), |id| format!("workshop:{id}"))
}

/// How long the `replacements + 1`-th replacement in a row waits after the one before:
/// `boot_timeout × 2^replacements` (the first is not delayed; the VM already waited out its
/// boot).
pub fn delay(boot_timeout: Duration, replacements: i32) -> Duration {
    let doublings = u32::try_from(replacements).unwrap_or(0).min(16);
    boot_timeout.saturating_mul(1 << doublings)
}

impl BootFailureStreak {
    pub fn find(conn: &mut DbConnection, key: &str) -> QueryResult<Option<Self>> {
        on_backend!(conn, |c| boot_failure_streaks::table
            .find(key)
            .select(BootFailureStreak::as_select())
            .first(c)
            .optional())
    }

    /// The settings whose replacements stopped, newest first (the dashboard's banner).
    pub fn list_given_up(conn: &mut DbConnection) -> QueryResult<Vec<Self>> {
        on_backend!(conn, |c| boot_failure_streaks::table
            .filter(boot_failure_streaks::gave_up_at.is_not_null())
            .order(boot_failure_streaks::gave_up_at.desc())
            .select(BootFailureStreak::as_select())
            .load(c))
    }

    /// What the back-off allows now for the next replacement under `key`.
    pub fn gate(
        conn: &mut DbConnection,
        key: &str,
        boot_timeout: Duration,
        max_replacements: u32,
        now: NaiveDateTime,
    ) -> QueryResult<ReplacementGate> {
        let Some(streak) = Self::find(conn, key)? else {
            return Ok(ReplacementGate::Now);
        };
        if u32::try_from(streak.replacements).unwrap_or(0) >= max_replacements {
            return Ok(ReplacementGate::GiveUp {
                replacements: streak.replacements,
            });
        }
        let wait = chrono::Duration::from_std(delay(boot_timeout, streak.replacements))
            .unwrap_or(chrono::Duration::MAX);
        let allowed = streak.last_replaced_at.checked_add_signed(wait);
        Ok(match allowed {
            Some(at) if at > now => ReplacementGate::NotBefore(at),
            _ => ReplacementGate::Now,
        })
    }

    /// Counts a replacement made now under `key`.
    pub fn count_replacement(
        conn: &mut DbConnection,
        key: &str,
        reason: &str,
        now: NaiveDateTime,
    ) -> QueryResult<()> {
        let updated = on_backend!(conn, |c| diesel::update(
            boot_failure_streaks::table.find(key)
        )
        .set((
            boot_failure_streaks::replacements.eq(boot_failure_streaks::replacements + 1),
            boot_failure_streaks::last_replaced_at.eq(now),
            boot_failure_streaks::reason.eq(reason),
        ))
        .execute(c))?;
        if updated == 0 {
            on_backend!(conn, |c| diesel::insert_into(boot_failure_streaks::table)
                .values((
                    boot_failure_streaks::settings_key.eq(key),
                    boot_failure_streaks::replacements.eq(1),
                    boot_failure_streaks::last_replaced_at.eq(now),
                    boot_failure_streaks::reason.eq(reason),
                ))
                .execute(c))?;
        }
        Ok(())
    }

    /// Records that replacements under `key` stopped now (once: a later call keeps the time).
    pub fn give_up(
        conn: &mut DbConnection,
        key: &str,
        reason: &str,
        now: NaiveDateTime,
    ) -> QueryResult<bool> {
        let changed = on_backend!(conn, |c| diesel::update(
            boot_failure_streaks::table
                .find(key)
                .filter(boot_failure_streaks::gave_up_at.is_null())
        )
        .set((
            boot_failure_streaks::gave_up_at.eq(now),
            boot_failure_streaks::reason.eq(reason),
        ))
        .execute(c))?;
        Ok(changed > 0)
    }

    /// A VM under `key` became ready: the count starts again.
    pub fn reset(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
        on_backend!(conn, |c| diesel::delete(
            boot_failure_streaks::table.find(key)
        )
        .execute(c))?;
        Ok(())
    }
}

/// Whether `hostname` was made by a provider and has never been ready.
pub fn never_ready(conn: &mut DbConnection, hostname: &str) -> QueryResult<bool> {
    let ready: Option<Option<NaiveDateTime>> = on_backend!(conn, |c| vm_usage::table
        .filter(vm_usage::hostname.eq(hostname))
        .filter(vm_usage::destroyed_at.is_null())
        .select(vm_usage::ready_at)
        .order(vm_usage::id.desc())
        .first(c)
        .optional())?;
    Ok(matches!(ready, Some(None)))
}

/// Sets the time before which `hostname` is not replaced.
pub fn defer_replacement(
    conn: &mut DbConnection,
    hostname: &str,
    until: NaiveDateTime,
) -> QueryResult<()> {
    on_backend!(conn, |c| diesel::update(vms::table.find(hostname))
        .set(vms::replace_not_before.eq(until))
        .execute(c))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_replacement_waits_twice_as_long_as_the_one_before() {
        let boot = Duration::from_secs(60);
        assert_eq!(delay(boot, 0), Duration::from_secs(60));
        assert_eq!(delay(boot, 1), Duration::from_secs(120));
        assert_eq!(delay(boot, 2), Duration::from_secs(240));
        assert_eq!(settings_key(None), "default");
        assert_eq!(settings_key(Some(7)), "workshop:7");
    }
}

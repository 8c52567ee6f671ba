//! A workshop's plan: when its warm-up batches, opening, warnings, end and teardown are due,
//! and whether an action found late still makes sense. Pure functions of the workshop's
//! times, so the API, the timeline and the scheduler agree.

use chrono::{Duration, NaiveDateTime};

use crate::wire::WorkshopActionKind;

/// One action to plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedAction {
    pub kind: WorkshopActionKind,
    pub due_at: NaiveDateTime,
    /// Warm-up: the VMs the workshop should have once this batch is made. Warning: the
    /// minutes left.
    pub amount: i32,
}

/// What a plan is made from.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub warmup_lead: Duration,
    /// Headcount plus spare VMs.
    pub vm_target: i32,
    /// Most VMs asked for in one batch.
    pub batch_size: i32,
    /// How long a VM takes to be ready.
    pub boot_estimate: Duration,
    pub warning_minutes: Vec<u32>,
    pub keep_after_end: Duration,
}

/// Margin over the boot estimate that the last batch leaves before the start: a batch
/// measured at 4 minutes is started at least 5 before.
const BOOT_MARGIN_PERCENT: i32 = 125;

/// When the last warm-up batch is due: early enough for the estimate (with margin), but not
/// before the first.
fn last_batch_due(input: &PlanInput) -> NaiveDateTime {
    let first = input.starts_at - input.warmup_lead;
    let needed = input.boot_estimate * BOOT_MARGIN_PERCENT / 100;
    (input.starts_at - needed).max(first)
}

/// When the VMs should all be ready, by the estimate.
pub fn ready_estimate(input: &PlanInput) -> NaiveDateTime {
    last_batch_due(input) + input.boot_estimate
}

/// The warm-up batches: spread evenly from `starts_at - warmup_lead` to the last moment the
/// boot estimate allows, each bringing the workshop up to its `amount`.
pub fn warm_up(input: &PlanInput) -> Vec<PlannedAction> {
    if input.vm_target <= 0 {
        return Vec::new();
    }
    let size = input.batch_size.max(1);
    let batches = (input.vm_target + size - 1) / size;
    let first = input.starts_at - input.warmup_lead;
    let span = last_batch_due(input) - first;
    (0..batches)
        .map(|n| {
            let due_at = if batches == 1 {
                first
            } else {
                first + span * n / (batches - 1)
            };
            PlannedAction {
                kind: WorkshopActionKind::WarmUp,
                due_at,
                amount: ((n + 1) * size).min(input.vm_target),
            }
        })
        .collect()
}

/// Opening at the start.
pub fn opening(input: &PlanInput) -> PlannedAction {
    PlannedAction {
        kind: WorkshopActionKind::Open,
        due_at: input.starts_at,
        amount: 0,
    }
}

/// The warnings, the end and the teardown, for the workshop's end time. Warnings that would
/// fall before the start or before `not_before` are left out.
pub fn closing(input: &PlanInput, not_before: NaiveDateTime) -> Vec<PlannedAction> {
    let mut minutes = input.warning_minutes.clone();
    minutes.sort_unstable_by(|a, b| b.cmp(a));
    minutes.dedup();
    let mut plan: Vec<PlannedAction> = minutes
        .into_iter()
        .filter_map(|m| {
            let due_at = input.ends_at - Duration::minutes(i64::from(m));
            (due_at >= input.starts_at && due_at >= not_before).then_some(PlannedAction {
                kind: WorkshopActionKind::Warning,
                due_at,
                amount: i32::try_from(m).unwrap_or(i32::MAX),
            })
        })
        .collect();
    plan.push(PlannedAction {
        kind: WorkshopActionKind::End,
        due_at: input.ends_at,
        amount: 0,
    });
    plan.push(PlannedAction {
        kind: WorkshopActionKind::Teardown,
        due_at: input.ends_at + input.keep_after_end,
        amount: 0,
    });
    plan
}

/// The whole plan of a new workshop, in time order.
pub fn full(input: &PlanInput) -> Vec<PlannedAction> {
    let mut plan = warm_up(input);
    plan.push(opening(input));
    plan.extend(closing(input, input.starts_at));
    plan.sort_by_key(|action| action.due_at);
    plan
}

/// Whether an action due at `due_at` still makes sense at `now` (it may be late: every
/// allocator was down at its time), and if not, why. A warning is worth giving while at
/// least half its lead remains and the workshop has not ended; warm-up and opening only
/// before the end; the end and the teardown always run.
pub fn still_makes_sense(
    kind: WorkshopActionKind,
    amount: i32,
    due_at: NaiveDateTime,
    ends_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), String> {
    let late = now - due_at;
    match kind {
        WorkshopActionKind::Warning => {
            let lead = Duration::minutes(i64::from(amount));
            if now >= ends_at {
                Err(format!(
                    "the {amount}-minute warning was due {} ago, after the workshop had ended",
                    describe(late)
                ))
            } else if late > lead / 2 {
                Err(format!(
                    "the {amount}-minute warning was due {} ago, too late to be of use",
                    describe(late)
                ))
            } else {
                Ok(())
            }
        }
        WorkshopActionKind::WarmUp | WorkshopActionKind::Open if now >= ends_at => Err(format!(
            "due {} ago, and the workshop has ended since",
            describe(late)
        )),
        _ => Ok(()),
    }
}

/// `n` minutes in words: "1 minute", "5 minutes".
pub fn minutes(n: u64) -> String {
    if n == 1 {
        "1 minute".to_owned()
    } else {
        format!("{n} minutes")
    }
}

/// A duration for people: "2 h 5 min", "40 s".
pub fn describe(duration: Duration) -> String {
    let secs = duration.num_seconds().max(0);
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_900_000_000 + secs, 0)
            .expect("time")
            .naive_utc()
    }

    fn input() -> PlanInput {
        PlanInput {
            starts_at: at(3600),
            ends_at: at(3600 + 8 * 3600),
            warmup_lead: Duration::minutes(30),
            vm_target: 25,
            batch_size: 10,
            boot_estimate: Duration::minutes(4),
            warning_minutes: vec![5, 30],
            keep_after_end: Duration::zero(),
        }
    }

    #[test]
    fn warm_up_batches_span_the_lead_and_leave_the_boot_time_with_margin() {
        let batches = warm_up(&input());
        let amounts: Vec<i32> = batches.iter().map(|b| b.amount).collect();
        assert_eq!(amounts, [10, 20, 25]);
        assert_eq!(batches[0].due_at, at(3600 - 1800));
        // 4 min × 125 % = 5 min before the start.
        assert_eq!(batches[2].due_at, at(3600 - 300));
        assert_eq!(ready_estimate(&input()), at(3600 - 60));
    }

    #[test]
    fn a_lead_shorter_than_the_boot_time_starts_everything_at_once_and_says_when_ready() {
        let short = PlanInput {
            warmup_lead: Duration::minutes(2),
            ..input()
        };
        assert!(warm_up(&short).iter().all(|b| b.due_at == at(3600 - 120)));
        assert_eq!(ready_estimate(&short), at(3600 + 120));
    }

    #[test]
    fn closing_orders_warnings_and_drops_those_before_the_start() {
        let brief = PlanInput {
            ends_at: at(3600 + 600),
            ..input()
        };
        let plan = closing(&brief, brief.starts_at);
        let kinds: Vec<(WorkshopActionKind, i32)> =
            plan.iter().map(|a| (a.kind, a.amount)).collect();
        assert_eq!(
            kinds,
            [
                (WorkshopActionKind::Warning, 5),
                (WorkshopActionKind::End, 0),
                (WorkshopActionKind::Teardown, 0)
            ]
        );
    }

    #[test]
    fn late_warnings_are_dropped_but_the_teardown_always_runs() {
        let ends = at(10_000);
        let due = ends - Duration::minutes(5);
        let warning = WorkshopActionKind::Warning;
        assert!(still_makes_sense(warning, 5, due, ends, due + Duration::seconds(90)).is_ok());
        let why = still_makes_sense(warning, 5, due, ends, due + Duration::minutes(3))
            .expect_err("3 minutes late");
        assert!(why.contains("too late"), "{why}");
        assert!(still_makes_sense(warning, 5, due, ends, ends + Duration::hours(1)).is_err());
        let teardown = WorkshopActionKind::Teardown;
        assert!(still_makes_sense(teardown, 0, ends, ends, ends + Duration::hours(5)).is_ok());
        assert!(still_makes_sense(WorkshopActionKind::WarmUp, 5, due, ends, ends).is_err());
    }
}

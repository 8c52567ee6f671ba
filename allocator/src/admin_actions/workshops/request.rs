//! Checking a workshop request at the edge: every field is validated and a clear message
//! names the first thing to fix; only a request that passes becomes a row, its roster and
//! its plan, so nothing is half-saved.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime};
use lablink_schema::wire::{Admission, WorkshopRequest, WorkshopState};
use lablink_schema::workshops::plan::{self, PlanInput, PlannedAction};
use lablink_schema::workshops::{NewWorkshop, SpendAlert};

use super::{roster, WorkshopSettings};

/// Longest a workshop may last.
const MAX_LENGTH: Duration = Duration::days(14);
const MAX_LENGTH_SECS: u32 = 14 * 24 * 3600;
/// Longest warm-up lead and straggler time.
const MAX_LEAD_SECS: u32 = 7 * 24 * 3600;
const MAX_NAME_CHARS: usize = 100;
const MAX_SETTINGS: usize = 20;
/// Characters of a generated invite code: no 0/O or 1/I/l to misread.
const INVITE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const INVITE_LEN: usize = 8;

/// A request that passed every check.
#[derive(Debug)]
pub struct Checked {
    pub workshop: NewWorkshop,
    pub roster: Vec<String>,
    pub plan: Vec<PlannedAction>,
    /// A code made here, to show once.
    pub invite_code: Option<String>,
}

/// What the checks need besides the request.
#[derive(Debug)]
pub struct Context<'a> {
    pub settings: &'a WorkshopSettings,
    pub max_vms: u32,
    pub boot_estimate: Duration,
    pub now: NaiveDateTime,
    pub created_by: String,
}

fn utc(time: &DateTime<FixedOffset>) -> NaiveDateTime {
    time.naive_utc()
}

/// Checks `request`; the error says what to fix.
pub fn check(request: WorkshopRequest, context: &Context<'_>) -> Result<Checked, String> {
    let name = check_name(&request.name)?;
    let (starts_at, ends_at) = (utc(&request.starts_at), utc(&request.ends_at));
    if ends_at <= starts_at {
        return Err(format!(
            "ends_at ({}) must be after starts_at ({})",
            request.ends_at.to_rfc3339(),
            request.starts_at.to_rfc3339()
        ));
    }
    if starts_at <= context.now {
        return Err(format!(
            "starts_at ({}) is in the past: a new workshop must start later than now",
            request.starts_at.to_rfc3339()
        ));
    }
    if ends_at - starts_at > MAX_LENGTH {
        return Err("ends_at: a workshop may last at most 14 days".to_owned());
    }
    let time_zone = check_time_zone(request.time_zone)?;
    check_headcount(request.headcount, context.max_vms)?;
    let spare = request
        .spare_vms
        .unwrap_or(context.settings.config.default_spare_vms)
        .min(context.max_vms - request.headcount);
    if request.warmup_lead_secs > MAX_LEAD_SECS {
        return Err("warmup_lead_secs: at most 7 days".to_owned());
    }
    if request.vm_settings.len() > MAX_SETTINGS {
        return Err(format!("vm_settings: at most {MAX_SETTINGS} settings"));
    }
    for (key, value) in &request.vm_settings {
        let key_ok = !key.is_empty()
            && key.len() <= 64
            && key.starts_with(|c: char| c.is_ascii_lowercase())
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !key_ok {
            return Err(format!(
                "vm_settings: `{key}` is not a variable name (lowercase letters, digits, _)"
            ));
        }
        if value.len() > 256 || value.chars().any(char::is_control) {
            return Err(format!(
                "vm_settings.{key}: at most 256 characters, no control characters"
            ));
        }
    }
    let admission = request.admission.unwrap_or(if request.roster.is_some() {
        Admission::Roster
    } else if request.invite_code.is_some() {
        Admission::Invite
    } else {
        Admission::Open
    });
    let roster = match (&request.roster, admission) {
        (Some(text), Admission::Roster) => roster::parse(text)?,
        (None, Admission::Roster) => {
            return Err("roster: a roster workshop needs the allowed emails".to_owned())
        }
        (Some(_), _) => {
            return Err(format!(
            "roster: given, but admission is {}; set admission to roster or leave the roster out",
            admission.as_str()
        ))
        }
        (None, _) => Vec::new(),
    };
    let (invite_code_hash, invite_code) = match (request.invite_code, admission) {
        (Some(code), Admission::Invite) => (Some(invite_hash(&check_invite_code(&code)?)), None),
        (None, Admission::Invite) => {
            let code = new_invite_code();
            (Some(invite_hash(&code)), Some(code))
        }
        (Some(_), _) => {
            return Err(format!(
                "invite_code: given, but admission is {}",
                admission.as_str()
            ))
        }
        (None, _) => (None, None),
    };
    let warning_minutes = request.warning_minutes.unwrap_or_else(|| vec![30, 5]);
    if warning_minutes.len() > 10 || warning_minutes.iter().any(|m| !(1..=1440).contains(m)) {
        return Err(
            "warning_minutes: up to 10 warnings, each 1 to 1440 minutes before the end".to_owned(),
        );
    }
    let keep_after_end_secs = request.keep_after_end_secs.unwrap_or(0);
    if keep_after_end_secs > MAX_LEAD_SECS {
        return Err("keep_after_end_secs: at most 7 days".to_owned());
    }
    let spend_cap_micros = match request.spend_cap {
        None => None,
        Some(cap) if cap.is_finite() && cap > 0.0 && cap < 1e9 => Some((cap * 1e6).round() as i64),
        Some(_) => return Err("spend_cap: a positive amount".to_owned()),
    };
    if request.teardown_at_cap && spend_cap_micros.is_none() {
        return Err("teardown_at_cap: set a spend_cap too".to_owned());
    }
    let check_limit = |name: &str, value: Option<u32>, min: u32| match value {
        Some(secs) if !(min..=MAX_LENGTH_SECS).contains(&secs) => Err(format!(
            "{name}: between {min} and {MAX_LENGTH_SECS} seconds, or leave it out for no limit"
        )),
        _ => Ok(value),
    };
    let idle_release_secs = check_limit("idle_release_secs", request.idle_release_secs, 10)?;
    let max_session_secs = check_limit("max_session_secs", request.max_session_secs, 10)?;
    let idle_warning_secs = request.idle_warning_secs.unwrap_or(300);
    if let Some(idle) = idle_release_secs {
        if idle_warning_secs >= idle {
            return Err(format!(
                "idle_warning_secs ({idle_warning_secs}) must be shorter than idle_release_secs ({idle})"
            ));
        }
    }
    let instance_type = request
        .vm_settings
        .get("instance_type")
        .cloned()
        .unwrap_or_else(|| context.settings.default_instance_type.clone());
    let price = context.settings.config.price_micros(&instance_type);
    let vm_target = i32::try_from(request.headcount + spare).unwrap_or(i32::MAX);
    let input = PlanInput {
        starts_at,
        ends_at,
        warmup_lead: Duration::seconds(i64::from(request.warmup_lead_secs)),
        vm_target,
        batch_size: i32::try_from(context.settings.config.warmup_batch_size).unwrap_or(10),
        boot_estimate: context.boot_estimate,
        warning_minutes: warning_minutes.clone(),
        keep_after_end: Duration::seconds(i64::from(keep_after_end_secs)),
    };
    let now = context.now;
    Ok(Checked {
        workshop: NewWorkshop {
            name,
            starts_at,
            ends_at,
            utc_offset_secs: request.starts_at.offset().local_minus_utc(),
            time_zone,
            headcount: i32::try_from(request.headcount).unwrap_or(i32::MAX),
            spare_vms: i32::try_from(spare).unwrap_or(0),
            warmup_lead_secs: i32::try_from(request.warmup_lead_secs).unwrap_or(i32::MAX),
            vm_settings: serde_json::to_string(&request.vm_settings)
                .unwrap_or_else(|_| "{}".to_owned()),
            admission: admission.as_str().to_owned(),
            invite_code_hash,
            warning_minutes: serde_json::to_string(&warning_minutes)
                .unwrap_or_else(|_| "[]".to_owned()),
            keep_after_end_secs: i32::try_from(keep_after_end_secs).unwrap_or(0),
            price_per_vm_hour_micros: price,
            spend_cap_micros,
            teardown_at_cap: request.teardown_at_cap,
            state: WorkshopState::Scheduled.as_str().to_owned(),
            spend_alert: SpendAlert::None.as_str().to_owned(),
            created_by: context.created_by.clone(),
            created_at: now,
            updated_at: now,
            idle_release_secs: idle_release_secs.map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
            idle_warning_secs: i32::try_from(idle_warning_secs).unwrap_or(300),
            max_session_secs: max_session_secs.map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
            desktop_mode: request.desktop_mode.map(|m| m.as_str().to_owned()),
        },
        roster,
        plan: plan::full(&input),
        invite_code,
    })
}

/// A workshop's name, trimmed, or what is wrong with it.
pub fn check_name(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "name: give the workshop a name of 1 to {MAX_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("name: must not hold control characters".to_owned());
    }
    Ok(name)
}

/// A time zone label, trimmed (`None` when empty), or what is wrong with it.
pub fn check_time_zone(raw: Option<String>) -> Result<Option<String>, String> {
    let zone = raw
        .map(|zone| zone.trim().to_owned())
        .filter(|z| !z.is_empty());
    if let Some(zone) = &zone {
        let ok = zone.len() <= 64
            && zone
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+-:".contains(c));
        if !ok {
            return Err(format!(
                "time_zone: `{zone}` is not a time zone name such as America/Los_Angeles"
            ));
        }
    }
    Ok(zone)
}

/// Shortest invite code an admin may choose.
pub const MIN_INVITE_CODE_LEN: usize = 8;

/// An invite code as given, trimmed, or what is wrong with it.
pub fn check_invite_code(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_owned();
    // At least 8: a code an admin picks is guessed by anyone with the workshop's link.
    let ok = (MIN_INVITE_CODE_LEN..=64).contains(&code.len())
        && code.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(code)
    } else {
        Err(format!(
            "invite_code: {MIN_INVITE_CODE_LEN} to 64 visible characters, no spaces"
        ))
    }
}

/// A headcount between 1 and `provider.max_vms`.
pub fn check_headcount(headcount: u32, max_vms: u32) -> Result<(), String> {
    if headcount == 0 {
        return Err("headcount: a workshop needs at least 1 participant".to_owned());
    }
    if headcount > max_vms {
        return Err(format!(
            "headcount: {headcount} is above provider.max_vms ({max_vms}); raise that limit or \
             split the workshop"
        ));
    }
    Ok(())
}

/// What is stored for an invite code: its SHA-256, hex. Codes are compared without case or
/// surrounding spaces, as people type them.
pub fn invite_hash(code: &str) -> String {
    lablink_actors::tokens::hash_token(&code.trim().to_uppercase())
}

fn new_invite_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..INVITE_LEN)
        .map(|_| char::from(INVITE_ALPHABET[rng.random_range(0..INVITE_ALPHABET.len())]))
        .collect()
}

//! Who may ask for a VM in a workshop, and what its start page says about it: its name, its
//! state in the lab's own time ("opens at 09:00", "open until 17:00", "ended"), whether an
//! invite code is asked for, and the warning participants see now. The checks run before a
//! claim, so a refused participant never takes a VM.

use chrono::NaiveDateTime;
use lablink_schema::wire::{Admission, WorkshopState};
use lablink_schema::workshops::Workshop;
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::admin_actions::workshops::request::invite_hash;
use crate::admin_actions::workshops::view::local;

/// What the participants' pages show about their workshop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkshopBanner {
    pub id: i64,
    pub name: String,
    /// One line for people: "Opens at 09:00 on 12 March (America/Los_Angeles)".
    pub status: String,
    pub open: bool,
    pub needs_invite: bool,
    pub notice: Option<String>,
    /// The workshop's zone, for the pages' times: its name, if it has one…
    pub zone: Option<String>,
    /// …and its offset from UTC, in seconds.
    pub offset_secs: i32,
}

fn clock(workshop: &Workshop, at: NaiveDateTime) -> String {
    let at = local(workshop, at);
    let zone = workshop
        .time_zone
        .clone()
        .unwrap_or_else(|| format!("UTC{}", at.format("%:z")));
    format!(
        "{} on {} ({zone})",
        at.format("%H:%M"),
        at.format("%-d %B %Y")
    )
}

impl WorkshopBanner {
    pub fn of(workshop: &Workshop) -> Self {
        let state = workshop.state();
        let status = match state {
            WorkshopState::Scheduled | WorkshopState::WarmingUp => {
                format!("Opens at {}", clock(workshop, workshop.starts_at))
            }
            WorkshopState::Open => format!("Open until {}", clock(workshop, workshop.ends_at)),
            WorkshopState::Ended | WorkshopState::TornDown => "This workshop has ended.".to_owned(),
        };
        WorkshopBanner {
            id: workshop.id,
            name: workshop.name.clone(),
            status,
            open: state == WorkshopState::Open,
            needs_invite: workshop.admission() == Admission::Invite,
            notice: workshop.notice.clone(),
            zone: workshop.time_zone.clone(),
            offset_secs: workshop.utc_offset_secs,
        }
    }
}

/// Why a participant is not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAdmitted {
    NotOpenYet(String),
    Ended,
    WrongInvite,
    NotOnRoster,
}

impl NotAdmitted {
    /// What the participant is told.
    pub fn message(&self) -> String {
        match self {
            NotAdmitted::NotOpenYet(when) => {
                format!("This workshop is not open yet: it opens at {when}. Please come back then.")
            }
            NotAdmitted::Ended => {
                "This workshop has ended, so no more VMs are handed out. Ask your instructor if \
                 you need one."
                    .to_owned()
            }
            NotAdmitted::WrongInvite => {
                "That invite code is not right for this workshop. Check it with your instructor \
                 and try again."
                    .to_owned()
            }
            NotAdmitted::NotOnRoster => {
                "This email is not on this workshop's list of participants. Use the email you \
                 registered with, or ask your instructor to add you."
                    .to_owned()
            }
        }
    }
}

/// Whether `email` (normalised) may ask for a VM now. `on_roster` says whether the email is
/// on the workshop's roster (only asked for a roster workshop).
pub fn check(
    workshop: &Workshop,
    invite_code: &str,
    on_roster: impl FnOnce() -> bool,
) -> Result<(), NotAdmitted> {
    match workshop.state() {
        WorkshopState::Open => {}
        WorkshopState::Scheduled | WorkshopState::WarmingUp => {
            return Err(NotAdmitted::NotOpenYet(clock(workshop, workshop.starts_at)))
        }
        WorkshopState::Ended | WorkshopState::TornDown => return Err(NotAdmitted::Ended),
    }
    match workshop.admission() {
        Admission::Open => Ok(()),
        Admission::Invite => {
            let given = invite_hash(invite_code);
            let stored = workshop.invite_code_hash.as_deref().unwrap_or_default();
            if !invite_code.trim().is_empty()
                && bool::from(given.as_bytes().ct_eq(stored.as_bytes()))
            {
                Ok(())
            } else {
                Err(NotAdmitted::WrongInvite)
            }
        }
        Admission::Roster => {
            if on_roster() {
                Ok(())
            } else {
                Err(NotAdmitted::NotOnRoster)
            }
        }
    }
}

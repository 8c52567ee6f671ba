//! What `/proc/<pid>/stat` says about a process on this machine: its command name, state,
//! process group and start time. Lease holders, Terraform runs and local agents are all told
//! apart from unrelated processes that reused their pid by these.

/// The fields of `/proc/<pid>/stat` this crate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// The command name (at most 15 bytes, as the kernel keeps it).
    pub name: String,
    /// `R`, `S`, `D`, `T`, `Z` (exited, not reaped yet), …
    pub state: char,
    pub process_group: i32,
    /// Clock ticks after boot: with the pid, names one process for good.
    pub start_time: u64,
}

impl ProcStat {
    /// Process `pid` as it is now; `None` when there is none.
    pub fn of(pid: i32) -> Option<ProcStat> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (name) state ppid pgrp …": the name may hold anything, so read around the
        // last ')'.
        let (before, after) = stat.rsplit_once(')')?;
        let name = before.split_once('(')?.1.to_owned();
        let fields: Vec<&str> = after.split_whitespace().collect();
        Some(ProcStat {
            name,
            state: fields.first()?.chars().next()?,
            process_group: fields.get(2)?.parse().ok()?,
            // Field 22 of the line, the 20th after the name.
            start_time: fields.get(19)?.parse().ok()?,
        })
    }

    /// Whether it has exited (a zombie, waiting to be reaped, has).
    pub fn has_exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_reads_as_running_and_a_reaped_one_as_none() {
        let me = ProcStat::of(i32::try_from(std::process::id()).expect("pid")).expect("me");
        assert!(!me.has_exited());
        assert!(me.start_time > 0);
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = i32::try_from(child.id()).expect("pid");
        child.wait().expect("wait");
        assert_eq!(ProcStat::of(pid), None);
    }
}

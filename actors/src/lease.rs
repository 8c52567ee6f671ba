//! Who holds a lease: this allocator process, named so that any allocator can tell whether a
//! holder on its own machine is still alive (`host:pid:start time`, so a reused process id
//! never passes for the old process). A holder on another machine is judged by its lease's
//! expiry alone.

use std::sync::OnceLock;
use std::time::Duration;

/// How long a lease lasts unless renewed.
pub const LEASE_DURATION: Duration = Duration::from_secs(30);
/// How often a holder renews its leases: well within [`LEASE_DURATION`].
pub const LEASE_RENEWAL: Duration = Duration::from_secs(10);

/// This process's name as a lease holder.
pub fn this_process() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let pid = std::process::id();
        format!(
            "{}:{pid}:{}",
            host_name(),
            start_time(pid).unwrap_or_default()
        )
    })
}

/// Whether `owner` may still be alive: always, unless it names a process on this machine
/// that is gone (or a different process now has its id).
pub fn may_be_alive(owner: &str) -> bool {
    let mut parts = owner.rsplitn(3, ':');
    let (Some(started), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return true;
    };
    if host != host_name() {
        return true;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return true;
    };
    start_time(pid).is_some_and(|now| now == started)
}

/// This machine's name, read once.
fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned())
    })
}

/// When process `pid` started (clock ticks since boot).
fn start_time(pid: u32) -> Option<String> {
    let stat = crate::proc_stat::ProcStat::of(i32::try_from(pid).ok()?)?;
    Some(stat.start_time.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_gone_one_is_not() {
        assert!(may_be_alive(this_process()));
        let host = host_name();
        // A process id that does not exist now.
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        let started = start_time(pid);
        child.wait().expect("wait");
        let gone = format!("{host}:{pid}:{}", started.unwrap_or_else(|| "1".to_owned()));
        assert!(!may_be_alive(&gone), "{gone}");
        // Another machine's holder is judged by its lease alone.
        assert!(may_be_alive("elsewhere:1:1"));
        // The same id with another start time is another process.
        let reused = format!("{host}:{}:0", std::process::id());
        assert!(!may_be_alive(&reused));
    }
}

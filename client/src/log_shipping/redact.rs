//! Masking secrets in log lines before they leave the VM: the VM's token, the PIN and the
//! Chrome Remote Desktop code of the current session (known values), anything shaped like
//! them (a `Bearer` credential, `--code=…`, `--pin=…`, an OAuth code `4/…`), and whatever
//! the configured pattern (`LABLINK_LOG_REDACT`) matches.

use std::sync::{Arc, RwLock};

use regex::Regex;

/// What replaces a secret.
pub const MASK: &str = "[redacted]";
/// Known values shorter than this are not masked (they would mask ordinary text).
const SHORTEST_SECRET: usize = 4;

/// Secret values the agent learns while it runs (its token, each session's PIN and code),
/// shared by the parts that learn them and the redactor.
#[derive(Debug, Clone, Default)]
pub struct KnownSecrets(Arc<RwLock<Vec<String>>>);

impl KnownSecrets {
    /// Masks `secret` from now on.
    pub fn remember(&self, secret: &str) {
        let secret = secret.trim();
        if secret.len() < SHORTEST_SECRET {
            return;
        }
        if let Ok(mut secrets) = self.0.write() {
            if !secrets.iter().any(|known| known == secret) {
                secrets.push(secret.to_owned());
            }
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Redactor {
    known: KnownSecrets,
    shapes: Vec<(Regex, &'static str)>,
    configured: Option<Regex>,
}

impl Redactor {
    pub fn new(known: KnownSecrets, configured: Option<Regex>) -> Self {
        let shape = |pattern: &str, keep: &'static str| {
            (Regex::new(pattern).expect("a valid built-in pattern"), keep)
        };
        Redactor {
            known,
            shapes: vec![
                shape(r"(?i)(bearer\s+)[^\s,;]+", "${1}"),
                shape(r#"(--code=)("[^"]*"|'[^']*'|\S+)"#, "${1}"),
                shape(r#"(--pin=)("[^"]*"|'[^']*'|\S+)"#, "${1}"),
                shape(r"(LABLINK_VM_TOKEN=)\S+", "${1}"),
                shape(r"(?i)(\bpin\b\W{0,3})\d{4,}", "${1}"),
                shape(r"\b4/[0-9A-Za-z_-]{10,}", ""),
            ],
            configured,
        }
    }

    /// `line` with every secret masked.
    pub fn redact(&self, line: &str) -> String {
        let mut text = line.to_owned();
        if let Ok(known) = self.known.0.read() {
            for secret in known.iter() {
                if text.contains(secret.as_str()) {
                    text = text.replace(secret.as_str(), MASK);
                }
            }
        }
        for (pattern, keep) in &self.shapes {
            if pattern.is_match(&text) {
                text = pattern
                    .replace_all(&text, format!("{keep}{MASK}").as_str())
                    .into_owned();
            }
        }
        if let Some(pattern) = &self.configured {
            text = pattern.replace_all(&text, MASK).into_owned();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> (KnownSecrets, Redactor) {
        let known = KnownSecrets::default();
        let configured = Regex::new(r"sk-[a-z0-9]{8}").expect("pattern");
        (known.clone(), Redactor::new(known, Some(configured)))
    }

    #[test]
    fn the_vm_token_is_masked_wherever_it_appears() {
        let (known, redactor) = redactor();
        let token = "f3a9c2e4b1d04a5f9e8d7c6b5a4f3e2d";
        known.remember(token);
        let masked = redactor.redact(&format!("calling with {token} now"));
        assert_eq!(masked, "calling with [redacted] now");
        assert_eq!(
            redactor.redact("Authorization: Bearer some-other-token"),
            "Authorization: Bearer [redacted]"
        );
        assert_eq!(
            redactor.redact("env LABLINK_VM_TOKEN=abc123def"),
            "env LABLINK_VM_TOKEN=[redacted]"
        );
    }

    #[test]
    fn the_sessions_pin_and_remote_desktop_code_are_masked() {
        let (known, redactor) = redactor();
        known.remember("482913");
        assert_eq!(
            redactor.redact("starting the host with 482913"),
            "starting the host with [redacted]"
        );
        let command = r#"DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="4/0AanRRrtabcdefghijk" --redirect-url="https://remotedesktop.google.com/_/oauthredirect" --name=$(hostname) --pin=123456"#;
        let masked = redactor.redact(command);
        assert!(!masked.contains("4/0AanRRrt"), "{masked}");
        assert!(!masked.contains("123456"), "{masked}");
        assert!(masked.contains(r#"--code=[redacted]"#), "{masked}");
        assert!(
            masked.contains("--redirect-url"),
            "the rest stays: {masked}"
        );
        assert_eq!(redactor.redact("PIN: 765432"), "PIN: [redacted]");
        assert_eq!(
            redactor.redact("code 4/0AX4XfWjabcdefghijklmn seen"),
            "code [redacted] seen"
        );
    }

    #[test]
    fn the_configured_pattern_is_masked_and_ordinary_text_is_not() {
        let (known, redactor) = redactor();
        known.remember("ab");
        assert_eq!(
            redactor.redact("key sk-abcd1234 used"),
            "key [redacted] used"
        );
        assert_eq!(
            redactor.redact("epoch 12 of 100: loss 0.25 (about 1234 frames)"),
            "epoch 12 of 100: loss 0.25 (about 1234 frames)"
        );
    }
}

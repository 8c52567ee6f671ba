//! Validation at the edge: researchers' emails and Chrome Remote Desktop commands, and
//! hostnames. Values are checked and normalised here, before any actor sees them.

use std::sync::LazyLock;

use lablink_schema::crd::CrdCommand;
use regex::Regex;

/// Longest email accepted (the limit of the address syntax).
const MAX_EMAIL_LEN: usize = 254;

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

/// The researcher's CRD command, checked against the genuine command's pattern and rebuilt
/// in one canonical form from its code, so what reaches the VM is exactly what was validated.
pub fn crd_command(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("Please paste the Chrome Remote Desktop command.".to_owned());
    }
    CrdCommand::parse(raw)
        .map(|command| command.canonical())
        .map_err(|_| {
            "That is not a Chrome Remote Desktop command. Copy the whole command shown for \
             \"Debian Linux\" (it starts with DISPLAY= and contains --code=)."
                .to_owned()
        })
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

    #[test]
    fn crd_commands_are_made_canonical_and_junk_is_refused_with_advice() {
        let pasted = "DISPLAY= /opt/google/chrome-remote-desktop/start-host --code=4/0AVG7fiQ1bCdEfGh \
                      --redirect-url='https://remotedesktop.google.com/_/oauthredirect' --name=$(hostname)";
        assert_eq!(
            crd_command(pasted).expect("genuine"),
            "DISPLAY= /opt/google/chrome-remote-desktop/start-host --code=\"4/0AVG7fiQ1bCdEfGh\" \
             --redirect-url=\"https://remotedesktop.google.com/_/oauthredirect\" --name=$(hostname)"
        );
        assert!(crd_command("").expect_err("empty").contains("paste"));
        assert!(crd_command("rm -rf /")
            .expect_err("junk")
            .contains("Debian Linux"));
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

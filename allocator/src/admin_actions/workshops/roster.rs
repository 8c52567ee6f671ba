//! Reading a roster: emails pasted one per line, or a CSV export (the first column holding
//! an `@` is the email; a header line without one is skipped). Every line is checked, and
//! the first bad one is reported by number with what is wrong, so nothing half-read is kept.

use std::collections::BTreeSet;

use crate::validate;

/// Most emails on one roster.
pub const MAX_ROSTER: usize = 10_000;

/// The roster's emails, normalised and without repeats, or what is wrong and on which line.
pub fn parse(text: &str) -> Result<Vec<String>, String> {
    let mut emails = BTreeSet::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line
            .split([',', ';', '\t'])
            .map(|cell| cell.trim().trim_matches('"').trim())
            .collect();
        let Some(cell) = cells.iter().find(|cell| cell.contains('@')) else {
            if number == 1 {
                // A header such as `name,email`.
                continue;
            }
            return Err(format!(
                "roster line {number}: no email address in \"{}\"",
                shorten(line)
            ));
        };
        let email = validate::email(cell).map_err(|_| {
            format!(
                "roster line {number}: \"{}\" is not an email address",
                shorten(cell)
            )
        })?;
        emails.insert(email);
        if emails.len() > MAX_ROSTER {
            return Err(format!(
                "the roster has more than {MAX_ROSTER} emails; split the workshop"
            ));
        }
    }
    if emails.is_empty() {
        return Err("the roster has no email addresses".to_owned());
    }
    Ok(emails.into_iter().collect())
}

fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(60).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_and_csv_exports_both_read() {
        let pasted = "Ada@Example.org\n\n grace@example.org \nada@example.org\n";
        assert_eq!(
            parse(pasted).expect("roster"),
            ["ada@example.org", "grace@example.org"]
        );
        let csv =
            "Name,Email,Group\n\"Lovelace, Ada\",ada@example.org,A\nHopper;grace@example.org;B\n";
        assert_eq!(
            parse(csv).expect("csv"),
            ["ada@example.org", "grace@example.org"]
        );
    }

    #[test]
    fn a_bad_line_is_named_by_number() {
        let err = parse("ada@example.org\nnot an email\n").expect_err("bad line");
        assert_eq!(err, "roster line 2: no email address in \"not an email\"");
        let err = parse("ada@example.org\nada@@example\n").expect_err("bad email");
        assert!(err.starts_with("roster line 2: \"ada@@example\""), "{err}");
        assert!(parse("\n\n").is_err());
    }
}

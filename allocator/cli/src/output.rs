//! What a command prints: results on standard output (a table, a line, or JSON with
//! `--json`), everything else (progress, hints) on standard error.

use std::io::Write;

use crate::error::CliError;

/// Writes `text` to standard output as it is.
pub fn text(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Writes one line to standard output.
pub fn line(line: &str) -> Result<(), CliError> {
    text(&format!("{line}\n"))
}

/// Writes `value` as pretty JSON.
pub fn json(value: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Failed(e.to_string()))?;
    line(&text)
}

/// Writes bytes to standard output (an export).
pub fn bytes(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}

/// A note for the person at the terminal, on standard error.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

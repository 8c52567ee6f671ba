//! What a VM log line's text says by itself: whether it reads as an error (for the admin's
//! errors-only view), and cutting an overlong line to a length with a visible marker.

/// Whether `text` reads as an error: a level token (`ERROR`, `FATAL`, `CRITICAL`, `PANIC`,
/// also as `level=error` or `"level":"error"`), a line that starts with `error:` or
/// `fatal:`, a Rust panic, or a Python traceback (its header, its `File …, line N` lines and
/// its closing `SomethingError: …` or `…Exception: …` line).
pub fn reads_as_error(text: &str) -> bool {
    const LEVEL_WORDS: [&str; 4] = ["ERROR", "FATAL", "CRITICAL", "PANIC"];
    let has_level_word = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| LEVEL_WORDS.contains(&word));
    if has_level_word {
        return true;
    }
    let lower = text.to_ascii_lowercase();
    let compact: String = lower.chars().filter(|c| !c.is_whitespace()).collect();
    if ["level=error", "level=fatal", "level=critical"]
        .iter()
        .any(|token| compact.contains(token))
        || [
            "\"level\":\"error\"",
            "\"level\":\"fatal\"",
            "\"level\":\"critical\"",
        ]
        .iter()
        .any(|token| compact.contains(token))
    {
        return true;
    }
    let trimmed = lower.trim_start();
    if trimmed.starts_with("error:")
        || trimmed.starts_with("error[")
        || trimmed.starts_with("fatal:")
    {
        return true;
    }
    if text.contains("panicked at") || text.starts_with("Traceback (most recent call last)") {
        return true;
    }
    // A traceback's frames: `  File "x.py", line 3, in f`.
    if text.starts_with("  File \"") && text.contains("\", line ") {
        return true;
    }
    // Its last line: `ValueError: …`, `mod.CustomException: …`.
    text.split_once(": ").is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.contains(' ')
            && (name.ends_with("Error") || name.ends_with("Exception"))
    })
}

/// `text` cut to at most `max_bytes` bytes (at a character boundary) with a marker saying
/// how much was cut; `text` itself when it fits.
pub fn cut_to(text: &str, max_bytes: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max_bytes {
        return text.into();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} … [cut: {} more bytes]", &text[..end], text.len() - end).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_tokens_panics_and_tracebacks_read_as_errors() {
        for line in [
            "2026-12-02T10:00:00Z ERROR lablink_client: cannot reach the allocator",
            "[FATAL] out of memory",
            "time=10:00 level=error msg=boom",
            r#"{"level": "ERROR", "message": "x"}"#,
            "error: could not compile `sleap`",
            "thread 'main' panicked at src/main.rs:3:5:",
            "Traceback (most recent call last):",
            r#"  File "train.py", line 12, in <module>"#,
            "ValueError: too many labels",
            "sleap.io.CustomException: broken video",
        ] {
            assert!(reads_as_error(line), "{line}");
        }
        for line in [
            "INFO epoch 3 of 10: loss 0.2",
            "0 errors, 2 warnings",
            "no error here: all well",
            "terrorist_detection.py started",
            "Error handling is on",
            "",
        ] {
            assert!(!reads_as_error(line), "{line}");
        }
    }

    #[test]
    fn a_long_line_is_cut_at_a_character_boundary_with_a_marker() {
        assert_eq!(cut_to("short", 10), "short");
        assert_eq!(cut_to("abcdef", 3), "abc … [cut: 3 more bytes]");
        // "é" is two bytes: never cut in its middle.
        assert_eq!(cut_to("aé", 2), "a … [cut: 2 more bytes]");
    }
}

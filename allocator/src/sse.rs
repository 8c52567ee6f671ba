//! Server-sent events framing: text of any shape becomes one event's `data:` lines, so no
//! byte of a VM's log line can end an event early or start a field of its own.

/// `data: …` lines for `text`, ending the event. The event-stream format ends a line at CR,
/// LF or CRLF, so each of them starts a new `data:` line (the browser joins them back with
/// LF); a bare CR can therefore never smuggle in an `event:` or `id:` field.
pub fn data_event(text: &str) -> String {
    let mut event = String::with_capacity(text.len() + 8);
    let mut rest = text;
    loop {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        event.push_str("data: ");
        event.push_str(&rest[..end]);
        event.push('\n');
        if end == rest.len() {
            break;
        }
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
    event.push('\n');
    event
}

#[cfg(test)]
mod tests {
    use super::data_event;

    #[test]
    fn every_line_break_starts_a_data_line() {
        assert_eq!(data_event("plain"), "data: plain\n\n");
        assert_eq!(data_event("a\nb"), "data: a\ndata: b\n\n");
        assert_eq!(data_event("a\r\nb"), "data: a\ndata: b\n\n");
        assert_eq!(
            data_event("ok\revent: vms\rid: 9"),
            "data: ok\ndata: event: vms\ndata: id: 9\n\n"
        );
        assert_eq!(data_event("end\n"), "data: end\ndata: \n\n");
        assert_eq!(data_event(""), "data: \n\n");
    }
}

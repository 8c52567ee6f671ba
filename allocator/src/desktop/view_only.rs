//! Keeps an instructor's peek view-only, on the allocator, whatever the viewer's browser
//! sends. The viewer's half of RFB is read message by message: keyboard, pointer, clipboard,
//! resize and power messages are dropped before they reach the VM, and ClientInit is always
//! "shared", so a peek never disconnects the participant. A message it cannot size ends the
//! stream: it never guesses where the next one starts.

/// Why the viewer's stream cannot be filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the viewer's RFB stream cannot be kept view-only: {0}")]
pub struct Unfilterable(&'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Version,
    SecurityChoice,
    VncAuthResponse,
    ClientInit,
    Messages,
}

/// The client-to-server half of one RFB connection, filtered.
#[derive(Debug)]
pub struct ViewOnlyFilter {
    phase: Phase,
    pending: Vec<u8>,
}

impl Default for ViewOnlyFilter {
    fn default() -> Self {
        ViewOnlyFilter {
            phase: Phase::Version,
            pending: Vec::new(),
        }
    }
}

/// The length of the client message at the start of `buffer`, and whether it may pass; `None`
/// until enough of it has arrived to tell.
fn next_message(buffer: &[u8]) -> Result<Option<(usize, bool)>, Unfilterable> {
    let Some(&kind) = buffer.first() else {
        return Ok(None);
    };
    let at_least = |n: usize| buffer.len() >= n;
    let u16_at = |i: usize| usize::from(u16::from_be_bytes([buffer[i], buffer[i + 1]]));
    Ok(match kind {
        // SetPixelFormat, FramebufferUpdateRequest, EnableContinuousUpdates: pass.
        0 => Some((20, true)),
        3 => Some((10, true)),
        150 => Some((10, true)),
        // SetEncodings: a count, then four bytes each.
        2 => at_least(4).then(|| (4 + 4 * u16_at(2), true)),
        // ClientFence: eight bytes, a length, the payload.
        248 => at_least(9).then(|| (9 + usize::from(buffer[8]), true)),
        // KeyEvent, PointerEvent: input, dropped.
        4 => Some((8, false)),
        5 => Some((6, false)),
        // ClientCutText: a signed length (negative: the extended clipboard); dropped.
        6 => at_least(8).then(|| {
            let length = i32::from_be_bytes([buffer[4], buffer[5], buffer[6], buffer[7]]);
            (8 + length.unsigned_abs() as usize, false)
        }),
        // XVP (shut down, reboot) and SetDesktopSize change the participant's VM: dropped.
        250 => Some((4, false)),
        251 => at_least(8).then(|| (8 + 16 * usize::from(buffer[6]), false)),
        // QEMU's extended key event is input too.
        255 => match buffer.get(1) {
            None => None,
            Some(0) => Some((12, false)),
            Some(_) => return Err(Unfilterable("an unknown QEMU message")),
        },
        _ => return Err(Unfilterable("an unknown client message")),
    })
}

impl ViewOnlyFilter {
    /// The bytes of `incoming` that may go on to the VM (possibly none).
    pub fn feed(&mut self, incoming: &[u8]) -> Result<Vec<u8>, Unfilterable> {
        self.pending.extend_from_slice(incoming);
        let mut passed = Vec::new();
        loop {
            let (length, pass) = match self.phase {
                Phase::Version => (12, true),
                Phase::SecurityChoice | Phase::ClientInit => (1, true),
                Phase::VncAuthResponse => (16, true),
                Phase::Messages => match next_message(&self.pending)? {
                    Some(message) => message,
                    None => break,
                },
            };
            if self.pending.len() < length {
                break;
            }
            let mut chunk: Vec<u8> = self.pending.drain(..length).collect();
            self.phase = match self.phase {
                Phase::Version => {
                    // 3.3 lets the server alone pick the security, which this filter does
                    // not see; noVNC speaks 3.7 or 3.8 to every current server.
                    if !matches!(&chunk[..], b"RFB 003.008\n" | b"RFB 003.007\n") {
                        return Err(Unfilterable("an RFB version other than 3.7 or 3.8"));
                    }
                    Phase::SecurityChoice
                }
                Phase::SecurityChoice => match chunk[0] {
                    1 => Phase::ClientInit,
                    2 => Phase::VncAuthResponse,
                    _ => return Err(Unfilterable("a security type other than None or VNC")),
                },
                Phase::VncAuthResponse => Phase::ClientInit,
                Phase::ClientInit => {
                    // Shared: the participant's own connection stays.
                    chunk[0] = 1;
                    Phase::Messages
                }
                Phase::Messages => Phase::Messages,
            };
            if pass {
                passed.extend_from_slice(&chunk);
            }
        }
        Ok(passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake() -> Vec<u8> {
        let mut bytes = b"RFB 003.008\n".to_vec();
        bytes.push(1); // security: None
        bytes.push(0); // ClientInit: exclusive, as a hostile viewer might ask
        bytes
    }

    #[test]
    fn input_is_dropped_and_the_rest_passes_in_order() {
        let mut filter = ViewOnlyFilter::default();
        let mut stream = handshake();
        let set_encodings = [2, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1];
        let key = [4, 1, 0, 0, 0, 0, 0, 0x61];
        let pointer = [5, 1, 0, 10, 0, 10];
        let cut = [6, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c'];
        let update = [3, 0, 0, 0, 0, 0, 4, 0, 3, 0];
        let resize = [
            251, 0, 4, 0, 3, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 4, 0, 3, 0, 0, 0, 0, 0,
        ];
        for message in [&set_encodings[..], &key, &pointer, &cut, &resize, &update] {
            stream.extend_from_slice(message);
        }
        // Fed one byte at a time, as the worst network would split it.
        let mut passed = Vec::new();
        for byte in &stream {
            passed.extend(filter.feed(std::slice::from_ref(byte)).expect("filterable"));
        }
        let mut expected = b"RFB 003.008\n".to_vec();
        expected.extend_from_slice(&[1, 1]);
        expected.extend_from_slice(&set_encodings);
        expected.extend_from_slice(&update);
        assert_eq!(passed, expected, "input gone, ClientInit shared");
    }

    #[test]
    fn what_cannot_be_sized_ends_the_stream() {
        let mut filter = ViewOnlyFilter::default();
        filter.feed(&handshake()).expect("handshake");
        assert!(filter.feed(&[99, 0, 0]).is_err());
        let mut old = ViewOnlyFilter::default();
        assert!(old.feed(b"RFB 003.003\n").is_err());
    }
}

//! Real receivers for notification tests, started by the test on 127.0.0.1: a webhook
//! receiver (plain HTTP/1.1; it can refuse deliveries for a while, as a receiver that is
//! down does) that checks each signature, and an SMTP server that keeps every mail.
#![allow(dead_code)] // each test crate uses its own part of it

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One webhook request as received.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub headers: BTreeMap<String, String>,
    pub body: serde_json::Value,
    /// Whether its signature matched the secret.
    pub signed: bool,
    /// Whether the receiver answered 2xx.
    pub accepted: bool,
}

#[derive(Default)]
struct WebhookState {
    requests: Vec<WebhookRequest>,
    refuse_until: Option<Instant>,
}

/// A webhook receiver on a free local port.
#[derive(Clone)]
pub struct WebhookReceiver {
    pub url: String,
    state: Arc<Mutex<WebhookState>>,
}

impl WebhookReceiver {
    pub fn start(secret: &str) -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(WebhookState::default()));
        let shared = state.clone();
        let secret = secret.as_bytes().to_vec();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let state = shared.clone();
                let secret = secret.clone();
                std::thread::spawn(move || serve_webhook(stream, &state, &secret));
            }
        });
        WebhookReceiver { url, state }
    }

    /// Answers 503 to everything for `how_long` from now (a receiver that is down).
    pub fn refuse_for(&self, how_long: Duration) {
        self.state.lock().expect("lock").refuse_until = Some(Instant::now() + how_long);
    }

    pub fn requests(&self) -> Vec<WebhookRequest> {
        self.state.lock().expect("lock").requests.clone()
    }

    /// The accepted deliveries' bodies, by `event`.
    pub fn accepted(&self, event: &str) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.accepted && r.body["event"] == event)
            .map(|r| r.body)
            .collect()
    }

    /// Waits until an accepted delivery of `event` has arrived; returns it. Async, so an
    /// allocator running on the test's own thread goes on meanwhile.
    pub async fn wait_for(&self, event: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(first) = self.accepted(event).into_iter().next() {
                return first;
            }
            assert!(
                Instant::now() < deadline,
                "no `{event}` webhook within {timeout:?}; got {:?}",
                self.requests()
                    .iter()
                    .map(|r| r.body["event"].clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn serve_webhook(stream: TcpStream, state: &Mutex<WebhookState>, secret: &[u8]) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let timestamp = headers
        .get("x-lablink-timestamp")
        .cloned()
        .unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let signed = headers.get("x-lablink-signature") == Some(&format!("sha256={expected}"));
    let mut state = state.lock().expect("lock");
    let accepted = state
        .refuse_until
        .is_none_or(|until| Instant::now() >= until);
    state.requests.push(WebhookRequest {
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        signed,
        accepted,
    });
    drop(state);
    let status = if accepted {
        "204 No Content"
    } else {
        "503 Service Unavailable"
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

/// One mail as received.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// An SMTP server (no TLS: the allocator is configured with `security: none` for a relay on
/// this machine) that keeps every mail.
#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP server");
        let port = listener.local_addr().expect("address").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let shared = mails.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mails = shared.clone();
                std::thread::spawn(move || serve_smtp(stream, &mails));
            }
        });
        SmtpServer { port, mails }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("lock").clone()
    }

    /// Waits until a mail whose text holds `text` has arrived; returns it.
    pub async fn wait_for(&self, text: &str, timeout: Duration) -> Mail {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(mail) = self.mails().into_iter().find(|m| m.data.contains(text)) {
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "no mail with `{text}` within {timeout:?}; got {} mails",
                self.mails().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn serve_smtp(stream: TcpStream, mails: &Mutex<Vec<Mail>>) {
    let mut writer = stream.try_clone().expect("clone the stream");
    let mut reader = BufReader::new(stream);
    let mut reply = |text: &str| writer.write_all(format!("{text}\r\n").as_bytes()).is_ok();
    if !reply("220 localhost test SMTP") {
        return;
    }
    let (mut from, mut to) = (String::new(), Vec::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let ok = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            reply("250 localhost")
        } else if upper.starts_with("MAIL FROM:") {
            from = command[10..].trim().to_owned();
            to.clear();
            reply("250 OK")
        } else if upper.starts_with("RCPT TO:") {
            to.push(command[8..].trim().to_owned());
            reply("250 OK")
        } else if upper == "DATA" {
            if !reply("354 end with <CRLF>.<CRLF>") {
                return;
            }
            let mut data = String::new();
            loop {
                let mut part = String::new();
                if reader.read_line(&mut part).unwrap_or(0) == 0 {
                    return;
                }
                if part.trim_end() == "." {
                    break;
                }
                data.push_str(&part);
            }
            mails.lock().expect("lock").push(Mail {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            reply("250 OK queued")
        } else if upper == "QUIT" {
            let _ = reply("221 bye");
            return;
        } else {
            reply("250 OK")
        };
        if !ok {
            return;
        }
    }
}

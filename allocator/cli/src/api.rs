//! The allocator's REST API as the CLI calls it: a token on every request, the admin API's
//! error shape turned into [`CliError::Refused`], the version check, and server-sent events
//! read off a streamed answer.

use lablink_schema::wire::{ApiErrorBody, VersionView, ADMIN_API_VERSION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::CliError;

/// How often a creation is sent before its failure is reported.
const CREATE_TRIES: u32 = 3;

/// One allocator, with the token to call it with.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// A sent request's JSON answer.
#[derive(Debug)]
pub struct Answer {
    pub body: serde_json::Value,
    /// The next page of a list (`Link: rel="next"`).
    pub next: Option<String>,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Result<Self, CliError> {
        let base = normalised_url(base)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("lablink/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| CliError::Connection(err.to_string()))?;
        Ok(Api {
            base,
            token: token.to_owned(),
            http,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            // The admin API refuses a state change that a browser on another site could send;
            // this header says it is a program.
            .header("X-LabLink-Client", "lablink-cli")
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, CliError> {
        request.send().await.map_err(|err| {
            CliError::Connection(format!(
                "cannot reach the allocator at {}: {err}",
                self.base
            ))
        })
    }

    /// Sends and reads a JSON answer; a refusal becomes [`CliError::Refused`].
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Answer, CliError> {
        let response = self.send(request).await?;
        let status = response.status();
        let next = response
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_page);
        let text = response
            .text()
            .await
            .map_err(|err| CliError::Connection(err.to_string()))?;
        if !status.is_success() {
            return Err(refusal(status, &text));
        }
        let body = if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).map_err(|err| {
                CliError::Connection(format!("the allocator's answer is not JSON: {err}"))
            })?
        };
        Ok(Answer { body, next })
    }

    pub async fn get(&self, path: &str) -> Result<Answer, CliError> {
        self.call(self.request(Method::GET, path)).await
    }

    /// Every item of a paged list (a JSON array per page), following `Link: rel="next"`.
    pub async fn get_all(&self, path: &str) -> Result<serde_json::Value, CliError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(path) = next.take() {
            let answer = self.get(&path).await?;
            next = answer.next;
            match answer.body {
                serde_json::Value::Array(page) => items.extend(page),
                _ => {
                    return Err(CliError::Connection(
                        "the allocator's list is not a JSON array".to_owned(),
                    ))
                }
            }
        }
        Ok(serde_json::Value::Array(items))
    }

    pub async fn get_as<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        parse(self.get(path).await?.body)
    }

    pub async fn post(&self, path: &str, body: &impl Serialize) -> Result<Answer, CliError> {
        self.call(self.request(Method::POST, path).json(body)).await
    }

    /// A creation, sent with an idempotency key: when the connection fails before the
    /// answer arrives, it is sent again with the same key, so it never creates twice.
    pub async fn create(
        &self,
        path: &str,
        body: &impl Serialize,
        key: &str,
    ) -> Result<Answer, CliError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let sent = self
                .call(
                    self.request(Method::POST, path)
                        .header("Idempotency-Key", key)
                        .json(body),
                )
                .await;
            match sent {
                Err(CliError::Connection(_)) if tries < CREATE_TRIES => {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                // The first try may still be running on the allocator.
                Err(CliError::Refused { code, .. })
                    if code == "idempotency_key_in_use" && tries < CREATE_TRIES =>
                {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                other => return other,
            }
        }
    }

    /// The answer's bytes as they are (an export).
    pub async fn download(&self, path: &str) -> Result<Vec<u8>, CliError> {
        let response = self.send(self.request(Method::GET, path)).await?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| CliError::Connection(err.to_string()))?;
        if !status.is_success() {
            return Err(refusal(status, &String::from_utf8_lossy(&bytes)));
        }
        Ok(bytes.to_vec())
    }

    /// Opens a server-sent event stream.
    pub async fn events(&self, path: &str) -> Result<EventStream, CliError> {
        let response = self
            .send(
                self.request(Method::GET, path)
                    .header(reqwest::header::ACCEPT, "text/event-stream"),
            )
            .await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(refusal(status, &text));
        }
        Ok(EventStream {
            response,
            buffer: String::new(),
        })
    }

    /// Fails with a clear message unless the allocator speaks this CLI's API version.
    pub async fn check_version(&self) -> Result<VersionView, CliError> {
        let response = self
            .send(self.http.get(format!("{}/api/version", self.base)))
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(CliError::Failed(format!(
                "the allocator at {} is older than this lablink ({}): it has no /api/version. \
                 Use the lablink of the allocator's release, or upgrade the allocator",
                self.base,
                env!("CARGO_PKG_VERSION")
            )));
        }
        let version: VersionView = response.json().await.map_err(|err| {
            CliError::Connection(format!(
                "{} does not answer as a LabLink-rs allocator: {err}",
                self.base
            ))
        })?;
        if version.api != ADMIN_API_VERSION {
            return Err(CliError::Failed(format!(
                "the allocator at {} is release {} with admin API {}, and this lablink ({}) \
                 speaks admin API {}: install the lablink of the allocator's release",
                self.base,
                version.version,
                version.api,
                env!("CARGO_PKG_VERSION"),
                ADMIN_API_VERSION
            )));
        }
        Ok(version)
    }
}

/// `path` with `pairs` as its query string, each value encoded.
pub fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return path.to_owned();
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{path}?{query}")
}

/// The target of a `Link` header's `rel="next"`.
fn next_page(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// A JSON body as `T`.
pub fn parse<T: DeserializeOwned>(body: serde_json::Value) -> Result<T, CliError> {
    serde_json::from_value(body)
        .map_err(|err| CliError::Connection(format!("unexpected answer from the allocator: {err}")))
}

/// The refusal an error answer carries, in either of the allocator's shapes.
fn refusal(status: StatusCode, text: &str) -> CliError {
    if let Ok(body) = serde_json::from_str::<ApiErrorBody>(text) {
        return CliError::Refused {
            status: status.as_u16(),
            code: body.error.code,
            message: body.error.message,
        };
    }
    let message = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| {
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                text.chars().take(300).collect()
            }
        });
    CliError::Refused {
        status: status.as_u16(),
        code: match status.as_u16() {
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            409 => "conflict",
            _ => "error",
        }
        .to_owned(),
        message,
    }
}

/// `http(s)://host[:port]` without a trailing slash.
pub fn normalised_url(url: &str) -> Result<String, CliError> {
    let url = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(url).map_err(|err| {
        CliError::Usage(format!(
            "`{url}` is not an allocator address ({err}): give one such as https://lab.example.org"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(CliError::Usage(format!(
            "`{url}` is not an allocator address: it must start with https:// (or http://)"
        )));
    }
    Ok(url.to_owned())
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `message` when the event names none.
    pub name: String,
    pub data: String,
}

/// Events read off a streamed answer.
#[derive(Debug)]
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// The next event; `None` once the stream ends.
    pub async fn next(&mut self) -> Result<Option<Event>, CliError> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_event(&block) {
                    return Ok(Some(event));
                }
                continue;
            }
            match self
                .response
                .chunk()
                .await
                .map_err(|err| CliError::Connection(format!("the stream broke off: {err}")))?
            {
                Some(chunk) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n")),
                None => return Ok(None),
            }
        }
    }
}

/// An event block's name and data; `None` for a comment (keep-alive).
fn parse_event(block: &str) -> Option<Event> {
    let mut name = None;
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    if name.is_none() && data.is_empty() {
        return None;
    }
    Some(Event {
        name: name.unwrap_or_else(|| "message".to_owned()),
        data: data.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_with_their_names_and_comments_are_skipped() {
        assert_eq!(parse_event(": keepalive\n\n"), None);
        assert_eq!(
            parse_event("event: operation\ndata: {\"a\":1}\n\n"),
            Some(Event {
                name: "operation".into(),
                data: "{\"a\":1}".into()
            })
        );
        assert_eq!(
            parse_event("data: one\ndata: two\n\n").map(|e| e.data),
            Some("one\ntwo".into())
        );
    }

    #[test]
    fn both_error_shapes_are_read() {
        let coded = refusal(
            StatusCode::FORBIDDEN,
            r#"{"error":{"code":"read_only_token","message":"read-only"}}"#,
        );
        assert!(matches!(coded, CliError::Refused { ref code, .. } if code == "read_only_token"));
        let original = refusal(StatusCode::NOT_FOUND, r#"{"error":"VM not found."}"#);
        assert!(
            matches!(original, CliError::Refused { ref message, .. } if message == "VM not found.")
        );
    }

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        assert_eq!(
            next_page("</api/admin/vms?after=vm-2&limit=2>; rel=\"next\"").as_deref(),
            Some("/api/admin/vms?after=vm-2&limit=2")
        );
        assert_eq!(next_page("</x>; rel=\"prev\""), None);
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(with_query("/a", &[]), "/a");
        assert_eq!(
            with_query(
                "/a",
                &[
                    ("actor", "token:1:ana laptop".into()),
                    ("limit", "5".into())
                ]
            ),
            "/a?actor=token%3A1%3Aana+laptop&limit=5"
        );
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(
            normalised_url("https://lab.example/").expect("ok"),
            "https://lab.example"
        );
        assert!(normalised_url("lab.example").is_err());
        assert!(normalised_url("ftp://lab.example").is_err());
    }
}

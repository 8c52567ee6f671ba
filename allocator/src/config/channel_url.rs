//! [`ChannelUrl`]: where a notification channel posts. Such URLs are secrets (a Slack-style
//! webhook carries its key in the path), so, like [`super::Secret`], it never shows itself:
//! `Debug`, serialisation (`check-config`) and [`ChannelUrl::shown`] give the scheme and host
//! only, which is what errors, logs and pages may name.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A channel's URL from the configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelUrl(String);

impl ChannelUrl {
    /// The whole URL, for the one place that posts to it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What may be shown: `https://hooks.example.org/…` (the path, query and any credentials
    /// left out), or a mask when it is not a URL at all.
    pub fn shown(&self) -> String {
        shown(&self.0)
    }
}

/// `url` as it may be shown: its scheme, host and port, and `/…` for the rest.
pub fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}/…", parsed.scheme()),
            (Some(host), None) => format!("{}://{host}/…", parsed.scheme()),
            _ => super::secret::MASK.to_owned(),
        },
        Err(_) => super::secret::MASK.to_owned(),
    }
}

impl From<String> for ChannelUrl {
    fn from(value: String) -> Self {
        ChannelUrl(value)
    }
}

impl From<&str> for ChannelUrl {
    fn from(value: &str) -> Self {
        ChannelUrl(value.to_owned())
    }
}

impl fmt::Debug for ChannelUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Serialize for ChannelUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.shown())
    }
}

impl<'de> Deserialize<'de> for ChannelUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(ChannelUrl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_scheme_and_host_are_ever_shown() {
        let url = ChannelUrl::from("https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX");
        assert_eq!(url.shown(), "https://hooks.slack.com/…");
        assert_eq!(format!("{url:?}"), "https://hooks.slack.com/…");
        assert_eq!(
            serde_json::to_string(&url).expect("json"),
            "\"https://hooks.slack.com/…\""
        );
        assert_eq!(
            shown("http://user:pass@127.0.0.1:8080/hook?key=1"),
            "http://127.0.0.1:8080/…"
        );
        assert_eq!(shown("not a url secret"), super::super::secret::MASK);
        assert!(url.expose().contains("XXXXsecretXXXX"));
    }
}

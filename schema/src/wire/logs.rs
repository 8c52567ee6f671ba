//! The VM log bodies: what an agent posts to `POST /api/vm-logs` (the original's shape, or
//! lines tagged with their source and time) and what `GET /api/vm-logs/{hostname}` answers.

use serde::{Deserialize, Serialize};

/// Body of `POST /api/vm-logs`. The original CloudWatch relay sends `messages` only, the log
/// stream being the VM's hostname; this project's agent sends `entries`, each with where on
/// the VM it came from and when. Both may come in one body: `messages` are stored first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VmLogBatch {
    pub log_group: String,
    pub log_stream: String,
    #[serde(default)]
    pub messages: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<LogEntry>,
    /// The agent's spool that numbers `entries` (`seq`): lines of a batch sent again are
    /// stored once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}

/// One line as an agent ships it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogEntry {
    /// Where on the VM it came from: `agent`, `software`, `boot`, or a configured file's
    /// name; letters, digits, `-` and `_`, at most [`LogEntry::MAX_SOURCE_LEN`].
    pub source: String,
    /// When it was logged on the VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged_at: Option<chrono::DateTime<chrono::Utc>>,
    pub text: String,
    /// Its number in the agent's spool, rising by one per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
}

impl LogEntry {
    pub const MAX_SOURCE_LEN: usize = 32;

    /// Whether `source` is a name this API takes.
    pub fn valid_source(source: &str) -> bool {
        !source.is_empty()
            && source.len() <= Self::MAX_SOURCE_LEN
            && source
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    }
}

/// Answer to `GET /api/vm-logs/{hostname}`. `logs` is what the original answered: the lines
/// joined by newlines in the order they were logged (here the newest page of them), `null`
/// when there are none. `lines` holds the same page newest first, with what each line is;
/// `next_before`, when more lines are kept, is the `before` that reads the page before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VmLogs {
    pub hostname: String,
    pub logs: Option<String>,
    #[serde(default)]
    pub lines: Vec<LogLineView>,
    #[serde(default)]
    pub next_before: Option<i64>,
}

/// One kept line as an admin reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLineView {
    pub id: i64,
    pub source: String,
    pub logged_at: Option<chrono::NaiveDateTime>,
    pub received_at: chrono::NaiveDateTime,
    pub text: String,
    pub is_error: bool,
}

//! What can go wrong in a command, and the exit code each gives: 1 when the allocator refused
//! or an operation failed, 2 when the command itself was wrong (bad usage, a malformed file,
//! no allocator to talk to yet).

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line or a file it names is wrong; `{0}` says what to fix.
    #[error("{0}")]
    Usage(String),
    /// The allocator refused the request.
    #[error("{message} ({code}, HTTP {status})")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// The allocator could not be reached or answered something unreadable.
    #[error("{0}")]
    Connection(String),
    /// The work was done and failed (an operation, a local file).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The process's exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// What to do about it, if there is something obvious.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::Refused { code, .. } => match code.as_str() {
                "token_expired" | "token_revoked" | "token_unknown" => Some(
                    "make a new token on the dashboard (API tokens) and run `lablink login URL`",
                ),
                "read_only_token" => {
                    Some("this needs a token with the admin scope: `lablink login URL` with one")
                }
                "unauthorized" => Some("run `lablink login URL`, or set LABLINK_TOKEN"),
                _ => None,
            },
            _ => None,
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        CliError::Failed(err.to_string())
    }
}

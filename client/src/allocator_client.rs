//! The agent's side of the allocator's API: every call carries the VM's token, and the token
//! handed out at registration is kept (and written to the token file, if one is set).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lablink_schema::wire::{
    ErrorBody, GpuHealth, GpuHealthReport, InUseReport, MessageBody, SessionFigures, VmLogBatch,
    VmStartupAnswer, VmStartupRequest, VmStatus, VmStatusAnswer, VmStatusReport,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::log_shipping::KnownSecrets;
use crate::settings::AgentSettings;

/// A report that takes longer than this has failed (and is retried).
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The heartbeat interval an allocator may ask for is kept within these bounds, so a
/// misconfigured allocator can neither flood itself nor silence its agents for hours.
const MIN_HEARTBEAT: Duration = Duration::from_millis(100);
const MAX_HEARTBEAT: Duration = Duration::from_secs(3600);
/// Keepalive probes on idle connections, so a long poll on a dead path is noticed.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// How a call to the allocator failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot reach the allocator: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("the allocator answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("unexpected answer from the allocator: {0}")]
    Unexpected(String),
}

/// How a wait in `/vm_startup` ended.
#[derive(Clone, PartialEq, Eq)]
pub enum StartupAnswer {
    Assigned {
        assignment_id: i64,
        pin: String,
        command: String,
    },
    /// The assignment the agent held was released.
    Released,
}

impl std::fmt::Debug for StartupAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupAnswer::Assigned { assignment_id, .. } => f
                .debug_struct("Assigned")
                .field("assignment_id", assignment_id)
                .finish_non_exhaustive(),
            StartupAnswer::Released => f.write_str("Released"),
        }
    }
}

/// The refusal an answer carries: its status and the reason in its error body.
async fn refused(response: reqwest::Response) -> CallError {
    let status = response.status().as_u16();
    let message = response
        .json::<ErrorBody>()
        .await
        .map_or_else(|_| "no reason given".to_owned(), |body| body.error);
    CallError::Refused { status, message }
}

/// The allocator's API for one VM. Cheap to clone; clones share the token.
#[derive(Clone)]
pub struct AllocatorClient {
    http: reqwest::Client,
    base: String,
    hostname: String,
    token: Arc<RwLock<Option<String>>>,
    token_file: Option<PathBuf>,
    /// An admin-made enrollment token, presented only by the first status report of a VM
    /// that has no token of its own yet.
    enrollment_token: Option<Arc<str>>,
    /// Becomes `true` once a status report has been answered: the VM exists and holds its
    /// token, so the other reports can start.
    registered: Arc<tokio::sync::watch::Sender<bool>>,
    /// The secrets it holds or receives (the token, each session's PIN and code), masked in
    /// every log line the agent ships.
    secrets: KnownSecrets,
}

impl std::fmt::Debug for AllocatorClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AllocatorClient")
            .field("base", &self.base)
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

/// What the allocator answers a status report with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusReply {
    /// The heartbeat interval it asks for.
    pub interval: Option<Duration>,
    /// A warning for whoever sits at the VM.
    pub notice: Option<String>,
}

impl AllocatorClient {
    /// A client for the VM and allocator in `settings`. A token from the settings wins over
    /// one in the token file.
    pub fn new(settings: &AgentSettings) -> Result<Self, CallError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_keepalive(TCP_KEEPALIVE)
            .build()?;
        let token = settings.token.clone().or_else(|| {
            settings
                .token_file
                .as_ref()
                .and_then(|path| std::fs::read_to_string(path).ok())
                .map(|text| text.trim().to_owned())
                .filter(|token| !token.is_empty())
        });
        let secrets = KnownSecrets::default();
        for secret in token.iter().chain(settings.enrollment_token.as_ref()) {
            secrets.remember(secret);
        }
        Ok(AllocatorClient {
            secrets,
            http,
            base: settings.allocator_url.clone(),
            hostname: settings.vm_name.clone(),
            token: Arc::new(RwLock::new(token)),
            token_file: settings.token_file.clone(),
            enrollment_token: settings.enrollment_token.as_deref().map(Arc::from),
            registered: Arc::new(tokio::sync::watch::channel(false).0),
        })
    }

    /// The secrets this client holds or has received, for the log redactor.
    pub fn secrets(&self) -> KnownSecrets {
        self.secrets.clone()
    }

    /// Ships a batch of log lines (`POST /api/vm-logs`).
    pub async fn ship_logs(&self, batch: &VmLogBatch) -> Result<(), CallError> {
        let _: MessageBody = self
            .post("/api/vm-logs", batch, Some(REPORT_TIMEOUT))
            .await?;
        Ok(())
    }

    /// Opens a WebSocket to `path` with the VM's token, through the same HTTP client (and so
    /// the same TLS settings) as every other call: the upgraded connection, ready for
    /// WebSocket frames.
    pub async fn open_websocket(&self, path: &str) -> Result<reqwest::Upgraded, CallError> {
        use tokio_tungstenite::tungstenite::handshake::client::generate_key;
        use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
        let token = self
            .token
            .read()
            .ok()
            .and_then(|t| t.clone())
            .ok_or_else(|| CallError::Unexpected("this VM has no token yet".to_owned()))?;
        let key = generate_key();
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header(reqwest::header::CONNECTION, "Upgrade")
            .header(reqwest::header::UPGRADE, "websocket")
            .header(reqwest::header::SEC_WEBSOCKET_VERSION, "13")
            .header(reqwest::header::SEC_WEBSOCKET_KEY, &key)
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            return Err(refused(response).await);
        }
        let accepted = response
            .headers()
            .get(reqwest::header::SEC_WEBSOCKET_ACCEPT)
            .and_then(|v| v.to_str().ok());
        if accepted != Some(derive_accept_key(key.as_bytes()).as_str()) {
            return Err(CallError::Unexpected(
                "the allocator's WebSocket handshake does not match the request".to_owned(),
            ));
        }
        Ok(response.upgrade().await?)
    }

    /// This VM's hostname as the allocator knows it.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Resolves once the allocator has answered a status report (at once if it has).
    pub async fn until_registered(&self) {
        let mut registered = self.registered.subscribe();
        let _ = registered.wait_for(|registered| *registered).await;
    }

    /// Whether the agent holds a token yet.
    pub fn has_token(&self) -> bool {
        self.token.read().map(|t| t.is_some()).unwrap_or(false)
    }

    /// Reports the VM's status (registering it on first contact; the token handed out then
    /// is kept). This is also the heartbeat: the answer brings the heartbeat interval the
    /// allocator asks for, when it names one.
    pub async fn report_status(
        &self,
        status: VmStatus,
        session: Option<SessionFigures>,
    ) -> Result<StatusReply, CallError> {
        let answer: VmStatusAnswer = self
            .post(
                "/api/vm-status",
                &VmStatusReport {
                    hostname: self.hostname.clone(),
                    status,
                    session,
                },
                Some(REPORT_TIMEOUT),
            )
            .await?;
        if let Some(token) = answer.token {
            self.keep_token(token);
        }
        self.registered.send_replace(true);
        Ok(StatusReply {
            interval: answer
                .heartbeat_interval_ms
                .map(|ms| Duration::from_millis(ms).clamp(MIN_HEARTBEAT, MAX_HEARTBEAT)),
            notice: answer.notice,
        })
    }

    /// Waits, for as long as it takes, until the VM is assigned to something other than
    /// `held`, or `held` is released.
    pub async fn wait_for_assignment(&self, held: Option<i64>) -> Result<StartupAnswer, CallError> {
        let answer: VmStartupAnswer = self
            .post(
                "/vm_startup",
                &VmStartupRequest {
                    hostname: self.hostname.clone(),
                    assignment_id: held,
                },
                None,
            )
            .await?;
        Ok(match answer {
            VmStartupAnswer::Released => StartupAnswer::Released,
            VmStartupAnswer::Assigned {
                pin,
                command,
                assignment_id,
            } => {
                self.secrets.remember(&pin);
                if let Some(code) = crate::log_shipping::remote_desktop_code(&command) {
                    self.secrets.remember(code);
                }
                StartupAnswer::Assigned {
                    assignment_id,
                    pin,
                    command,
                }
            }
        })
    }

    /// Reports the GPU's health.
    pub async fn report_gpu_health(&self, health: GpuHealth) -> Result<(), CallError> {
        let _: MessageBody = self
            .post(
                "/api/gpu_health",
                &GpuHealthReport {
                    hostname: self.hostname.clone(),
                    gpu_status: health,
                },
                Some(REPORT_TIMEOUT),
            )
            .await?;
        Ok(())
    }

    /// Reports whether the research software runs.
    pub async fn report_in_use(&self, in_use: bool) -> Result<(), CallError> {
        let _: MessageBody = self
            .post(
                "/api/update_inuse_status",
                &InUseReport {
                    hostname: self.hostname.clone(),
                    status: in_use,
                },
                Some(REPORT_TIMEOUT),
            )
            .await?;
        Ok(())
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Option<Duration>,
    ) -> Result<T, CallError> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let token = self.token.read().ok().and_then(|t| t.clone());
        match (token, &self.enrollment_token) {
            (Some(token), _) => request = request.bearer_auth(token),
            // Only registration presents the enrollment token; it is worth nothing elsewhere.
            (None, Some(enrollment)) if path == "/api/vm-status" => {
                request = request.bearer_auth(enrollment);
            }
            (None, _) => {}
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            return Err(refused(response).await);
        }
        response
            .json()
            .await
            .map_err(|err| CallError::Unexpected(err.to_string()))
    }

    fn keep_token(&self, token: String) {
        if let Some(path) = &self.token_file {
            if let Err(err) = write_private(path, &token) {
                tracing::error!(path = %path.display(), error = %err, "cannot save the VM token; a restart will need it set again");
            }
        }
        self.secrets.remember(&token);
        if let Ok(mut slot) = self.token.write() {
            *slot = Some(token);
        }
        tracing::info!("registered with the allocator and received this VM's token");
    }
}

/// Writes `text` to `path`, readable by the owner only.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

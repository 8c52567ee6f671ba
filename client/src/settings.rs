//! The agent's settings, read from the environment. The variables the original client
//! images set keep their meaning (`ALLOCATOR_URL`, `VM_NAME`, `SUBJECT_SOFTWARE`); the rest are
//! new and optional.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where the allocator is, e.g. `https://lablink.example.org`.
pub const ALLOCATOR_URL_ENV: &str = "ALLOCATOR_URL";
/// This VM's hostname as the allocator knows it (also the remote desktop's display name).
pub const VM_NAME_ENV: &str = "VM_NAME";
/// The research software whose running process marks the VM as in use.
pub const SUBJECT_SOFTWARE_ENV: &str = "SUBJECT_SOFTWARE";
/// This VM's bearer token; absent on first boot, when registration hands one out.
pub const VM_TOKEN_ENV: &str = "LABLINK_VM_TOKEN";
/// Where to keep the token handed out at registration, so a restarted agent still has it.
pub const TOKEN_FILE_ENV: &str = "LABLINK_TOKEN_FILE";
/// An admin-made enrollment token, for a lab's own machine that has no VM token yet.
pub const ENROLLMENT_TOKEN_ENV: &str = "LABLINK_ENROLLMENT_TOKEN";
/// A file holding the enrollment token (keeps it out of the process environment).
pub const ENROLLMENT_TOKEN_FILE_ENV: &str = "LABLINK_ENROLLMENT_TOKEN_FILE";
/// A regular expression for the research software's program names, replacing the one
/// derived from `SUBJECT_SOFTWARE`.
pub const USAGE_PATTERN_ENV: &str = "LABLINK_USAGE_PATTERN";
/// `chrome` (default) starts Chrome Remote Desktop; `log` only logs each session.
pub const DESKTOP_ENV: &str = "LABLINK_DESKTOP";
/// The X display of the remote desktop session, whose idle time and notifications the agent
/// uses (default `:20`, Chrome Remote Desktop's).
pub const X_DISPLAY_ENV: &str = "LABLINK_X_DISPLAY";
/// The VM's VNC server, which the browser desktop's streams are joined to; a loopback
/// address only (default `127.0.0.1:5901`).
pub const VNC_ADDR_ENV: &str = "LABLINK_VNC_ADDR";
/// The VNC server's password file (`-rfbauth`), which the agent rewrites with a new random
/// password at every assignment and uses itself; unset, the server needs no password.
pub const VNC_PASSWORD_FILE_ENV: &str = "LABLINK_VNC_PASSWORD_FILE";
/// The session user's directory, emptied when a session ends (see `session_reset`).
pub const SESSION_DIR_ENV: &str = "LABLINK_SESSION_DIR";
/// Seconds between heartbeats.
pub const HEARTBEAT_SECS_ENV: &str = "LABLINK_HEARTBEAT_SECS";
/// Seconds between GPU checks.
pub const GPU_CHECK_SECS_ENV: &str = "LABLINK_GPU_CHECK_SECS";
/// Seconds between checks of whether the software runs.
pub const USAGE_CHECK_SECS_ENV: &str = "LABLINK_USAGE_CHECK_SECS";

/// `off` stops the agent from shipping logs (`on` by default).
pub const LOG_SHIPPING_ENV: &str = "LABLINK_LOG_SHIPPING";
/// Where lines wait until the allocator stored them.
pub const LOG_SPOOL_DIR_ENV: &str = "LABLINK_LOG_SPOOL_DIR";
/// The spool's cap in MiB; past it the oldest lines go.
pub const LOG_SPOOL_MAX_MB_ENV: &str = "LABLINK_LOG_SPOOL_MAX_MB";
/// Log files to follow and ship: `source=path`, separated by commas.
pub const LOG_FILES_ENV: &str = "LABLINK_LOG_FILES";
/// The VM's boot log (cloud-init's output on AWS), shipped as source `boot`.
pub const BOOT_LOG_ENV: &str = "LABLINK_BOOT_LOG";
/// Fewer lines than a batch wait at most this many milliseconds before they are sent.
pub const LOG_FLUSH_MS_ENV: &str = "LABLINK_LOG_FLUSH_MS";
/// A regular expression whose matches are masked in every shipped line.
pub const LOG_REDACT_ENV: &str = "LABLINK_LOG_REDACT";

/// Default research software, as in the original client configuration.
const DEFAULT_SOFTWARE: &str = "sleap";
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
/// The original checked the GPU every 20 s.
const DEFAULT_GPU_CHECK: Duration = Duration::from_secs(20);
/// The original checked the processes every 20 s.
const DEFAULT_USAGE_CHECK: Duration = Duration::from_secs(20);
/// GPU health is sent again this often even when unchanged, so a lost report heals.
const DEFAULT_GPU_RESEND: Duration = Duration::from_secs(300);
/// First and longest wait between retries when the allocator cannot be reached.
const DEFAULT_RETRY_INITIAL: Duration = Duration::from_secs(1);
const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(60);
const DEFAULT_LOG_SPOOL_MAX_MB: u64 = 64;
const DEFAULT_LOG_FLUSH: Duration = Duration::from_secs(1);

/// What the agent needs to know to run.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentSettings {
    /// Base URL, without a trailing slash.
    pub allocator_url: String,
    pub vm_name: String,
    pub subject_software: String,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Presented once, to enroll; the VM's own token replaces it.
    pub enrollment_token: Option<String>,
    pub usage_pattern: Option<String>,
    /// Emptied when a session ends; `None`: no files are removed.
    pub session_dir: Option<PathBuf>,
    pub heartbeat_interval: Duration,
    pub gpu_check_interval: Duration,
    pub gpu_resend_interval: Duration,
    pub usage_check_interval: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub desktop: DesktopKind,
    /// The remote desktop's X display (`LABLINK_X_DISPLAY`).
    pub x_display: String,
    /// The VNC server on the VM's loopback (`LABLINK_VNC_ADDR`).
    pub vnc_addr: std::net::SocketAddr,
    /// The VNC server's password file (`LABLINK_VNC_PASSWORD_FILE`), when it has one.
    pub vnc_password_file: Option<PathBuf>,
    /// Whether logs are shipped at all.
    pub log_shipping: bool,
    pub log_spool_dir: PathBuf,
    pub log_spool_max_bytes: u64,
    /// Files followed and shipped, by source name (`boot` for the boot log).
    pub log_files: Vec<(String, PathBuf)>,
    pub log_flush_delay: Duration,
    pub log_redact: Option<String>,
}

/// Which remote desktop the agent drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DesktopKind {
    /// Chrome Remote Desktop, as on the VM images.
    Chrome,
    /// Only log sessions (no Chrome Remote Desktop on this machine).
    Log,
}

/// The token is a secret: debug output only says whether one is set.
impl fmt::Debug for AgentSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentSettings")
            .field("allocator_url", &self.allocator_url)
            .field("vm_name", &self.vm_name)
            .field("subject_software", &self.subject_software)
            .field("token_set", &self.token.is_some())
            .field("token_file", &self.token_file)
            .field("enrollment_token_set", &self.enrollment_token.is_some())
            .field("usage_pattern", &self.usage_pattern)
            .field("session_dir", &self.session_dir)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("gpu_check_interval", &self.gpu_check_interval)
            .field("usage_check_interval", &self.usage_check_interval)
            .field("desktop", &self.desktop)
            .field("log_shipping", &self.log_shipping)
            .field("log_spool_dir", &self.log_spool_dir)
            .field("log_files", &self.log_files)
            .finish_non_exhaustive()
    }
}

/// A setting that is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for SettingsError {}

impl AgentSettings {
    /// Settings for `vm_name` talking to `allocator_url`, everything else at its default.
    pub fn new(allocator_url: &str, vm_name: &str) -> Self {
        AgentSettings {
            allocator_url: allocator_url.trim_end_matches('/').to_owned(),
            vm_name: vm_name.to_owned(),
            subject_software: DEFAULT_SOFTWARE.to_owned(),
            token: None,
            token_file: None,
            enrollment_token: None,
            usage_pattern: None,
            session_dir: None,
            heartbeat_interval: DEFAULT_HEARTBEAT,
            gpu_check_interval: DEFAULT_GPU_CHECK,
            gpu_resend_interval: DEFAULT_GPU_RESEND,
            usage_check_interval: DEFAULT_USAGE_CHECK,
            retry_initial: DEFAULT_RETRY_INITIAL,
            retry_max: DEFAULT_RETRY_MAX,
            desktop: DesktopKind::Chrome,
            x_display: ":20".to_owned(),
            vnc_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 5901)),
            vnc_password_file: None,
            log_shipping: true,
            // Survives an agent restart; a VM image sets a directory on its disk.
            log_spool_dir: std::env::temp_dir().join(format!("lablink-log-spool-{vm_name}")),
            log_spool_max_bytes: DEFAULT_LOG_SPOOL_MAX_MB * 1024 * 1024,
            log_files: Vec::new(),
            log_flush_delay: DEFAULT_LOG_FLUSH,
            log_redact: None,
        }
    }

    /// Reads the settings from `lookup` (the process environment in production).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let non_empty = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let allocator_url = non_empty(ALLOCATOR_URL_ENV).ok_or_else(|| SettingsError {
            variable: ALLOCATOR_URL_ENV,
            reason: "is not set".to_owned(),
        })?;
        // The original images sometimes produced `http://.host`; tolerate it as they did.
        let allocator_url = allocator_url.replace("://.", "://");
        if !(allocator_url.starts_with("http://") || allocator_url.starts_with("https://")) {
            return Err(SettingsError {
                variable: ALLOCATOR_URL_ENV,
                reason: format!("`{allocator_url}` must start with http:// or https://"),
            });
        }
        let vm_name = non_empty(VM_NAME_ENV).ok_or_else(|| SettingsError {
            variable: VM_NAME_ENV,
            reason: "is not set".to_owned(),
        })?;
        let seconds =
            |variable: &'static str, default: Duration| -> Result<Duration, SettingsError> {
                match non_empty(variable) {
                    None => Ok(default),
                    Some(text) => match text.parse::<u64>() {
                        Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
                        _ => Err(SettingsError {
                            variable,
                            reason: format!("`{text}` is not a positive number of seconds"),
                        }),
                    },
                }
            };
        let usage_pattern = non_empty(USAGE_PATTERN_ENV);
        if let Some(pattern) = &usage_pattern {
            regex::Regex::new(pattern).map_err(|err| SettingsError {
                variable: USAGE_PATTERN_ENV,
                reason: err.to_string(),
            })?;
        }
        let mut settings = AgentSettings::new(&allocator_url, &vm_name);
        settings.subject_software =
            non_empty(SUBJECT_SOFTWARE_ENV).unwrap_or_else(|| DEFAULT_SOFTWARE.to_owned());
        settings.token = non_empty(VM_TOKEN_ENV);
        settings.token_file = non_empty(TOKEN_FILE_ENV).map(PathBuf::from);
        settings.enrollment_token = match (
            non_empty(ENROLLMENT_TOKEN_ENV),
            non_empty(ENROLLMENT_TOKEN_FILE_ENV),
        ) {
            (Some(_), Some(_)) => {
                return Err(SettingsError {
                    variable: ENROLLMENT_TOKEN_FILE_ENV,
                    reason: format!("set either it or {ENROLLMENT_TOKEN_ENV}, not both"),
                })
            }
            (Some(token), None) => Some(token),
            (None, Some(path)) => Some(read_enrollment_token(&path)?),
            (None, None) => None,
        };
        settings.usage_pattern = usage_pattern;
        settings.session_dir = non_empty(SESSION_DIR_ENV).map(PathBuf::from);
        settings.vnc_password_file = non_empty(VNC_PASSWORD_FILE_ENV).map(PathBuf::from);
        if let Some(file) = &settings.vnc_password_file {
            if !file.is_absolute() {
                return Err(SettingsError {
                    variable: VNC_PASSWORD_FILE_ENV,
                    reason: "must be an absolute path".to_owned(),
                });
            }
        }
        if let Some(dir) = &settings.session_dir {
            if !dir.is_absolute() || dir.parent().is_none() {
                return Err(SettingsError {
                    variable: SESSION_DIR_ENV,
                    reason:
                        "must be an absolute path below the root (it is emptied after each session)"
                            .to_owned(),
                });
            }
        }
        settings.heartbeat_interval = seconds(HEARTBEAT_SECS_ENV, DEFAULT_HEARTBEAT)?;
        settings.gpu_check_interval = seconds(GPU_CHECK_SECS_ENV, DEFAULT_GPU_CHECK)?;
        settings.usage_check_interval = seconds(USAGE_CHECK_SECS_ENV, DEFAULT_USAGE_CHECK)?;
        if let Some(display) = non_empty(X_DISPLAY_ENV) {
            settings.x_display = display;
        }
        if let Some(addr) = non_empty(VNC_ADDR_ENV) {
            settings.vnc_addr = match addr.parse::<std::net::SocketAddr>() {
                Ok(addr) if addr.ip().is_loopback() => addr,
                Ok(_) => {
                    return Err(SettingsError {
                        variable: VNC_ADDR_ENV,
                        reason: format!(
                            "`{addr}` is not on the loopback: the VNC server must listen on \
                             127.0.0.1 (or [::1]) only, where nothing outside the VM reaches it"
                        ),
                    })
                }
                Err(_) => {
                    return Err(SettingsError {
                        variable: VNC_ADDR_ENV,
                        reason: format!(
                            "`{addr}` is not an address with a port, such as 127.0.0.1:5901"
                        ),
                    })
                }
            };
        }
        settings.desktop = match non_empty(DESKTOP_ENV).as_deref() {
            None | Some("chrome") => DesktopKind::Chrome,
            Some("log") => DesktopKind::Log,
            Some(other) => {
                return Err(SettingsError {
                    variable: DESKTOP_ENV,
                    reason: format!("`{other}` is not `chrome` or `log`"),
                })
            }
        };
        read_log_settings(&non_empty, &mut settings)?;
        Ok(settings)
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// The enrollment token in the file at `path`, trimmed; an unreadable or empty file is an
/// error at start rather than a puzzling refusal later.
fn read_enrollment_token(path: &str) -> Result<String, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|err| SettingsError {
        variable: ENROLLMENT_TOKEN_FILE_ENV,
        reason: format!("cannot read `{path}`: {err}"),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(SettingsError {
            variable: ENROLLMENT_TOKEN_FILE_ENV,
            reason: format!("`{path}` is empty"),
        });
    }
    Ok(token.to_owned())
}

/// The log shipping settings, from `lookup`.
fn read_log_settings(
    lookup: &impl Fn(&str) -> Option<String>,
    settings: &mut AgentSettings,
) -> Result<(), SettingsError> {
    let invalid = |variable: &'static str, reason: String| SettingsError { variable, reason };
    settings.log_shipping = match lookup(LOG_SHIPPING_ENV).as_deref() {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => {
            return Err(invalid(
                LOG_SHIPPING_ENV,
                format!("`{other}` is not `on` or `off`"),
            ))
        }
    };
    if let Some(dir) = lookup(LOG_SPOOL_DIR_ENV) {
        settings.log_spool_dir = PathBuf::from(dir);
    }
    if let Some(text) = lookup(LOG_SPOOL_MAX_MB_ENV) {
        let mb: u64 = text.parse().ok().filter(|mb| *mb > 0).ok_or_else(|| {
            invalid(
                LOG_SPOOL_MAX_MB_ENV,
                format!("`{text}` is not a positive number of MiB"),
            )
        })?;
        settings.log_spool_max_bytes = mb * 1024 * 1024;
    }
    if let Some(text) = lookup(LOG_FLUSH_MS_ENV) {
        let ms: u64 = text.parse().ok().filter(|ms| *ms > 0).ok_or_else(|| {
            invalid(
                LOG_FLUSH_MS_ENV,
                format!("`{text}` is not a positive number of milliseconds"),
            )
        })?;
        settings.log_flush_delay = Duration::from_millis(ms);
    }
    let mut files = Vec::new();
    if let Some(list) = lookup(LOG_FILES_ENV) {
        for item in list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (source, path) = item
                .split_once('=')
                .ok_or_else(|| invalid(LOG_FILES_ENV, format!("`{item}` is not `source=path`")))?;
            if !lablink_schema::wire::LogEntry::valid_source(source) || source == "agent" {
                return Err(invalid(
                    LOG_FILES_ENV,
                    format!(
                        "`{source}`: a source is letters, digits, `-` and `_` (and not `agent`)"
                    ),
                ));
            }
            files.push((source.to_owned(), PathBuf::from(path)));
        }
    }
    if let Some(path) = lookup(BOOT_LOG_ENV) {
        files.push(("boot".to_owned(), PathBuf::from(path)));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some((source, _)) = files
        .iter()
        .find(|(source, _)| !seen.insert(source.clone()))
    {
        return Err(invalid(
            LOG_FILES_ENV,
            format!("the source `{source}` is named twice"),
        ));
    }
    settings.log_files = files;
    if let Some(pattern) = lookup(LOG_REDACT_ENV) {
        regex::Regex::new(&pattern).map_err(|err| invalid(LOG_REDACT_ENV, err.to_string()))?;
        settings.log_redact = Some(pattern);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn log_shipping_follows_the_named_files_and_refuses_what_it_cannot_use() {
        let base = [("ALLOCATOR_URL", "http://a"), ("VM_NAME", "vm-1")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            AgentSettings::from_lookup(lookup(&all))
        };
        let settings = with(&[
            (
                "LABLINK_LOG_FILES",
                "software=/home/p/sleap.log, train=/data/t.log",
            ),
            ("LABLINK_BOOT_LOG", "/var/log/cloud-init-output.log"),
            ("LABLINK_LOG_SPOOL_MAX_MB", "8"),
            ("LABLINK_LOG_FLUSH_MS", "250"),
        ])
        .expect("settings");
        assert!(settings.log_shipping);
        assert_eq!(
            settings.log_files,
            [
                ("software".to_owned(), PathBuf::from("/home/p/sleap.log")),
                ("train".to_owned(), PathBuf::from("/data/t.log")),
                (
                    "boot".to_owned(),
                    PathBuf::from("/var/log/cloud-init-output.log")
                ),
            ]
        );
        assert_eq!(settings.log_spool_max_bytes, 8 * 1024 * 1024);
        assert_eq!(settings.log_flush_delay, Duration::from_millis(250));
        assert!(
            !with(&[("LABLINK_LOG_SHIPPING", "off")])
                .expect("off")
                .log_shipping
        );
        for (variable, value) in [
            ("LABLINK_LOG_FILES", "no-equals-sign"),
            ("LABLINK_LOG_FILES", "../x=/tmp/x"),
            ("LABLINK_LOG_FILES", "agent=/tmp/x"),
            ("LABLINK_LOG_FILES", "a=/x,a=/y"),
            ("LABLINK_LOG_SPOOL_MAX_MB", "0"),
            ("LABLINK_LOG_FLUSH_MS", "soon"),
            ("LABLINK_LOG_REDACT", "(unclosed"),
            ("LABLINK_LOG_SHIPPING", "maybe"),
        ] {
            let err = with(&[(variable, value)]).expect_err(value);
            assert_eq!(err.variable, variable, "{value}");
        }
    }

    #[test]
    fn the_original_variables_are_read() {
        let settings = AgentSettings::from_lookup(lookup(&[
            ("ALLOCATOR_URL", "https://.lablink.example.org/"),
            ("VM_NAME", "lablink-vm-prod-1"),
            ("SUBJECT_SOFTWARE", "napari"),
            ("LABLINK_VM_TOKEN", "tok-123"),
            ("LABLINK_HEARTBEAT_SECS", "15"),
        ]))
        .expect("valid");
        assert_eq!(settings.allocator_url, "https://lablink.example.org");
        assert_eq!(settings.vm_name, "lablink-vm-prod-1");
        assert_eq!(settings.subject_software, "napari");
        assert_eq!(settings.heartbeat_interval, Duration::from_secs(15));
        assert_eq!(settings.gpu_check_interval, DEFAULT_GPU_CHECK);
        assert!(!format!("{settings:?}").contains("tok-123"));
    }

    #[test]
    fn missing_or_malformed_settings_name_the_variable() {
        let err = AgentSettings::from_lookup(lookup(&[("VM_NAME", "vm")])).expect_err("no url");
        assert_eq!(err.variable, ALLOCATOR_URL_ENV);
        let err =
            AgentSettings::from_lookup(lookup(&[("ALLOCATOR_URL", "ftp://x"), ("VM_NAME", "vm")]))
                .expect_err("bad scheme");
        assert!(err.to_string().contains("ftp://x"));
        let err =
            AgentSettings::from_lookup(lookup(&[("ALLOCATOR_URL", "http://a"), ("VM_NAME", " ")]))
                .expect_err("blank name");
        assert_eq!(err.variable, VM_NAME_ENV);
        let err = AgentSettings::from_lookup(lookup(&[
            ("ALLOCATOR_URL", "http://a"),
            ("VM_NAME", "vm"),
            ("LABLINK_GPU_CHECK_SECS", "0"),
        ]))
        .expect_err("zero interval");
        assert_eq!(err.variable, GPU_CHECK_SECS_ENV);
        let err = AgentSettings::from_lookup(lookup(&[
            ("ALLOCATOR_URL", "http://a"),
            ("VM_NAME", "vm"),
            ("LABLINK_USAGE_PATTERN", "(unclosed"),
        ]))
        .expect_err("bad regex");
        assert_eq!(err.variable, USAGE_PATTERN_ENV);
        let err = AgentSettings::from_lookup(lookup(&[
            ("ALLOCATOR_URL", "http://a"),
            ("VM_NAME", "vm"),
            ("LABLINK_DESKTOP", "vnc"),
        ]))
        .expect_err("unknown desktop");
        assert_eq!(err.variable, DESKTOP_ENV);
        let err = AgentSettings::from_lookup(lookup(&[
            ("ALLOCATOR_URL", "http://a"),
            ("VM_NAME", "vm"),
            ("LABLINK_VNC_ADDR", "0.0.0.0:5901"),
        ]))
        .expect_err("VNC on the network");
        assert_eq!(err.variable, VNC_ADDR_ENV);
        let err = AgentSettings::from_lookup(lookup(&[
            ("ALLOCATOR_URL", "http://a"),
            ("VM_NAME", "vm"),
            ("LABLINK_VNC_ADDR", "localhost"),
        ]))
        .expect_err("no port");
        assert_eq!(err.variable, VNC_ADDR_ENV);
    }

    #[test]
    fn the_enrollment_token_comes_from_the_environment_or_a_file_never_both() {
        let base = [("ALLOCATOR_URL", "http://a"), ("VM_NAME", "vm")];
        let with = |extra: &[(&'static str, &str)]| {
            let pairs: Vec<(&str, &str)> = base.iter().chain(extra).copied().collect();
            AgentSettings::from_lookup(|name| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        let settings = with(&[("LABLINK_ENROLLMENT_TOKEN", "lle_abc")]).expect("valid");
        assert_eq!(settings.enrollment_token.as_deref(), Some("lle_abc"));
        assert!(
            !format!("{settings:?}").contains("lle_abc"),
            "never in debug output"
        );

        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("token");
        std::fs::write(&file, "lle_from_file\n").expect("write");
        let path = file.to_str().expect("utf-8");
        let settings = with(&[("LABLINK_ENROLLMENT_TOKEN_FILE", path)]).expect("valid");
        assert_eq!(settings.enrollment_token.as_deref(), Some("lle_from_file"));

        let both = with(&[
            ("LABLINK_ENROLLMENT_TOKEN", "lle_abc"),
            ("LABLINK_ENROLLMENT_TOKEN_FILE", path),
        ])
        .expect_err("both");
        assert_eq!(both.variable, ENROLLMENT_TOKEN_FILE_ENV);
        std::fs::write(&file, "  \n").expect("write");
        let empty = with(&[("LABLINK_ENROLLMENT_TOKEN_FILE", path)]).expect_err("empty");
        assert!(empty.to_string().contains("is empty"), "{empty}");
        let missing = dir.path().join("missing");
        let missing = with(&[(
            "LABLINK_ENROLLMENT_TOKEN_FILE",
            missing.to_str().expect("utf-8"),
        )])
        .expect_err("missing");
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }
}

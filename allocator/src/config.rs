//! The allocator's configuration: compiled-in defaults, then an optional YAML file
//! (`--config PATH` or `LABLINK_CONFIG`), then the environment (`LABLINK__SECTION__KEY`, and
//! `DATABASE_URL` for the database), then `--bind`. Every key is documented here; a bad value
//! stops the process with a message naming the key, the value and where it came from.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Yaml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use lablink_schema::connection::{redact_url, DatabaseLocation};
use serde::{Deserialize, Serialize};

/// Prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "LABLINK__";
/// Separator between section and key in those variables.
pub const ENV_SEPARATOR: &str = "__";
/// Environment variable naming the YAML configuration file.
pub const CONFIG_FILE_ENV: &str = "LABLINK_CONFIG";
/// Environment variable holding the database URL (the common convention; overridden by
/// `LABLINK__DATABASE__URL`).
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// Everything the allocator can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub admin: AdminConfig,
    pub clients: ClientsConfig,
    pub provider: ProviderConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub rate_limits: RateLimitConfig,
}

/// Section `server`: the HTTP listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on. Default `127.0.0.1:5000` (this machine only).
    pub bind: SocketAddr,
    /// On SIGTERM or ctrl-c, how long in-flight requests get to finish, in seconds.
    pub shutdown_timeout_secs: u64,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Largest JSON request body accepted, in bytes (log batches are the largest).
    pub max_json_bytes: usize,
    /// Largest form request body accepted, in bytes.
    pub max_form_bytes: usize,
    /// A request's body must have arrived this many seconds after its head, or the request
    /// is answered 408 and its connection closed.
    pub body_timeout_secs: u64,
    /// Reverse proxies whose `X-Forwarded-For` is believed, as a comma-separated list of
    /// addresses or CIDR ranges (`127.0.0.1, 10.0.0.0/8`). Empty: the connection's peer is
    /// the client, whatever a request claims.
    pub trusted_proxies: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 5000)),
            shutdown_timeout_secs: 30,
            workers: 0,
            max_json_bytes: 1024 * 1024,
            max_form_bytes: 16 * 1024,
            body_timeout_secs: 30,
            trusted_proxies: String::new(),
        }
    }
}

/// Section `admin`: the administrator's credentials.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The admin's user name for HTTP Basic authentication.
    pub user: String,
    /// The admin's password. There is no default: without one (and without `password_hash`),
    /// a password is generated at first start, printed once to the log and stored hashed.
    /// Never logged otherwise.
    pub password: Option<String>,
    /// The admin's password as an argon2 hash (PHC string), as `lablink-allocator
    /// hash-password` prints it: keeps the password itself out of configuration files.
    pub password_hash: Option<String>,
    /// How long a dashboard sign-in lasts, in seconds.
    pub session_ttl_secs: u64,
    /// Failed sign-ins from one address before it must wait…
    pub max_failed_logins: u32,
    /// …this many seconds.
    pub lockout_secs: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            user: "admin".to_owned(),
            password: None,
            password_hash: None,
            session_ttl_secs: 8 * 3600,
            max_failed_logins: 5,
            lockout_secs: 15 * 60,
        }
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("user", &self.user)
            .field("password_set", &self.password.is_some())
            .field("password_hash_set", &self.password_hash.is_some())
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("max_failed_logins", &self.max_failed_logins)
            .field("lockout_secs", &self.lockout_secs)
            .finish()
    }
}

/// Section `clients`: how VM agents are let in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientsConfig {
    /// Accept VM requests that carry no token, as the original LabLink agents send them.
    /// Off by default; turn on only while migrating old VM images.
    #[serde(deserialize_with = "figment::util::bool_from_str_or_int")]
    pub legacy_unauthenticated: bool,
    /// Largest log batch one VM may send in one request, in bytes of log text.
    pub max_log_bytes_per_batch: usize,
    /// Most log text one VM may send in a minute, in bytes; beyond it, 429.
    pub max_log_bytes_per_minute: usize,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        ClientsConfig {
            legacy_unauthenticated: false,
            max_log_bytes_per_batch: 256 * 1024,
            max_log_bytes_per_minute: 1024 * 1024,
        }
    }
}

/// Section `rate_limits`: how fast researchers may ask for VMs. The defaults let a whole
/// class behind one NAT address through and stop scripts that try thousands of emails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Requests for a VM one client address may make per minute (also its burst).
    pub request_vm_per_address_per_minute: u32,
    /// Requests for a VM all clients together may make per second, sustained…
    pub request_vm_per_second: u32,
    /// …and at once.
    pub request_vm_burst: u32,
    /// Leave clients on this machine (127.0.0.1, ::1) out of the per-address limit: a
    /// script on the allocator's own machine could act as the admin anyway. Behind a proxy
    /// on this machine, list it in `server.trusted_proxies` so its clients are told apart.
    #[serde(deserialize_with = "figment::util::bool_from_str_or_int")]
    pub exempt_loopback: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            request_vm_per_address_per_minute: 600,
            request_vm_per_second: 2_000,
            request_vm_burst: 20_000,
            exempt_loopback: true,
        }
    }
}

impl ServerConfig {
    /// [`ServerConfig::trusted_proxies`], parsed.
    pub fn trusted_proxy_ranges(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("`{entry}` is not an IP address or CIDR range"))
            })
            .collect()
    }
}

/// Section `database`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://…` to use PostgreSQL, or `sqlite://PATH`. Unset: SQLite in `data_dir`.
    /// May carry a password; it is never logged.
    pub url: Option<String>,
    /// Directory of the embedded SQLite database when no `url` is set.
    pub data_dir: PathBuf,
    /// Most connections the allocator opens to the database.
    pub pool_size: u32,
    /// Threads on PostgreSQL for each of the three writers: general writes, researchers'
    /// claims and agents' reports (SQLite always uses one each).
    pub writer_threads: usize,
    /// At start-up, how long to keep retrying an unreachable database before giving up, in seconds.
    pub startup_timeout_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            data_dir: PathBuf::from("lablink-data"),
            pool_size: 16,
            writer_threads: 4,
            startup_timeout_secs: 30,
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("data_dir", &self.data_dir)
            .field("pool_size", &self.pool_size)
            .field("writer_threads", &self.writer_threads)
            .field("startup_timeout_secs", &self.startup_timeout_secs)
            .finish()
    }
}

impl DatabaseConfig {
    /// Where the database is. Validated by [`Config::load`], so this cannot fail afterwards
    /// for a loaded configuration.
    pub fn location(&self) -> Result<DatabaseLocation, String> {
        match &self.url {
            Some(url) => DatabaseLocation::parse(url).map_err(|err| err.to_string()),
            None => Ok(DatabaseLocation::sqlite_in(&self.data_dir)),
        }
    }

    /// [`DatabaseConfig::startup_timeout_secs`] as a duration.
    pub fn startup_timeout(&self) -> Duration {
        Duration::from_secs(self.startup_timeout_secs)
    }
}

/// Section `provider`: what creates and destroys the lab VMs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// `local`: agents started on this machine, no cloud and no Terraform (the default).
    /// `terraform`: the Terraform module in `provider.terraform.module_dir` (terraform/aws).
    pub kind: ProviderKind,
    /// New VMs are named `<name_prefix>-<n>`.
    pub name_prefix: String,
    /// Most VMs that may exist at once.
    pub max_vms: u32,
    /// The URL the VMs' agents use to reach this allocator. Unset: `http://<server.bind>`.
    pub allocator_url: Option<String>,
    pub local: LocalProviderConfig,
    pub terraform: TerraformProviderConfig,
    pub aws: AwsConfig,
}

/// Section `provider.aws`: the AWS API (needs a build with cargo feature `aws`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Use the AWS API: check the instance type has an NVIDIA GPU before creating VMs,
    /// allow rebooting a VM, and show which credentials are in effect. Credentials come from
    /// the usual AWS sources (environment, profile, instance role).
    #[serde(deserialize_with = "figment::util::bool_from_str_or_int")]
    pub enabled: bool,
    /// AWS region. Unset: the usual AWS sources, else `provider.terraform.variables.region`.
    pub region: Option<String>,
    /// Another endpoint for the EC2 and STS APIs (a stand-in such as LocalStack).
    pub endpoint_url: Option<String>,
    /// Instance type VMs are created with. Unset: `provider.terraform.variables.instance_type`,
    /// else `g4dn.xlarge` (the module's default).
    pub instance_type: Option<String>,
    /// Refuse to create VMs on an instance type without an NVIDIA GPU (the client image
    /// needs one).
    #[serde(deserialize_with = "figment::util::bool_from_str_or_int")]
    pub require_gpu: bool,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            enabled: false,
            region: None,
            endpoint_url: None,
            instance_type: None,
            require_gpu: true,
        }
    }
}

impl ProviderConfig {
    /// The instance type VMs are created with, when the AWS API is in use.
    pub fn instance_type(&self) -> String {
        self.aws
            .instance_type
            .clone()
            .or_else(|| self.terraform.variables.get("instance_type").cloned())
            .unwrap_or_else(|| "g4dn.xlarge".to_owned())
    }
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            kind: ProviderKind::Local,
            name_prefix: "lablink-vm-local".to_owned(),
            max_vms: 50,
            allocator_url: None,
            local: LocalProviderConfig::default(),
            terraform: TerraformProviderConfig::default(),
            aws: AwsConfig::default(),
        }
    }
}

/// Which provisioner creates VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Local,
    Terraform,
}

/// Section `provider.local`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LocalProviderConfig {
    /// The agent program. Unset: `lablink-client` beside this executable, else on PATH.
    pub agent_binary: Option<PathBuf>,
}

/// Section `provider.terraform`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TerraformProviderConfig {
    /// The `terraform` program.
    pub binary: PathBuf,
    /// The client-VM module to apply.
    pub module_dir: PathBuf,
    /// Working directory (module copy, `.terraform`, local state). Unset:
    /// `<database.data_dir>/terraform`.
    pub work_dir: Option<PathBuf>,
    /// Further module variables, passed as `TF_VAR_<name>` (e.g. `instance_type`).
    pub variables: std::collections::BTreeMap<String, String>,
}

impl Default for TerraformProviderConfig {
    fn default() -> Self {
        TerraformProviderConfig {
            binary: PathBuf::from("terraform"),
            module_dir: PathBuf::from("terraform/aws"),
            work_dir: None,
            variables: std::collections::BTreeMap::new(),
        }
    }
}

impl Config {
    /// The URL agents use to reach this allocator.
    pub fn agent_facing_url(&self) -> String {
        self.provider
            .allocator_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.server.bind))
            .trim_end_matches('/')
            .to_owned()
    }
}

/// Section `metrics`: Prometheus metrics on `GET /metrics`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics`; when off it answers 404.
    #[serde(deserialize_with = "figment::util::bool_from_str_or_int")]
    pub enabled: bool,
    /// A bearer token for the scraper (`Authorization: Bearer <token>`). The admin's HTTP
    /// Basic credentials are always accepted too; without either the endpoint answers 401.
    pub token: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            token: None,
        }
    }
}

impl fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("enabled", &self.enabled)
            .field("token_set", &self.token.is_some())
            .finish()
    }
}

/// Section `log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `lablink_allocator=debug,info`. `RUST_LOG` wins when set.
    pub level: String,
    /// `json` (one object per line, for log collectors) or `text` (for a terminal).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Json,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A key has a value that does not fit it.
    #[error("invalid configuration: {key} = {value} (from {origin}): {reason}")]
    InvalidValue {
        key: String,
        value: String,
        origin: String,
        reason: String,
    },
    /// A key that does not exist (often a typo).
    #[error("invalid configuration: unknown key {key} (from {origin}); {reason}")]
    UnknownKey {
        key: String,
        origin: String,
        reason: String,
    },
    /// The configuration file cannot be read or parsed.
    #[error("invalid configuration file {path}: {reason}")]
    File { path: String, reason: String },
}

/// Shortest admin password accepted.
pub const MIN_ADMIN_PASSWORD_LEN: usize = 12;
/// Shortest metrics token accepted.
pub const MIN_METRICS_TOKEN_LEN: usize = 16;

/// Values of keys whose names end like this are never shown.
pub const SECRET_KEY_SUFFIXES: [&str; 4] = ["password", "password_hash", "secret", "token"];

impl Config {
    /// Loads the layered configuration: defaults, then the YAML file (`file`, else
    /// `LABLINK_CONFIG`), then the environment, then `bind` (from `--bind`).
    pub fn load(file: Option<&Path>, bind: Option<SocketAddr>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, bind, &env)
    }

    /// [`Config::load`] with the environment given explicitly (for tests).
    pub fn load_from(
        file: Option<&Path>,
        bind: Option<SocketAddr>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let file = file.map(Path::to_path_buf).or_else(|| {
            env.iter()
                .find(|(name, value)| name == CONFIG_FILE_ENV && !value.is_empty())
                .map(|(_, value)| PathBuf::from(value))
        });
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &file {
            if !path.is_file() {
                return Err(ConfigError::File {
                    path: path.display().to_string(),
                    reason: "no such file".to_owned(),
                });
            }
            figment = figment.merge(Yaml::file_exact(path));
        }
        figment = figment
            .merge(EnvLayer::database_url(env))
            .merge(EnvLayer::prefixed(env));
        if let Some(bind) = bind {
            figment = figment.merge(Serialized::global("server.bind", bind.to_string()));
        }
        // Lossy: environment values are strings, converted only where the key is a number or
        // a flag (`true`, `yes`, `1`, …); string keys keep exactly what was written.
        let config: Config = figment
            .extract_lossy()
            .map_err(|err| explain(&figment, file.as_deref(), err))?;
        config.validate(&figment)?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    fn validate(&self, figment: &Figment) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| {
            let path: Vec<&str> = key.split('.').collect();
            ConfigError::InvalidValue {
                key: origin_key(figment, &path),
                value: shown_value(figment, &path),
                origin: origin_name(figment, &path),
                reason: reason.to_owned(),
            }
        };
        if let Err(reason) = self.database.location() {
            return Err(invalid("database.url", &reason));
        }
        if let Err(reason) = self.server.trusted_proxy_ranges() {
            return Err(invalid("server.trusted_proxies", &reason));
        }
        if self.server.body_timeout_secs == 0 {
            return Err(invalid("server.body_timeout_secs", "must be at least 1"));
        }
        if self.clients.max_log_bytes_per_batch == 0
            || self.clients.max_log_bytes_per_minute < self.clients.max_log_bytes_per_batch
        {
            return Err(invalid(
                "clients.max_log_bytes_per_minute",
                "must be at least clients.max_log_bytes_per_batch, which must be at least 1",
            ));
        }
        for (key, value) in [
            (
                "rate_limits.request_vm_per_address_per_minute",
                self.rate_limits.request_vm_per_address_per_minute,
            ),
            (
                "rate_limits.request_vm_per_second",
                self.rate_limits.request_vm_per_second,
            ),
            (
                "rate_limits.request_vm_burst",
                self.rate_limits.request_vm_burst,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.database.pool_size == 0 {
            return Err(invalid("database.pool_size", "must be at least 1"));
        }
        if self.database.writer_threads == 0 {
            return Err(invalid("database.writer_threads", "must be at least 1"));
        }
        if self.database.pool_size as usize <= self.database.writer_threads {
            return Err(invalid(
                "database.pool_size",
                "must be larger than database.writer_threads, so reads still get connections",
            ));
        }
        if self
            .admin
            .password
            .as_deref()
            .is_some_and(|p| p.len() < MIN_ADMIN_PASSWORD_LEN)
        {
            return Err(invalid(
                "admin.password",
                &format!("must be at least {MIN_ADMIN_PASSWORD_LEN} characters"),
            ));
        }
        if self.admin.password.is_some() && self.admin.password_hash.is_some() {
            return Err(invalid(
                "admin.password_hash",
                "set admin.password or admin.password_hash, not both",
            ));
        }
        if let Some(hash) = &self.admin.password_hash {
            if !crate::auth::passwords::is_password_hash(hash) {
                return Err(invalid(
                    "admin.password_hash",
                    "is not an argon2 hash; make one with `lablink-allocator hash-password`",
                ));
            }
        }
        if self
            .metrics
            .token
            .as_deref()
            .is_some_and(|t| t.len() < MIN_METRICS_TOKEN_LEN)
        {
            return Err(invalid(
                "metrics.token",
                &format!("must be at least {MIN_METRICS_TOKEN_LEN} characters"),
            ));
        }
        if self.admin.user.trim().is_empty() || self.admin.user.contains(':') {
            return Err(invalid(
                "admin.user",
                "must be non-empty and contain no `:`",
            ));
        }
        if self.server.max_json_bytes < 1024 || self.server.max_form_bytes < 1024 {
            return Err(invalid(
                "server.max_json_bytes",
                "body limits must be at least 1024 bytes",
            ));
        }
        if self.provider.aws.enabled && !cfg!(feature = "aws") {
            return Err(invalid(
                "provider.aws.enabled",
                "this allocator was built without the `aws` feature (cargo build --features aws)",
            ));
        }
        if self.provider.max_vms == 0 {
            return Err(invalid("provider.max_vms", "must be at least 1"));
        }
        if !self
            .provider
            .name_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
            || self.provider.name_prefix.is_empty()
        {
            return Err(invalid(
                "provider.name_prefix",
                "use letters, digits and `-` only",
            ));
        }
        if let Some(url) = &self.provider.allocator_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "provider.allocator_url",
                    "must start with http:// or https://",
                ));
            }
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(invalid("log.level", &err.to_string()));
        }
        Ok(())
    }
}

/// Turns figment's error into one that names the key as the user wrote it, its value, and
/// where it came from.
fn explain(figment: &Figment, file: Option<&Path>, err: figment::Error) -> ConfigError {
    let path: Vec<&str> = err.path.iter().map(String::as_str).collect();
    if path.is_empty() {
        return ConfigError::File {
            path: file.map_or_else(|| "(none)".to_owned(), |p| p.display().to_string()),
            reason: err.kind.to_string(),
        };
    }
    match &err.kind {
        figment::error::Kind::UnknownField(_, _) => ConfigError::UnknownKey {
            key: origin_key(figment, &path),
            origin: origin_name(figment, &path),
            reason: err.kind.to_string(),
        },
        kind => ConfigError::InvalidValue {
            key: origin_key(figment, &path),
            value: shown_value(figment, &path),
            origin: origin_name(figment, &path),
            reason: kind.to_string(),
        },
    }
}

/// The key as its source spells it: the variable name for the environment, the dotted path
/// otherwise.
fn origin_key(figment: &Figment, path: &[&str]) -> String {
    let dotted = path.join(".");
    match figment.find_metadata(&dotted) {
        Some(metadata) if metadata.name.contains("environment") => {
            metadata.interpolate(&Profile::Global, path)
        }
        _ => dotted,
    }
}

fn origin_name(figment: &Figment, path: &[&str]) -> String {
    match figment.find_metadata(&path.join(".")) {
        Some(metadata) => match &metadata.source {
            Some(figment::Source::File(file)) => format!("file {}", file.display()),
            _ => metadata.name.to_string(),
        },
        None => "defaults".to_owned(),
    }
}

/// The value at `path`, quoted, with secrets hidden.
fn shown_value(figment: &Figment, path: &[&str]) -> String {
    let last = path.last().copied().unwrap_or_default();
    let value = match figment.find_value(&path.join(".")) {
        Ok(Value::String(_, text)) => format!("{text:?}"),
        Ok(Value::Num(_, num)) => num
            .to_i128()
            .map(|n| n.to_string())
            .or_else(|| num.to_u128().map(|n| n.to_string()))
            .unwrap_or_else(|| format!("{num:?}")),
        Ok(Value::Bool(_, flag)) => flag.to_string(),
        Ok(Value::Char(_, c)) => format!("{c:?}"),
        Ok(_) => "(a list or section)".to_owned(),
        Err(_) => "(not set)".to_owned(),
    };
    if SECRET_KEY_SUFFIXES.iter().any(|s| last.ends_with(s)) {
        "(hidden)".to_owned()
    } else if last == "url" {
        redact_url(&value)
    } else {
        value
    }
}

/// Environment variables as a configuration layer. Values stay strings, exactly as given
/// (figment's own provider would turn a password `007` into the number 7); typed keys parse
/// them when extracted.
#[derive(Debug)]
struct EnvLayer {
    name: &'static str,
    values: Dict,
    interpolate: fn(&[String]) -> String,
}

impl EnvLayer {
    /// `LABLINK__SECTION__KEY=value` → `section.key = "value"`. An empty variable counts as
    /// unset, as compose files and `.env` files leave optional ones.
    fn prefixed(env: &[(String, String)]) -> Self {
        let mut values = Dict::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            let keys: Vec<String> = rest
                .split(ENV_SEPARATOR)
                .map(str::to_ascii_lowercase)
                .collect();
            if keys.iter().any(String::is_empty) {
                continue;
            }
            insert_nested(&mut values, &keys, value.clone());
        }
        EnvLayer {
            name: "environment variable",
            values,
            interpolate: |keys| {
                format!(
                    "{ENV_PREFIX}{}",
                    keys.iter()
                        .map(|k| k.to_ascii_uppercase())
                        .collect::<Vec<_>>()
                        .join(ENV_SEPARATOR)
                )
            },
        }
    }

    /// `DATABASE_URL=…` → `database.url`.
    fn database_url(env: &[(String, String)]) -> Self {
        let mut values = Dict::new();
        if let Some((_, url)) = env
            .iter()
            .find(|(name, value)| name == DATABASE_URL_ENV && !value.is_empty())
        {
            insert_nested(&mut values, &["database".into(), "url".into()], url.clone());
        }
        EnvLayer {
            name: "environment variable",
            values,
            interpolate: |_| DATABASE_URL_ENV.to_owned(),
        }
    }
}

fn insert_nested(dict: &mut Dict, keys: &[String], value: String) {
    match keys {
        [] => {}
        [last] => {
            dict.insert(last.clone(), Value::from(value));
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_nested(inner, rest, value);
            }
        }
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        let interpolate = self.interpolate;
        Metadata::named(self.name).interpolater(move |_profile, keys| {
            let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            interpolate(&keys)
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Global.collect(self.values.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn yaml(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new()
            .suffix(".yaml")
            .tempfile()
            .expect("temp file");
        file.write_all(text.as_bytes()).expect("write");
        file
    }

    #[test]
    fn nothing_set_means_sqlite_on_localhost_5000() {
        let config = Config::load_from(None, None, &[]).expect("defaults");
        assert_eq!(config.server.bind.to_string(), "127.0.0.1:5000");
        assert_eq!(
            config.database.location(),
            Ok(DatabaseLocation::SqliteFile(PathBuf::from(
                "lablink-data/lablink.sqlite"
            )))
        );
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn layers_apply_in_order_defaults_file_environment_flag() {
        let file =
            yaml("server:\n  bind: 0.0.0.0:8000\n  workers: 3\ndatabase:\n  pool_size: 20\n");
        let from_file = Config::load_from(Some(file.path()), None, &[]).expect("file");
        assert_eq!(from_file.server.bind.to_string(), "0.0.0.0:8000");
        assert_eq!(from_file.server.workers, 3);
        assert_eq!(from_file.database.pool_size, 20);

        let vars = env(&[
            ("LABLINK__SERVER__BIND", "127.0.0.1:7000"),
            ("LABLINK__LOG__FORMAT", "text"),
        ]);
        let from_env = Config::load_from(Some(file.path()), None, &vars).expect("env");
        assert_eq!(from_env.server.bind.to_string(), "127.0.0.1:7000");
        assert_eq!(
            from_env.server.workers, 3,
            "file values not overridden stay"
        );
        assert_eq!(from_env.log.format, LogFormat::Text);

        let flag: SocketAddr = "127.0.0.1:6000".parse().expect("addr");
        let from_flag = Config::load_from(Some(file.path()), Some(flag), &vars).expect("flag");
        assert_eq!(from_flag.server.bind, flag);
    }

    #[test]
    fn config_file_can_come_from_lablink_config() {
        let file = yaml("server:\n  workers: 5\n");
        let path = file.path().display().to_string();
        let config =
            Config::load_from(None, None, &env(&[("LABLINK_CONFIG", &path)])).expect("file");
        assert_eq!(config.server.workers, 5);
    }

    #[test]
    fn database_url_selects_postgres_and_the_prefixed_key_wins() {
        let config = Config::load_from(None, None, &env(&[("DATABASE_URL", "postgres://a@h/one")]))
            .expect("url");
        assert_eq!(
            config.database.location(),
            Ok(DatabaseLocation::Postgres("postgres://a@h/one".into()))
        );
        let config = Config::load_from(
            None,
            None,
            &env(&[
                ("DATABASE_URL", "postgres://a@h/one"),
                ("LABLINK__DATABASE__URL", "postgres://a@h/two"),
            ]),
        )
        .expect("url");
        assert_eq!(config.database.url.as_deref(), Some("postgres://a@h/two"));
    }

    #[test]
    fn environment_values_are_kept_exactly_as_written() {
        let config = Config::load_from(None, None, &env(&[("LABLINK__DATABASE__DATA_DIR", "007")]))
            .expect("numeric-looking string");
        assert_eq!(config.database.data_dir, PathBuf::from("007"));
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let config = Config::load_from(
            None,
            None,
            &env(&[
                ("LABLINK__ADMIN__PASSWORD_HASH", ""),
                ("LABLINK__SERVER__BIND", ""),
            ]),
        )
        .expect("empty values are ignored");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn a_password_hash_must_be_argon2_and_excludes_a_password() {
        let hash = crate::auth::passwords::hash_password("a long enough password").expect("hash");
        let config = Config::load_from(
            None,
            None,
            &env(&[("LABLINK__ADMIN__PASSWORD_HASH", &hash)]),
        )
        .expect("a real hash");
        assert_eq!(config.admin.password_hash.as_deref(), Some(hash.as_str()));

        let message = Config::load_from(
            None,
            None,
            &env(&[("LABLINK__ADMIN__PASSWORD_HASH", "plaintext-password")]),
        )
        .expect_err("not a hash")
        .to_string();
        assert!(message.contains("hash-password"), "{message}");
        assert!(!message.contains("plaintext-password"), "{message}");

        let message = Config::load_from(
            None,
            None,
            &env(&[
                ("LABLINK__ADMIN__PASSWORD_HASH", &hash),
                ("LABLINK__ADMIN__PASSWORD", "another long password"),
            ]),
        )
        .expect_err("both")
        .to_string();
        assert!(message.contains("not both"), "{message}");
    }

    #[test]
    fn numbers_and_flags_from_the_environment_are_converted() {
        let config = Config::load_from(
            None,
            None,
            &env(&[
                ("LABLINK__DATABASE__STARTUP_TIMEOUT_SECS", "7"),
                ("LABLINK__SERVER__WORKERS", "3"),
            ]),
        )
        .expect("typed values");
        assert_eq!(config.database.startup_timeout_secs, 7);
        assert_eq!(config.server.workers, 3);
        let err = Config::load_from(None, None, &env(&[("LABLINK__SERVER__WORKERS", "many")]))
            .expect_err("not a number");
        assert!(err.to_string().contains("\"many\""), "{err}");
    }

    #[test]
    fn a_bad_environment_value_names_the_variable_and_the_value() {
        let err = Config::load_from(
            None,
            None,
            &env(&[("LABLINK__SERVER__BIND", "not-an-address")]),
        )
        .expect_err("bad bind");
        let message = err.to_string();
        assert!(message.contains("LABLINK__SERVER__BIND"), "{message}");
        assert!(message.contains("\"not-an-address\""), "{message}");
    }

    #[test]
    fn a_bad_file_value_names_the_key_the_value_and_the_file() {
        let file = yaml("database:\n  pool_size: -3\n");
        let message = Config::load_from(Some(file.path()), None, &[])
            .expect_err("negative pool")
            .to_string();
        assert!(message.contains("database.pool_size"), "{message}");
        assert!(message.contains("-3"), "{message}");
        assert!(
            message.contains(&file.path().display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let message = Config::load_from(None, None, &env(&[("LABLINK__SERVER__BINDD", "x")]))
            .expect_err("typo")
            .to_string();
        assert!(message.contains("LABLINK__SERVER__BINDD"), "{message}");
        let file = yaml("sever:\n  bind: 0.0.0.0:1\n");
        let message = Config::load_from(Some(file.path()), None, &[])
            .expect_err("typo")
            .to_string();
        assert!(message.contains("sever"), "{message}");
    }

    #[test]
    fn values_that_parse_but_cannot_work_are_refused() {
        for (name, value, key) in [
            (
                "LABLINK__DATABASE__POOL_SIZE",
                "0",
                "LABLINK__DATABASE__POOL_SIZE",
            ),
            (
                "LABLINK__DATABASE__WRITER_THREADS",
                "0",
                "LABLINK__DATABASE__WRITER_THREADS",
            ),
            ("DATABASE_URL", "mysql://u:pw@h/db", "DATABASE_URL"),
            ("LABLINK__LOG__LEVEL", "info,=[", "LABLINK__LOG__LEVEL"),
        ] {
            let message = Config::load_from(None, None, &env(&[(name, value)]))
                .expect_err(name)
                .to_string();
            assert!(message.contains(key), "{message}");
        }
    }

    #[test]
    fn database_passwords_never_appear_in_errors_or_debug_output() {
        let message = Config::load_from(
            None,
            None,
            &env(&[("DATABASE_URL", "mysql://u:hunter2@h/db")]),
        )
        .expect_err("unsupported")
        .to_string();
        assert!(!message.contains("hunter2"), "{message}");
        let config = Config::load_from(
            None,
            None,
            &env(&[("DATABASE_URL", "postgres://u:hunter2@h/db")]),
        )
        .expect("valid");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn admin_and_client_settings_come_from_the_environment() {
        let config = Config::load_from(
            None,
            None,
            &env(&[
                ("LABLINK__ADMIN__PASSWORD", "000123456789"),
                ("LABLINK__CLIENTS__LEGACY_UNAUTHENTICATED", "true"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.admin.password.as_deref(), Some("000123456789"));
        assert!(config.clients.legacy_unauthenticated);
        assert!(!format!("{config:?}").contains("000123456789"));
        assert!(
            !Config::default().clients.legacy_unauthenticated,
            "off by default"
        );
        assert_eq!(
            Config::default().admin.password,
            None,
            "no default password"
        );

        let message = Config::load_from(None, None, &env(&[("LABLINK__ADMIN__PASSWORD", "short")]))
            .expect_err("too short")
            .to_string();
        assert!(message.contains("LABLINK__ADMIN__PASSWORD"), "{message}");
        assert!(
            !message.contains("short\""),
            "the password must not be shown: {message}"
        );
    }

    #[test]
    fn a_missing_or_broken_file_is_reported() {
        let missing = Config::load_from(Some(Path::new("/nonexistent/lablink.yaml")), None, &[])
            .expect_err("missing");
        assert!(missing.to_string().contains("/nonexistent/lablink.yaml"));
        let broken = yaml("server: [unclosed\n");
        let err = Config::load_from(Some(broken.path()), None, &[]).expect_err("broken");
        assert!(matches!(err, ConfigError::File { .. }), "{err:?}");
    }
}

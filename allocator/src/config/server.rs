//! Sections `server` (the HTTP listener) and `rate_limits` (how fast researchers may ask for
//! VMs), each with its own checks.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::Invalid;

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
    /// How the other allocators on the same database reach this one (`http://10.0.0.5:5000`),
    /// so that a browser desktop opened on one allocator reaches an agent whose tunnel is
    /// held by another. Unset: `http://` and the listening address, unless that is a
    /// wildcard address (`0.0.0.0`), in which case browser desktops reach only the agents
    /// connected to this allocator. Not used with SQLite (one allocator).
    pub advertise_url: Option<String>,
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
            advertise_url: None,
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

    /// What types alone cannot check.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if let Some(url) = &self.advertise_url {
            if let Err(reason) = advertised(url) {
                return Err(Invalid::new("server.advertise_url", reason));
            }
        }
        if let Err(reason) = self.trusted_proxy_ranges() {
            return Err(Invalid::new("server.trusted_proxies", reason));
        }
        if self.body_timeout_secs == 0 {
            return Err(Invalid::new(
                "server.body_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.max_json_bytes < 1024 || self.max_form_bytes < 1024 {
            return Err(Invalid::new(
                "server.max_json_bytes",
                "body limits must be at least 1024 bytes",
            ));
        }
        Ok(())
    }
}

/// `url` as other allocators dial it: `http` or `https`, a host, no path, query or
/// credentials; without a trailing slash.
pub fn advertised(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|err| format!("not a URL: {err}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".to_owned());
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("must name only the scheme, host and port (no path or query)".to_owned());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must carry no credentials".to_owned());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl ServerConfig {
    /// Where other allocators reach this one, listening at `bound`: `advertise_url`, else
    /// the listening address unless it is a wildcard.
    pub fn advertised_url(&self, bound: SocketAddr) -> Option<String> {
        match &self.advertise_url {
            Some(url) => advertised(url).ok(),
            None if bound.ip().is_unspecified() => None,
            None => Some(format!("http://{bound}")),
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

impl RateLimitConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        for (key, value) in [
            (
                "rate_limits.request_vm_per_address_per_minute",
                self.request_vm_per_address_per_minute,
            ),
            (
                "rate_limits.request_vm_per_second",
                self.request_vm_per_second,
            ),
            ("rate_limits.request_vm_burst", self.request_vm_burst),
        ] {
            if value == 0 {
                return Err(Invalid::new(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}

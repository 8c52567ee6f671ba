//! Who is calling: the admin (HTTP Basic), a VM (its own bearer token), or, when the legacy
//! setting allows it, an original token-less agent. Tokens are random, shown once, and kept
//! only as SHA-256 hashes (a 256-bit random token needs no slow hash); the admin's password is
//! checked against its argon2 hash ([`AdminCredentials`]).

use std::sync::Arc;

use actix_web::http::header;
use actix_web::HttpRequest;
use base64::Engine;
use lablink_schema::vms::Vm;

use crate::admin_auth::{same, AdminCredentials};
use crate::config::ClientsConfig;
use crate::error::ApiError;

pub use lablink_actors::tokens::{
    hash_token, is_enrollment_token, new_enrollment_token, new_vm_token,
};

/// The credentials a request carries.
#[derive(PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
    /// An `Authorization` header we cannot read.
    Malformed,
    /// Basic credentials already checked to be the admin's (see [`credentials`]).
    Admin,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "Credentials::None",
            Credentials::Basic { .. } => "Credentials::Basic",
            Credentials::Bearer(_) => "Credentials::Bearer",
            Credentials::Malformed => "Credentials::Malformed",
            Credentials::Admin => "Credentials::Admin",
        })
    }
}

impl Credentials {
    /// Reads the `Authorization` header.
    pub fn from_request(request: &HttpRequest) -> Self {
        let Some(value) = request.headers().get(header::AUTHORIZATION) else {
            return Credentials::None;
        };
        let Ok(value) = value.to_str() else {
            return Credentials::Malformed;
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            return Credentials::Bearer(rest.to_owned());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
                return Credentials::Basic {
                    user: user.to_owned(),
                    password: password.to_owned(),
                };
            }
        }
        Credentials::Malformed
    }
}

/// Who a request acts as, once authorised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    /// The VM whose token was presented.
    Vm(String),
    /// A token-less agent, accepted because `clients.legacy_unauthenticated` is on.
    LegacyAgent,
    /// A machine presenting an enrollment token for a hostname that does not exist yet; it
    /// will be given its own token if the enrollment token is good.
    Enrolling {
        /// The enrollment token's hash (the token itself is never kept).
        token_hash: String,
    },
}

impl Caller {
    /// How the audit trail names this caller.
    pub fn audit_name(&self) -> String {
        match self {
            Caller::Admin => "admin".to_owned(),
            Caller::Vm(hostname) => format!("vm:{hostname}"),
            Caller::LegacyAgent => "legacy-agent".to_owned(),
            Caller::Enrolling { .. } => "enrolling-agent".to_owned(),
        }
    }
}

/// The authorisation rules, built once at start.
#[derive(Debug, Clone)]
pub struct Authorizer {
    admin: Arc<AdminCredentials>,
    legacy_unauthenticated: bool,
}

impl Authorizer {
    pub fn new(admin: Arc<AdminCredentials>, clients: &ClientsConfig) -> Self {
        Authorizer {
            admin,
            legacy_unauthenticated: clients.legacy_unauthenticated,
        }
    }

    /// The admin's credentials (the login form checks them too).
    pub fn admin(&self) -> &AdminCredentials {
        &self.admin
    }

    /// Admin only. Basic credentials count once [`credentials`] has verified them.
    pub fn require_admin(&self, credentials: &Credentials) -> Result<Caller, ApiError> {
        match credentials {
            Credentials::Admin => Ok(Caller::Admin),
            _ => Err(ApiError::admin_required()),
        }
    }

    /// The admin, or the VM `hostname` itself with its token (for reading its own data).
    pub fn require_admin_or_vm(
        &self,
        credentials: &Credentials,
        hostname: &str,
        vm: Option<&Vm>,
    ) -> Result<Caller, ApiError> {
        match credentials {
            Credentials::Basic { .. } | Credentials::Admin => self.require_admin(credentials),
            Credentials::Bearer(token) if token_matches(vm, token) => {
                Ok(Caller::Vm(hostname.to_owned()))
            }
            _ => Err(ApiError::admin_required()),
        }
    }

    /// Whether token-less original agents are let in (for VMs that have no token).
    pub fn legacy_unauthenticated(&self) -> bool {
        self.legacy_unauthenticated
    }

    /// A VM acting on itself: its own token; the admin; a token-less legacy agent when
    /// allowed and the VM has no token; or, if `registration` (`POST /api/vm-status`), a
    /// machine enrolling with an enrollment token under a hostname that does not exist.
    pub fn authorize_vm(
        &self,
        credentials: &Credentials,
        hostname: &str,
        vm: Option<&Vm>,
        registration: bool,
    ) -> Result<Caller, ApiError> {
        match credentials {
            Credentials::Basic { .. } | Credentials::Admin => self.require_admin(credentials),
            Credentials::Bearer(token) if token_matches(vm, token) => {
                Ok(Caller::Vm(hostname.to_owned()))
            }
            Credentials::Bearer(token) if registration && is_enrollment_token(token) => {
                match vm {
                    Some(_) => Err(ApiError::Conflict(format!(
                        "a VM named `{hostname}` exists already; an enrollment token cannot take                          it over, only that VM's own token can act for it"
                    ))),
                    None => Ok(Caller::Enrolling {
                        token_hash: hash_token(token),
                    }),
                }
            }
            Credentials::None
                if self.legacy_unauthenticated && vm.is_none_or(|vm| vm.token_hash.is_none()) =>
            {
                Ok(Caller::LegacyAgent)
            }
            Credentials::None if registration && vm.is_none() => {
                Err(ApiError::enrollment_required(hostname))
            }
            _ => Err(ApiError::vm_token_required(hostname)),
        }
    }
}

fn token_matches(vm: Option<&Vm>, token: &str) -> bool {
    let Some(stored) = vm.and_then(|vm| vm.token_hash.as_deref()) else {
        return false;
    };
    same(hash_token(token).as_bytes(), stored.as_bytes())
}

/// The request's credentials, with Basic ones checked against the admin's: the same lockout
/// per client address as the sign-in form, argon2 off the HTTP workers (only until a pair
/// has been verified once), and every failure audited. Known-good admin credentials come
/// back as [`Credentials::Admin`]; wrong ones are refused here with 401 (429 while locked out).
pub async fn credentials(
    state: &crate::state::AppState,
    request: &HttpRequest,
) -> Result<Credentials, ApiError> {
    let (user, password) = match Credentials::from_request(request) {
        Credentials::Basic { user, password } => (user, password),
        other => return Ok(other),
    };
    let admin = state.auth.admin.clone();
    if admin.basic_known(&user, &password) {
        return Ok(Credentials::Admin);
    }
    let address = state.client_addresses.of(request);
    if let Err(wait) = state.login_guard.check(address) {
        return Err(ApiError::TooManyRequests {
            message: "too many failed sign-ins from this address; wait before trying again"
                .to_owned(),
            retry_after: wait,
        });
    }
    let verified = actix_web::web::block(move || admin.verify_basic(&user, &password)).await?;
    if verified {
        state.login_guard.clear(address);
        return Ok(Credentials::Admin);
    }
    state.login_guard.record_failure(address);
    state
        .audit(
            "admin",
            "admin.basic_failed",
            Some(request.path().to_owned()),
            Some(format!("from {address}")),
        )
        .await;
    Err(ApiError::admin_required())
}

/// The admin, from this request's credentials ([`credentials`]), or 401/429.
pub async fn require_admin(
    state: &crate::state::AppState,
    request: &HttpRequest,
) -> Result<Caller, ApiError> {
    state
        .auth
        .require_admin(&credentials(state, request).await?)
}

/// A random 6-digit PIN for one assignment.
pub fn new_pin() -> String {
    use rand::Rng;
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_six_digits_and_vary() {
        let pins: std::collections::HashSet<String> = (0..50).map(|_| new_pin()).collect();
        assert!(pins
            .iter()
            .all(|p| p.len() == 6 && p.chars().all(|c| c.is_ascii_digit())));
        assert!(pins.len() > 40, "PINs repeat too often: {}", pins.len());
    }
}

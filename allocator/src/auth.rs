//! Who is calling: the admin (HTTP Basic), a VM (its own bearer token), or, when the legacy
//! setting allows it, an original token-less agent. Tokens are random, shown once, and kept
//! only as SHA-256 hashes (a 256-bit random token needs no slow hash).

use actix_web::http::header;
use actix_web::HttpRequest;
use base64::Engine;
use lablink_schema::vms::Vm;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::{AdminConfig, ClientsConfig};
use crate::error::ApiError;

/// Bytes of randomness in a VM token.
const TOKEN_BYTES: usize = 32;

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
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "Credentials::None",
            Credentials::Basic { .. } => "Credentials::Basic",
            Credentials::Bearer(_) => "Credentials::Bearer",
            Credentials::Malformed => "Credentials::Malformed",
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
    /// A token-less first report of a VM that has no token yet; it will be given one.
    Registering,
}

impl Caller {
    /// How the audit trail names this caller.
    pub fn audit_name(&self) -> String {
        match self {
            Caller::Admin => "admin".to_owned(),
            Caller::Vm(hostname) => format!("vm:{hostname}"),
            Caller::LegacyAgent => "legacy-agent".to_owned(),
            Caller::Registering => "registering-agent".to_owned(),
        }
    }
}

/// The authorisation rules, built once from configuration.
#[derive(Debug, Clone)]
pub struct Authorizer {
    admin_user: String,
    /// SHA-256 of the admin password; `None` disables admin access.
    admin_password_hash: Option<[u8; 32]>,
    legacy_unauthenticated: bool,
}

impl Authorizer {
    pub fn new(admin: &AdminConfig, clients: &ClientsConfig) -> Self {
        Authorizer {
            admin_user: admin.user.clone(),
            admin_password_hash: admin.password.as_deref().map(sha256),
            legacy_unauthenticated: clients.legacy_unauthenticated,
        }
    }

    /// Whether an admin password is configured at all.
    pub fn admin_enabled(&self) -> bool {
        self.admin_password_hash.is_some()
    }

    fn is_admin(&self, user: &str, password: &str) -> bool {
        let Some(expected) = &self.admin_password_hash else {
            return false;
        };
        // Both comparisons always run, in constant time, so timing tells nothing.
        let user_ok = constant_time_eq(&sha256(user), &sha256(&self.admin_user));
        let password_ok = constant_time_eq(&sha256(password), expected);
        user_ok & password_ok
    }

    /// Admin only.
    pub fn require_admin(&self, credentials: &Credentials) -> Result<Caller, ApiError> {
        match credentials {
            Credentials::Basic { user, password } if self.is_admin(user, password) => {
                Ok(Caller::Admin)
            }
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
            Credentials::Basic { .. } => self.require_admin(credentials),
            Credentials::Bearer(token) if token_matches(vm, token) => {
                Ok(Caller::Vm(hostname.to_owned()))
            }
            _ => Err(ApiError::admin_required()),
        }
    }

    /// A VM acting on itself: its own token; the admin; a token-less legacy agent when
    /// allowed; or, if `registration` and the VM has no token yet, a token-less first report.
    pub fn authorize_vm(
        &self,
        credentials: &Credentials,
        hostname: &str,
        vm: Option<&Vm>,
        registration: bool,
    ) -> Result<Caller, ApiError> {
        match credentials {
            Credentials::Basic { .. } => self.require_admin(credentials),
            Credentials::Bearer(token) if token_matches(vm, token) => {
                Ok(Caller::Vm(hostname.to_owned()))
            }
            Credentials::None if self.legacy_unauthenticated => Ok(Caller::LegacyAgent),
            Credentials::None if registration && vm.is_none_or(|vm| vm.token_hash.is_none()) => {
                Ok(Caller::Registering)
            }
            _ => Err(ApiError::vm_token_required(hostname)),
        }
    }
}

fn token_matches(vm: Option<&Vm>, token: &str) -> bool {
    let Some(stored) = vm.and_then(|vm| vm.token_hash.as_deref()) else {
        return false;
    };
    constant_time_eq(hash_token(token).as_bytes(), stored.as_bytes())
}

/// A new random VM token and its hash (what is stored).
pub fn new_vm_token() -> (String, String) {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex(&bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// What is stored for a token: its SHA-256, hex-encoded.
pub fn hash_token(token: &str) -> String {
    hex(&sha256(token))
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    fn tokens_are_random_and_only_their_hash_matches() {
        let (token, hash) = new_vm_token();
        let (other, _) = new_vm_token();
        assert_ne!(token, other);
        assert_eq!(token.len(), 64);
        assert_eq!(hash_token(&token), hash);
        assert_ne!(hash, token);
    }

    #[test]
    fn pins_are_six_digits_and_vary() {
        let pins: std::collections::HashSet<String> = (0..50).map(|_| new_pin()).collect();
        assert!(pins
            .iter()
            .all(|p| p.len() == 6 && p.chars().all(|c| c.is_ascii_digit())));
        assert!(pins.len() > 40, "PINs repeat too often: {}", pins.len());
    }

    #[test]
    fn without_a_password_nobody_is_admin() {
        let auth = Authorizer::new(&AdminConfig::default(), &ClientsConfig::default());
        assert!(!auth.admin_enabled());
        let creds = Credentials::Basic {
            user: "admin".into(),
            password: String::new(),
        };
        assert!(auth.require_admin(&creds).is_err());
    }
}

//! Who is calling, one file per job: the admin's password ([`passwords`]), API tokens
//! ([`api_tokens`]), dashboard sessions
//! ([`sessions`]), failed sign-in limits ([`login_limits`]), VMs' tokens ([`vm_tokens`]), the
//! `Authorization` header ([`credentials`]), cookie signatures ([`signer`]), and the
//! extractors handlers take as arguments ([`extractors`]), so no handler checks anything
//! itself.

use std::sync::Arc;

use crate::config::ClientsConfig;

pub mod api_tokens;
pub mod credentials;
pub mod extractors;
pub mod login_limits;
pub mod passwords;
pub mod sessions;
pub mod signer;
pub mod vm_tokens;

pub use credentials::Credentials;
pub use extractors::{AdminCaller, AuthorizedVm, CsrfForm, SignedIn, VmOrAdmin, VmRegistration};
pub use lablink_actors::tokens::{
    hash_token, is_enrollment_token, new_enrollment_token, new_vm_token,
};
pub use login_limits::LoginGuard;
pub use passwords::AdminCredentials;
pub use signer::CookieSigner;

/// Who a request acts as, once authorised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    /// The admin API, with one of its tokens.
    ApiToken {
        id: i64,
        name: String,
        scope: lablink_schema::wire::ApiTokenScope,
    },
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
            Caller::ApiToken { id, name, .. } => format!("token:{id}:{name}"),
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

    /// The admin's credentials (the sign-in form checks them too).
    pub fn admin(&self) -> &AdminCredentials {
        &self.admin
    }

    /// Whether token-less original agents are let in (for VMs that have no token).
    pub fn legacy_unauthenticated(&self) -> bool {
        self.legacy_unauthenticated
    }
}

/// Equal in constant time (`subtle`; for equal lengths, and a length is no secret here).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// A random hex string of 32 bytes (session ids, CSRF tokens, nonces).
pub fn random_token() -> String {
    new_vm_token().0
}

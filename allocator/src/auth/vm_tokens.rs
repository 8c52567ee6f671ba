//! A VM's own token: what a VM, the admin, a token-less legacy agent (when allowed) or an
//! enrolling machine may do for a hostname. Tokens are random, shown once, and kept only as
//! SHA-256 hashes (a 256-bit random token needs no slow hash).

use lablink_schema::vms::Vm;

use super::{hash_token, is_enrollment_token, same, Authorizer, Caller, Credentials};
use crate::error::ApiError;

impl Authorizer {
    /// The admin, or the VM `hostname` itself with its token (for reading its own data).
    pub fn require_admin_or_vm(
        &self,
        credentials: &Credentials,
        hostname: &str,
        vm: Option<&Vm>,
    ) -> Result<Caller, ApiError> {
        match credentials {
            Credentials::Admin => Ok(Caller::Admin),
            // Either scope: these are reads.
            Credentials::ApiToken(grant) => Ok(grant.caller()),
            Credentials::Bearer(token) if token_matches(vm, token) => {
                Ok(Caller::Vm(hostname.to_owned()))
            }
            _ => Err(ApiError::admin_required()),
        }
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
            Credentials::Admin => Ok(Caller::Admin),
            Credentials::Basic { .. } => Err(ApiError::admin_required()),
            Credentials::ApiToken(_) => Err(ApiError::Forbidden(format!(
                "an API token acts for the admin, not for a VM: VM `{hostname}` reports with its \
                 own token"
            ))),
            Credentials::Bearer(token) if token_matches(vm, token) => {
                Ok(Caller::Vm(hostname.to_owned()))
            }
            Credentials::Bearer(token) if registration && is_enrollment_token(token) => match vm {
                Some(_) => Err(ApiError::Conflict(format!(
                    "a VM named `{hostname}` exists already; an enrollment token cannot take \
                         it over, only that VM's own token can act for it"
                ))),
                None => Ok(Caller::Enrolling {
                    token_hash: hash_token(token),
                }),
            },
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

/// Whether `token` is the one whose hash `vm` keeps.
fn token_matches(vm: Option<&Vm>, token: &str) -> bool {
    let Some(stored) = vm.and_then(|vm| vm.token_hash.as_deref()) else {
        return false;
    };
    same(hash_token(token).as_bytes(), stored.as_bytes())
}

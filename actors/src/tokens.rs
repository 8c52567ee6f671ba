//! VM tokens: 256 random bits, hex-encoded; only their SHA-256 is stored. A token this
//! random needs no slow hash.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Bytes of randomness in a VM token.
const TOKEN_BYTES: usize = 32;

/// A new random VM token and its hash (what is stored).
pub fn new_vm_token() -> (String, String) {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex(&bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// What every enrollment token begins with, so the allocator can tell one from a VM's token
/// and say precisely what is wrong with it.
pub const ENROLLMENT_TOKEN_PREFIX: &str = "lle_";

/// A new random enrollment token (`lle_` and 64 hex digits) and its hash.
pub fn new_enrollment_token() -> (String, String) {
    let (random, _) = new_vm_token();
    let token = format!("{ENROLLMENT_TOKEN_PREFIX}{random}");
    let hash = hash_token(&token);
    (token, hash)
}

/// What every admin API token begins with, so a script's token is never mistaken for a VM's.
pub const API_TOKEN_PREFIX: &str = "lla_";

/// A new random API token (`lla_` and 64 hex digits) and its hash.
pub fn new_api_token() -> (String, String) {
    let (random, _) = new_vm_token();
    let token = format!("{API_TOKEN_PREFIX}{random}");
    let hash = hash_token(&token);
    (token, hash)
}

/// Whether `token` is shaped as an admin API token.
pub fn is_api_token(token: &str) -> bool {
    token.starts_with(API_TOKEN_PREFIX)
}

/// Whether `token` is shaped as an enrollment token.
pub fn is_enrollment_token(token: &str) -> bool {
    token.starts_with(ENROLLMENT_TOKEN_PREFIX)
}

/// What is stored for a token: its SHA-256, hex-encoded.
pub fn hash_token(token: &str) -> String {
    hex(&sha256(token.as_bytes()))
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
}

//! The admin's password: kept only as an argon2 hash (hashed once at start from the
//! configuration, or generated at first start, printed once to the log and stored hashed).
//! Signing in runs argon2; so does the first HTTP Basic request, after which a SHA-256 of
//! those verified credentials lets later script requests skip the slow hash.

use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use lablink_actors::tokens::sha256;

use super::same;

/// Characters of a generated admin password.
const GENERATED_PASSWORD_LEN: usize = 24;

/// Hashes `password` with argon2 and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `hash` is an argon2 PHC string, as [`hash_password`] makes.
pub fn is_password_hash(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| parsed.algorithm.as_str().starts_with("argon2"))
}

/// A random password for the admin, of letters and digits.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_bytes::<GENERATED_PASSWORD_LEN>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// The admin's user name and password hash.
pub struct AdminCredentials {
    user: String,
    password_hash: String,
    /// SHA-256 of `user:password` once verified by argon2: later Basic requests compare
    /// against it instead of hashing again.
    verified_basic: Mutex<Option<[u8; 32]>>,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl AdminCredentials {
    /// Credentials for `user` with the argon2 `password_hash`.
    pub fn new(user: String, password_hash: String) -> Self {
        AdminCredentials {
            user,
            password_hash,
            verified_basic: Mutex::new(None),
        }
    }

    /// Checks user and password with argon2 (slow by design: the login form).
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let user_ok = same(&sha256(user.as_bytes()), &sha256(self.user.as_bytes()));
        let password_ok = PasswordHash::new(&self.password_hash)
            .map(|hash| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            })
            .unwrap_or(false);
        user_ok & password_ok
    }

    /// Whether these Basic credentials were verified by argon2 before (fast: no argon2).
    pub fn basic_known(&self, user: &str, password: &str) -> bool {
        let digest = sha256(format!("{user}:{password}").as_bytes());
        self.verified_basic
            .lock()
            .ok()
            .and_then(|cached| *cached)
            .is_some_and(|cached| same(&cached, &digest))
    }

    /// Checks HTTP Basic credentials; argon2 runs only until they have been verified once.
    /// Slow when they are not known: call it off the HTTP workers.
    pub fn verify_basic(&self, user: &str, password: &str) -> bool {
        if self.basic_known(user, password) {
            return true;
        }
        let verified = self.verify(user, password);
        if verified {
            if let Ok(mut cached) = self.verified_basic.lock() {
                *cached = Some(sha256(format!("{user}:{password}").as_bytes()));
            }
        }
        verified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash_and_basic_skips_rehashing() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2"));
        let admin = AdminCredentials::new("admin".into(), hash);
        assert!(admin.verify("admin", "correct horse battery"));
        assert!(!admin.verify("admin", "wrong"));
        assert!(!admin.verify("root", "correct horse battery"));
        assert!(admin.verify_basic("admin", "correct horse battery"));
        assert!(
            admin.verify_basic("admin", "correct horse battery"),
            "cached"
        );
        assert!(!admin.verify_basic("admin", "correct horse batteryX"));
    }

    #[test]
    fn generated_passwords_are_long_and_different() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.len(), GENERATED_PASSWORD_LEN);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}

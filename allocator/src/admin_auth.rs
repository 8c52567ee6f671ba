//! The admin's credentials and sessions.
//!
//! The password is kept only as an argon2 hash: hashed once at start from the configuration,
//! or, when none is configured, generated at first start, printed once to the log and stored
//! hashed in the database. Signing in (the login form) runs argon2; so does the first HTTP
//! Basic request, after which a SHA-256 of those verified credentials lets later script
//! requests skip the slow hash.
//!
//! A session is a random id in a signed, HttpOnly, SameSite=Strict cookie (Secure over
//! TLS); the database keeps only the id's hash, its CSRF token and its expiry, so logging
//! out ends it everywhere.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use hmac::{Hmac, Mac};
use lablink_actors::tokens::{hash_token, new_vm_token, sha256};
use sha2::Sha256;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "lablink_admin";
/// Name of the cookie that carries the login form's anti-forgery nonce.
pub const LOGIN_COOKIE: &str = "lablink_login";
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

/// A random hex string of 32 bytes (session ids, CSRF tokens, nonces).
pub fn random_token() -> String {
    new_vm_token().0
}

/// Equal in constant time (for equal lengths; a length is no secret here).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
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

/// Signs and checks cookie values with the deployment's session key.
#[derive(Clone)]
pub struct CookieSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for CookieSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieSigner(<key>)")
    }
}

impl CookieSigner {
    pub fn new(key: &str) -> Self {
        CookieSigner {
            key: key.as_bytes().to_vec(),
        }
    }

    fn mac(&self, value: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(value.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A keyed digest of `value` (hex): a secret only this deployment can derive.
    pub fn tag(&self, value: &str) -> String {
        self.mac(value)
    }

    /// `value.signature`.
    pub fn sign(&self, value: &str) -> String {
        format!("{value}.{}", self.mac(value))
    }

    /// The value, if `signed` carries a valid signature.
    pub fn verify<'a>(&self, signed: &'a str) -> Option<&'a str> {
        let (value, signature) = signed.rsplit_once('.')?;
        same(self.mac(value).as_bytes(), signature.as_bytes()).then_some(value)
    }
}

/// What identifies a session in the database: the hash of its id.
pub fn session_id_hash(session_id: &str) -> String {
    hash_token(session_id)
}

/// Limits failed sign-ins per client address.
#[derive(Debug)]
pub struct LoginGuard {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginGuard {
    /// At most `max_failures` failed attempts per address within `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        LoginGuard {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while `address` is locked out.
    pub fn check(&self, address: IpAddr) -> Result<(), Duration> {
        let Ok(mut failures) = self.failures.lock() else {
            return Ok(());
        };
        match failures.get(&address) {
            Some((count, since)) if since.elapsed() >= self.window => {
                let _ = count;
                failures.remove(&address);
                Ok(())
            }
            Some((count, since)) if *count >= self.max_failures => {
                Err(self.window.saturating_sub(since.elapsed()))
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, address: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            let entry = failures.entry(address).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= self.window {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
    }

    pub fn clear(&self, address: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&address);
        }
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

    #[test]
    fn signed_values_cannot_be_forged() {
        let signer = CookieSigner::new("key-one");
        let signed = signer.sign("session-id");
        assert_eq!(signer.verify(&signed), Some("session-id"));
        assert_eq!(signer.verify("session-id.0000"), None);
        assert_eq!(signer.verify("other-id.".to_owned().as_str()), None);
        assert_eq!(CookieSigner::new("key-two").verify(&signed), None);
        let tampered = signed.replacen("session", "sessiom", 1);
        assert_eq!(signer.verify(&tampered), None);
    }

    #[test]
    fn the_login_guard_locks_out_after_repeated_failures() {
        let guard = LoginGuard::new(3, Duration::from_secs(60));
        let address: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..3 {
            assert!(guard.check(address).is_ok());
            guard.record_failure(address);
        }
        assert!(guard.check(address).is_err());
        assert!(guard.check(other).is_ok(), "per address");
        guard.clear(address);
        assert!(guard.check(address).is_ok());
        let short = LoginGuard::new(1, Duration::from_millis(1));
        short.record_failure(address);
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.check(address).is_ok(), "the window passes");
    }
}

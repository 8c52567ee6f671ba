//! [`CookieSigner`]: HMAC-SHA-256 signatures on cookie values with the deployment's session
//! key, so a cookie's value cannot be made up or altered by its holder.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::same;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}

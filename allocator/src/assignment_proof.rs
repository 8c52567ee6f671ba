//! Proof that a returning researcher is the one who claimed the VM: the browser that asked
//! (a random key in a cookie, whose SHA-256 is kept with the assignment), or the rejoin code
//! shown with the new assignment. Without either, an email alone never reveals a hostname
//! and PIN.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;
use lablink_schema::vms::Vm;

use crate::auth::{hash_token, random_token, same, CookieSigner};

/// The cookie with this browser's key.
pub const BROWSER_COOKIE: &str = "lablink_browser";
/// How long a browser keeps its key: longer than any workshop.
const BROWSER_COOKIE_DAYS: i64 = 30;

/// This browser's key: the one it sent, or a new one to set (`true`).
pub fn browser_key(request: &HttpRequest) -> (String, bool) {
    match request.cookie(BROWSER_COOKIE) {
        Some(cookie) if cookie.value().len() == 64 => (cookie.value().to_owned(), false),
        _ => (random_token(), true),
    }
}

/// The cookie that gives the browser `key`.
pub fn browser_cookie(key: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(BROWSER_COOKIE, key.to_owned())
        .path("/")
        .http_only(true)
        // Lax: sent when the participant follows a link back to the start page.
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::days(BROWSER_COOKIE_DAYS))
        .finish()
}

/// What is kept with an assignment for `key`.
pub fn claimed_by(key: &str) -> String {
    hash_token(key)
}

/// The rejoin code of `vm`'s current assignment: derived with the deployment's secret key
/// from the VM, the assignment and the email, so every allocator can check it and a new
/// assignment gets a new one.
pub fn rejoin_code(signer: &CookieSigner, vm: &Vm) -> String {
    let tag = signer.tag(&format!(
        "rejoin\0{}\0{}\0{}",
        vm.hostname,
        vm.assignment_seq,
        vm.user_email.as_deref().unwrap_or_default()
    ));
    let code = tag[..10].to_ascii_uppercase();
    format!("{}-{}", &code[..5], &code[5..])
}

/// Whether the request proves it is the researcher holding `vm`.
pub fn proves(signer: &CookieSigner, vm: &Vm, browser_key: &str, typed_code: &str) -> bool {
    let by_browser = vm
        .claimed_by
        .as_deref()
        .is_some_and(|stored| same(stored.as_bytes(), claimed_by(browser_key).as_bytes()));
    let typed: String = typed_code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let expected: String = rejoin_code(signer, vm)
        .chars()
        .filter(|c| *c != '-')
        .collect();
    let by_code = !typed.is_empty() && same(typed.as_bytes(), expected.as_bytes());
    by_browser | by_code
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

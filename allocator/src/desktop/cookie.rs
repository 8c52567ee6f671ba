//! The desktop's session cookie: signed with the deployment's key and bound to one VM's one
//! assignment, so it opens that desktop until the assignment ends and never another VM's.
//! It is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it, so no
//! foreign page can open the desktop's socket with it), Secure over TLS, and sent only under
//! `/desktop`.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;
use lablink_schema::vms::Vm;

use crate::auth::CookieSigner;

pub const DESKTOP_COOKIE: &str = "lablink_desktop";
/// Longer than any session; the assignment, not the cookie's age, decides.
const DESKTOP_COOKIE_HOURS: i64 = 24;

/// The VM and assignment a desktop cookie opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopGrant {
    pub hostname: String,
    pub assignment_seq: i64,
}

impl DesktopGrant {
    /// The grant of `vm`'s current assignment.
    pub fn of(vm: &Vm) -> Self {
        DesktopGrant {
            hostname: vm.hostname.clone(),
            assignment_seq: vm.assignment_seq,
        }
    }

    /// Whether `vm` is still held by the assignment this grant was made for.
    pub fn opens(&self, vm: &Vm) -> bool {
        vm.hostname == self.hostname
            && vm.assignment_seq == self.assignment_seq
            && vm.user_email.is_some()
    }

    fn value(&self) -> String {
        format!("desktop:{}:{}", self.hostname, self.assignment_seq)
    }

    /// The cookie that carries this grant.
    pub fn cookie(&self, signer: &CookieSigner, secure: bool) -> Cookie<'static> {
        Cookie::build(DESKTOP_COOKIE, signer.sign(&self.value()))
            .path("/desktop")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure)
            .max_age(actix_web::cookie::time::Duration::hours(
                DESKTOP_COOKIE_HOURS,
            ))
            .finish()
    }

    /// The grant the request's cookie carries, if its signature holds.
    pub fn from_request(signer: &CookieSigner, request: &HttpRequest) -> Option<Self> {
        let cookie = request.cookie(DESKTOP_COOKIE)?;
        Self::parse(signer, cookie.value())
    }

    fn parse(signer: &CookieSigner, signed: &str) -> Option<Self> {
        let value = signer.verify(signed)?;
        let rest = value.strip_prefix("desktop:")?;
        let (hostname, seq) = rest.rsplit_once(':')?;
        Some(DesktopGrant {
            hostname: hostname.to_owned(),
            assignment_seq: seq.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_survives_its_cookie_and_nothing_else_does() {
        let signer = CookieSigner::new("deployment key");
        let grant = DesktopGrant {
            hostname: "lablink-vm-1".to_owned(),
            assignment_seq: 7,
        };
        let cookie = grant.cookie(&signer, true);
        assert!(cookie.http_only().unwrap_or(false));
        assert_eq!(cookie.same_site(), Some(SameSite::Strict));
        assert!(cookie.secure().unwrap_or(false));
        assert_eq!(DesktopGrant::parse(&signer, cookie.value()), Some(grant));
        let forged = signer.sign("desktop:lablink-vm-1:7").replace(":7.", ":8.");
        assert_eq!(DesktopGrant::parse(&signer, &forged), None, "altered");
        assert_eq!(
            DesktopGrant::parse(&CookieSigner::new("another key"), cookie.value()),
            None,
            "another deployment's"
        );
    }
}

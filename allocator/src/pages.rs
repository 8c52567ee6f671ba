//! The server-rendered pages: handlebars templates from `templates/`, compiled into the
//! binary and registered once at start-up. `{{…}}` output is HTML-escaped.

use handlebars::Handlebars;
use serde::Serialize;

/// The page templates, by name.
const TEMPLATES: [(&str, &str); 19] = [
    ("layout", include_str!("../../templates/layout.hbs")),
    ("index", include_str!("../../templates/index.hbs")),
    ("assigned", include_str!("../../templates/assigned.hbs")),
    ("desktop", include_str!("../../templates/desktop.hbs")),
    ("admin_nav", include_str!("../../templates/admin_nav.hbs")),
    (
        "admin_login",
        include_str!("../../templates/admin_login.hbs"),
    ),
    (
        "admin_summary",
        include_str!("../../templates/admin_summary.hbs"),
    ),
    (
        "admin_dashboard",
        include_str!("../../templates/admin_dashboard.hbs"),
    ),
    (
        "admin_operations",
        include_str!("../../templates/admin_operations.hbs"),
    ),
    (
        "admin_audit",
        include_str!("../../templates/admin_audit.hbs"),
    ),
    ("admin_logs", include_str!("../../templates/admin_logs.hbs")),
    ("admin_log", include_str!("../../templates/admin_log.hbs")),
    (
        "admin_api_tokens",
        include_str!("../../templates/admin_api_tokens.hbs"),
    ),
    (
        "admin_enrollment",
        include_str!("../../templates/admin_enrollment.hbs"),
    ),
    (
        "admin_workshops",
        include_str!("../../templates/admin_workshops.hbs"),
    ),
    (
        "admin_workshop",
        include_str!("../../templates/admin_workshop.hbs"),
    ),
    (
        "admin_participants",
        include_str!("../../templates/admin_participants.hbs"),
    ),
    (
        "admin_participants_live",
        include_str!("../../templates/admin_participants_live.hbs"),
    ),
    (
        "admin_legacy_banner",
        include_str!("../../templates/admin_legacy_banner.hbs"),
    ),
];

/// The stylesheet and script the pages use, served from the binary.
pub const STYLESHEET: &str = include_str!("../../templates/static/lablink.css");
pub const SCRIPT: &str = include_str!("../../templates/static/lablink.js");
pub const ADMIN_SCRIPT: &str = include_str!("../../templates/static/admin.js");
pub const DESKTOP_SCRIPT: &str = include_str!("../../templates/static/desktop.js");

/// The registered templates.
#[derive(Debug)]
pub struct Pages {
    registry: Handlebars<'static>,
}

impl Pages {
    /// Registers every template; fails only if a template does not parse.
    pub fn new() -> Result<Self, Box<handlebars::TemplateError>> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(false);
        crate::page_time::register(&mut registry);
        for (name, source) in TEMPLATES {
            registry
                .register_template_string(name, source)
                .map_err(Box::new)?;
        }
        Ok(Pages { registry })
    }

    /// Renders `name` with `context`.
    pub fn render(
        &self,
        name: &str,
        context: &impl Serialize,
    ) -> Result<String, handlebars::RenderError> {
        self.registry.render(name, context)
    }
}

/// How pages show a time (UTC, to the second).
pub fn display_time(at: chrono::NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The start page's context.
#[derive(Debug, Default, Serialize)]
pub struct HomePage<'a> {
    pub count: i64,
    pub error: Option<&'a str>,
    /// What the researcher typed, shown again after an error.
    pub email: &'a str,
    pub crd_command: &'a str,
    /// The rejoin code typed, shown again after an error.
    pub rejoin_code: &'a str,
    /// Open the rejoin part of the form: the email holds a VM that this browser did not
    /// claim.
    pub needs_proof: bool,
    /// The workshop this start page is for (`None`: the implicit, always-open one).
    pub workshop: Option<crate::workshop_admission::WorkshopBanner>,
    pub invite_code: &'a str,
    /// `desktop.mode` is `browser`: no Chrome Remote Desktop command is asked for.
    pub browser_desktop: bool,
}

/// The page showing the researcher's VM.
#[derive(Serialize)]
pub struct AssignedPage<'a> {
    pub hostname: &'a str,
    pub pin: &'a str,
    /// The researcher already held this VM.
    pub existing: bool,
    /// Shown with a new assignment only: lets the researcher see it again from another
    /// browser.
    pub rejoin_code: Option<&'a str>,
    /// The VM's workshop, whose warnings the page shows.
    pub workshop: Option<crate::workshop_admission::WorkshopBanner>,
    /// A warning about this session (idle, or nearly over).
    pub session_notice: Option<&'a str>,
    /// Where the session is on its way to a working desktop.
    pub journey: Option<lablink_schema::wire::JourneyView>,
    /// The journey is not over: the page follows it (by its script, or by reloading).
    pub live: bool,
    /// The VM broke: the page offers another.
    pub failed: bool,
}

impl std::fmt::Debug for AssignedPage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssignedPage")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_and_escapes_what_users_typed() {
        let pages = Pages::new().expect("templates parse");
        let html = pages
            .render(
                "index",
                &HomePage {
                    count: 3,
                    error: Some("<b>bad</b>"),
                    email: "\"><script>alert(1)</script>",
                    crd_command: "</textarea><script>",
                    rejoin_code: "\"><i>",
                    needs_proof: true,
                    workshop: Some(crate::workshop_admission::WorkshopBanner {
                        id: 7,
                        name: "<i>SLEAP</i>".to_owned(),
                        status: "Opens at 09:00".to_owned(),
                        open: false,
                        needs_invite: true,
                        notice: None,
                        zone: None,
                        offset_secs: 0,
                    }),
                    invite_code: "\"><u>",
                    browser_desktop: false,
                },
            )
            .expect("index");
        assert!(html.contains(r#"<strong id="unassigned_vms_count">3</strong>"#));
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("</textarea><script>"), "{html}");
        assert!(html.contains("&lt;b&gt;bad&lt;/b&gt;"));
        assert!(html.contains("&lt;i&gt;SLEAP&lt;/i&gt;"), "{html}");
        assert!(html.contains(r#"name="invite_code""#) && !html.contains("\"><u>"));
        let html = pages
            .render(
                "assigned",
                &AssignedPage {
                    hostname: "vm-1",
                    pin: "012345",
                    rejoin_code: Some("ABCDE-12345"),
                    existing: false,
                    workshop: None,
                    session_notice: None,
                    journey: None,
                    live: false,
                    failed: false,
                },
            )
            .expect("assigned");
        assert!(html.contains(r#"<strong id="pin" class="pin">012345</strong>"#));
        assert!(html.contains("vm-1"));
    }
}

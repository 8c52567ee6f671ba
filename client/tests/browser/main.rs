//! The web pages in a real browser (headless Chromium through WebDriver), against a whole lab:
//! an allocator with the local provider, whose VMs are real agents. Each test saves
//! screenshots of the pages it visits at phone and desktop widths (see `driver.rs` for where);
//! the guides in docs/ show the current ones.

mod admin;
mod desktop;
mod driver;
mod journey;
mod newcomer_path;
mod pages;
mod researcher;
mod workshops;

#[path = "../support/lab.rs"]
mod lab;
#[path = "../support/vnc_desktop.rs"]
mod vnc_desktop;

/// A genuine-looking Chrome Remote Desktop command with a code derived from `seed`.
pub fn crd_command(seed: &str) -> String {
    format!(
        "DISPLAY= /opt/google/chrome-remote-desktop/start-host --code=\"4/0AVG7fiQ{seed}xxxxxxxx\" \
         --redirect-url=\"https://remotedesktop.google.com/_/oauthredirect\" --name=$(hostname)"
    )
}

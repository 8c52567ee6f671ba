//! The rows of the admin's instances table, written straight into a string. With a thousand
//! VMs the handlebars interpreter spent most of the dashboard's time on these rows (a JSON
//! value per row, a lookup per field); writing them directly costs a fraction of that. The
//! dashboard template places the result with `{{{instance_rows}}}`, and the live refresh
//! (`GET /admin/instances/rows`) answers it as is. Every value from the database is
//! HTML-escaped exactly as the templates escape.

use std::fmt::Write;

use handlebars::html_escape;
use lablink_schema::vms::Vm;
use lablink_schema::wire::LifecycleState;

/// About how many bytes one row takes, to size the string once.
const ROW_BYTES: usize = 900;

/// The `<tr>`s for `vms`, or one row saying there are none. `can_reboot`: whether VMs can
/// be rebooted (the cloud's API is on, or the provider is local); `can_take_over`: whether
/// an admin may take a free VM over for a browser desktop (`desktop.mode: browser`).
pub fn instance_rows(vms: &[Vm], can_reboot: bool, can_take_over: bool) -> String {
    if vms.is_empty() {
        return "          <tr><td colspan=\"8\">No VMs yet. Create some above.</td></tr>\n"
            .to_owned();
    }
    let mut html = String::with_capacity(vms.len() * ROW_BYTES);
    for vm in vms {
        write_row(&mut html, vm, can_reboot, can_take_over);
    }
    html
}

fn write_row(html: &mut String, vm: &Vm, can_reboot: bool, can_take_over: bool) {
    let hostname = html_escape(&vm.hostname);
    let state = vm.state();
    let reason = html_escape(&vm.state_reason);
    let since = crate::pages::display_time(vm.state_since);
    let next = vm
        .next_action
        .as_deref()
        .map(|next| format!("<br><small>next: {}</small>", html_escape(next)))
        .unwrap_or_default();
    let user = vm.user_email.as_deref().map(html_escape);
    let gpu = vm.gpu_health.as_deref().map(html_escape);
    let heartbeat = vm.last_heartbeat_at.map(crate::pages::display_time);
    // Writing to a String cannot fail.
    let _ = write!(
        html,
        "          <tr id=\"vm-{hostname}\">\n\
         \x20           <td><input type=\"checkbox\" name=\"hostname\" value=\"{hostname}\" aria-label=\"Select {hostname}\"></td>\n\
         \x20           <td>{hostname}</td>\n\
         \x20           <td><span class=\"status status-{state}\">{state}</span><br><small>{reason}, since {since}</small>{next}</td>\n\
         \x20           <td>{user}</td>\n\
         \x20           <td>{in_use}</td>\n\
         \x20           <td>{gpu}</td>\n\
         \x20           <td>{heartbeat}</td>\n\
         \x20           <td class=\"actions\">\n",
        user = user.as_deref().unwrap_or("—"),
        in_use = if vm.in_use { "yes" } else { "no" },
        gpu = gpu.as_deref().unwrap_or("not reported"),
        heartbeat = heartbeat.as_deref().unwrap_or("never"),
    );
    html.push_str("              ");
    if user.is_some() {
        let _ = write!(
            html,
            "<button type=\"submit\" class=\"small\" formaction=\"/admin/vms/{hostname}/release\">Release</button>"
        );
    }
    if user.is_none() && can_take_over && vm.is_free() {
        let _ = write!(
            html,
            "<button type=\"submit\" class=\"small\" formaction=\"/admin/vms/{hostname}/take-over\" formtarget=\"_blank\">Take over</button>"
        );
    }
    html.push('\n');
    html.push_str("              ");
    let leaving = matches!(state, LifecycleState::Replacing | LifecycleState::Destroyed);
    if can_reboot && !leaving {
        let _ = write!(
            html,
            "<button type=\"submit\" class=\"small\" formaction=\"/admin/vms/{hostname}/reboot\">Reboot</button>"
        );
    }
    if !leaving {
        let _ = write!(
            html,
            "<button type=\"submit\" class=\"small\" formaction=\"/admin/vms/{hostname}/replace\">Replace</button>"
        );
    }
    if state == LifecycleState::Quarantined {
        let _ = write!(
            html,
            "<button type=\"submit\" class=\"small\" formaction=\"/admin/vms/{hostname}/clear-quarantine\">Clear quarantine</button>"
        );
    }
    html.push('\n');
    // A browser-desktop session (its assignment carries no CRD command) can be viewed.
    if user.is_some() && vm.crd_command.as_deref() == Some("") {
        let _ = writeln!(
            html,
            "              <a href=\"/admin/vms/{hostname}/desktop\" target=\"_blank\" rel=\"noopener\">View desktop</a>"
        );
    }
    let _ = write!(
        html,
        "              <a href=\"/admin/logs/{hostname}\">Logs</a>\n\
         \x20           </td>\n\
         \x20         </tr>\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn vm(hostname: &str, email: Option<&str>) -> Vm {
        let at = NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|d| d.and_hms_opt(12, 0, 5))
            .expect("date");
        Vm {
            hostname: hostname.to_owned(),
            status: "running".to_owned(),
            user_email: email.map(str::to_owned),
            crd_command: email.map(|_| "secret command".to_owned()),
            pin: email.map(|_| "123456".to_owned()),
            assignment_seq: 1,
            in_use: email.is_some(),
            gpu_health: Some("Healthy".to_owned()),
            token_hash: Some("hash".to_owned()),
            assigned_at: email.map(|_| at),
            last_heartbeat_at: Some(at),
            created_at: at,
            updated_at: at,
            claimed_by: None,
            state: if email.is_some() { "in_use" } else { "ready" }.to_owned(),
            state_reason: "the research software runs".to_owned(),
            state_since: at,
            recovery_attempts: 0,
            next_action: None,
            workshop_id: None,
            last_active_at: None,
            session_notice: None,
            reserved_until: None,
            replace_not_before: None,
        }
    }

    #[test]
    fn rows_show_each_vm_and_escape_what_they_show() {
        let vms = [
            vm("lab-vm-1", Some("<script>alert(1)</script>@example.org")),
            vm("lab-vm-2", None),
        ];
        let html = instance_rows(&vms, false, false);
        assert_eq!(html.matches("<tr id=\"vm-").count(), 2);
        assert!(
            html.contains("<tr id=\"vm-lab-vm-2\">"),
            "a row the participants view links to"
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;@example.org"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("<td>2026-11-30 12:00:05</td>"));
        assert!(html.contains("<span class=\"status status-ready\">ready</span>"));
        assert!(html.contains("the research software runs, since 2026-11-30 12:00:05"));
        assert!(
            !html.contains("secret command") && !html.contains("123456"),
            "no command or PIN on the page"
        );
        // Only the assigned VM can be released; nothing can be rebooted without a way to.
        assert_eq!(html.matches("/release\"").count(), 1);
        assert!(html.contains("formaction=\"/admin/vms/lab-vm-1/release\""));
        assert!(!html.contains("Reboot"));
        assert!(html.contains("<td>—</td>"), "a free VM shows no user");
    }

    #[test]
    fn with_the_cloud_every_vm_can_be_rebooted() {
        let html = instance_rows(&[vm("a", None), vm("b", None)], true, false);
        assert_eq!(html.matches(">Reboot</button>").count(), 2);
    }

    #[test]
    fn no_vms_is_said_in_one_row() {
        assert!(instance_rows(&[], true, false).contains("No VMs yet"));
    }

    #[test]
    fn unreported_fields_say_so() {
        let mut quiet = vm("c", None);
        quiet.gpu_health = None;
        quiet.last_heartbeat_at = None;
        let html = instance_rows(&[quiet], false, false);
        assert!(html.contains("<td>not reported</td>") && html.contains("<td>never</td>"));
    }
}

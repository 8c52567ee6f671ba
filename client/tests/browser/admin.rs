//! The admin's pages: sign-in, creating VMs and watching them come up, live logs, release,
//! destroy, the audit trail, and signing out.

use serde_json::json;

use crate::crd_command;
use crate::driver::Browser;
use crate::lab::{Lab, ADMIN_PASSWORD};

pub(crate) async fn sign_in(browser: &Browser, lab: &Lab, password: &str) {
    browser.goto(&lab.url("/admin/login")).await;
    browser.fill("#user", "admin").await;
    browser.fill("#password", password).await;
    browser.click_and_load("form button[type=submit]").await;
}

/// The row of `hostname` in the instances table, as text.
fn row_text(hostname: &str) -> String {
    format!(
        "Array.from(document.querySelectorAll('#instance_rows tr'))\
         .map(r => r.innerText).find(t => t.includes('{hostname}')) || ''"
    )
}

#[actix_web::test]
async fn an_admin_runs_a_lab_from_the_dashboard() {
    let lab = Lab::start("lablink-vm-admin").await;
    let browser = Browser::start().await;

    // The dashboard is closed to strangers; a wrong password is refused.
    browser.goto(&lab.url("/admin")).await;
    browser.wait_for_path("/admin/login").await;
    browser.screenshots("admin-login").await;
    sign_in(&browser, &lab, "not the password").await;
    let error = browser.text("#error").await;
    assert!(error.contains("Wrong user name or password"), "{error}");
    browser.wait_for_path("/admin/login").await;
    browser.screenshots("admin-login-refused").await;

    sign_in(&browser, &lab, ADMIN_PASSWORD).await;
    browser.wait_for_path("/admin").await;
    assert!(browser.text("#instance_rows").await.contains("No VMs yet"));

    // Create 2: the operation's page follows Terraform's (here: the agents') progress.
    browser.fill("#count", "2").await;
    browser
        .click_and_load("form[action='/admin/vms/create'] button")
        .await;
    browser.wait_for_path("/admin/operations").await;
    browser
        .wait_until(
            "the creation succeeded",
            "Array.from(document.querySelectorAll('.status')).some(s => s.textContent === 'succeeded')",
        )
        .await;
    browser.screenshots("admin-operations").await;

    // The instances page shows them turn ready without a reload.
    browser.click_and_load("nav a[href='/admin']").await;
    browser.mark_page().await;
    for n in [1, 2] {
        let row = row_text(&format!("lablink-vm-admin-{n}"));
        browser
            .wait_until(
                &format!("VM {n} is running with its GPU reported"),
                &format!("({row}).includes('running') && ({row}).includes('N/A')"),
            )
            .await;
    }
    assert!(browser.still_marked().await, "the page was reloaded");

    // A researcher takes VM 1; the dashboard shows who, by itself.
    let page = lab
        .client
        .post(lab.url("/api/request_vm"))
        .form(&[
            ("email", "ada@example.org"),
            ("crd_command", &crd_command("ada")),
        ])
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("page");
    assert!(page.contains("lablink-vm-admin-1"), "{page}");
    let row_1 = row_text("lablink-vm-admin-1");
    browser
        .wait_until(
            "VM 1 shows its researcher",
            &format!("({row_1}).includes('ada@example.org')"),
        )
        .await;
    browser
        .wait_until(
            "the summary counts the assignment",
            "document.querySelector('#instance_summary').textContent.includes('1 free · 1 assigned')",
        )
        .await;
    assert!(browser.still_marked().await, "the page was reloaded");
    browser.screenshots("admin-instances").await;

    // Its logs: new lines appear while the page is open.
    browser
        .click_and_load("#instance_rows a[href='/admin/logs/lablink-vm-admin-1']")
        .await;
    browser
        .wait_for_path("/admin/logs/lablink-vm-admin-1")
        .await;
    browser.mark_page().await;
    let sent = lab
        .admin_post(
            "/api/vm-logs",
            json!({
                "log_group": "lablink",
                "log_stream": "lablink-vm-admin-1",
                "messages": ["sleap-label started", "training epoch 1/10"],
            }),
        )
        .await;
    assert!(sent.status().is_success(), "{}", sent.status());
    browser
        .wait_until(
            "the new lines appear",
            "document.querySelector('#log').textContent.includes('training epoch 1/10')",
        )
        .await;
    assert!(browser.still_marked().await, "the page was reloaded");
    // The VM's own agent shipped its log: its start is there, under the newer lines.
    browser
        .wait_until(
            "the agent's own shipped lines are shown, newest first",
            "(function () { var t = document.querySelector('#log').textContent; \
             var started = t.indexOf('INFO lablink_client::agent: agent started'); \
             return started >= 0 && t.indexOf('training epoch 1/10') < started; })()",
        )
        .await;
    // A program writing to the research software's log: its output is shipped and shown
    // on top as it arrives.
    let software_log = lab
        .data_dir
        .path()
        .join("agents/lablink-vm-admin-1.session/software.log");
    let status = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "for i in 1 2 3; do echo \"sleap-train: epoch $i of 3\"; done >> '{}'",
                software_log.display()
            ),
        ])
        .status()
        .expect("run the program");
    assert!(status.success());
    browser
        .wait_until(
            "the program's output appears on top",
            "(function () { var t = document.querySelector('#log').textContent; \
             var last = t.indexOf('sleap-train: epoch 3 of 3'); \
             return last >= 0 && last < t.indexOf('sleap-train: epoch 1 of 3') \
               && last < t.indexOf('training epoch 1/10'); })()",
        )
        .await;
    browser.screenshots("admin-logs").await;

    // Release VM 1, then destroy VM 2.
    browser.click_and_load("nav a[href='/admin']").await;
    browser
        .click_and_load("button[formaction='/admin/vms/lablink-vm-admin-1/release']")
        .await;
    assert!(
        browser.text("[role=status]").await.contains("released"),
        "{}",
        browser.text("main").await
    );
    lab.until_logged("lablink-vm-admin-1", "session would end now", 1)
        .await;
    browser
        .wait_until(
            "VM 1 is free again",
            &format!("!({row_1}).includes('ada@example.org') && ({row_1}).includes('running')"),
        )
        .await;
    browser
        .click("input[type=checkbox][value='lablink-vm-admin-2']")
        .await;
    browser
        .click_and_load("form[action='/admin/vms/destroy'] button.danger:not([formaction])")
        .await;
    browser.wait_for_path("/admin/operations").await;
    browser
        .wait_until(
            "the destruction succeeded",
            "document.querySelectorAll('.status-succeeded').length >= 2",
        )
        .await;
    browser.click_and_load("nav a[href='/admin']").await;
    let rows = browser.text("#instance_rows").await;
    assert!(rows.contains("lablink-vm-admin-1"), "{rows}");
    assert!(!rows.contains("lablink-vm-admin-2"), "{rows}");

    // Both actions are on the audit page.
    browser.click_and_load("nav a[href='/admin/audit']").await;
    let audit = browser.text("table").await;
    assert!(
        audit
            .lines()
            .any(|l| l.contains("release") && l.contains("lablink-vm-admin-1")),
        "{audit}"
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains("destroy") && l.contains("lablink-vm-admin-2")),
        "{audit}"
    );
    browser.screenshots("admin-audit").await;

    // Signing out closes the dashboard.
    browser.click_and_load("nav form button").await;
    browser.wait_for_path("/admin/login").await;
    browser.goto(&lab.url("/admin")).await;
    browser.wait_for_path("/admin/login").await;
    browser.goto(&lab.url("/admin/audit")).await;
    browser.wait_for_path("/admin/login").await;
    browser.quit().await;
}

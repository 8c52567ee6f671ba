//! The participant's journey in the browser, with a real agent: a workshop warms up a VM
//! through the local provider, a participant claims it, and their page ticks off each step
//! as it happens without a reload — the agent receives the command, its desktop launcher (in
//! log mode, standing in for Chrome Remote Desktop) starts the host, and a real process
//! standing in for the research software runs. The instructor's view shows the same.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::json;

use crate::crd_command;
use crate::driver::Browser;
use crate::lab::{Lab, ADMIN_PASSWORD};
use crate::pages::check_page;

/// The stand-in research software's program name, matched by this lab's agents only.
const STAND_IN: &str = "lablink-journey-stand-in";

fn step_done(step: &str) -> String {
    format!("document.querySelector('[data-step=\"{step}\"]').classList.contains('done')")
}

#[actix_web::test]
async fn a_participants_page_follows_every_step_and_the_instructor_sees_it() {
    let lab = Lab::start_with("lablink-vm-path", |config| {
        config.provider.local.software_pattern = Some(format!("^{STAND_IN}$"));
        config.workshops.boot_estimate_secs = 3.0;
        config.workshops.warmup_batch_size = 1;
    })
    .await;
    let at = |secs: i64| {
        (Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    let created: serde_json::Value = lab
        .admin_post(
            "/api/admin/workshops",
            json!({
                "name": "Pose tracking, day 1",
                "starts_at": at(4),
                "ends_at": at(3600),
                "headcount": 1,
                "spare_vms": 0,
                "warmup_lead_secs": 60,
            }),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_i64().expect("id");
    // The warm-up makes the workshop's VM; it is handed out once the workshop opens.
    lab.until("the workshop's VM is ready", |vms| {
        vms.iter()
            .any(|vm| vm.workshop_id == Some(id) && crate::lab::ready(vm))
    })
    .await;

    let browser = Browser::start().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        browser.goto(&lab.url(&format!("/w/{id}"))).await;
        browser.fill("#email", "ada@lab.example").await;
        browser.fill("#crd_command", &crd_command("journey")).await;
        browser.click_and_load("form button[type=submit]").await;
        let assigned = browser.eval("!!document.querySelector('#journey')").await;
        if browser.path().await == "/api/request_vm" && assigned == true {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never got a VM");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    browser.mark_page().await;
    let hostname = browser.text("#hostname").await;
    browser
        .wait_until(
            "the VM received the command",
            &step_done("command_received"),
        )
        .await;
    browser
        .wait_until("the remote desktop is up", &step_done("desktop_up"))
        .await;
    assert!(
        browser.text("#journey_next").await.contains(&hostname),
        "the page says where to connect"
    );
    browser.screenshots("researcher-journey").await;

    // The research software starts on the VM (a copy of `sleep` under its name).
    let dir = tempfile::tempdir().expect("temp dir");
    let program = dir.path().join(STAND_IN);
    std::fs::copy("/bin/sleep", &program).expect("copy sleep");
    let mut tries = 0;
    let mut software = loop {
        match std::process::Command::new(&program).arg("60").spawn() {
            Ok(child) => break child,
            // A copy just written can be briefly busy while another test's fork holds it.
            Err(err) if err.raw_os_error() == Some(26) && tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("start the stand-in software: {err}"),
        }
    };
    browser
        .wait_until("the software runs", &step_done("ready"))
        .await;
    assert!(browser.still_marked().await, "the page was reloaded");
    assert!(browser.text("#journey_next").await.contains("all set"));
    browser.screenshots("researcher-ready").await;
    check_page(&browser, &lab, "/session").await;

    // The instructor's view.
    browser.goto(&lab.url("/admin/login")).await;
    browser.fill("#user", "admin").await;
    browser.fill("#password", ADMIN_PASSWORD).await;
    browser.click_and_load("form button[type=submit]").await;
    let path = format!("/admin/workshops/{id}/participants");
    browser.goto(&lab.url(&path)).await;
    let row = browser.text("#participant_rows").await;
    assert!(
        row.contains("ada@lab.example") && row.contains("software running"),
        "{row}"
    );
    assert_eq!(
        browser
            .eval("document.querySelector('#funnel [data-step=\"ready\"] .count').textContent")
            .await,
        "1"
    );
    browser.screenshots("admin-participants").await;
    check_page(&browser, &lab, &path).await;
    let _ = software.kill();
    let _ = software.wait();
    browser.quit().await;
}

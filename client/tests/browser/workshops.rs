//! The workshop pages in the browser: an admin plans a workshop on the Workshops page, its
//! page shows the plan as a timeline, and a participant's start page names the workshop and
//! says when it opens. Every one of these pages passes the same checks as the others.

use chrono::Utc;

use crate::driver::Browser;
use crate::lab::{Lab, ADMIN_PASSWORD};
use crate::pages::check_page;

#[actix_web::test]
async fn an_admin_plans_a_workshop_and_its_participants_see_when_it_opens() {
    let lab = Lab::start("lablink-vm-plan").await;
    let browser = Browser::start().await;
    browser.goto(&lab.url("/admin/login")).await;
    browser.fill("#user", "admin").await;
    browser.fill("#password", ADMIN_PASSWORD).await;
    browser.click_and_load("form button[type=submit]").await;

    browser
        .click_and_load("nav a[href='/admin/workshops']")
        .await;
    assert!(browser
        .text("#workshops")
        .await
        .contains("No workshops yet"));
    let local = |hours: i64| {
        (Utc::now() + chrono::Duration::hours(hours))
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    browser.fill("#name", "SLEAP workshop").await;
    // Date pickers take their value from a script more reliably than from typing.
    browser
        .eval(&format!(
            "(document.querySelector('#starts_at').value = '{}', \
             document.querySelector('#ends_at').value = '{}', true)",
            local(24),
            local(32)
        ))
        .await;
    browser.fill("#time_zone", "UTC").await;
    browser.fill("#headcount", "12").await;
    browser
        .eval("(document.querySelector('#admission').value = 'roster', true)")
        .await;
    browser
        .fill("#roster", "ada@lab.example\ngrace@lab.example\n")
        .await;
    browser.screenshots("admin-workshops").await;
    browser
        .click_and_load("form#new_workshop button[type=submit]")
        .await;
    let path = browser.path().await;
    assert!(path.starts_with("/admin/workshops/"), "{path}");
    assert_eq!(browser.text("#workshop_state").await, "scheduled");
    // Times as people write them, in the workshop's zone; never raw RFC 3339.
    let shown = browser.text("main").await;
    let starts = (Utc::now() + chrono::Duration::hours(24))
        .format("%a %-d %b, %H:%M (UTC)")
        .to_string();
    assert!(shown.contains(&format!("From {starts}")), "{shown}");
    assert!(shown.contains("so all should be ready by "), "{shown}");
    for raw in ["+00:00", ":00Z", "T0", "T1", "T2"] {
        assert!(
            !shown.contains(raw),
            "a raw time ({raw}) on the page: {shown}"
        );
    }
    let timeline = browser.text("#timeline").await;
    for step in ["warm_up", "open", "warning", "end", "teardown"] {
        assert!(timeline.contains(step), "{step} in {timeline}");
    }
    browser.screenshots("admin-workshop").await;
    check_page(&browser, &lab, &path).await;
    check_page(&browser, &lab, "/admin/workshops").await;

    // The participant's link.
    let id = path.trim_start_matches("/admin/workshops/").to_owned();
    browser.goto(&lab.url(&format!("/w/{id}"))).await;
    assert_eq!(browser.text("#workshop_name").await, "SLEAP workshop");
    assert!(browser
        .text("#workshop_status")
        .await
        .starts_with("Opens at"));
    browser.screenshots("researcher-workshop").await;
    check_page(&browser, &lab, &format!("/w/{id}")).await;
    browser.quit().await;
}

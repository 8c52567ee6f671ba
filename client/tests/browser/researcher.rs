//! The researcher's page: the live count, mistakes explained with the form kept, a VM with
//! its PIN, and what happens when none is free.

use crate::crd_command;
use crate::driver::Browser;
use crate::lab::Lab;

const COUNT: &str = "#unassigned_vms_count";

async fn fill_form(browser: &Browser, email: &str, command: &str) {
    browser.fill("#email", email).await;
    browser.fill("#crd_command", command).await;
}

async fn submit(browser: &Browser, email: &str, command: &str) {
    fill_form(browser, email, command).await;
    browser.click_and_load("form button[type=submit]").await;
}

#[actix_web::test]
async fn a_researcher_sees_the_count_move_mistakes_explained_and_gets_a_vm() {
    let lab = Lab::start("lablink-vm-web").await;
    let browser = Browser::start().await;

    // No VM yet; two come up while the page is open, and the count follows without a reload.
    browser.goto(&lab.url("/")).await;
    assert_eq!(browser.text(COUNT).await, "0");
    browser.mark_page().await;
    lab.create_ready_vms(2).await;
    browser
        .wait_until(
            "the count shows 2",
            "document.querySelector('#unassigned_vms_count').textContent === '2'",
        )
        .await;
    assert!(browser.still_marked().await, "the page was reloaded");
    browser.screenshots("researcher-start").await;

    // The browser itself refuses what is not an email at all.
    fill_form(&browser, "not-an-email", &crd_command("ada")).await;
    browser.click("form button[type=submit]").await;
    assert_eq!(browser.path().await, "/", "the form was not sent");
    assert_eq!(
        browser
            .eval("document.querySelector('#email').validity.valid")
            .await,
        false
    );

    // The allocator explains an address it cannot use, keeping what was typed.
    submit(&browser, "ada@localhost", &crd_command("ada")).await;
    assert!(
        browser.text("#error").await.contains("email address"),
        "{}",
        browser.text("#error").await
    );
    assert_eq!(browser.value("#email").await, "ada@localhost");
    assert_eq!(browser.value("#crd_command").await, crd_command("ada"));

    // A command that is not the Chrome Remote Desktop one.
    submit(&browser, "ada@example.org", "sudo rm -rf /").await;
    let error = browser.text("#error").await;
    assert!(error.contains("Chrome Remote Desktop"), "{error}");
    assert_eq!(browser.value("#email").await, "ada@example.org");
    assert_eq!(browser.value("#crd_command").await, "sudo rm -rf /");
    browser.screenshots("researcher-error").await;

    // The real thing: a VM and its PIN.
    submit(&browser, "ada@example.org", &crd_command("ada")).await;
    let hostname = browser.text("#hostname").await;
    assert!(hostname.starts_with("lablink-vm-web-"), "{hostname}");
    let pin = browser.text("#pin").await;
    assert!(
        pin.len() == 6 && pin.chars().all(|c| c.is_ascii_digit()),
        "{pin}"
    );
    browser.screenshots("researcher-assigned").await;
    lab.until_logged(&hostname, "Chrome Remote Desktop would start now", 1)
        .await;

    // Back on the start page, someone else takes the last VM: the count drops by itself.
    browser.goto(&lab.url("/")).await;
    assert_eq!(browser.text(COUNT).await, "1");
    browser.mark_page().await;
    let taken = lab
        .client
        .post(lab.url("/api/request_vm"))
        .form(&[
            ("email", "grace@example.org"),
            ("crd_command", &crd_command("grace")),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(taken.status(), 200);
    browser
        .wait_until(
            "the count shows 0",
            "document.querySelector('#unassigned_vms_count').textContent === '0'",
        )
        .await;
    assert!(browser.still_marked().await, "the page was reloaded");

    // With nothing free, asking says so.
    submit(&browser, "alan@example.org", &crd_command("alan")).await;
    let error = browser.text("#error").await;
    assert!(error.contains("No VM is free right now"), "{error}");
    assert_eq!(browser.value("#email").await, "alan@example.org");
    browser.screenshots("researcher-none-free").await;

    // Asking again with the same email shows the same VM.
    browser.goto(&lab.url("/")).await;
    submit(&browser, "ada@example.org", &crd_command("ada2")).await;
    assert_eq!(browser.text("#hostname").await, hostname);
    assert!(browser.text("h1").await.contains("already have"));
    browser.quit().await;
}

#[actix_web::test]
async fn without_javascript_a_researcher_still_gets_a_vm() {
    let lab = Lab::start("lablink-vm-nojs").await;
    lab.create_ready_vms(1).await;
    let browser = Browser::without_javascript().await;
    browser.goto(&lab.url("/")).await;
    assert!(browser.scripts_are_off().await, "scripts still run");
    assert_eq!(browser.text(COUNT).await, "1");
    submit(&browser, "ada@example.org", &crd_command("ada")).await;
    assert_eq!(browser.text("#hostname").await, "lablink-vm-nojs-1");
    browser.quit().await;
}

//! The browser desktop in a real browser: a participant gives only an email and the VM's
//! desktop opens in the page, through the allocator and the agent's tunnel, from a real VNC
//! server (x11vnc on Xvfb). The canvas shows the X display's own pixels, keys typed in the
//! browser reach an X client on the display, and a release ends the page's session.

use std::time::Duration;

use lablink_allocator::config::DesktopMode;

use crate::driver::Browser;
use crate::lab::{Lab, ADMIN_PASSWORD};
use crate::vnc_desktop::{VncDesktop, ROOT_RGB};

/// The canvas pixel at (`x`, `y`) as `[r, g, b]`, or `null` before noVNC drew anything.
fn canvas_pixel(x: u32, y: u32) -> String {
    format!(
        "(() => {{ const c = document.querySelector('#desktop_screen canvas'); \
         if (!c || c.width < {x} + 1) return null; \
         return Array.from(c.getContext('2d').getImageData({x}, {y}, 1, 1).data).slice(0, 3); }})()"
    )
}

#[actix_web::test]
async fn the_vms_desktop_opens_in_the_page_and_takes_the_keyboard() {
    let mut desktop = VncDesktop::start();
    let addr = desktop.addr.to_string();
    let lab = Lab::start_with("lablink-desktop", move |config| {
        config.desktop.mode = DesktopMode::Browser;
        config.provider.local.vnc_addr = Some(addr);
    })
    .await;
    let vm = lab.create_ready_vms(1).await.remove(0);
    lab.until_logged(&vm.hostname, "desktop tunnel up", 1).await;

    let browser = Browser::start().await;
    browser.goto(&lab.url("/")).await;
    assert_eq!(
        browser
            .eval("document.querySelector('#crd_command') === null")
            .await,
        true,
        "no Chrome Remote Desktop command is asked for"
    );
    browser.screenshots("researcher-browser-start").await;
    browser.fill("#email", "grace@lab.example").await;
    browser.click_and_load("form button[type=submit]").await;
    browser.wait_for_path("/desktop").await;
    browser
        .wait_until(
            "the desktop connected",
            "document.body.dataset.desktop === 'connected'",
        )
        .await;
    let [r, g, b] = ROOT_RGB;
    browser
        .wait_until(
            "the canvas shows the display's root window",
            &format!(
                "JSON.stringify({}) === '[{r},{g},{b}]'",
                canvas_pixel(40, 40)
            ),
        )
        .await;
    browser.screenshots("researcher-browser-desktop").await;

    // Keys typed in the page reach an X client on the VM's display.
    let keys_log = lab.data_dir.path().join("xev.log");
    desktop.run_logged("xev", &["-geometry", "1024x768+0+0"], &keys_log);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let canvas = browser.find("#desktop_screen canvas").await;
    canvas.click().await.expect("focus the desktop");
    canvas.send_keys("lab").await.expect("type");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let seen = std::fs::read_to_string(&keys_log).unwrap_or_default();
        if ["l", "a", "b"]
            .iter()
            .all(|key| seen.contains(&format!(", {key}), same_screen")))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the X client never saw the keys typed; it logged:\n{}",
            seen.lines()
                .filter(|l| l.contains("keysym"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An instructor views the desktop from the dashboard: the same pixels, no input, the
    // participant told, the view audited.
    let instructor = Browser::start().await;
    crate::admin::sign_in(&instructor, &lab, ADMIN_PASSWORD).await;
    instructor.goto(&lab.url("/admin")).await;
    let link = format!("#vm-{} a[href$='/desktop']", vm.hostname);
    let href = instructor
        .eval(&format!(
            "document.querySelector(\"{link}\").getAttribute('href')"
        ))
        .await;
    assert_eq!(href, format!("/admin/vms/{}/desktop", vm.hostname));
    instructor
        .goto(&lab.url(&format!("/admin/vms/{}/desktop", vm.hostname)))
        .await;
    instructor
        .wait_until(
            "the instructor's view connected",
            "document.body.dataset.desktop === 'connected'",
        )
        .await;
    // The X client covers the root window now: both see the same pixels as each other.
    let participant_sees = browser
        .eval(&format!("JSON.stringify({})", canvas_pixel(40, 40)))
        .await;
    assert_ne!(
        participant_sees,
        serde_json::Value::String("null".to_owned())
    );
    instructor
        .wait_until(
            "the instructor sees the participant's desktop",
            &format!(
                "JSON.stringify({}) === {participant_sees}",
                canvas_pixel(40, 40)
            ),
        )
        .await;
    instructor.screenshots("admin-desktop-peek").await;
    browser
        .wait_until(
            "the participant is told an instructor is viewing",
            "document.getElementById('desktop_watched').hidden === false",
        )
        .await;
    browser.screenshots("researcher-browser-watched").await;
    let peek_canvas = instructor.find("#desktop_screen canvas").await;
    peek_canvas.click().await.expect("click the view");
    peek_canvas.send_keys("zq").await.expect("type in the view");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = std::fs::read_to_string(&keys_log).unwrap_or_default();
    for key in ["z", "q"] {
        assert!(
            !seen.contains(&format!(", {key}), same_screen")),
            "a key typed in the instructor's view reached the VM: {key}"
        );
    }
    let audited: i64 = {
        use diesel::prelude::*;
        use lablink_schema::schema::audit_events;
        let mut conn = lab.database.connect();
        audit_events::table
            .filter(audit_events::action.eq("vm.desktop.peek"))
            .filter(audit_events::target.eq(&vm.hostname))
            .count()
            .get_result(&mut conn)
            .expect("audit")
    };
    assert!(audited >= 1, "the view is audited");
    instructor.quit().await;
    browser
        .wait_until(
            "the participant's note goes once the instructor left",
            "document.getElementById('desktop_watched').hidden === true",
        )
        .await;

    // The agent restarted mid-session (the local provider's reboot restarts its process):
    // the page says the VM is away, and connects again by itself once the agent is back.
    let rebooted = lab
        .admin_post(
            &format!("/api/admin/vms/{}/reboot", vm.hostname),
            serde_json::json!({}),
        )
        .await;
    assert!(
        rebooted.status().is_success(),
        "{:?}",
        rebooted.text().await
    );
    browser
        .wait_until(
            "the page noticed the agent went away",
            "document.body.dataset.desktop !== 'connected'",
        )
        .await;
    browser
        .wait_until(
            "the page connected again",
            "document.body.dataset.desktop === 'connected' && document.body.dataset.connections === '2'",
        )
        .await;
    browser
        .wait_until(
            "the canvas shows the display again",
            &format!("JSON.stringify({}) !== null", canvas_pixel(40, 40)),
        )
        .await;

    // A release ends the session: the page says so and stops connecting.
    lab.release(&vm.hostname).await;
    browser
        .wait_until(
            "the page says the session ended",
            "document.body.dataset.desktop === 'ended'",
        )
        .await;
    assert!(browser.text("#desktop_status").await.contains("ended"));
    browser.screenshots("researcher-browser-ended").await;
    browser.quit().await;
}

//! What every page must be, checked in the browser: nothing fetched from anywhere but the
//! allocator, under 100 KB, fields with labels, readable contrast, and usable with the
//! keyboard alone; and the admin pages without JavaScript.

use serde_json::Value;

use crate::crd_command;
use crate::driver::Browser;
use crate::lab::{Lab, ADMIN_PASSWORD};

/// The most a page may weigh, HTML, styles and scripts together.
const MAX_PAGE_BYTES: u64 = 100 * 1024;

/// Looks at the page as loaded and reports what breaks the rules. Contrast follows WCAG 2:
/// 4.5:1 for text, 3:1 for large text (24 px, or 18.66 px bold).
const AUDIT: &str = r#"
(() => {
  const origin = location.origin;
  const entries = performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'));
  const foreign = entries.map(e => e.name).filter(n => !n.startsWith(origin));
  const bytes = entries.reduce((sum, e) => sum + (e.decodedBodySize || 0), 0);
  const fields = Array.from(document.querySelectorAll('input, textarea, select'))
    .filter(f => f.type !== 'hidden');
  const unlabeled = fields.filter(f => f.labels.length === 0 && !f.getAttribute('aria-label'))
    .map(f => f.outerHTML);
  const unnamedButtons = Array.from(document.querySelectorAll('button'))
    .filter(b => !b.textContent.trim() && !b.getAttribute('aria-label')).map(b => b.outerHTML);
  const rgb = c => (c.match(/[\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) { return c.slice(0, 3); }
    }
    return [255, 255, 255];
  };
  const lowContrast = [];
  for (const el of document.querySelectorAll('body *')) {
    const text = Array.from(el.childNodes).filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
    if (!text || el.closest('.visually-hidden') || el.offsetParent === null) { continue; }
    const style = getComputedStyle(el);
    const fg = rgb(style.color).slice(0, 3);
    const [l1, l2] = [luminance(fg), luminance(background(el))].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) { lowContrast.push(text.slice(0, 40) + ' ' + ratio.toFixed(2)); }
  }
  return {
    foreign, bytes, unlabeled, unnamedButtons, lowContrast,
    h1: document.querySelectorAll('h1').length,
    lang: document.documentElement.lang,
    title: document.title,
  };
})()
"#;

pub async fn check_page(browser: &Browser, lab: &Lab, path: &str) {
    browser.goto(&lab.url(path)).await;
    // Let deferred scripts and styles finish loading.
    browser
        .wait_until("the page loaded", "document.readyState === 'complete'")
        .await;
    let report = browser.eval(AUDIT).await;
    let list = |key: &str| report[key].as_array().cloned().unwrap_or_default();
    assert_eq!(
        list("foreign"),
        Vec::<Value>::new(),
        "{path} fetched from elsewhere"
    );
    let bytes = report["bytes"].as_u64().expect("bytes");
    assert!(bytes > 0, "{path}: the browser measured nothing");
    assert!(bytes < MAX_PAGE_BYTES, "{path} weighs {bytes} bytes");
    assert_eq!(
        list("unlabeled"),
        Vec::<Value>::new(),
        "{path}: fields without a label"
    );
    assert_eq!(
        list("unnamedButtons"),
        Vec::<Value>::new(),
        "{path}: buttons without a name"
    );
    assert_eq!(
        list("lowContrast"),
        Vec::<Value>::new(),
        "{path}: text hard to read"
    );
    assert_eq!(report["h1"], 1, "{path}: one heading");
    assert_eq!(report["lang"], "en", "{path}");
    assert!(
        report["title"]
            .as_str()
            .is_some_and(|t| t.contains("LabLink")),
        "{path}"
    );
}

#[actix_web::test]
async fn every_page_is_light_self_contained_labelled_and_readable() {
    let lab = Lab::start("lablink-vm-pages").await;
    lab.create_ready_vms(1).await;
    lab.admin_post(
        "/api/vm-logs",
        serde_json::json!({"log_group": "lablink", "log_stream": "lablink-vm-pages-1", "messages": ["booted"]}),
    )
    .await;
    let browser = Browser::start().await;
    check_page(&browser, &lab, "/").await;
    check_page(&browser, &lab, "/admin/login").await;

    browser.fill("#user", "admin").await;
    browser.fill("#password", ADMIN_PASSWORD).await;
    browser.click_and_load("form button[type=submit]").await;
    for path in [
        "/admin",
        "/admin/operations",
        "/admin/audit",
        "/admin/logs/lablink-vm-pages-1",
    ] {
        check_page(&browser, &lab, path).await;
    }

    // The page with the PIN, reached by the form.
    browser.goto(&lab.url("/")).await;
    browser.fill("#email", "ada@example.org").await;
    browser.fill("#crd_command", &crd_command("ada")).await;
    browser.click_and_load("form button[type=submit]").await;
    assert_eq!(browser.text("#hostname").await, "lablink-vm-pages-1");
    let report = browser.eval(AUDIT).await;
    assert_eq!(report["lowContrast"], Value::Array(vec![]), "{report}");
    assert_eq!(report["foreign"], Value::Array(vec![]), "{report}");
    browser.quit().await;
}

/// The element that has the keyboard focus, by id or name.
async fn focused(browser: &Browser) -> String {
    browser
        .eval("document.activeElement.id || document.activeElement.name || document.activeElement.tagName")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn press(browser: &Browser, key: fantoccini::key::Key) {
    let focused = browser
        .client
        .active_element()
        .await
        .expect("a focused element");
    focused
        .send_keys(&char::from(key).to_string())
        .await
        .expect("key press");
}

#[actix_web::test]
async fn the_keyboard_alone_gets_a_vm_and_signs_the_admin_in() {
    use fantoccini::key::Key;
    let lab = Lab::start("lablink-vm-keys").await;
    lab.create_ready_vms(1).await;
    let browser = Browser::start().await;

    browser.goto(&lab.url("/")).await;
    browser.eval("document.activeElement.blur()").await;
    // Tab from the top: the brand link, then the form in reading order.
    press(&browser, Key::Tab).await;
    press(&browser, Key::Tab).await;
    assert_eq!(focused(&browser).await, "email");
    browser
        .client
        .active_element()
        .await
        .expect("focus")
        .send_keys("ada@example.org")
        .await
        .expect("type");
    press(&browser, Key::Tab).await;
    assert_eq!(focused(&browser).await, "crd_command");
    browser
        .client
        .active_element()
        .await
        .expect("focus")
        .send_keys(&crd_command("ada"))
        .await
        .expect("type");
    // The help link, then the button.
    press(&browser, Key::Tab).await;
    press(&browser, Key::Tab).await;
    assert_eq!(focused(&browser).await, "BUTTON");
    let outline = browser
        .eval("getComputedStyle(document.activeElement).outlineStyle")
        .await;
    assert_ne!(outline, "none", "the focused button must show it");
    press(&browser, Key::Enter).await;
    assert_eq!(browser.text("#hostname").await, "lablink-vm-keys-1");

    browser.goto(&lab.url("/admin/login")).await;
    browser.click("#user").await;
    browser
        .client
        .active_element()
        .await
        .expect("focus")
        .send_keys("admin")
        .await
        .expect("type");
    press(&browser, Key::Tab).await;
    assert_eq!(focused(&browser).await, "password");
    browser
        .client
        .active_element()
        .await
        .expect("focus")
        .send_keys(ADMIN_PASSWORD)
        .await
        .expect("type");
    press(&browser, Key::Enter).await;
    browser.wait_for_path("/admin").await;
    browser.quit().await;
}

#[actix_web::test]
async fn without_javascript_the_admin_signs_in_and_sees_the_vms() {
    let lab = Lab::start("lablink-vm-static").await;
    lab.create_ready_vms(1).await;
    let browser = Browser::without_javascript().await;
    browser.goto(&lab.url("/admin/login")).await;
    assert!(browser.scripts_are_off().await, "scripts still run");
    browser.fill("#user", "admin").await;
    browser.fill("#password", ADMIN_PASSWORD).await;
    browser.click_and_load("form button[type=submit]").await;
    browser.wait_for_path("/admin").await;
    let rows = browser.text("#instance_rows").await;
    assert!(rows.contains("lablink-vm-static-1"), "{rows}");
    assert!(rows.contains("running"), "{rows}");
    browser.click_and_load("nav a[href='/admin/audit']").await;
    assert!(browser.text("table").await.contains("admin.login"));
    browser.quit().await;
}

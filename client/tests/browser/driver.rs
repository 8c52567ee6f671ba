//! A headless Chromium driven through WebDriver (`chromedriver`), to test the pages the way
//! people use them. A browser that cannot start fails the test, with what to install: these
//! tests never skip.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

/// The ChromeDriver program (Debian package `chromium-driver`).
const CHROMEDRIVER_ENV: &str = "LABLINK_CHROMEDRIVER";
const DEFAULT_CHROMEDRIVER: &str = "chromedriver";
/// The browser (Debian package `chromium`).
const CHROMIUM_ENV: &str = "LABLINK_CHROMIUM";
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// Where screenshots go; `docs/screenshots` refreshes the guides' pictures.
pub const SCREENSHOT_DIR_ENV: &str = "LABLINK_SCREENSHOT_DIR";

/// How long ChromeDriver may take to answer after it starts.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a page may take to show what a test waits for. Live counts refresh every 5 s.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A phone's viewport, and a laptop's.
pub const PHONE: (u32, u32) = (390, 844);
pub const DESKTOP: (u32, u32) = (1280, 900);
/// Screenshots are never taller than this, however long the page.
const MAX_SCREENSHOT_HEIGHT: u32 = 2400;

/// One browser session and the ChromeDriver serving it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A browser with JavaScript, as nearly everyone has.
    pub async fn start() -> Browser {
        Self::launch(true).await
    }

    /// A browser with JavaScript turned off: every page must still work.
    pub async fn without_javascript() -> Browser {
        Self::launch(false).await
    }

    async fn launch(javascript: bool) -> Browser {
        let chromedriver =
            std::env::var(CHROMEDRIVER_ENV).unwrap_or_else(|_| DEFAULT_CHROMEDRIVER.to_owned());
        let chromium = std::env::var(CHROMIUM_ENV).unwrap_or_else(|_| DEFAULT_CHROMIUM.to_owned());
        let port = free_port();
        let mut driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that stopping it also stops the browser it started.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start `{chromedriver}` ({err}): install the Debian packages chromium \
                     and chromium-driver (bash .ci/run does), or set {CHROMEDRIVER_ENV}"
                )
            });
        let webdriver = format!("http://127.0.0.1:{port}");
        wait_for_driver(&webdriver, &mut driver).await;

        let profile = tempfile::tempdir().expect("browser profile dir");
        let mut args = vec![
            "--headless=new".to_owned(),
            // The tests run as root in CI, where Chromium's sandbox cannot start.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            // Nothing but the allocator may be reached: no background calls home.
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--force-device-scale-factor=1".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
        ];
        if !javascript {
            args.push("--blink-settings=scriptEnabled=false".to_owned());
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|err| {
                panic!("ChromeDriver could not start {chromium} ({err}); set {CHROMIUM_ENV}?")
            });
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Ends the session (the browser quits), then ChromeDriver.
    pub async fn quit(mut self) {
        let _ = self.client.clone().close().await;
        self.stop_driver();
    }

    fn stop_driver(&mut self) {
        if let Ok(pgid) = i32::try_from(self.driver.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.driver.wait();
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("open the page");
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no `{css}` on the page ({err})"))
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// The current value of a form field.
    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    /// Replaces what a field holds with `text`, typed.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Clicks what `css` finds. The live pages replace their rows when something changes, so
    /// an element found a moment ago may be gone: then it is found again.
    pub async fn click(&self, css: &str) {
        for _ in 0..5 {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(fantoccini::error::CmdError::Standard(err))
                    if err.error == fantoccini::error::ErrorStatus::StaleElementReference =>
                {
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
                Err(err) => panic!("click `{css}`: {err:?}"),
            }
        }
        panic!("click `{css}`: the element kept being replaced");
    }

    /// Clicks something that loads another page (a link, a form's button) and waits until the
    /// new page has loaded.
    pub async fn click_and_load(&self, css: &str) {
        self.eval("window.lablinkBeforeClick = true").await;
        self.click(css).await;
        self.wait_until(
            &format!("the page after clicking `{css}` loaded"),
            "window.lablinkBeforeClick !== true && document.readyState === 'complete'",
        )
        .await;
    }

    /// The result of a JavaScript expression on the page.
    pub async fn eval(&self, expression: &str) -> Value {
        self.client
            .execute(&format!("return ({expression});"), vec![])
            .await
            .unwrap_or_else(|err| panic!("cannot evaluate `{expression}`: {err}"))
    }

    /// Whether the page's own scripts are kept from running: an inline script added to the
    /// page must not run. (The test's own probes run through the WebDriver, not the page.)
    pub async fn scripts_are_off(&self) -> bool {
        let probe = "var s = document.createElement('script'); \
                     s.textContent = 'window.lablinkPageScriptRan = true'; \
                     document.head.appendChild(s); \
                     return window.lablinkPageScriptRan === true;";
        match self.client.execute(probe, vec![]).await {
            Ok(Value::Bool(ran)) => !ran,
            Ok(_) => false,
            // The browser runs no script at all, not even the probe.
            Err(_) => true,
        }
    }

    /// Waits until the JavaScript `expression` is true on the page.
    pub async fn wait_until(&self, what: &str, expression: &str) {
        let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
        while self.eval(expression).await != Value::Bool(true) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting until {what}; the page shows:\n{}",
                self.text("body").await
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Marks the page, to tell later whether it was reloaded (a reload loses the mark).
    pub async fn mark_page(&self) {
        self.eval("window.lablinkTestMark = true").await;
    }

    pub async fn still_marked(&self) -> bool {
        self.eval("window.lablinkTestMark === true").await == Value::Bool(true)
    }

    /// Waits until the browser is at `path` (a click that submits a form returns before the
    /// next page has loaded).
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
        loop {
            let now_at = self.path().await;
            if now_at == path
                && self.eval("document.readyState === 'complete'").await == Value::Bool(true)
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still at {now_at}, not {path}:\n{}",
                self.text("body").await
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The current path, such as `/admin`.
    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("current url")
            .path()
            .to_owned()
    }

    /// Saves `<name>-phone.png` and `<name>-desktop.png` of the page as it is now, whole (up
    /// to a limit), and returns to the desktop size.
    pub async fn screenshots(&self, name: &str) {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        for (label, (width, height)) in [("phone", PHONE), ("desktop", DESKTOP)] {
            self.resize(width, height).await;
            let page_height = self
                .eval("document.documentElement.scrollHeight")
                .await
                .as_u64()
                .and_then(|h| u32::try_from(h).ok())
                .unwrap_or(height);
            self.resize(width, page_height.clamp(height, MAX_SCREENSHOT_HEIGHT))
                .await;
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(format!("{name}-{label}.png")), png).expect("save screenshot");
        }
        self.resize(DESKTOP.0, DESKTOP.1).await;
    }

    /// Sets the viewport (not the window) to `width` × `height`.
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize");
        // Headless windows have no frame, but ask the page to be sure.
        let inner = self.eval("[window.innerWidth, window.innerHeight]").await;
        let (inner_w, inner_h) = (
            inner[0].as_u64().unwrap_or(u64::from(width)),
            inner[1].as_u64().unwrap_or(u64::from(height)),
        );
        let extra_w = u64::from(width).saturating_sub(inner_w);
        let extra_h = u64::from(height).saturating_sub(inner_h);
        if extra_w > 0 || extra_h > 0 {
            self.client
                .set_window_size(
                    width + u32::try_from(extra_w).unwrap_or(0),
                    height + u32::try_from(extra_h).unwrap_or(0),
                )
                .await
                .expect("resize");
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.stop_driver();
    }
}

fn screenshot_dir() -> PathBuf {
    match std::env::var_os(SCREENSHOT_DIR_ENV) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                // Relative to the repository root, not to this crate.
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target").join("browser-screenshots"),
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the client crate sits in the workspace")
        .to_owned()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

async fn wait_for_driver(webdriver: &str, driver: &mut Child) {
    let deadline = tokio::time::Instant::now() + DRIVER_START_TIMEOUT;
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(format!("{webdriver}/status")).send().await {
            if response.status().is_success() {
                return;
            }
        }
        if let Ok(Some(status)) = driver.try_wait() {
            panic!("ChromeDriver exited at start ({status}); is chromium-driver installed?");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ChromeDriver did not answer at {webdriver}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

//! The allocator's own log page, as an operator without shell access uses it: the binary's
//! recent events, newest first, with the reason a provisioning run failed, and no secret
//! (the generated admin password, a database password) shown again.

use std::time::{Duration, Instant};

use lablink_schema::testing::TestDatabase;
use serde_json::json;

#[path = "support/allocator_process.rs"]
mod allocator_process;

use allocator_process::{Allocator, START_TIMEOUT};

const GENERATED: &str = "no admin password was configured, so one was generated: it is shown \
    only this once; keep it safe, or set LABLINK__ADMIN__PASSWORD";

/// A browser signed in to the dashboard at `base`.
async fn signed_in(base: &str, password: &str) -> reqwest::Client {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = browser
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("html");
    let nonce = form
        .split(r#"name="login_nonce" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("nonce")
        .to_owned();
    let signed = browser
        .post(format!("{base}/admin/login"))
        .form(&[
            ("user", "admin"),
            ("password", password),
            ("login_nonce", &nonce),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed.status(), 303, "signed in");
    browser
}

#[tokio::test]
async fn the_log_page_shows_why_provisioning_failed_and_no_secret() {
    let database = TestDatabase::migrated();
    let dir = tempfile::tempdir().expect("temp dir");
    // The database URL with a password in it, as operators often write it.
    let url = database.url().replacen(
        "postgres://postgres@",
        "postgres://postgres:db-Secret-2@",
        1,
    );
    // An agent program that cannot run on this "image": it says why and exits.
    let agent = dir.path().join("broken-agent");
    std::fs::write(
        &agent,
        "#!/bin/sh\necho 'lablink-client: /nonexistent/lablink-client is missing' >&2\nexit 3\n",
    )
    .expect("agent");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("mode");
    }
    let agent = agent.display().to_string();
    let mut allocator = Allocator::start(
        dir.path(),
        &["--bind", "127.0.0.1:0"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("LABLINK__PROVIDER__LOCAL__AGENT_BINARY", agent.as_str()),
        ],
    );
    let password = allocator.wait_for_log(GENERATED, START_TIMEOUT)["password"]
        .as_str()
        .expect("password")
        .to_owned();
    let base = allocator.wait_until_listening();
    let browser = signed_in(&base, &password).await;

    // A creation that fails: the agent exits at once.
    let queued = browser
        .post(format!("{base}/api/admin/vms"))
        .basic_auth("admin", Some(&password))
        .json(&json!({"count": 1}))
        .send()
        .await
        .expect("create");
    assert_eq!(queued.status(), 202, "queued");
    allocator.wait_for_log("provisioning failed", Duration::from_secs(30));

    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = browser
            .get(format!("{base}/admin/log"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html");
        if page.contains("provisioning failed") || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let failed = page
        .find("provisioning failed")
        .expect("the failure is shown");
    assert!(
        page.contains("/nonexistent/lablink-client"),
        "with its reason"
    );
    let listening = page.find("listening").expect("the start is shown");
    assert!(failed < listening, "newest first");
    assert!(
        !page.contains(&password),
        "the generated password is not shown again"
    );
    assert!(!page.contains("db-Secret-2"), "nor the database password");
    assert!(page.contains("no admin password was configured"));

    let serious = browser
        .get(format!("{base}/admin/log?errors=true"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(serious.contains("provisioning failed"));
    assert!(!serious.contains("listening"), "warnings and errors only");

    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{base}/admin/log"))
        .send()
        .await
        .expect("page");
    assert_eq!(stranger.status(), 303, "only for the admin");
    allocator.signal("TERM");
    let _ = allocator.wait_for_exit();
}

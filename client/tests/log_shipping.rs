//! Log shipping end to end: the real agent binary follows a file a child program writes to
//! and ships it with its own log, masked; the allocator (in this process) stops for 10 s
//! while the program goes on logging, starts again on the same address, and every line
//! arrives exactly once.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use lablink_allocator::config::Config;
use lablink_allocator::startup::Application;
use lablink_schema::testing::TestDatabase;
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "log-shipping-admin";
const HOSTNAME: &str = "vm-logs-1";
/// Lines the child program writes, one every 50 ms: about 15 s of output.
const LINES: usize = 300;

/// Starts an allocator on `database` at `port`; returns the handle that stops it.
async fn start_allocator(
    database: &TestDatabase,
    data_dir: &std::path::Path,
    port: u16,
) -> actix_web::dev::ServerHandle {
    let mut config = Config::default();
    config.server.bind = format!("127.0.0.1:{port}").parse().expect("address");
    config.server.workers = 1;
    config.server.shutdown_timeout_secs = 1;
    config.database.url = Some(database.url().to_owned());
    config.database.data_dir = data_dir.to_owned();
    config.admin.password = Some(ADMIN_PASSWORD.into());
    let app = Application::build(config).await.expect("allocator");
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    handle
}

/// Every kept line of the VM's log, newest first, as `source text`.
async fn kept_lines(client: &reqwest::Client, base: &str) -> Vec<String> {
    let answer = client
        .get(format!("{base}/api/vm-logs/{HOSTNAME}?limit=10000"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await;
    let Ok(answer) = answer else {
        return Vec::new();
    };
    let page: Value = answer.json().await.unwrap_or(Value::Null);
    page["lines"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|l| {
                    format!(
                        "{} {}",
                        l["source"].as_str().unwrap_or_default(),
                        l["text"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn until_kept(
    client: &reqwest::Client,
    base: &str,
    what: &str,
    check: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let lines = kept_lines(client, base).await;
        if check(&lines) {
            return lines;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}; kept so far: {} lines, newest {:?}",
            lines.len(),
            lines.first()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn the_agent_ships_its_log_and_a_programs_output_masked_and_once_across_an_allocator_restart()
{
    let database = TestDatabase::migrated();
    let data_dir = tempfile::tempdir().expect("data dir");
    let vm_dir = tempfile::tempdir().expect("vm dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let allocator = start_allocator(&database, data_dir.path(), port).await;

    let enrollment: Value = client
        .post(format!("{base}/api/admin/enrollment-tokens"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&json!({}))
        .send()
        .await
        .expect("enrollment token")
        .json()
        .await
        .expect("json");
    let enrollment = enrollment["token"].as_str().expect("token").to_owned();

    let software_log = vm_dir.path().join("software.log");
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_lablink-client"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ALLOCATOR_URL", &base)
        .env("VM_NAME", HOSTNAME)
        .env("LABLINK_ENROLLMENT_TOKEN", &enrollment)
        .env("LABLINK_DESKTOP", "log")
        .env("LABLINK_HEARTBEAT_SECS", "1")
        .env(
            "LABLINK_LOG_FILES",
            format!("software={}", software_log.display()),
        )
        .env("LABLINK_LOG_SPOOL_DIR", vm_dir.path().join("spool"))
        .env("LABLINK_LOG_FLUSH_MS", "100")
        .env("LABLINK_LOG_REDACT", "secret-[0-9]+")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the agent");

    // The research software stand-in: a child program writing its output to the file.
    let script = format!(
        "i=0; while [ $i -lt {LINES} ]; do echo \"epoch $i PIN: 482913 secret-$i\"; \
         i=$((i+1)); sleep 0.05; done >> '{}'",
        software_log.display()
    );
    let mut software = tokio::process::Command::new("sh")
        .args(["-c", &script])
        .kill_on_drop(true)
        .spawn()
        .expect("start the program");

    // Its lines and the agent's own arrive, masked.
    let first = until_kept(&client, &base, "the program's lines arrive", |lines| {
        lines.iter().any(|l| l.starts_with("software epoch 10 "))
            && lines
                .iter()
                .any(|l| l.starts_with("agent ") && l.contains("agent started"))
    })
    .await;
    let epoch = first
        .iter()
        .find(|l| l.starts_with("software epoch 10 "))
        .expect("epoch 10");
    assert_eq!(epoch, "software epoch 10 PIN: [redacted] [redacted]");
    assert!(
        !first.iter().any(|l| l.contains(&enrollment)),
        "no token is shipped"
    );
    // Newest first.
    let position = |text: &str| first.iter().position(|l| l.starts_with(text));
    assert!(position("software epoch 10 ") < position("software epoch 9 "));

    // The allocator goes away for 10 s while the program keeps logging…
    allocator.stop(true).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    // …and comes back on the same address.
    let _allocator = start_allocator(&database, data_dir.path(), port).await;
    let status = software.wait().await.expect("the program ends");
    assert!(status.success());

    let all = until_kept(&client, &base, "every line arrives", |lines| {
        lines
            .iter()
            .any(|l| l.starts_with(&format!("software epoch {} ", LINES - 1)))
    })
    .await;
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for line in all.iter().filter(|l| l.starts_with("software epoch ")) {
        let number: usize = line["software epoch ".len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a number");
        *counts.entry(number).or_default() += 1;
    }
    let missing: Vec<usize> = (0..LINES).filter(|n| !counts.contains_key(n)).collect();
    let twice: Vec<(&usize, &usize)> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(missing.is_empty(), "lines lost: {missing:?}");
    assert!(twice.is_empty(), "lines stored more than once: {twice:?}");

    let _ = agent.kill().await;
}

//! The `lablink-client` binary as a VM runs it: bad settings are refused by name, and
//! SIGTERM stops it cleanly even while the allocator is unreachable.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_lablink-client");

#[test]
fn missing_settings_are_named() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("VM_NAME", "vm-1")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ALLOCATOR_URL"));
}

#[test]
fn sigterm_stops_the_agent_cleanly_while_it_retries() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Port 1 refuses connections: the agent keeps retrying with backoff until stopped.
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("ALLOCATOR_URL", "http://127.0.0.1:1")
        .env("VM_NAME", "vm-1")
        .env("HOME", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the agent");
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the agent gave up on its own"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit}");
    let output = child.wait_with_output().expect("output");
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(logs.contains(r#""message":"stopped""#), "{logs}");
    assert!(logs.contains("retry_in_ms"), "it was retrying: {logs}");
}

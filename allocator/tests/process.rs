//! The `lablink-allocator` binary as an operator runs it: with no configuration, with
//! `DATABASE_URL`, with bad configuration, stopped by SIGTERM and ctrl-c, and `migrate`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::{QueryableByName, RunQueryDsl};
use lablink_schema::testing::TestDatabase;

#[path = "support/allocator_process.rs"]
mod allocator_process;

use allocator_process::{operation_as, Allocator, BINARY, START_TIMEOUT, STOP_TIMEOUT};

async fn status_of(url: &str) -> u16 {
    reqwest::get(url)
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|err| panic!("GET {url} failed: {err}"))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

fn applied_migrations(database: &TestDatabase) -> i64 {
    let mut conn = database.connect();
    diesel::sql_query("SELECT count(*) AS count FROM __diesel_schema_migrations")
        .get_result::<Count>(&mut conn)
        .expect("migrations table")
        .count
}

#[tokio::test]
async fn with_no_configuration_it_serves_localhost_5000_on_sqlite_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut allocator = Allocator::start(dir.path(), &[], &[]);
    let base = allocator.wait_until_listening();
    assert_eq!(base, "http://127.0.0.1:5000");
    assert_eq!(status_of(&format!("{base}/healthz")).await, 200);
    assert_eq!(status_of(&format!("{base}/readyz")).await, 200);
    assert!(dir.path().join("lablink-data/lablink.sqlite").is_file());

    allocator.signal("TERM");
    let status = allocator.wait_for_exit();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    allocator.wait_for_log("stopped", STOP_TIMEOUT);
}

#[tokio::test]
async fn with_database_url_it_uses_postgres_and_stops_on_ctrl_c() {
    let database = TestDatabase::empty();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut allocator = Allocator::start(
        dir.path(),
        &[],
        &[
            ("DATABASE_URL", database.url()),
            ("LABLINK__SERVER__BIND", "127.0.0.1:0"),
        ],
    );
    let base = allocator.wait_until_listening();
    assert_ne!(base, "http://127.0.0.1:0");
    assert_eq!(status_of(&format!("{base}/readyz")).await, 200);
    assert_eq!(applied_migrations(&database), migration_count());
    assert!(
        !dir.path().join("lablink-data").exists(),
        "no SQLite database when PostgreSQL is configured"
    );

    allocator.signal("INT");
    let status = allocator.wait_for_exit();
    assert!(status.success(), "exit status after ctrl-c: {status}");
}

#[tokio::test]
async fn bind_flag_and_config_file_are_honoured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lablink.yaml");
    std::fs::write(
        &config,
        "database:\n  data_dir: from-config-file\nlog:\n  level: debug\n",
    )
    .expect("write config");
    let config_arg = config.display().to_string();
    let mut allocator = Allocator::start(
        dir.path(),
        &["--config", &config_arg, "--bind", "127.0.0.1:0"],
        &[],
    );
    let base = allocator.wait_until_listening();
    assert_eq!(status_of(&format!("{base}/readyz")).await, 200);
    assert!(dir.path().join("from-config-file/lablink.sqlite").is_file());
}

#[test]
fn bad_configuration_exits_non_zero_naming_the_key_and_the_value() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(BINARY)
        .current_dir(dir.path())
        .env_clear()
        .env("LABLINK__SERVER__BIND", "nonsense:port")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("LABLINK__SERVER__BIND"), "{stderr}");
    assert!(stderr.contains("nonsense:port"), "{stderr}");
    assert!(
        !dir.path().join("lablink-data").exists(),
        "nothing is created before the configuration is valid"
    );
}

#[test]
fn an_unreachable_database_stops_start_up_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(BINARY)
        .current_dir(dir.path())
        .env_clear()
        .env(
            "DATABASE_URL",
            "postgres://lablink:hunter2@127.0.0.1:1/lablink",
        )
        .env("LABLINK__DATABASE__STARTUP_TIMEOUT_SECS", "1")
        .env("LABLINK__SERVER__BIND", "127.0.0.1:0")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unreachable"), "{stderr}");
    let everything = format!("{stderr}{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        !everything.contains("hunter2"),
        "the password leaked: {everything}"
    );
}

#[test]
fn migrate_applies_pending_migrations_and_exits() {
    let database = TestDatabase::empty();
    let output = Command::new(BINARY)
        .arg("migrate")
        .env_clear()
        .env("DATABASE_URL", database.url())
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(applied_migrations(&database), migration_count());
    let again = Command::new(BINARY)
        .arg("migrate")
        .env_clear()
        .env("DATABASE_URL", database.url())
        .output()
        .expect("run");
    assert!(again.status.success());
    assert_eq!(applied_migrations(&database), migration_count());
}

/// The admin password of the allocators that enroll a VM in these tests.
const ENROLLING_ADMIN_PASSWORD: &str = "enrolling-admin-password";

/// Enrolls `hostname` the way a lab's own machine does (an enrollment token from the admin
/// API, then the first status report) and returns the VM's own token.
async fn enroll_vm(client: &reqwest::Client, base: &str, hostname: &str) -> String {
    let created: serde_json::Value = client
        .post(format!("{base}/api/admin/enrollment-tokens"))
        .basic_auth("admin", Some(ENROLLING_ADMIN_PASSWORD))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("enrollment token")
        .json()
        .await
        .expect("json");
    let enrollment = created["token"].as_str().expect("token");
    let registered: serde_json::Value = client
        .post(format!("{base}/api/vm-status"))
        .bearer_auth(enrollment)
        .json(&serde_json::json!({"hostname": hostname, "status": "running"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    registered["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn an_agent_waiting_on_one_allocator_gets_an_assignment_made_by_another() {
    let database = TestDatabase::migrated();
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        ("DATABASE_URL", database.url()),
        ("LABLINK__SERVER__BIND", "127.0.0.1:0"),
        ("LABLINK__ADMIN__PASSWORD", ENROLLING_ADMIN_PASSWORD),
        // The most talkative level, to be sure secrets are absent at every level.
        ("LABLINK__LOG__LEVEL", "debug"),
    ];
    let mut first = Allocator::start(dir.path(), &[], &env);
    let mut second = Allocator::start(dir.path(), &[], &env);
    let (agent_side, researcher_side) =
        (first.wait_until_listening(), second.wait_until_listening());
    let client = reqwest::Client::new();

    let token = enroll_vm(&client, &agent_side, "vm-1").await;
    let health = client
        .post(format!("{agent_side}/api/gpu_health"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"hostname": "vm-1", "gpu_status": "Healthy"}))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);

    let waiting = client
        .post(format!("{agent_side}/vm_startup"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"hostname": "vm-1"}))
        .send();
    let assigning = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let command = "DISPLAY= /opt/google/chrome-remote-desktop/start-host \
            --code=\"4/0AVG7fiQcrossprocess\" \
            --redirect-url=\"https://remotedesktop.google.com/_/oauthredirect\" --name=$(hostname)";
        let page = client
            .post(format!("{researcher_side}/api/request_vm"))
            .form(&[("email", "ada@example.org"), ("crd_command", command)])
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("page");
        let marker = r#"<strong id="pin" class="pin">"#;
        let start = page.find(marker).expect("assigned page") + marker.len();
        page[start..start + 6].to_owned()
    };
    let (answer, pin) = tokio::join!(
        async {
            tokio::time::timeout(START_TIMEOUT, waiting)
                .await
                .expect("the agent got no answer")
                .expect("response")
        },
        assigning
    );
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(body["status"], "success");
    assert_eq!(body["pin"], pin.as_str());

    // Neither process logged the PIN, the CRD code, the email or the VM token.
    for allocator in [&mut first, &mut second] {
        let logs = allocator.logs_so_far();
        assert!(
            logs.contains("VM assigned") || logs.contains("listening"),
            "logs were captured"
        );
        for secret in [
            pin.as_str(),
            "0AVG7fiQcrossprocess",
            "ada@example.org",
            token.as_str(),
        ] {
            assert!(
                !logs.contains(secret),
                "`{secret}` appears in the logs:\n{logs}"
            );
        }
    }
}

/// The status of `GET /api/vm-status` as the admin with `password`: 404 when signed in
/// (there are no VMs yet), 401 when not.
async fn admin_status(base: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/api/vm-status"))
        .basic_auth("admin", Some(password))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

fn migration_count() -> i64 {
    i64::try_from(
        lablink_schema::migrations::embedded_versions(lablink_schema::Backend::Postgres).len(),
    )
    .expect("count")
}

#[tokio::test]
async fn without_a_configured_password_one_is_generated_printed_once_and_kept_hashed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = Allocator::start(dir.path(), &["--bind", "127.0.0.1:0"], &[]);
    let generated = first.wait_for_log(
        "no admin password was configured, so one was generated: it is shown only this once; keep it safe, or set LABLINK__ADMIN__PASSWORD",
        START_TIMEOUT,
    );
    let password = generated["password"]
        .as_str()
        .expect("password field")
        .to_owned();
    let base = first.wait_until_listening();
    // 404: authenticated, and there are no VMs yet.
    assert_eq!(admin_status(&base, &password).await, 404);
    assert_eq!(admin_status(&base, "guess").await, 401);
    first.signal("TERM");
    assert!(first.wait_for_exit().success());

    // The next start keeps the stored hash and shows nothing.
    let mut second = Allocator::start(dir.path(), &["--bind", "127.0.0.1:0"], &[]);
    second.wait_until_listening();
    let logs = second.logs_so_far();
    assert!(!logs.contains(&password), "the password was shown again");
    assert!(!logs.contains("was generated"), "{logs}");
}

#[tokio::test]
async fn an_allocator_killed_mid_apply_has_its_creation_finished_when_restarted() {
    if Command::new("terraform").arg("version").output().is_err() {
        eprintln!("SKIPPED: the terraform CLI is not installed");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let database = TestDatabase::migrated();
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = dir.path().join("agent.sh");
    std::fs::write(&agent, "#!/bin/sh\nexec sleep 600\n").expect("agent script");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let module = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../terraform/local");
    let work = dir.path().join("work");
    let env = |delay: &str| {
        terraform_env(
            database.url(),
            "crash-test-password",
            &module,
            &work,
            &agent,
            &dir.path().join("state"),
            delay,
        )
    };
    let borrowed =
        |pairs: &[(&'static str, String)]| -> Vec<(&'static str, String)> { pairs.to_vec() };
    let start = |pairs: Vec<(&'static str, String)>| {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Allocator::start(dir.path(), &[], &refs)
    };
    let client = reqwest::Client::new();
    let operation =
        |base: String, id: i64| operation_as(client.clone(), base, "crash-test-password", id);

    // A slow creation (each agent waits 60 s before starting)…
    let mut first = start(borrowed(&env("60")));
    let base = first.wait_until_listening();
    let queued: serde_json::Value = client
        .post(format!("{base}/api/admin/vms"))
        .basic_auth("admin", Some("crash-test-password"))
        .json(&serde_json::json!({"count": 1}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = queued["operation_id"].as_i64().expect("id");
    let pid_file = work.join("lablink-terraform.pid");
    let deadline = Instant::now() + START_TIMEOUT;
    // `terraform init` runs first; wait for the `apply`.
    let terraform_pid: u32 = loop {
        assert!(Instant::now() < deadline, "terraform apply never started");
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        let applying = pid.is_some_and(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("apply"))
        });
        if let (true, Some(pid)) = (applying, pid) {
            break pid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // …killed hard in the middle of `terraform apply`.
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    assert!(
        std::path::Path::new(&format!("/proc/{terraform_pid}")).exists(),
        "terraform outlived the allocator"
    );

    // Restarted: the orphaned terraform is stopped and the run taken over and finished,
    // making exactly the VM it had named (Terraform's state says what exists).
    let mut second = start(borrowed(&env("0")));
    let base = second.wait_until_listening();
    let deadline = Instant::now() + STOP_TIMEOUT;
    while std::fs::read_to_string(format!("/proc/{terraform_pid}/stat"))
        .is_ok_and(|s| !s.contains(") Z "))
    {
        assert!(
            Instant::now() < deadline,
            "the orphaned terraform was not stopped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished = loop {
        let op = operation(base.clone(), id).await;
        if op["finished_at"] != serde_json::Value::Null {
            break op;
        }
        assert!(
            Instant::now() < deadline,
            "the taken-over creation did not finish: {op}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished["state"], "succeeded", "{finished}");
    let mut conn = database.connect();
    let vms = lablink_schema::vms::Vm::list_all(&mut conn).expect("vms");
    assert_eq!(
        vms.iter().map(|vm| vm.hostname.clone()).collect::<Vec<_>>(),
        finished["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .map(|t| t.as_str().expect("name").to_owned())
            .collect::<Vec<_>>(),
        "exactly the VM the interrupted run named"
    );

    // And a new creation works on the same state.
    let again: serde_json::Value = client
        .post(format!("{base}/api/admin/vms"))
        .basic_auth("admin", Some("crash-test-password"))
        .json(&serde_json::json!({"count": 1}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let again_id = again["operation_id"].as_i64().expect("id");
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished = loop {
        let op = operation(base.clone(), again_id).await;
        if op["finished_at"] != serde_json::Value::Null {
            break op;
        }
        assert!(
            Instant::now() < deadline,
            "the new creation did not finish: {op}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished["state"], "succeeded", "{finished}");
    assert_eq!(
        lablink_schema::vms::Vm::list_all(&mut conn)
            .expect("vms")
            .len(),
        2
    );

    // Tidy up the stand-in agent.
    for entry in std::fs::read_dir(dir.path().join("state"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "pid") {
            if let Ok(pid) = std::fs::read_to_string(entry.path()) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
    second.signal("TERM");
    let _ = second.wait_for_exit();
}

#[tokio::test]
async fn stopping_answers_waiting_agents_at_once_instead_of_waiting_out_their_polls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut allocator = Allocator::start(
        dir.path(),
        &["--bind", "127.0.0.1:0"],
        &[("LABLINK__ADMIN__PASSWORD", ENROLLING_ADMIN_PASSWORD)],
    );
    let base = allocator.wait_until_listening();
    let client = reqwest::Client::new();
    let token = enroll_vm(&client, &base, "vm-1").await;
    let waiting = client
        .post(format!("{base}/vm_startup"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"hostname": "vm-1"}))
        .send();
    let stop = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        allocator.signal("TERM");
    };
    let (answer, ()) = tokio::join!(waiting, stop);
    let answer = answer.expect("the waiting agent got an answer");
    assert_eq!(answer.status(), 503, "the agent is told to retry");
    let stopped_within = Instant::now();
    let status = allocator.wait_for_exit();
    assert!(status.success(), "{status}");
    // The graceful-stop timeout is 30 s; with no poll left open it takes a moment.
    assert!(
        stopped_within.elapsed() < Duration::from_secs(10),
        "stopping waited out the open polls"
    );
}

#[test]
fn check_config_prints_the_settings_in_effect_with_secrets_masked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(BINARY)
        .arg("check-config")
        .current_dir(dir.path())
        .env_clear()
        .env("LABLINK__SERVER__BIND", "0.0.0.0:8080")
        .env("LABLINK__ADMIN__PASSWORD", "a-password-nobody-sees")
        .env("LABLINK__METRICS__TOKEN", "a-scraper-token-nobody-sees")
        .env("DATABASE_URL", "postgres://lab:hunter2@db.internal/lablink")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("server:\n"), "{stdout}");
    assert!(stdout.contains("  bind: \"0.0.0.0:8080\"\n"), "{stdout}");
    assert!(
        stdout.contains("  url: \"postgres://lab:***@db.internal/lablink\"\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  password: \"********\"\n"), "{stdout}");
    for secret in [
        "a-password-nobody-sees",
        "a-scraper-token-nobody-sees",
        "hunter2",
    ] {
        assert!(!stdout.contains(secret), "{secret} shown: {stdout}");
    }
    assert!(
        !dir.path().join("lablink-data").exists(),
        "checking creates nothing"
    );

    let bad = Command::new(BINARY)
        .arg("check-config")
        .env_clear()
        .env("LABLINK__PROVIDER__MAX_VMS", "none")
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("LABLINK__PROVIDER__MAX_VMS"), "{stderr}");
    assert!(bad.stdout.is_empty());
}

fn hash_password(password: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(BINARY)
        .arg("hash-password")
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write the password");
    child.wait_with_output().expect("output")
}

#[tokio::test]
async fn a_hash_from_hash_password_lets_the_admin_in_without_the_password_in_the_config() {
    let password = "correct horse battery staple";
    let output = hash_password(password);
    assert!(output.status.success());
    let hash = String::from_utf8(output.stdout).expect("utf-8");
    let hash = hash.trim_end();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(password));

    let too_short = hash_password("short");
    assert_eq!(too_short.status.code(), Some(2));
    assert!(too_short.stdout.is_empty());

    let dir = tempfile::tempdir().expect("temp dir");
    let mut allocator = Allocator::start(
        dir.path(),
        &["--bind", "127.0.0.1:0"],
        &[("LABLINK__ADMIN__PASSWORD_HASH", hash)],
    );
    let base = allocator.wait_until_listening();
    // 404: authenticated, and there are no VMs yet.
    assert_eq!(admin_status(&base, password).await, 404);
    assert_eq!(
        admin_status(&base, "correct horse battery stapler").await,
        401
    );
    assert!(
        !allocator.logs_so_far().contains("was generated"),
        "no password is generated when a hash is configured"
    );
    allocator.signal("TERM");
    assert!(allocator.wait_for_exit().success());
}

#[tokio::test]
async fn the_legacy_switch_is_warned_about_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut allocator = Allocator::start(
        dir.path(),
        &["--bind", "127.0.0.1:0"],
        &[
            ("LABLINK__CLIENTS__LEGACY_UNAUTHENTICATED", "true"),
            ("LABLINK__ADMIN__PASSWORD", ENROLLING_ADMIN_PASSWORD),
        ],
    );
    let warning = allocator.wait_for_log(lablink_allocator::startup::LEGACY_WARNING, START_TIMEOUT);
    assert_eq!(warning["level"], "WARN");
    allocator.wait_until_listening();
}

/// Two allocators on one database: the second, starting while the first runs a creation,
/// must neither mark that operation failed nor remove the VM rows it stored (the first holds
/// the operation's lease and is alive); the first then finishes it.
#[tokio::test]
async fn a_second_allocator_starting_leaves_a_running_operation_alone() {
    if Command::new("terraform").arg("version").output().is_err() {
        eprintln!("SKIPPED: the terraform CLI is not installed");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let database = TestDatabase::migrated();
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = dir.path().join("agent.sh");
    std::fs::write(&agent, "#!/bin/sh\nexec sleep 600\n").expect("agent script");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let module = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../terraform/local");
    let state = dir.path().join("state");
    // Each allocator has its own working directory, as on two machines.
    let env = |name: &str| {
        terraform_env(
            database.url(),
            "two-allocators-password",
            &module,
            &dir.path().join(name),
            &agent,
            &state,
            "6",
        )
    };
    let start = |pairs: Vec<(&'static str, String)>| {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Allocator::start(dir.path(), &[], &refs)
    };
    let client = reqwest::Client::new();
    let operation =
        |base: String, id: i64| operation_as(client.clone(), base, "two-allocators-password", id);

    let mut first = start(env("work-a"));
    let first_base = first.wait_until_listening();
    let queued: serde_json::Value = client
        .post(format!("{first_base}/api/admin/vms"))
        .basic_auth("admin", Some("two-allocators-password"))
        .json(&serde_json::json!({"count": 1}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = queued["operation_id"].as_i64().expect("id");
    // Wait until the creation has stored its VM's row (it does before applying).
    let mut conn = database.connect();
    let deadline = Instant::now() + START_TIMEOUT;
    while lablink_schema::vms::Vm::list_all(&mut conn)
        .expect("vms")
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the creation stored no VM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut second = start(env("work-b"));
    let second_base = second.wait_until_listening();
    let seen_by_second = operation(second_base.clone(), id).await;
    assert_eq!(
        seen_by_second["finished_at"],
        serde_json::Value::Null,
        "{seen_by_second}"
    );
    assert_ne!(seen_by_second["state"], "failed", "{seen_by_second}");
    assert_eq!(
        lablink_schema::vms::Vm::list_all(&mut conn)
            .expect("vms")
            .len(),
        1,
        "the second allocator removed the running creation's VM"
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    let finished = loop {
        let op = operation(first_base.clone(), id).await;
        if op["finished_at"] != serde_json::Value::Null {
            break op;
        }
        assert!(
            Instant::now() < deadline,
            "the creation did not finish: {op}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished["state"], "succeeded", "{finished}");
    assert_eq!(
        lablink_schema::vms::Vm::list_all(&mut conn)
            .expect("vms")
            .len(),
        1
    );

    for allocator in [&mut first, &mut second] {
        allocator.signal("TERM");
        let _ = allocator.wait_for_exit();
    }
    for entry in std::fs::read_dir(&state).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "pid") {
            if let Ok(pid) = std::fs::read_to_string(entry.path()) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}

/// The environment of an allocator on `database_url` whose provider is terraform/local
/// (`module`) in `work_dir`, each VM's agent being `agent`, started `delay` seconds late.
fn terraform_env(
    database_url: &str,
    password: &str,
    module: &std::path::Path,
    work_dir: &std::path::Path,
    agent: &std::path::Path,
    state_dir: &std::path::Path,
    delay: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("LABLINK__SERVER__BIND", "127.0.0.1:0".to_owned()),
        ("LABLINK__ADMIN__PASSWORD", password.to_owned()),
        ("LABLINK__PROVIDER__KIND", "terraform".to_owned()),
        (
            "LABLINK__PROVIDER__TERRAFORM__MODULE_DIR",
            module.display().to_string(),
        ),
        (
            "LABLINK__PROVIDER__TERRAFORM__WORK_DIR",
            work_dir.display().to_string(),
        ),
        (
            "LABLINK__PROVIDER__TERRAFORM__VARIABLES__AGENT_COMMAND",
            agent.display().to_string(),
        ),
        (
            "LABLINK__PROVIDER__TERRAFORM__VARIABLES__STATE_DIR",
            state_dir.display().to_string(),
        ),
        (
            "LABLINK__PROVIDER__TERRAFORM__VARIABLES__STARTUP_DELAY_SECONDS",
            delay.to_owned(),
        ),
    ]
}

/// Runs the binary in `dir` with only `PATH` and `env`, and the given arguments.
fn run_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run")
}

#[test]
fn check_config_prints_every_path_made_absolute_against_the_working_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run_in(
        dir.path(),
        &["check-config"],
        &[("LABLINK__PROVIDER__TERRAFORM__MODULE_DIR", "modules/lab")],
    );
    assert!(output.status.success(), "{output:?}");
    let report = String::from_utf8_lossy(&output.stdout);
    let cwd = dir.path().display().to_string();
    assert!(
        report.contains(&format!("data_dir: \"{cwd}/lablink-data\"")),
        "{report}"
    );
    assert!(
        report.contains(&format!("module_dir: \"{cwd}/modules/lab\"")),
        "{report}"
    );
    assert!(
        report.contains(&format!("work_dir: \"{cwd}/lablink-data/terraform\"")),
        "{report}"
    );
    assert!(!dir.path().join("lablink-data").exists(), "nothing created");
}

#[test]
fn a_data_dir_that_cannot_be_made_stops_the_start_naming_the_key_and_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (data_dir, why) in [
        ("missing/parent/data", "does not exist"),
        // A read-only parent (procfs refuses new files even to root).
        ("/proc/lablink-data", "cannot be created"),
    ] {
        let output = run_in(
            dir.path(),
            &["--bind", "127.0.0.1:0"],
            &[("LABLINK__DATABASE__DATA_DIR", data_dir)],
        );
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("database.data_dir"), "{stderr}");
        assert!(stderr.contains("data"), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "nothing is created"
    );
}

#[test]
fn a_missing_or_unexecutable_agent_program_stops_the_start_naming_the_key_and_the_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = dir.path().join("plain-file");
    std::fs::write(&plain, "#!/bin/sh\n").expect("file");
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).expect("mode");
    for (agent, why) in [
        ("bin/lablink-client", "cannot be used"),
        ("./plain-file", "not executable"),
    ] {
        let output = run_in(
            dir.path(),
            &["--bind", "127.0.0.1:0"],
            &[("LABLINK__PROVIDER__LOCAL__AGENT_BINARY", agent)],
        );
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("provider.local.agent_binary"), "{stderr}");
        assert!(
            stderr.contains(
                &dir.path()
                    .join(agent.trim_start_matches("./"))
                    .display()
                    .to_string()
            ),
            "the absolute path is named: {stderr}"
        );
        assert!(stderr.contains(why), "{stderr}");
    }
    assert!(!dir.path().join("lablink-data").exists(), "nothing created");
}

#[test]
fn logs_are_readable_text_at_a_terminal_and_json_when_piped() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Under a pseudo-terminal (`script`), stopped once it has said it listens.
    let transcript = dir.path().join("transcript");
    let command = format!("timeout -s INT 5 {BINARY} --bind 127.0.0.1:0 & sleep 4; wait");
    let status = Command::new("script")
        .args(["-q", "-e", "-c", &command])
        .arg(&transcript)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LABLINK__ADMIN__PASSWORD", "a-long-enough-password")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|err| panic!("`script` (package bsdutils) is needed: {err}"));
    assert!(status.success() || status.code() == Some(130), "{status}");
    let text = without_colours(&std::fs::read_to_string(&transcript).expect("transcript"));
    let listening = text
        .lines()
        .find(|line| line.contains("listening"))
        .unwrap_or_else(|| panic!("no listening line:\n{text}"));
    assert!(!listening.trim_start().starts_with('{'), "{listening}");
    assert!(listening.contains("INFO"), "{listening}");
    assert!(listening.contains("address="), "{listening}");

    // Piped: one JSON object per line.
    let mut piped = Allocator::start(dir.path(), &["--bind", "127.0.0.1:0"], &[]);
    piped.wait_until_listening();
}

/// `text` without the terminal's colour codes (`ESC [ … m`).
fn without_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

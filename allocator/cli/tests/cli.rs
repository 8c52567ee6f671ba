//! Every `lablink` command against a real allocator (in-process, on port 0, with its own
//! PostgreSQL database): the real binary runs with the token in its environment or its saved
//! login, and each test checks what it printed, its exit code and what the database holds.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use diesel::prelude::*;
use lablink_allocator::config::Config;
use lablink_allocator::startup::Application;
use lablink_schema::schema::{api_tokens, audit_events, vms, workshops};
use lablink_schema::testing::TestDatabase;
use serde_json::{json, Value};

const LABLINK: &str = env!("CARGO_BIN_EXE_lablink");
const ADMIN_PASSWORD: &str = "cli-test-admin-password";

/// An allocator with a database and a working directory of its own.
struct Allocator {
    url: String,
    database: TestDatabase,
    dir: tempfile::TempDir,
    http: reqwest::Client,
    _handle: ServerHandle,
}

async fn allocator(adjust: impl FnOnce(&mut Config, &Path)) -> Allocator {
    let database = TestDatabase::migrated();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.admin.password = Some(ADMIN_PASSWORD.into());
    config.server.bind = "127.0.0.1:0".parse().expect("address");
    config.server.workers = 1;
    config.server.shutdown_timeout_secs = 1;
    config.database.url = Some(database.url().to_owned());
    config.database.data_dir = dir.path().join("data");
    config.database.pool_size = 6;
    config.database.writer_threads = 2;
    config.provider.max_vms = 5;
    adjust(&mut config, dir.path());
    let application = Application::build(config).await.expect("allocator starts");
    let url = format!("http://{}", application.address());
    let handle = application.handle();
    actix_web::rt::spawn(application.run_until_stopped());
    Allocator {
        url,
        database,
        dir,
        http: reqwest::Client::new(),
        _handle: handle,
    }
}

/// A script that stands in for the agent program: it runs until it is killed.
fn idle_agent(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("idle-agent");
    std::fs::write(&path, "#!/bin/sh\nexec sleep 600\n").expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

impl Allocator {
    fn conn(&self) -> PgConnection {
        PgConnection::establish(self.database.url()).expect("connect")
    }

    /// Makes an API token with the admin's password.
    async fn token(&self, scope: &str) -> String {
        let answer = self
            .http
            .post(format!("{}/api/admin/tokens", self.url))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&json!({"name": format!("{scope} test"), "scope": scope}))
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), 201);
        answer.json::<Value>().await.expect("json")["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Runs `lablink args…` with `LABLINK_URL` and `LABLINK_TOKEN` set to `token`.
    async fn run(&self, token: &str, args: &[&str]) -> Output {
        self.command(args)
            .env("LABLINK_URL", &self.url)
            .env("LABLINK_TOKEN", token)
            .output()
            .await
            .expect("lablink runs")
    }

    /// `lablink args…` with a home of its own and nothing else in its environment.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(LABLINK);
        command
            .args(args)
            .env_clear()
            .env("HOME", self.dir.path().join("home"))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .kill_on_drop(true);
        command
    }

    /// Enrolls a VM the way an agent does; returns its own token.
    async fn enroll(&self, hostname: &str) -> String {
        let enrollment: Value = self
            .http
            .post(format!("{}/api/admin/enrollment-tokens", self.url))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&json!({"label": "cli tests"}))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        let answer: Value = self
            .http
            .post(format!("{}/api/vm-status", self.url))
            .bearer_auth(enrollment["token"].as_str().expect("token"))
            .json(&json!({"hostname": hostname, "status": "running"}))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        answer["token"].as_str().expect("vm token").to_owned()
    }

    async fn ship_log(&self, hostname: &str, token: &str, lines: &[&str]) {
        let answer = self
            .http
            .post(format!("{}/api/vm-logs", self.url))
            .bearer_auth(token)
            .json(&json!({"log_group": "g", "log_stream": hostname, "messages": lines}))
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), 200);
    }

    fn vm_count(&self) -> i64 {
        vms::table
            .count()
            .get_result(&mut self.conn())
            .expect("count")
    }
}

/// The next line a running command prints, within 20 s.
async fn next_line(out: &mut tokio::io::BufReader<tokio::process::ChildStdout>) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(20), out.read_line(&mut line))
        .await
        .expect("a line in time")
        .expect("read");
    line
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

#[actix_web::test]
async fn login_saves_a_private_login_that_later_commands_use() {
    use std::os::unix::fs::PermissionsExt;
    let allocator = allocator(|_, _| {}).await;
    let token = allocator.token("read-only").await;
    let mut login = allocator.command(&["login", &allocator.url]);
    login.stdin(std::process::Stdio::piped());
    login.stdout(std::process::Stdio::piped());
    let mut child = login.spawn().expect("spawn");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(format!("{token}\n").as_bytes())
            .await
            .expect("write");
    }
    let output = child.wait_with_output().await.expect("login");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stdout(&output).contains("as token:1:read-only test (read-only)"),
        "{}",
        stdout(&output)
    );
    let saved = allocator
        .dir
        .path()
        .join("home/.config/lablink/credentials.json");
    let mode = std::fs::metadata(&saved)
        .expect("saved")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(std::fs::read_to_string(&saved)
        .expect("read")
        .contains(&token));

    // No token in the environment: the saved login is used.
    let whoami = allocator
        .command(&["whoami"])
        .output()
        .await
        .expect("whoami");
    assert_eq!(code(&whoami), 0, "{}", stderr(&whoami));
    assert!(stdout(&whoami).starts_with("token:1:read-only test (read-only)"));

    // A wrong token is refused at login and nothing is saved over the good one.
    let mut bad = allocator.command(&["login", &allocator.url]);
    bad.env(
        "LABLINK_TOKEN",
        "lla_0000000000000000000000000000000000000000000000000000000000000000",
    );
    let bad = bad.output().await.expect("login");
    assert_eq!(code(&bad), 1);
    assert!(stderr(&bad).contains("not known"), "{}", stderr(&bad));
    assert!(std::fs::read_to_string(&saved)
        .expect("read")
        .contains(&token));

    let logout = allocator
        .command(&["logout"])
        .output()
        .await
        .expect("logout");
    assert_eq!(code(&logout), 0);
    assert!(!saved.exists());
    let nothing = allocator
        .command(&["vms", "ls"])
        .output()
        .await
        .expect("run");
    assert_eq!(code(&nothing), 2, "no login is a usage error");
    assert!(stderr(&nothing).contains("lablink login URL"));
}

#[actix_web::test]
async fn vms_are_created_listed_and_destroyed_with_the_operation_followed_to_its_end() {
    let allocator = allocator(|config, dir| {
        config.provider.local.agent_binary = Some(idle_agent(dir));
    })
    .await;
    let token = allocator.token("admin").await;

    let empty = allocator.run(&token, &["vms", "ls"]).await;
    assert_eq!(code(&empty), 0, "{}", stderr(&empty));
    assert_eq!(stdout(&empty), "no VMs\n");

    // Not a terminal: no bar is drawn, and the last line says how it ended.
    let created = allocator.run(&token, &["vms", "create", "2"]).await;
    assert_eq!(code(&created), 0, "{}", stderr(&created));
    let last = stdout(&created)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert!(
        last.starts_with("operation 1 (create) succeeded in "),
        "{}",
        stdout(&created)
    );
    assert_eq!(allocator.vm_count(), 2);
    let hostnames: Vec<String> = vms::table
        .select(vms::hostname)
        .order(vms::hostname)
        .load(&mut allocator.conn())
        .expect("hostnames");
    for hostname in &hostnames {
        assert!(last.contains(hostname.as_str()), "{last}");
    }

    let listed = allocator.run(&token, &["vms", "ls"]).await;
    let table = stdout(&listed);
    assert!(table.starts_with("HOSTNAME"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
    let json = allocator.run(&token, &["vms", "ls", "--json"]).await;
    let parsed: Value = serde_json::from_str(&stdout(&json)).expect("json output");
    assert_eq!(parsed.as_array().map(Vec::len), Some(2));
    let bad_state = allocator
        .run(&token, &["vms", "ls", "--state", "sleepy"])
        .await;
    assert_eq!(code(&bad_state), 1);
    assert!(
        stderr(&bad_state).contains("not a VM state"),
        "{}",
        stderr(&bad_state)
    );

    let shown = allocator.run(&token, &["vms", "show", &hostnames[0]]).await;
    assert_eq!(code(&shown), 0, "{}", stderr(&shown));
    assert!(stdout(&shown).contains(&hostnames[0]));

    let released = allocator
        .run(&token, &["vms", "release", &hostnames[0]])
        .await;
    assert_eq!(code(&released), 0, "{}", stderr(&released));
    assert_eq!(
        stdout(&released),
        format!("{}: VM released.\n", hostnames[0])
    );
    let rebooted = allocator
        .run(&token, &["vms", "reboot", &hostnames[1]])
        .await;
    assert_eq!(code(&rebooted), 0, "{}", stderr(&rebooted));
    assert_eq!(
        stdout(&rebooted),
        format!("{}: VM rebooting.\n", hostnames[1])
    );
    let state: String = vms::table
        .find(&hostnames[1])
        .select(vms::state)
        .first(&mut allocator.conn())
        .expect("state");
    assert_eq!(state, "recovering");

    let destroyed = allocator.run(&token, &["vms", "destroy", "--all"]).await;
    assert_eq!(code(&destroyed), 0, "{}", stderr(&destroyed));
    assert!(
        stdout(&destroyed).contains("operation 2 (destroy_all) succeeded"),
        "{}",
        stdout(&destroyed)
    );
    assert_eq!(allocator.vm_count(), 0);

    // The audit trail names the token.
    let actors: Vec<String> = audit_events::table
        .filter(audit_events::action.like("vms.%"))
        .select(audit_events::actor)
        .load(&mut allocator.conn())
        .expect("audit");
    assert!(!actors.is_empty());
    assert!(
        actors.iter().all(|a| a == "token:1:admin test"),
        "{actors:?}"
    );
    let audit = allocator
        .run(&token, &["audit", "ls", "--actor", "token:1:admin test"])
        .await;
    assert_eq!(code(&audit), 0, "{}", stderr(&audit));
    assert!(stdout(&audit).contains("vms.create"), "{}", stdout(&audit));
}

#[actix_web::test]
async fn a_failed_operation_fails_the_command_and_says_why() {
    let allocator = allocator(|config, _| {
        config.provider.local.agent_binary = Some("/nonexistent/lablink-client".into());
    })
    .await;
    let token = allocator.token("admin").await;
    let failed = allocator.run(&token, &["vms", "create", "1"]).await;
    assert_eq!(code(&failed), 1);
    assert!(
        stdout(&failed).contains("operation 1 (create) failed"),
        "{}",
        stdout(&failed)
    );
    assert!(stdout(&failed).contains("cannot start the agent"));
    assert!(
        stderr(&failed).contains("lablink ops show 1"),
        "{}",
        stderr(&failed)
    );
    assert_eq!(allocator.vm_count(), 0);

    let queued = allocator
        .run(&token, &["vms", "create", "1", "--no-wait"])
        .await;
    assert_eq!(code(&queued), 0, "{}", stderr(&queued));
    assert!(
        stdout(&queued).contains("lablink ops wait 2"),
        "{}",
        stdout(&queued)
    );
    let waited = allocator.run(&token, &["ops", "wait", "2"]).await;
    assert_eq!(code(&waited), 1);
    let shown = allocator.run(&token, &["ops", "show", "2"]).await;
    assert!(stdout(&shown).contains("failed"), "{}", stdout(&shown));
    let listed = allocator.run(&token, &["ops", "ls"]).await;
    assert_eq!(stdout(&listed).lines().count(), 3, "{}", stdout(&listed));
}

#[actix_web::test]
async fn usage_mistakes_exit_2_and_refusals_exit_1_saying_what_to_do() {
    let allocator = allocator(|_, _| {}).await;
    let read_only = allocator.token("read-only").await;
    let usage = allocator.run(&read_only, &["vms", "create"]).await;
    assert_eq!(code(&usage), 2, "{}", stderr(&usage));
    let unknown = allocator.run(&read_only, &["vms", "fly"]).await;
    assert_eq!(code(&unknown), 2);

    let refused = allocator.run(&read_only, &["vms", "create", "1"]).await;
    assert_eq!(code(&refused), 1);
    let said = stderr(&refused);
    assert!(
        said.contains("read-only") && said.contains("read_only_token"),
        "{said}"
    );
    assert!(said.contains("hint:"), "{said}");
    assert_eq!(allocator.vm_count(), 0);

    let missing = allocator
        .run(&read_only, &["vms", "release", "no-such-vm"])
        .await;
    assert_eq!(code(&missing), 1);

    let completions = allocator.run(&read_only, &["completions", "bash"]).await;
    assert_eq!(code(&completions), 0);
    assert!(stdout(&completions).contains("lablink"));
}

#[actix_web::test]
async fn workshops_are_created_from_a_file_listed_and_ended() {
    let allocator = allocator(|config, _| {
        config.provider.local.agent_binary = Some("/nonexistent/lablink-client".into());
        config.workshops.prices.insert("g5.xlarge".to_owned(), 1.5);
    })
    .await;
    let token = allocator.token("admin").await;
    let start = chrono::Utc::now() + chrono::Duration::days(2);
    let file = allocator.dir.path().join("workshop.yaml");
    std::fs::write(
        &file,
        format!(
            "name: SLEAP workshop\nstarts_at: {}\nends_at: {}\nheadcount: 3\n\
             warmup_lead_secs: 1800\nadmission: invite\nvm_settings:\n  instance_type: g5.xlarge\n",
            start.to_rfc3339(),
            (start + chrono::Duration::hours(6)).to_rfc3339()
        ),
    )
    .expect("file");
    let created = allocator
        .run(
            &token,
            &["workshop", "create", "-f", file.to_str().expect("path")],
        )
        .await;
    assert_eq!(code(&created), 0, "{}", stderr(&created));
    assert!(
        stdout(&created).starts_with("workshop 1 \"SLEAP workshop\" created: scheduled"),
        "{}",
        stdout(&created)
    );
    assert!(stdout(&created).contains("invite code (shown this once): "));
    let names: Vec<String> = workshops::table
        .select(workshops::name)
        .load(&mut allocator.conn())
        .expect("names");
    assert_eq!(names, vec!["SLEAP workshop"]);

    // A mistake in the file names its line and field, and nothing is made.
    let bad = allocator.dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: Broken\nheadcount: 3\nwarmup_lead_secs: 60\ncolour: blue\n",
    )
    .expect("file");
    let refused = allocator
        .run(
            &token,
            &["workshop", "create", "-f", bad.to_str().expect("path")],
        )
        .await;
    assert_eq!(code(&refused), 2);
    let said = stderr(&refused);
    assert!(said.contains("line 4") && said.contains("colour"), "{said}");
    let count: i64 = workshops::table
        .count()
        .get_result(&mut allocator.conn())
        .expect("count");
    assert_eq!(count, 1);

    let listed = allocator.run(&token, &["workshop", "ls"]).await;
    assert!(
        stdout(&listed).contains("SLEAP workshop"),
        "{}",
        stdout(&listed)
    );
    let ended = allocator.run(&token, &["workshop", "end", "1"]).await;
    assert_eq!(code(&ended), 0, "{}", stderr(&ended));
    assert!(
        stdout(&ended).starts_with("workshop 1 ended at "),
        "{}",
        stdout(&ended)
    );
    // The workshop's scheduler carries the end out a moment later.
    let mut state = String::new();
    for _ in 0..100 {
        state = workshops::table
            .select(workshops::state)
            .first(&mut allocator.conn())
            .expect("state");
        if state != "scheduled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(state == "ended" || state == "torn_down", "{state}");
    let again = allocator.run(&token, &["workshop", "end", "1"]).await;
    assert_eq!(code(&again), 1, "ending twice is refused");

    let export = allocator
        .run(&token, &["export", "participants", "--format", "csv"])
        .await;
    assert_eq!(code(&export), 0, "{}", stderr(&export));
    assert!(
        stdout(&export)
            .trim_start_matches('\u{feff}')
            .starts_with("\"email\""),
        "{}",
        stdout(&export)
    );
}

#[actix_web::test]
async fn logs_are_read_and_followed() {
    let allocator = allocator(|_, _| {}).await;
    let token = allocator.token("read-only").await;
    let vm_token = allocator.enroll("vm-logs").await;
    allocator
        .ship_log("vm-logs", &vm_token, &["first line", "second line"])
        .await;
    let read = allocator.run(&token, &["logs", "vm-logs"]).await;
    assert_eq!(code(&read), 0, "{}", stderr(&read));
    assert_eq!(stdout(&read), "first line\nsecond line\n");

    let mut follow = allocator.command(&["logs", "vm-logs", "-f"]);
    follow
        .env("LABLINK_URL", &allocator.url)
        .env("LABLINK_TOKEN", &token)
        .stdout(std::process::Stdio::piped());
    let mut child = follow.spawn().expect("follow");
    let mut out = tokio::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(next_line(&mut out).await);
    }
    allocator
        .ship_log("vm-logs", &vm_token, &["third line"])
        .await;
    seen.push(next_line(&mut out).await);
    assert_eq!(seen, vec!["first line\n", "second line\n", "third line\n"]);
    child.kill().await.expect("stop following");

    let unknown = allocator.run(&token, &["logs", "no-such-vm"]).await;
    assert_eq!(code(&unknown), 1);
}

#[actix_web::test]
async fn tokens_are_made_listed_and_revoked() {
    let allocator = allocator(|_, _| {}).await;
    let token = allocator.token("admin").await;
    let made = allocator
        .run(
            &token,
            &[
                "tokens",
                "create",
                "nightly",
                "--scope",
                "read-only",
                "--expires-in-days",
                "7",
            ],
        )
        .await;
    assert_eq!(code(&made), 0, "{}", stderr(&made));
    let secret = stdout(&made).trim().to_owned();
    assert!(
        secret.starts_with("lla_"),
        "only the token on stdout: {secret}"
    );
    let stored: (String, Option<chrono::NaiveDateTime>) = api_tokens::table
        .filter(api_tokens::name.eq("nightly"))
        .select((api_tokens::scope, api_tokens::expires_at))
        .first(&mut allocator.conn())
        .expect("stored");
    assert_eq!(stored.0, "read-only");
    assert!(stored.1.is_some());

    let listed = allocator.run(&token, &["tokens", "ls"]).await;
    assert!(stdout(&listed).contains("nightly"), "{}", stdout(&listed));
    assert!(!stdout(&listed).contains(&secret));
    let works = allocator.run(&secret, &["vms", "ls"]).await;
    assert_eq!(code(&works), 0);

    let revoked = allocator.run(&token, &["tokens", "revoke", "2"]).await;
    assert_eq!(code(&revoked), 0, "{}", stderr(&revoked));
    assert_eq!(stdout(&revoked), "token 2 \"nightly\" revoked\n");
    let refused = allocator.run(&secret, &["vms", "ls"]).await;
    assert_eq!(code(&refused), 1);
    assert!(stderr(&refused).contains("revoked"), "{}", stderr(&refused));
}

/// A stand-in for an allocator of another release: it answers only `/api/version`.
async fn other_release(body: Option<Value>) -> (String, ServerHandle) {
    let server = actix_web::HttpServer::new(move || {
        let body = body.clone();
        actix_web::App::new().route(
            "/api/version",
            actix_web::web::get().to(move || {
                let body = body.clone();
                async move {
                    match body {
                        Some(body) => actix_web::HttpResponse::Ok().json(body),
                        None => actix_web::HttpResponse::NotFound().finish(),
                    }
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let address = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (address, handle)
}

#[actix_web::test]
async fn an_allocator_of_another_api_version_is_named_clearly() {
    let allocator = allocator(|_, _| {}).await;
    for (body, expected) in [
        (Some(json!({"version": "9.0.0", "api": 9})), "admin API 9"),
        (None, "older than this lablink"),
    ] {
        let (url, _handle) = other_release(body).await;
        let output = allocator
            .command(&["vms", "ls"])
            .env("LABLINK_URL", &url)
            .env("LABLINK_TOKEN", "lla_x")
            .output()
            .await
            .expect("run");
        assert_eq!(code(&output), 1);
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    }
}

impl Allocator {
    /// The VM's lifecycle state once it is `state`, waiting up to 10 s.
    async fn until_state(&self, hostname: &str, state: &str) {
        for _ in 0..200 {
            let now: String = vms::table
                .find(hostname)
                .select(vms::state)
                .first(&mut self.conn())
                .expect("state");
            if now == state {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{hostname} never became {state}");
    }

    async fn post_as_vm(&self, path: &str, token: &str, body: Value) {
        let answer = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), 200, "{path}");
    }
}

#[actix_web::test]
async fn a_quarantine_is_cleared_and_a_vm_replaced() {
    let allocator = allocator(|config, dir| {
        config.provider.local.agent_binary = Some(idle_agent(dir));
    })
    .await;
    let token = allocator.token("admin").await;
    let vm_token = allocator.enroll("vm-sick").await;
    allocator
        .post_as_vm(
            "/api/gpu_health",
            &vm_token,
            json!({"hostname": "vm-sick", "gpu_status": "Unhealthy"}),
        )
        .await;
    allocator.until_state("vm-sick", "quarantined").await;
    let cleared = allocator
        .run(&token, &["vms", "clear-quarantine", "vm-sick"])
        .await;
    assert_eq!(code(&cleared), 0, "{}", stderr(&cleared));
    assert!(
        stdout(&cleared).starts_with("vm-sick: "),
        "{}",
        stdout(&cleared)
    );
    let state: String = vms::table
        .find("vm-sick")
        .select(vms::state)
        .first(&mut allocator.conn())
        .expect("state");
    assert_ne!(state, "quarantined");
    let again = allocator
        .run(&token, &["vms", "clear-quarantine", "vm-sick"])
        .await;
    assert_eq!(code(&again), 1);
    assert!(
        stderr(&again).contains("not quarantined"),
        "{}",
        stderr(&again)
    );

    // A VM the provider made is replaced by a new one.
    let created = allocator.run(&token, &["vms", "create", "1"]).await;
    assert_eq!(code(&created), 0, "{}", stderr(&created));
    let made: String = vms::table
        .filter(vms::hostname.ne("vm-sick"))
        .select(vms::hostname)
        .first(&mut allocator.conn())
        .expect("made");
    let replaced = allocator.run(&token, &["vms", "replace", &made]).await;
    assert_eq!(code(&replaced), 0, "{}", stderr(&replaced));
    assert!(
        stdout(&replaced).contains("(replace) succeeded"),
        "{}",
        stdout(&replaced)
    );
    let left: Vec<String> = vms::table
        .filter(vms::hostname.ne("vm-sick"))
        .select(vms::hostname)
        .load(&mut allocator.conn())
        .expect("left");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0], made, "the old VM is gone, a new one stands in");
}

#[actix_web::test]
async fn a_workshop_is_shown_and_extended() {
    let allocator = allocator(|config, _| {
        config.provider.local.agent_binary = Some("/nonexistent/lablink-client".into());
    })
    .await;
    let token = allocator.token("admin").await;
    let start = chrono::Utc::now() + chrono::Duration::days(3);
    let file = allocator.dir.path().join("workshop.json");
    std::fs::write(
        &file,
        json!({
            "name": "Extended",
            "starts_at": start.to_rfc3339(),
            "ends_at": (start + chrono::Duration::hours(2)).to_rfc3339(),
            "headcount": 2,
            "warmup_lead_secs": 600,
        })
        .to_string(),
    )
    .expect("file");
    let created = allocator
        .run(
            &token,
            &["workshop", "create", "-f", file.to_str().expect("path")],
        )
        .await;
    assert_eq!(code(&created), 0, "{}", stderr(&created));
    let shown = allocator.run(&token, &["workshop", "show", "1"]).await;
    assert_eq!(code(&shown), 0, "{}", stderr(&shown));
    assert!(stdout(&shown).contains("Extended"), "{}", stdout(&shown));
    assert!(
        stdout(&shown).contains("warm_up"),
        "the plan is listed: {}",
        stdout(&shown)
    );
    let until = (start + chrono::Duration::hours(4)).to_rfc3339();
    let extended = allocator
        .run(&token, &["workshop", "extend", "1", "--until", &until])
        .await;
    assert_eq!(code(&extended), 0, "{}", stderr(&extended));
    assert!(stdout(&extended).starts_with("workshop 1 extended"));
    let ends: chrono::NaiveDateTime = workshops::table
        .select(workshops::ends_at)
        .first(&mut allocator.conn())
        .expect("end");
    assert_eq!(
        ends.and_utc().timestamp(),
        (start + chrono::Duration::hours(4)).timestamp()
    );
    let earlier = allocator
        .run(
            &token,
            &["workshop", "extend", "1", "--until", &start.to_rfc3339()],
        )
        .await;
    assert_eq!(code(&earlier), 1);
    let shown_json = allocator
        .run(&token, &["--json", "workshop", "show", "1"])
        .await;
    let parsed: Value = serde_json::from_str(&stdout(&shown_json)).expect("json");
    assert_eq!(parsed["name"], "Extended");
}

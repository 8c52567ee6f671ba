//! The local provider end to end, with the real agent binary: the admin creates 2 VMs, the
//! agents register, a researcher is assigned, that VM's agent starts the (logged) remote
//! desktop, the admin releases the VM, the agent waits again, and destroying all stops them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lablink_allocator::config::{Config, ProviderKind};
use lablink_allocator::startup::Application;
use lablink_schema::testing::TestDatabase;
use lablink_schema::vms::Vm;
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "local-provider-admin";
const PATIENCE: Duration = Duration::from_secs(30);

struct Lab {
    database: TestDatabase,
    data_dir: tempfile::TempDir,
    base: String,
    client: reqwest::Client,
}

impl Lab {
    async fn start() -> Lab {
        let database = TestDatabase::migrated();
        let data_dir = tempfile::tempdir().expect("temp dir");
        // Port 0 cannot be told to the agents, so take a free port first.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut config = Config::default();
        config.server.bind = format!("127.0.0.1:{port}").parse().expect("address");
        config.server.workers = 1;
        config.database.url = Some(database.url().to_owned());
        config.database.data_dir = data_dir.path().to_owned();
        config.admin.password = Some(ADMIN_PASSWORD.to_owned());
        config.provider.kind = ProviderKind::Local;
        config.provider.name_prefix = "lablink-vm-e2e".to_owned();
        config.provider.local.agent_binary =
            Some(PathBuf::from(env!("CARGO_BIN_EXE_lablink-client")));
        let app = Application::build(config).await.expect("allocator");
        let base = format!("http://{}", app.address());
        actix_web::rt::spawn(app.run_until_stopped());
        Lab {
            database,
            data_dir,
            base,
            client: reqwest::Client::new(),
        }
    }

    async fn admin_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// Waits for the operation to finish; returns its final JSON.
    async fn operation(&self, queued: reqwest::Response) -> Value {
        assert_eq!(queued.status(), 202);
        let id = queued.json::<Value>().await.expect("json")["operation_id"]
            .as_i64()
            .expect("id");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let op: Value = self
                .client
                .get(format!("{}/api/admin/operations/{id}", self.base))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .send()
                .await
                .expect("request")
                .json()
                .await
                .expect("json");
            if op["finished_at"] != Value::Null {
                return op;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "operation {id} did not finish: {op}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn until(&self, what: &str, check: impl Fn(&[Vm]) -> bool) -> Vec<Vm> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let vms = {
                let mut conn = self.database.connect();
                Vm::list_all(&mut conn).expect("list")
            };
            if check(&vms) {
                return vms;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting until {what}: {vms:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn agent_log(&self, hostname: &str) -> String {
        std::fs::read_to_string(
            self.data_dir
                .path()
                .join("agents")
                .join(format!("{hostname}.log")),
        )
        .unwrap_or_default()
    }

    async fn until_logged(&self, hostname: &str, text: &str, times: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.agent_log(hostname).matches(text).count() < times {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{hostname} never logged `{text}` {times}×:\n{}",
                self.agent_log(hostname)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn ready(vm: &Vm) -> bool {
    vm.status == "running" && vm.gpu_health.is_some() && vm.user_email.is_none()
}

#[actix_web::test]
async fn admin_creates_vms_a_researcher_gets_one_and_release_frees_it() {
    let lab = Lab::start().await;

    let created = lab
        .operation(lab.admin_post("/api/admin/vms", json!({"count": 2})).await)
        .await;
    assert_eq!(created["state"], "succeeded", "{created}");
    let vms = lab
        .until("both agents registered and ready", |vms| {
            vms.len() == 2 && vms.iter().all(ready)
        })
        .await;
    assert_eq!(
        vms.iter()
            .map(|vm| vm.hostname.as_str())
            .collect::<Vec<_>>(),
        ["lablink-vm-e2e-1", "lablink-vm-e2e-2"]
    );

    // A researcher asks; the assigned VM's agent starts the remote desktop.
    let command =
        "DISPLAY= /opt/google/chrome-remote-desktop/start-host --code=\"4/0AVG7fiQendtoend\" \
        --redirect-url=\"https://remotedesktop.google.com/_/oauthredirect\" --name=$(hostname)";
    let page = lab
        .client
        .post(format!("{}/api/request_vm", lab.base))
        .form(&[("email", "ada@example.org"), ("crd_command", command)])
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("page");
    let marker = r#"<strong id="hostname">"#;
    let start = page.find(marker).expect("assigned page") + marker.len();
    let hostname = page[start..start + page[start..].find('<').expect("end")].to_owned();
    lab.until_logged(&hostname, "Chrome Remote Desktop would start now", 1)
        .await;
    for secret in ["0AVG7fiQendtoend", "ada@example.org"] {
        assert!(
            !lab.agent_log(&hostname).contains(secret),
            "the agent logged `{secret}`"
        );
    }

    // The admin releases it: the session ends and the VM is free again.
    let released = lab
        .client
        .post(format!("{}/api/admin/vms/{hostname}/release", lab.base))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("release");
    assert_eq!(released.status(), 200);
    lab.until_logged(&hostname, "session would end now", 1)
        .await;
    lab.until("both VMs free again", |vms| {
        vms.len() == 2 && vms.iter().all(ready)
    })
    .await;

    // Destroy everything: the agents stop and the rows go.
    let destroyed = lab
        .operation(
            lab.admin_post("/api/admin/vms/destroy-all", json!({}))
                .await,
        )
        .await;
    assert_eq!(destroyed["state"], "succeeded", "{destroyed}");
    lab.until("no VMs left", <[Vm]>::is_empty).await;
    assert!(Path::new(&lab.data_dir.path().join("agents")).is_dir());
}

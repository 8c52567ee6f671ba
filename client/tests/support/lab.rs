//! A whole lab for end-to-end tests: an allocator on a fresh PostgreSQL database with the
//! local provider, whose VMs are the real agent binary, and helpers to watch it.

use std::path::PathBuf;
use std::time::Duration;

use lablink_allocator::config::{Config, ProviderKind};
use lablink_allocator::startup::Application;
use lablink_schema::testing::TestDatabase;
use lablink_schema::vms::Vm;
use serde_json::Value;

pub const ADMIN_PASSWORD: &str = "local-provider-admin";
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Lab {
    pub database: TestDatabase,
    pub data_dir: tempfile::TempDir,
    pub base: String,
    pub client: reqwest::Client,
}

#[allow(dead_code)]
impl Lab {
    /// Starts the lab; its VMs are named `<name_prefix>-1`, `<name_prefix>-2`, ….
    pub async fn start(name_prefix: &str) -> Lab {
        Self::start_with(name_prefix, |_| {}).await
    }

    /// [`Lab::start`] with `adjust` applied to the allocator's configuration.
    pub async fn start_with(name_prefix: &str, adjust: impl FnOnce(&mut Config)) -> Lab {
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
        config.admin.password = Some(ADMIN_PASSWORD.into());
        config.provider.kind = ProviderKind::Local;
        config.provider.name_prefix = name_prefix.to_owned();
        config.provider.local.agent_binary =
            Some(PathBuf::from(env!("CARGO_BIN_EXE_lablink-client")));
        adjust(&mut config);
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

    /// Starts another allocator on the lab's database, as a second allocator of the same
    /// deployment behind a load balancer would run: its base URL. It starts no agent; the
    /// lab's agents stay connected to the first allocator.
    pub async fn start_peer(
        &self,
        adjust: impl FnOnce(&mut Config),
    ) -> (String, tempfile::TempDir) {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::default();
        config.server.bind = "127.0.0.1:0".parse().expect("address");
        config.server.workers = 1;
        config.database.url = Some(self.database.url().to_owned());
        config.database.data_dir = data_dir.path().to_owned();
        config.admin.password = Some(ADMIN_PASSWORD.into());
        config.provider.kind = ProviderKind::Local;
        config.provider.local.agent_binary =
            Some(PathBuf::from(env!("CARGO_BIN_EXE_lablink-client")));
        adjust(&mut config);
        let app = Application::build(config).await.expect("peer allocator");
        let base = format!("http://{}", app.address());
        actix_web::rt::spawn(app.run_until_stopped());
        (base, data_dir)
    }

    /// The full URL of `path` on the allocator.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates `count` VMs through the admin API and waits until all are ready for
    /// researchers.
    pub async fn create_ready_vms(&self, count: usize) -> Vec<Vm> {
        let created = self
            .operation(
                self.admin_post("/api/admin/vms", serde_json::json!({"count": count}))
                    .await,
            )
            .await;
        assert_eq!(created["state"], "succeeded", "{created}");
        self.until("the new VMs are ready", |vms| {
            vms.len() >= count && vms.iter().filter(|vm| ready(vm)).count() >= count
        })
        .await
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// Releases `hostname` through the admin API.
    pub async fn release(&self, hostname: &str) {
        let released = self
            .admin_post(
                &format!("/api/admin/vms/{hostname}/release"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(released.status(), 200, "release {hostname}");
    }

    /// Waits for the operation to finish; returns its final JSON.
    pub async fn operation(&self, queued: reqwest::Response) -> Value {
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

    pub async fn until(&self, what: &str, check: impl Fn(&[Vm]) -> bool) -> Vec<Vm> {
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

    /// A dashboard page as the signed-in admin sees it.
    pub async fn dashboard_page(&self, path: &str) -> String {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        let form = browser
            .get(self.url("/admin/login"))
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
        browser
            .post(self.url("/admin/login"))
            .form(&[
                ("user", "admin"),
                ("password", ADMIN_PASSWORD),
                ("login_nonce", &nonce),
            ])
            .send()
            .await
            .expect("sign in");
        browser
            .get(self.url(path))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html")
    }

    pub fn agent_log(&self, hostname: &str) -> String {
        std::fs::read_to_string(
            self.data_dir
                .path()
                .join("agents")
                .join(format!("{hostname}.log")),
        )
        .unwrap_or_default()
    }

    pub async fn until_logged(&self, hostname: &str, text: &str, times: usize) {
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

/// Running, its GPU reported, and not handed out: free for a researcher.
pub fn ready(vm: &Vm) -> bool {
    vm.status == "running" && vm.gpu_health.is_some() && vm.user_email.is_none()
}

//! `spawn_app()`: an allocator on a free port with a database of its own, and a client
//! whose methods are named after the endpoints.

use actix_web::dev::ServerHandle;
use lablink_allocator::config::Config;
use lablink_allocator::startup::Application;
use lablink_schema::testing::TestDatabase;

/// A running allocator; stops when dropped with the test's actix system.
#[allow(dead_code)]
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The PostgreSQL database, when the app runs on one.
    pub database: Option<TestDatabase>,
    /// The SQLite data directory, when the app runs on SQLite.
    pub data_dir: Option<tempfile::TempDir>,
    pub handle: ServerHandle,
    /// An enrollment token made on first use, with which `register_vm` enrolls VMs.
    enrollment_token: tokio::sync::OnceCell<String>,
    /// Set once the browser has opened the start page.
    browser_opened: tokio::sync::OnceCell<()>,
}

/// The admin password every test app is configured with.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// A genuine-looking Chrome Remote Desktop command with a code derived from `seed`.
pub fn crd_command(seed: &str) -> String {
    let code: String = format!("4/0AVG7fiQ{seed}xxxxxxxxxx")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '_' || *c == '-')
        .collect();
    format!(
        "DISPLAY= /opt/google/chrome-remote-desktop/start-host --code=\"{code}\" \
         --redirect-url=\"https://remotedesktop.google.com/_/oauthredirect\" --name=$(hostname)"
    )
}

pub fn test_config() -> Config {
    let mut config = Config::default();
    config.admin.password = Some(ADMIN_PASSWORD.into());
    config.server.bind = "127.0.0.1:0".parse().expect("address");
    config.server.workers = 1;
    config.server.shutdown_timeout_secs = 1;
    config.database.startup_timeout_secs = 5;
    config.database.pool_size = 8;
    config.database.writer_threads = 2;
    config
}

/// An allocator on a fresh, migrated PostgreSQL database.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(TestDatabase::migrated()).await
}

/// An allocator on `database`, which it migrates itself if needed.
pub async fn spawn_app_on(database: TestDatabase) -> TestApp {
    let mut app = spawn_app_on_url(database.url()).await;
    app.database = Some(database);
    app
}

/// An allocator on the PostgreSQL database at `url`, owned by the caller.
pub async fn spawn_app_on_url(url: &str) -> TestApp {
    let mut config = test_config();
    config.database.url = Some(url.to_owned());
    start(config).await
}

/// An allocator on the embedded SQLite backend, in a temporary data directory.
pub async fn spawn_app_on_sqlite() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config();
    config.database.data_dir = dir.path().to_owned();
    let mut app = start(config).await;
    app.data_dir = Some(dir);
    app
}

/// An allocator on a fresh PostgreSQL database, with `adjust` applied to its configuration.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let database = TestDatabase::migrated();
    let mut config = test_config();
    config.database.url = Some(database.url().to_owned());
    adjust(&mut config);
    let mut app = start(config).await;
    app.database = Some(database);
    app
}

pub async fn start(config: Config) -> TestApp {
    start_with_cloud(config, None).await
}

/// An allocator on a fresh PostgreSQL database using `cloud` as the cloud's API.
pub async fn spawn_app_with_cloud(
    adjust: impl FnOnce(&mut Config),
    cloud: std::sync::Arc<dyn lablink_actors::provisioning::cloud::CloudApi>,
) -> TestApp {
    let database = TestDatabase::migrated();
    let mut config = test_config();
    config.database.url = Some(database.url().to_owned());
    adjust(&mut config);
    let mut app = start_with_cloud(config, Some(cloud)).await;
    app.database = Some(database);
    app
}

async fn start_with_cloud(
    config: Config,
    cloud: Option<std::sync::Arc<dyn lablink_actors::provisioning::cloud::CloudApi>>,
) -> TestApp {
    let application = Application::build_with(config, cloud)
        .await
        .expect("the allocator should start");
    let address = format!("http://{}", application.address());
    let handle = application.handle();
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        address,
        // A browser: it keeps the key the start page gives it, so a researcher asking again
        // from it is shown the VM they hold.
        client: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client"),
        database: None,
        data_dir: None,
        handle,
        enrollment_token: tokio::sync::OnceCell::new(),
        browser_opened: tokio::sync::OnceCell::new(),
    }
}

#[allow(dead_code)]
impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request should reach the allocator")
    }

    /// Opens the start page once, so this app's browser holds its key.
    pub async fn browser_key_once(&self) {
        self.browser_opened
            .get_or_init(|| async {
                let page = self.get("/").await;
                assert_eq!(page.status(), 200, "the start page");
            })
            .await;
    }

    pub async fn get_healthz(&self) -> reqwest::Response {
        self.get("/healthz").await
    }

    pub async fn get_readyz(&self) -> reqwest::Response {
        self.get("/readyz").await
    }

    /// The PostgreSQL database this app runs on.
    pub fn postgres(&self) -> &TestDatabase {
        self.database.as_ref().expect("this app runs on PostgreSQL")
    }
}

/// Whether an audit action is the enrollment that `register_vm` does on the way.
pub fn is_enrollment_action(action: &str) -> bool {
    action == "vm.enroll" || action.starts_with("enrollment_token.")
}

/// What `POST /api/request_vm` showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    Assigned { hostname: String, pin: String },
    Refused { status: u16, error: String },
}

#[allow(dead_code)]
impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .expect("request should reach the allocator")
    }

    pub async fn post_json_as_admin(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(body)
            .send()
            .await
            .expect("request should reach the allocator")
    }

    pub async fn get_as_admin(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .expect("request should reach the allocator")
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request should reach the allocator")
    }

    /// Makes an enrollment token through the admin API with `body`; returns the answer.
    pub async fn create_enrollment_token(&self, body: &serde_json::Value) -> reqwest::Response {
        self.post_json_as_admin("/api/admin/enrollment-tokens", body)
            .await
    }

    /// The enrollment token this app's `register_vm` uses (made on first use).
    pub async fn enrollment_token(&self) -> String {
        self.enrollment_token
            .get_or_init(|| async {
                let response = self
                    .create_enrollment_token(&serde_json::json!({"label": "test machines"}))
                    .await;
                assert_eq!(response.status(), 201, "making an enrollment token");
                let body: serde_json::Value = response.json().await.expect("json");
                body["token"].as_str().expect("token").to_owned()
            })
            .await
            .clone()
    }

    /// Enrolls a VM the way an agent on a lab's own machine does and returns the token it
    /// is given.
    pub async fn register_vm(&self, hostname: &str) -> String {
        let enrollment = self.enrollment_token().await;
        let response = self
            .post_json(
                "/api/vm-status",
                Some(&enrollment),
                &serde_json::json!({"hostname": hostname, "status": "initializing"}),
            )
            .await;
        assert_eq!(response.status(), 200, "registering {hostname}");
        let body: serde_json::Value = response.json().await.expect("json");
        body["token"]
            .as_str()
            .expect("a new VM gets a token")
            .to_owned()
    }

    /// Reports the VM running with the given GPU health: it becomes free.
    pub async fn make_ready(&self, hostname: &str, token: &str, gpu: &str) {
        let response = self
            .post_json(
                "/api/vm-status",
                Some(token),
                &serde_json::json!({"hostname": hostname, "status": "running"}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let response = self
            .post_json(
                "/api/gpu_health",
                Some(token),
                &serde_json::json!({"hostname": hostname, "gpu_status": gpu}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }

    /// Registers `count` free VMs `vm-000`, `vm-001`, … and returns their tokens.
    pub async fn free_vms(&self, count: usize) -> Vec<(String, String)> {
        let mut vms = Vec::new();
        for i in 0..count {
            let hostname = format!("vm-{i:03}");
            let token = self.register_vm(&hostname).await;
            self.make_ready(&hostname, &token, "Healthy").await;
            vms.push((hostname, token));
        }
        vms
    }

    /// Submits the start page's form, from this app's browser (which opens the start page
    /// first, as a participant does, and so has its key).
    pub async fn request_vm_raw(&self, email: &str, crd_command: &str) -> reqwest::Response {
        self.browser_key_once().await;
        self.client
            .post(self.url("/api/request_vm"))
            .form(&[("email", email), ("crd_command", crd_command)])
            .send()
            .await
            .expect("request should reach the allocator")
    }

    /// Submits the form and reads what the page says.
    pub async fn request_vm(&self, email: &str, crd_command: &str) -> RequestOutcome {
        let response = self.request_vm_raw(email, crd_command).await;
        let status = response.status().as_u16();
        let html = response.text().await.expect("page");
        read_outcome(status, &html)
    }

    /// `POST /vm_startup` for `hostname`, holding `held` if given.
    pub async fn vm_startup(
        &self,
        hostname: &str,
        token: &str,
        held: Option<i64>,
    ) -> reqwest::Response {
        let mut body = serde_json::json!({"hostname": hostname});
        if let Some(held) = held {
            body["assignment_id"] = held.into();
        }
        self.post_json("/vm_startup", Some(token), &body).await
    }

    /// Waits for provisioning operation `id` to finish and returns it as the API shows it
    /// (a creation waits a few seconds for agents that never report, as stand-ins do).
    pub async fn finished_operation(&self, id: i64) -> serde_json::Value {
        for _ in 0..600 {
            let op: serde_json::Value = self
                .get_as_admin(&format!("/api/admin/operations/{id}"))
                .await
                .json()
                .await
                .expect("json");
            if op["finished_at"] != serde_json::Value::Null {
                return op;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("operation {id} did not finish");
    }

    pub async fn release(&self, hostname: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/admin/vms/{hostname}/release")))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("request should reach the allocator")
    }

    /// The VM rows as stored.
    pub fn vms(&self) -> Vec<lablink_schema::vms::Vm> {
        let mut conn = self.connection();
        lablink_schema::vms::Vm::list_all(&mut conn).expect("list VMs")
    }

    /// A connection to whichever database this app uses.
    pub fn connection(&self) -> lablink_schema::PooledDbConnection {
        let location = match (&self.database, &self.data_dir) {
            (Some(db), _) => {
                lablink_schema::connection::DatabaseLocation::Postgres(db.url().to_owned())
            }
            (None, Some(dir)) => {
                lablink_schema::connection::DatabaseLocation::sqlite_in(dir.path())
            }
            (None, None) => panic!("app without a database"),
        };
        lablink_schema::connection::build_pool(&location, 1)
            .expect("pool")
            .get()
            .expect("connection")
    }
}

/// Reads the outcome from the assigned page or the start page's error.
pub fn read_outcome(status: u16, html: &str) -> RequestOutcome {
    let between = |start: &str, end: &str| -> Option<String> {
        let from = html.find(start)? + start.len();
        let to = html[from..].find(end)? + from;
        Some(html[from..to].to_owned())
    };
    match (
        between(r#"<strong id="hostname">"#, "</strong>"),
        between(r#"<strong id="pin" class="pin">"#, "</strong>"),
    ) {
        (Some(hostname), Some(pin)) if status == 200 => RequestOutcome::Assigned { hostname, pin },
        _ => RequestOutcome::Refused {
            status,
            error: between(r#"id="error">"#, "</p>").unwrap_or_default(),
        },
    }
}

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
}

fn test_config() -> Config {
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".parse().expect("address");
    config.server.workers = 1;
    config.server.shutdown_timeout_secs = 1;
    config.database.startup_timeout_secs = 5;
    config.database.pool_size = 6;
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

async fn start(config: Config) -> TestApp {
    let application = Application::build(config)
        .await
        .expect("the allocator should start");
    let address = format!("http://{}", application.address());
    let handle = application.handle();
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        database: None,
        data_dir: None,
        handle,
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

//! `/healthz` and `/readyz` on both backends, and readiness reporting a lost or
//! un-migrated database.

use diesel::connection::SimpleConnection;
use diesel::Connection;
use lablink_schema::testing::{server_url, TestDatabase};
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_on_sqlite, spawn_app_on_url};

#[actix_web::test]
async fn healthz_answers_while_the_process_runs() {
    let app = spawn_app().await;
    let response = app.get_healthz().await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
}

#[actix_web::test]
async fn readyz_is_ready_on_postgres() {
    let app = spawn_app().await;
    let response = app.get_readyz().await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ready");
}

#[actix_web::test]
async fn readyz_is_ready_on_sqlite_and_the_database_file_is_created() {
    let app = spawn_app_on_sqlite().await;
    assert_eq!(app.get_readyz().await.status(), 200);
    let dir = app.data_dir.as_ref().expect("sqlite app").path();
    assert!(dir.join("lablink.sqlite").is_file());
}

#[actix_web::test]
async fn readyz_is_503_once_the_database_is_gone() {
    let app = spawn_app().await;
    assert_eq!(app.get_readyz().await.status(), 200);

    let mut admin = diesel::PgConnection::establish(&server_url()).expect("server");
    admin
        .batch_execute(&format!(
            "DROP DATABASE {} WITH (FORCE)",
            app.postgres().name()
        ))
        .expect("drop the app's database");

    let response = app.get_readyz().await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["reason"], "database unreachable");
    // Liveness is not readiness: the process itself is fine.
    assert_eq!(app.get_healthz().await.status(), 200);
}

#[actix_web::test]
async fn readyz_is_503_while_a_migration_is_missing() {
    let app = spawn_app().await;
    let mut conn = app.postgres().connect();
    conn.batch_execute(
        "DELETE FROM __diesel_schema_migrations \
         WHERE version = (SELECT max(version) FROM __diesel_schema_migrations)",
    )
    .expect("forget the newest migration");
    let response = app.get_readyz().await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["reason"], "database migrations pending");
}

#[actix_web::test]
async fn two_allocators_starting_together_on_an_empty_database_both_become_ready() {
    let database = TestDatabase::empty();
    let (first, second) = futures_util::future::join(
        spawn_app_on_url(database.url()),
        spawn_app_on_url(database.url()),
    )
    .await;
    assert_eq!(first.get_readyz().await.status(), 200);
    assert_eq!(second.get_readyz().await.status(), 200);
}

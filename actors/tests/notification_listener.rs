//! The listener against the real PostgreSQL: changes committed by another process arrive,
//! and a change made while the listener's connection was killed is not lost.

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use lablink_actors::change_feed::VmEvent;
use lablink_actors::notification_listener::{
    NotificationListener, ReconnectPolicy, APPLICATION_NAME,
};
use lablink_schema::testing::TestDatabase;
use tokio::sync::mpsc;

/// Generous: the events arrive in milliseconds, but CI machines stall.
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs `sql` in a separate `psql` process, as another program sharing the database would.
async fn psql(url: &str, sql: &str) -> String {
    let output = tokio::process::Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-X", "-At", "-c", sql])
        .output()
        .await
        .unwrap_or_else(|err| panic!("these tests need the `psql` client on PATH: {err}"));
    assert!(
        output.status.success(),
        "psql failed on `{sql}`: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<VmEvent>) -> VmEvent {
    tokio::time::timeout(EVENT_TIMEOUT, events.recv())
        .await
        .expect("no VM event arrived in time")
        .expect("event feed closed")
}

fn start_listener(
    database: &TestDatabase,
    policy: ReconnectPolicy,
) -> mpsc::UnboundedReceiver<VmEvent> {
    let (feed, events) = mpsc::unbounded_channel();
    NotificationListener::new(
        database.url().to_owned(),
        database.pool(),
        Arc::new(feed),
        policy,
    )
    .start();
    events
}

#[actix::test]
async fn a_change_committed_by_another_process_reaches_the_listener() {
    let database = TestDatabase::migrated();
    let mut events = start_listener(&database, ReconnectPolicy::default());
    assert_eq!(
        next_event(&mut events).await,
        VmEvent::Resynced { hostnames: vec![] }
    );

    psql(
        database.url(),
        "INSERT INTO vms (hostname, status) VALUES ('vm-from-psql', 'running')",
    )
    .await;
    assert_eq!(
        next_event(&mut events).await,
        VmEvent::Changed {
            hostname: "vm-from-psql".into()
        }
    );

    psql(
        database.url(),
        "UPDATE vms SET gpu_health = 'Healthy' WHERE hostname = 'vm-from-psql'",
    )
    .await;
    assert_eq!(
        next_event(&mut events).await,
        VmEvent::Changed {
            hostname: "vm-from-psql".into()
        }
    );
}

#[actix::test]
async fn after_its_connection_is_killed_the_listener_recovers_and_loses_nothing() {
    let database = TestDatabase::migrated();
    // A one-second first retry leaves a clear window in which the listener is away.
    let policy = ReconnectPolicy {
        initial_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(2),
    };
    let mut events = start_listener(&database, policy);
    assert_eq!(
        next_event(&mut events).await,
        VmEvent::Resynced { hostnames: vec![] }
    );
    psql(
        database.url(),
        "INSERT INTO vms (hostname, status) VALUES ('vm-before', 'running')",
    )
    .await;
    assert_eq!(
        next_event(&mut events).await,
        VmEvent::Changed {
            hostname: "vm-before".into()
        }
    );

    let listening_session = format!(
        "FROM pg_stat_activity WHERE application_name = '{APPLICATION_NAME}' \
         AND datname = current_database()"
    );
    let killed = psql(
        database.url(),
        &format!("SELECT count(pg_terminate_backend(pid)) {listening_session}"),
    )
    .await;
    assert_eq!(
        killed, "1",
        "exactly one listening session should be killed"
    );
    // Wait until the killed session is really gone, then change a VM while nobody listens.
    let mut remaining = String::new();
    for _ in 0..50 {
        remaining = psql(
            database.url(),
            &format!("SELECT count(*) {listening_session}"),
        )
        .await;
        if remaining == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(remaining, "0", "the killed session did not go away");
    psql(
        database.url(),
        "INSERT INTO vms (hostname, status) VALUES ('vm-while-away', 'running')",
    )
    .await;

    // The notification for that insert went nowhere; the re-read after reconnecting finds it.
    assert_eq!(
        next_event(&mut events).await,
        VmEvent::Resynced {
            hostnames: vec!["vm-before".into(), "vm-while-away".into()]
        }
    );
    // And it listens again.
    psql(
        database.url(),
        "DELETE FROM vms WHERE hostname = 'vm-before'",
    )
    .await;
    assert_eq!(
        next_event(&mut events).await,
        VmEvent::Changed {
            hostname: "vm-before".into()
        }
    );
}

#[actix::test]
async fn a_listener_started_while_the_database_is_unreachable_keeps_retrying() {
    let database = TestDatabase::migrated();
    let (feed, mut events) = mpsc::unbounded_channel();
    // Port 1 refuses connections at once; the listener must back off and keep trying, not die.
    let unreachable = "postgres://postgres@127.0.0.1:1/nowhere".to_owned();
    let listener = NotificationListener::new(
        unreachable,
        database.pool(),
        Arc::new(feed),
        ReconnectPolicy {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(50),
        },
    )
    .start();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(listener.connected(), "the listener actor stopped");
    assert!(events.try_recv().is_err(), "no event without a connection");
}

//! The VM supervisor on a real (SQLite) database with the real writer and report batcher:
//! a VM actor that panics is started again, goes on from the state stored in the row, and
//! keeps supervising (its timer notices the agent coming back).

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use lablink_actors::change_feed::ChangeHub;
use lablink_actors::db_writer::DbWriter;
use lablink_actors::lifecycle::LifecyclePolicy;
use lablink_actors::provisioning::local::LocalAgents;
use lablink_actors::provisioning_queue::{ProvisioningQueue, ProvisioningSettings};
use lablink_actors::report_batcher::{ReportBatcher, VmReport};
use lablink_actors::vm_actor::Supervision;
use lablink_actors::vm_supervisor::{CountActors, CrashActor, VmSupervisor};
use lablink_schema::testing::TestSqliteDatabase;
use lablink_schema::vm_lifecycle::{ReadState, Transition};
use lablink_schema::vms::Vm;
use lablink_schema::wire::{LifecycleState, VmStatus};
use lablink_schema::Backend;

const PATIENCE: Duration = Duration::from_secs(15);

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix::test]
async fn a_vm_actor_that_panics_is_restarted_and_goes_on_from_the_stored_state() {
    let database = TestSqliteDatabase::migrated();
    let pool = database.pool();
    let now = chrono::Utc::now().naive_utc();
    {
        // An assigned VM found unreachable: a state its supervisor keeps as it is (only the
        // agent's return, or the admin, changes it).
        let mut conn = pool.get().expect("connection");
        Vm::upsert_status(&mut conn, "vm-1", VmStatus::Running, Some("hash"), now).expect("vm");
        diesel::RunQueryDsl::execute(
            diesel::sql_query(
                "UPDATE vms SET user_email = 'ada@lab.example', pin = '1', crd_command = 'c'",
            ),
            &mut *conn,
        )
        .expect("assign");
        let read = ReadState {
            state: LifecycleState::Booting,
            recovery_attempts: 0,
        };
        let change = Transition {
            to: LifecycleState::Unreachable,
            reason: "no heartbeat".to_owned(),
            recovery_attempts: 0,
            next_action: None,
        };
        Vm::transition(&mut conn, "vm-1", read, &change, now)
            .expect("write")
            .expect("changed");
    }
    let changes = ChangeHub::new();
    let events = changes.subscribe();
    let writer = DbWriter::start(pool.clone(), Backend::Sqlite, Arc::new(changes.clone()), 1);
    let reports = ReportBatcher::start(pool.clone(), Backend::Sqlite, Arc::new(changes.clone()), 1);
    let dir = tempfile::tempdir().expect("dir");
    let provisioner = Arc::new(LocalAgents::new(
        "/nonexistent/lablink-client".into(),
        dir.path().to_owned(),
        "http://127.0.0.1:9".to_owned(),
    ));
    let queue = ProvisioningQueue::new(
        pool.clone(),
        writer.clone(),
        provisioner,
        ProvisioningSettings {
            name_prefix: "vm".to_owned(),
            max_vms: 10,
        },
    )
    .start();
    let policy = LifecyclePolicy {
        heartbeat_timeout: Duration::from_millis(600),
        ..LifecyclePolicy::default()
    };
    let supervisor = VmSupervisor::new(pool.clone(), events)
        .supervising(Arc::new(Supervision {
            policy,
            writer,
            queue,
            release_replaces: false,
        }))
        .start();
    let read_vm = || {
        let mut conn = pool.get().expect("connection");
        Vm::find_by_hostname(&mut conn, "vm-1")
            .expect("read")
            .expect("vm")
    };
    let before = read_vm();

    let mut started = 0;
    for _ in 0..200 {
        started = supervisor.send(CountActors).await.expect("count");
        if started == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(started, 1, "one actor for the one VM in the table");
    assert!(supervisor
        .send(CrashActor {
            hostname: "vm-1".to_owned()
        })
        .await
        .expect("crash"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        supervisor.send(CountActors).await.expect("count"),
        1,
        "restarted"
    );
    let after = read_vm();
    assert_eq!(
        (after.state(), after.state_since, &after.user_email),
        (before.state(), before.state_since, &before.user_email),
        "the new actor keeps the stored state"
    );

    // The agent comes back: the new actor's own timer notices (heartbeats announce nothing).
    reports
        .report(VmReport::Status {
            hostname: "vm-1".to_owned(),
            status: VmStatus::Running,
            session: None,
        })
        .await
        .expect("heartbeat");
    until("the VM is assigned again", || {
        read_vm().state() == LifecycleState::Assigned
    })
    .await;
    assert_eq!(read_vm().user_email.as_deref(), Some("ada@lab.example"));
}

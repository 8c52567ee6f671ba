//! The report batcher against real databases: each kind of report is written, a report for an
//! unknown VM is refused alone, reports queued behind a busy worker share one transaction,
//! and one failing report in a batch fails alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl};
use lablink_actors::change_feed::VmEvent;
use lablink_actors::db_writer::WriteError;
use lablink_actors::report_batcher::{ReportBatcher, VmReport};
use lablink_schema::testing::{TestDatabase, TestSqliteDatabase};
use lablink_schema::vms::Vm;
use lablink_schema::wire::{GpuHealth, VmStatus};
use lablink_schema::{Backend, DbConnection, DbPool};
use tokio::sync::mpsc;

fn status(hostname: &str, status: VmStatus) -> VmReport {
    VmReport::Status {
        hostname: hostname.to_owned(),
        status,
        session: None,
    }
}

async fn each_kind_is_written(pool: DbPool, backend: Backend) {
    let (feed, mut events) = mpsc::unbounded_channel::<VmEvent>();
    let reports = ReportBatcher::start(pool.clone(), backend, Arc::new(feed), 2);

    {
        let mut conn = pool.get().expect("connection");
        let now = chrono::Utc::now().naive_utc();
        Vm::upsert_status(
            &mut conn,
            "vm-1",
            VmStatus::Initializing,
            Some("first-hash"),
            now,
        )
        .expect("a provider adds the VM");
    }
    let vm = reports
        .report(status("vm-1", VmStatus::Running))
        .await
        .expect("status");
    assert_eq!(vm.status(), VmStatus::Running);
    let vm = reports
        .report(status("vm-1", VmStatus::Running))
        .await
        .expect("heartbeat");
    assert_eq!(
        vm.token_hash.as_deref(),
        Some("first-hash"),
        "a report keeps the token"
    );
    let vm = reports
        .report(VmReport::GpuHealth {
            hostname: "vm-1".into(),
            health: GpuHealth::Healthy,
        })
        .await
        .expect("health");
    assert_eq!(vm.gpu_health(), Some(GpuHealth::Healthy));
    let vm = reports
        .report(VmReport::InUse {
            hostname: "vm-1".into(),
            in_use: true,
        })
        .await
        .expect("in use");
    assert!(vm.in_use);

    for ghost in [
        status("ghost", VmStatus::Running),
        VmReport::GpuHealth {
            hostname: "ghost".into(),
            health: GpuHealth::Healthy,
        },
        VmReport::InUse {
            hostname: "ghost".into(),
            in_use: true,
        },
    ] {
        let refused = reports.report(ghost).await;
        assert!(
            matches!(refused, Err(WriteError::UnknownVm(ref h)) if h == "ghost"),
            "{refused:?}"
        );
    }
    let mut conn = pool.get().expect("connection");
    let conn: &mut DbConnection = &mut conn;
    assert_eq!(
        Vm::list_hostnames(conn).expect("list"),
        vec!["vm-1".to_owned()]
    );
    assert_eq!(
        reports.counts(),
        (7, 7),
        "one at a time, one transaction each"
    );

    let announced: Vec<VmEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    match backend {
        Backend::Sqlite => assert_eq!(
            announced.len(),
            4,
            "SQLite has no trigger: each written report is announced, refusals not: {announced:?}"
        ),
        Backend::Postgres => assert!(
            announced.is_empty(),
            "on PostgreSQL the trigger announces, not the batcher"
        ),
    }
}

#[actix::test]
async fn each_kind_of_report_is_written_on_postgres() {
    let database = TestDatabase::migrated();
    each_kind_is_written(database.pool(), Backend::Postgres).await;
}

#[actix::test]
async fn each_kind_of_report_is_written_on_sqlite() {
    let database = TestSqliteDatabase::migrated();
    each_kind_is_written(database.pool(), Backend::Sqlite).await;
}

/// Holds a row lock on `hostname` from another connection until the returned sender is
/// dropped, so the batcher's single worker blocks on its first report while more queue up.
fn lock_row(database: &TestDatabase, hostname: &str) -> std::sync::mpsc::Sender<()> {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let mut conn = database.connect();
    let hostname = hostname.to_owned();
    std::thread::spawn(move || {
        conn.transaction(|conn| {
            diesel::sql_query("SELECT 1 FROM vms WHERE hostname = $1 FOR UPDATE")
                .bind::<diesel::sql_types::Text, _>(&hostname)
                .execute(conn)?;
            let _ = locked.send(());
            let _ = released.recv();
            Ok::<_, diesel::result::Error>(())
        })
        .expect("lock held and released");
    });
    is_locked.recv().expect("row locked");
    release
}

/// Waits until some session of this database waits for a lock (yielding, so the batcher's
/// request can be sent meanwhile).
async fn until_blocked(database: &TestDatabase) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = database.connect();
    loop {
        #[derive(diesel::QueryableByName)]
        struct Waiting {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            waiting: i64,
        }
        let waiting = diesel::sql_query(
            "SELECT count(*) AS waiting FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result::<Waiting>(&mut conn)
        .expect("pg_stat_activity")
        .waiting;
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the worker never blocked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A batcher with one worker, stuck on its first report (for `vm-000`, whose row another
/// connection keeps locked) until `release` is dropped; `first` is that report's answer.
struct BusyWorker {
    reports: ReportBatcher,
    release: std::sync::mpsc::Sender<()>,
    first: tokio::task::JoinHandle<Result<Vm, WriteError>>,
}

async fn busy_worker(database: &TestDatabase) -> BusyWorker {
    let (feed, _events) = mpsc::unbounded_channel::<VmEvent>();
    let reports = ReportBatcher::start(database.pool(), Backend::Postgres, Arc::new(feed), 1);
    let release = lock_row(database, "vm-000");
    let first = tokio::spawn({
        let reports = reports.clone();
        async move { reports.report(status("vm-000", VmStatus::Running)).await }
    });
    until_blocked(database).await;
    BusyWorker {
        reports,
        release,
        first,
    }
}

fn register(database: &TestDatabase, count: usize) {
    let mut conn = database.connect();
    let now = chrono::Utc::now().naive_utc();
    for i in 0..count {
        Vm::upsert_status(
            &mut conn,
            &format!("vm-{i:03}"),
            VmStatus::Initializing,
            None,
            now,
        )
        .expect("register");
    }
}

#[actix::test]
async fn reports_queued_behind_a_busy_worker_share_one_transaction() {
    let database = TestDatabase::migrated();
    register(&database, 200);
    let BusyWorker {
        reports,
        release,
        first,
    } = busy_worker(&database).await;
    // 200 agents report while the only worker waits; the first VM reports twice, in order.
    let queued: Vec<_> = (0..200)
        .map(|i| {
            let reports = reports.clone();
            let report = if i % 2 == 0 {
                status(&format!("vm-{i:03}"), VmStatus::Running)
            } else {
                VmReport::GpuHealth {
                    hostname: format!("vm-{i:03}"),
                    health: GpuHealth::Healthy,
                }
            };
            tokio::spawn(async move { reports.report(report).await })
        })
        .collect();
    let last_for_first = tokio::spawn({
        let reports = reports.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            reports.report(status("vm-000", VmStatus::Error)).await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(release);

    first.await.expect("task").expect("first report");
    for report in queued {
        report.await.expect("task").expect("written");
    }
    last_for_first.await.expect("task").expect("written");
    let (written, transactions) = reports.counts();
    assert_eq!(written, 202);
    assert_eq!(
        transactions, 2,
        "the first report, then everything that queued behind it"
    );
    let mut conn = database.connect();
    let vms = Vm::list_all(&mut conn).expect("list");
    for (i, vm) in vms.iter().enumerate() {
        match i {
            0 => assert_eq!(
                vm.status(),
                VmStatus::Error,
                "one VM's reports keep their order"
            ),
            i if i % 2 == 0 => assert_eq!(vm.status(), VmStatus::Running, "{}", vm.hostname),
            _ => assert_eq!(vm.gpu_health(), Some(GpuHealth::Healthy), "{}", vm.hostname),
        }
    }
}

#[actix::test]
async fn a_failing_report_fails_alone_and_the_rest_of_its_batch_is_written() {
    let database = TestDatabase::migrated();
    register(&database, 10);
    // The database refuses any write to `vm-005`, as it might refuse a bad row.
    let mut conn = database.connect();
    diesel::sql_query(
        "CREATE FUNCTION refuse_vm_005() RETURNS trigger AS $$ BEGIN \
         RAISE EXCEPTION 'refused for the test'; END; $$ LANGUAGE plpgsql",
    )
    .execute(&mut conn)
    .expect("function");
    diesel::sql_query(
        "CREATE TRIGGER refuse_vm_005 BEFORE UPDATE ON vms FOR EACH ROW \
         WHEN (NEW.hostname = 'vm-005') EXECUTE FUNCTION refuse_vm_005()",
    )
    .execute(&mut conn)
    .expect("trigger");
    let BusyWorker {
        reports,
        release,
        first,
    } = busy_worker(&database).await;
    let queued: Vec<_> = (1..10)
        .map(|i| {
            let reports = reports.clone();
            tokio::spawn(async move {
                reports
                    .report(status(&format!("vm-{i:03}"), VmStatus::Running))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(release);

    first.await.expect("task").expect("first report");
    for (i, report) in (1..10).zip(queued) {
        let answer = report.await.expect("task");
        if i == 5 {
            assert!(matches!(answer, Err(WriteError::Database(_))), "{answer:?}");
        } else {
            assert_eq!(answer.expect("written").status(), VmStatus::Running);
        }
    }
    let (_, transactions) = reports.counts();
    assert_eq!(
        transactions,
        1 + 1 + 9,
        "the first, the failed batch, then each of its reports alone"
    );
    let vms = Vm::list_all(&mut conn).expect("list");
    let statuses: Vec<VmStatus> = vms.iter().map(Vm::status).collect();
    let mut expected = vec![VmStatus::Running; 10];
    expected[5] = VmStatus::Initializing;
    assert_eq!(statuses, expected);
}

#[actix::test]
async fn reports_arriving_a_few_milliseconds_apart_still_share_commits() {
    let database = TestDatabase::migrated();
    register(&database, 10);
    let (feed, _events) = mpsc::unbounded_channel::<VmEvent>();
    let reports = ReportBatcher::start(database.pool(), Backend::Postgres, Arc::new(feed), 1);
    // Like heartbeats: never piling up, one every 2 ms.
    let mut sent = Vec::new();
    for i in 0..10 {
        let reports = reports.clone();
        sent.push(tokio::spawn(async move {
            reports
                .report(status(&format!("vm-{i:03}"), VmStatus::Running))
                .await
        }));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for report in sent {
        report.await.expect("task").expect("written");
    }
    let (written, transactions) = reports.counts();
    assert_eq!(written, 10);
    assert!(
        transactions <= 5,
        "10 reports 2 ms apart took {transactions} transactions: the linger did not gather them"
    );
}

//! The writer against real databases: writes land in one transaction, refused writes leave
//! nothing behind, concurrent appends lose no line and keep each VM within its log caps, and on SQLite the writer announces each
//! committed VM change itself.

use std::sync::Arc;

use lablink_actors::change_feed::VmEvent;
use lablink_actors::db_writer::{AppendVmLogs, DbWriter, RecordAuditEvent, ReleaseVm, WriteError};
use lablink_schema::audit_events::{AuditEvent, NewAuditEvent};
use lablink_schema::testing::{TestDatabase, TestSqliteDatabase};
use lablink_schema::vm_logs::{NewLogLine, Retention, VmLogLine};
use lablink_schema::vms::Vm;
use lablink_schema::wire::VmStatus;
use lablink_schema::{Backend, DbConnection, DbPool};
use tokio::sync::mpsc;

/// Retention that keeps every line these tests write.
const KEEP_ALL: Retention = Retention {
    max_lines: 1_000_000,
    max_bytes: 1 << 40,
};

/// Registers `hostname` directly (agents' reports go through the `ReportBatcher`).
fn register(pool: &DbPool, hostname: &str) {
    let mut conn = pool.get().expect("connection");
    let conn: &mut DbConnection = &mut conn;
    Vm::upsert_status(
        conn,
        hostname,
        VmStatus::Running,
        None,
        chrono::Utc::now().naive_utc(),
    )
    .expect("registered");
}

#[actix::test]
async fn writes_for_unknown_vms_write_nothing() {
    let database = TestDatabase::migrated();
    let (feed, _events) = mpsc::unbounded_channel::<VmEvent>();
    let writer = DbWriter::start(database.pool(), Backend::Postgres, Arc::new(feed), 2);
    register(&database.pool(), "vm-1");

    let refused = writer
        .send(AppendVmLogs {
            stream: None,
            hostname: "ghost".into(),
            lines: vec![NewLogLine::plain("never stored")],
            retention: KEEP_ALL,
        })
        .await
        .expect("mailbox");
    assert!(
        matches!(refused, Err(WriteError::UnknownVm(_))),
        "{refused:?}"
    );

    let mut conn = database.connect();
    assert_eq!(
        Vm::list_hostnames(&mut conn).expect("list"),
        vec!["vm-1".to_owned()]
    );

    writer
        .send(RecordAuditEvent(NewAuditEvent {
            occurred_at: chrono::Utc::now().naive_utc(),
            actor: "admin".into(),
            action: "vm.release".into(),
            target: Some("vm-1".into()),
            detail: None,
        }))
        .await
        .expect("mailbox")
        .expect("recorded");
    assert_eq!(
        AuditEvent::list_recent(&mut conn, 10).expect("list").len(),
        1
    );
}

#[actix::test]
async fn concurrent_log_appends_lose_no_line() {
    let database = TestDatabase::migrated();
    let (feed, _events) = mpsc::unbounded_channel::<VmEvent>();
    let writer = DbWriter::start(database.pool(), Backend::Postgres, Arc::new(feed), 4);
    register(&database.pool(), "vm-1");

    const BATCHES: usize = 40;
    const LINES_PER_BATCH: usize = 25;
    let appends = (0..BATCHES).map(|batch| {
        writer.send(AppendVmLogs {
            stream: None,
            hostname: "vm-1".into(),
            lines: (0..LINES_PER_BATCH)
                .map(|line| NewLogLine::plain(format!("batch {batch} line {line}")))
                .collect(),
            retention: KEEP_ALL,
        })
    });
    for stored in futures_util::future::join_all(appends).await {
        assert_eq!(
            stored.expect("mailbox").expect("appended").stored,
            LINES_PER_BATCH
        );
    }

    let mut conn = database.connect();
    let lines = VmLogLine::list_for_host(&mut conn, "vm-1", None, 10_000).expect("list");
    assert_eq!(lines.len(), BATCHES * LINES_PER_BATCH);
    // Each batch's lines stay in order relative to each other.
    for batch in 0..BATCHES {
        let prefix = format!("batch {batch} line ");
        let order: Vec<usize> = lines
            .iter()
            .filter_map(|l| l.line.strip_prefix(&prefix))
            .map(|n| n.parse().expect("line number"))
            .collect();
        assert_eq!(order, (0..LINES_PER_BATCH).collect::<Vec<_>>());
    }
}

#[actix::test]
async fn on_sqlite_the_writer_announces_each_committed_vm_change() {
    let database = TestSqliteDatabase::migrated();
    let (feed, mut events) = mpsc::unbounded_channel::<VmEvent>();
    let writer = DbWriter::start(database.pool(), Backend::Sqlite, Arc::new(feed), 8);
    register(&database.pool(), "vm-1");

    writer
        .send(ReleaseVm {
            hostname: "vm-1".into(),
            actor: "admin".into(),
        })
        .await
        .expect("mailbox")
        .expect("released");
    assert_eq!(
        events.try_recv().ok(),
        Some(VmEvent::Changed {
            hostname: "vm-1".into()
        })
    );

    let refused = writer
        .send(ReleaseVm {
            hostname: "ghost".into(),
            actor: "admin".into(),
        })
        .await
        .expect("mailbox");
    assert!(refused.is_err());
    assert!(
        events.try_recv().is_err(),
        "a refused write announces nothing"
    );

    // Log lines are not a VM change.
    writer
        .send(AppendVmLogs {
            stream: None,
            hostname: "vm-1".into(),
            lines: vec![NewLogLine::plain("hello")],
            retention: KEEP_ALL,
        })
        .await
        .expect("mailbox")
        .expect("appended");
    assert!(events.try_recv().is_err());
}

#[actix::test]
async fn on_postgres_the_writer_leaves_announcing_to_the_trigger() {
    let database = TestDatabase::migrated();
    let (feed, mut events) = mpsc::unbounded_channel::<VmEvent>();
    let writer = DbWriter::start(database.pool(), Backend::Postgres, Arc::new(feed), 1);
    register(&database.pool(), "vm-1");
    writer
        .send(ReleaseVm {
            hostname: "vm-1".into(),
            actor: "admin".into(),
        })
        .await
        .expect("mailbox")
        .expect("released");
    assert!(events.try_recv().is_err());
}

/// 40 batches of 25 lines for one VM (and a few for another) sent at once through 4 writer
/// threads: the VM keeps exactly its newest lines up to the cap, its totals match its rows,
/// and the other VM loses nothing.
async fn concurrent_appends_stay_within_the_caps(pool: DbPool, backend: Backend) {
    let (feed, _events) = mpsc::unbounded_channel::<VmEvent>();
    let writer = DbWriter::start(pool.clone(), backend, Arc::new(feed), 4);
    register(&pool, "vm-1");
    register(&pool, "vm-2");
    let by_lines = Retention {
        max_lines: 300,
        max_bytes: 1 << 40,
    };
    let appends = (0..40).map(|batch| {
        writer.send(AppendVmLogs {
            stream: None,
            hostname: if batch % 10 == 9 { "vm-2" } else { "vm-1" }.into(),
            lines: (0..25)
                .map(|line| NewLogLine::plain(format!("batch {batch:02} line {line:02}")))
                .collect(),
            retention: by_lines,
        })
    });
    for appended in futures_util::future::join_all(appends).await {
        appended.expect("mailbox").expect("appended");
    }
    let mut conn = pool.get().expect("connection");
    let kept = VmLogLine::list_for_host(&mut conn, "vm-1", None, 10_000).expect("list");
    assert_eq!(kept.len(), 300, "exactly the cap");
    let other = VmLogLine::list_for_host(&mut conn, "vm-2", None, 10_000).expect("list");
    assert_eq!(other.len(), 4 * 25, "another VM's lines are not touched");
    assert_eq!(
        totals(&mut conn, "vm-1"),
        (300, kept.iter().map(|l| i64::from(l.bytes)).sum())
    );

    // By bytes: each line is 18 bytes, so 100 bytes keep 5 lines, the newest.
    let by_bytes = Retention {
        max_lines: 1_000,
        max_bytes: 100,
    };
    writer
        .send(AppendVmLogs {
            stream: None,
            hostname: "vm-1".into(),
            lines: (0..10)
                .map(|line| NewLogLine::plain(format!("final batch {line:06}")))
                .collect(),
            retention: by_bytes,
        })
        .await
        .expect("mailbox")
        .expect("appended");
    let kept = VmLogLine::list_for_host(&mut conn, "vm-1", None, 10_000).expect("list");
    let texts: Vec<&str> = kept.iter().map(|l| l.line.as_str()).collect();
    assert_eq!(
        texts,
        (5..10)
            .map(|line| format!("final batch {line:06}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(totals(&mut conn, "vm-1"), (5, 90));
}

fn totals(conn: &mut DbConnection, hostname: &str) -> (i64, i64) {
    use diesel::prelude::*;
    use lablink_schema::schema::vm_log_totals;
    vm_log_totals::table
        .find(hostname)
        .select((vm_log_totals::lines, vm_log_totals::bytes))
        .first(conn)
        .expect("totals")
}

#[actix::test]
async fn concurrent_appends_stay_within_the_caps_on_postgres() {
    let database = TestDatabase::migrated();
    concurrent_appends_stay_within_the_caps(database.pool(), Backend::Postgres).await;
}

#[actix::test]
async fn concurrent_appends_stay_within_the_caps_on_sqlite() {
    let database = TestSqliteDatabase::migrated();
    concurrent_appends_stay_within_the_caps(database.pool(), Backend::Sqlite).await;
}

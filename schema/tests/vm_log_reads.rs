//! Reading a VM's log as an admin does, on both backends: newest first, paging back, by
//! source, errors only, by text (wildcards taken literally), and the sources kept.

use chrono::{NaiveDateTime, Utc};
use lablink_schema::testing::{TestDatabase, TestSqliteDatabase};
use lablink_schema::vm_logs::{LogQuery, NewLogLine, Retention, VmLogLine};
use lablink_schema::vms::Vm;
use lablink_schema::wire::VmStatus;
use lablink_schema::DbConnection;

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn on_both_backends(check: impl Fn(&mut DbConnection)) {
    let postgres = TestDatabase::migrated();
    check(&mut postgres.connect());
    let sqlite = TestSqliteDatabase::migrated();
    check(&mut sqlite.pool().get().expect("sqlite connection"));
}

fn texts(lines: &[VmLogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.line.as_str()).collect()
}

#[test]
fn the_newest_come_first_and_filters_narrow_them() {
    on_both_backends(|conn| {
        Vm::upsert_status(conn, "vm-1", VmStatus::Running, None, now()).expect("register");
        let line = |source: &str, text: &str| NewLogLine {
            source: source.to_owned(),
            logged_at: Some(now()),
            text: text.to_owned(),
            seq: None,
        };
        let lines = [
            line("boot", "cloud-init started"),
            line("agent", "INFO reporting to the allocator"),
            line("software", "Traceback (most recent call last):"),
            line("software", "ValueError: 100% of frames_missing"),
            line("agent", "ERROR cannot reach the allocator"),
            line("software", "epoch 1: 100% done"),
        ];
        let retention = Retention {
            max_lines: 100,
            max_bytes: 100_000,
        };
        VmLogLine::append(conn, "vm-1", None, &lines, now(), &retention).expect("append");
        let read = |conn: &mut DbConnection, query: LogQuery, limit: i64| {
            VmLogLine::newest_first(conn, "vm-1", &query, limit).expect("read")
        };

        let newest = read(conn, LogQuery::default(), 2);
        assert_eq!(
            texts(&newest),
            ["epoch 1: 100% done", "ERROR cannot reach the allocator"]
        );
        let older = read(
            conn,
            LogQuery {
                before: Some(newest[1].id),
                ..LogQuery::default()
            },
            10,
        );
        assert_eq!(older.len(), 4, "paging back reads the rest");
        assert_eq!(older[3].line, "cloud-init started");

        let software = read(
            conn,
            LogQuery {
                source: Some("software".to_owned()),
                ..LogQuery::default()
            },
            10,
        );
        assert_eq!(software.len(), 3);
        let errors = read(
            conn,
            LogQuery {
                errors_only: true,
                ..LogQuery::default()
            },
            10,
        );
        assert_eq!(
            texts(&errors),
            [
                "ERROR cannot reach the allocator",
                "ValueError: 100% of frames_missing",
                "Traceback (most recent call last):"
            ]
        );
        // Any case; `%` and `_` are plain characters.
        let search = |conn: &mut DbConnection, text: &str| {
            let found = read(
                conn,
                LogQuery {
                    search: Some(text.to_owned()),
                    ..LogQuery::default()
                },
                10,
            );
            found.iter().map(|l| l.line.clone()).collect::<Vec<_>>()
        };
        assert_eq!(search(conn, "ALLOCATOR").len(), 2);
        assert_eq!(
            search(conn, "100%"),
            ["epoch 1: 100% done", "ValueError: 100% of frames_missing"]
        );
        assert_eq!(search(conn, "s_m"), ["ValueError: 100% of frames_missing"]);
        assert_eq!(search(conn, "_"), ["ValueError: 100% of frames_missing"]);
        assert!(search(conn, "%%").is_empty());

        assert_eq!(
            VmLogLine::sources(conn, "vm-1").expect("sources"),
            ["agent", "boot", "software"]
        );
    });
}

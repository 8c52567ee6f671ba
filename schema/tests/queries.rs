//! The model queries against both real backends: PostgreSQL (one database per test, cloned
//! from the migrated template) and bundled SQLite.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use lablink_schema::audit_events::{AuditEvent, NewAuditEvent};
use lablink_schema::migrations;
use lablink_schema::operations::{NewOperation, Operation, OperationKind, OperationState};
use lablink_schema::schema::vms as vms_table;
use lablink_schema::testing::{TestDatabase, TestSqliteDatabase};
use lablink_schema::vm_lifecycle::{ReadState, Transition};
use lablink_schema::vm_logs::{NewLogLine, Retention, VmLogLine};
use lablink_schema::vms::Vm;
use lablink_schema::wire::{GpuHealth, LifecycleState, VmStatus};
use lablink_schema::{Backend, DbConnection};

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// Runs `check` once on a fresh PostgreSQL database and once on a fresh SQLite one.
fn on_both_backends(check: impl Fn(&mut DbConnection)) {
    let postgres = TestDatabase::migrated();
    let mut pg = postgres.connect();
    assert_eq!(pg.backend(), Backend::Postgres);
    check(&mut pg);

    let sqlite = TestSqliteDatabase::migrated();
    let mut conn = sqlite.pool().get().expect("sqlite connection");
    assert_eq!(conn.backend(), Backend::Sqlite);
    check(&mut conn);
}

fn give_to(conn: &mut DbConnection, hostname: &str, email: &str) -> QueryResult<usize> {
    diesel::update(vms_table::table.find(hostname))
        .set(vms_table::user_email.eq(email))
        .execute(conn)
}

#[test]
fn status_report_registers_a_vm_then_updates_it() {
    on_both_backends(|conn| {
        let first =
            Vm::upsert_status(conn, "vm-1", VmStatus::Initializing, None, now()).expect("insert");
        assert_eq!(first.status(), VmStatus::Initializing);
        assert!(!first.in_use);
        assert_eq!(first.gpu_health(), None);

        let second =
            Vm::upsert_status(conn, "vm-1", VmStatus::Running, None, now()).expect("update");
        assert_eq!(second.status(), VmStatus::Running);
        assert_eq!(second.created_at, first.created_at);
        assert!(second.last_heartbeat_at >= first.last_heartbeat_at);
        assert!(first.last_heartbeat_at.is_some());
        assert!(second.updated_at >= first.updated_at);

        let stored = Vm::find_by_hostname(conn, "vm-1")
            .expect("find")
            .expect("exists");
        assert_eq!(stored, second);
        assert_eq!(
            Vm::list_hostnames(conn).expect("list"),
            vec!["vm-1".to_owned()]
        );
        assert_eq!(Vm::find_by_hostname(conn, "vm-2").expect("find"), None);
    });
}

#[test]
fn only_running_unassigned_vms_with_a_usable_gpu_count_as_free() {
    on_both_backends(|conn| {
        for (hostname, status) in [
            ("healthy", VmStatus::Running),
            ("no-gpu", VmStatus::Running),
            ("sick", VmStatus::Running),
            ("unreported", VmStatus::Running),
            ("booting", VmStatus::Initializing),
            ("taken", VmStatus::Running),
        ] {
            Vm::upsert_status(conn, hostname, status, None, now()).expect("register");
        }
        for (hostname, health) in [
            ("healthy", GpuHealth::Healthy),
            ("no-gpu", GpuHealth::NotAvailable),
            ("sick", GpuHealth::Unhealthy),
            ("booting", GpuHealth::Healthy),
            ("taken", GpuHealth::Healthy),
        ] {
            Vm::set_gpu_health(conn, hostname, health, now())
                .expect("health")
                .expect("vm exists");
        }
        give_to(conn, "taken", "someone@example.org").expect("assign");
        assert_eq!(Vm::count_free(conn).expect("count"), 2);
    });
}

#[test]
fn reports_for_unknown_vms_change_nothing() {
    on_both_backends(|conn| {
        assert_eq!(
            Vm::set_gpu_health(conn, "ghost", GpuHealth::Healthy, now()).expect("query"),
            None
        );
        assert_eq!(
            Vm::set_in_use(conn, "ghost", true, now()).expect("query"),
            None
        );
        assert!(!Vm::delete(conn, "ghost").expect("query"));
        assert!(Vm::list_all(conn).expect("list").is_empty());
    });
}

#[test]
fn a_researcher_can_hold_only_one_vm() {
    on_both_backends(|conn| {
        Vm::upsert_status(conn, "vm-a", VmStatus::Running, None, now()).expect("register");
        Vm::upsert_status(conn, "vm-b", VmStatus::Running, None, now()).expect("register");
        give_to(conn, "vm-a", "r@example.org").expect("first VM");
        let second = give_to(conn, "vm-b", "r@example.org");
        assert!(
            matches!(
                second,
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _
                ))
            ),
            "{second:?}"
        );
    });
}

#[test]
fn log_lines_are_appended_in_order_and_go_with_their_vm() {
    on_both_backends(|conn| {
        Vm::upsert_status(conn, "vm-1", VmStatus::Initializing, None, now()).expect("register");
        Vm::upsert_status(conn, "vm-2", VmStatus::Initializing, None, now()).expect("register");
        let keep_all = Retention {
            max_lines: 1_000,
            max_bytes: 1_000_000,
        };
        let append = |conn: &mut DbConnection, host: &str, texts: &[&str]| {
            let lines: Vec<NewLogLine> = texts.iter().map(|t| NewLogLine::plain(*t)).collect();
            VmLogLine::append(conn, host, None, &lines, now(), &keep_all)
        };
        assert_eq!(
            append(conn, "vm-1", &["line 1", "line 2", "line 3"])
                .expect("append")
                .stored,
            3
        );
        append(conn, "vm-1", &["line 4"]).expect("append");
        append(conn, "vm-2", &["other"]).expect("append");
        assert_eq!(append(conn, "vm-1", &[]).expect("empty").stored, 0);

        let all = VmLogLine::list_for_host(conn, "vm-1", None, 100).expect("list");
        let lines: Vec<&str> = all.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(lines, ["line 1", "line 2", "line 3", "line 4"]);

        let newer = VmLogLine::list_for_host(conn, "vm-1", Some(all[1].id), 1).expect("page");
        assert_eq!(newer.len(), 1);
        assert_eq!(newer[0].line, "line 3");

        let orphan = append(conn, "ghost", &["x"]);
        assert!(orphan.is_err(), "lines for an unknown VM must be refused");

        assert!(Vm::delete(conn, "vm-1").expect("delete"));
        assert!(VmLogLine::list_for_host(conn, "vm-1", None, 100)
            .expect("list")
            .is_empty());
        assert_eq!(
            VmLogLine::list_for_host(conn, "vm-2", None, 100)
                .expect("list")
                .len(),
            1
        );
    });
}

#[test]
fn operations_are_recorded_and_interrupted_ones_are_taken_over() {
    on_both_backends(|conn| {
        let mut create = NewOperation::queued(OperationKind::Create, "admin", now());
        create.requested_count = Some(3);
        let done = Operation::insert(conn, &create).expect("insert");
        assert_eq!(done.state, OperationState::Queued.as_str());
        Operation::mark_running(conn, done.id, now()).expect("running");
        Operation::finish(
            conn,
            done.id,
            OperationState::Succeeded,
            None,
            "3 added",
            now(),
        )
        .expect("finish");

        let mut destroy = NewOperation::queued(OperationKind::Destroy, "admin", now());
        destroy.targets = Some(r#"["vm-1"]"#.to_owned());
        let interrupted = Operation::insert(conn, &destroy).expect("insert");
        Operation::mark_running(conn, interrupted.id, now()).expect("running");

        Operation::set_targets(conn, interrupted.id, &["vm-1".to_owned()]).expect("targets");
        let later = now() + chrono::Duration::seconds(30);
        let taken = Operation::take_over_abandoned(conn, "heir", later, now(), &|_| true)
            .expect("take over");
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].target_hostnames(), ["vm-1"]);

        let done = Operation::find_by_id(conn, done.id)
            .expect("find")
            .expect("exists");
        assert_eq!(done.state, "succeeded");
        assert_eq!(done.output_tail, "3 added");
        assert_eq!(done.requested_count, Some(3));
        let interrupted = Operation::find_by_id(conn, interrupted.id)
            .expect("find")
            .expect("exists");
        assert_eq!(interrupted.state, "running", "taken over, to be run again");
        assert_eq!(interrupted.lease_owner.as_deref(), Some("heir"));
        assert!(interrupted.finished_at.is_none());

        let recent = Operation::list_recent(conn, 10).expect("list");
        assert_eq!(
            recent.iter().map(|o| o.id).collect::<Vec<_>>(),
            vec![interrupted.id, done.id]
        );
    });
}

#[test]
fn audit_events_are_listed_newest_first() {
    on_both_backends(|conn| {
        for action in ["vm.release", "vms.create"] {
            AuditEvent::record(
                conn,
                &NewAuditEvent {
                    occurred_at: now(),
                    actor: "admin".into(),
                    action: action.into(),
                    target: Some("vm-1".into()),
                    detail: None,
                },
            )
            .expect("record");
        }
        let events = AuditEvent::list_recent(conn, 10).expect("list");
        let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["vms.create", "vm.release"]);
        assert_eq!(AuditEvent::list_recent(conn, 1).expect("list").len(), 1);
    });
}

#[test]
fn migrations_report_what_is_pending_and_are_idempotent() {
    let postgres = TestDatabase::empty();
    let mut conn = postgres.connect();
    let all = migrations::embedded_versions(Backend::Postgres);
    assert_eq!(
        migrations::pending_versions(&mut conn).expect("pending"),
        all
    );
    assert_eq!(migrations::run_pending(&mut conn).expect("migrate"), all);
    assert!(migrations::pending_versions(&mut conn)
        .expect("pending")
        .is_empty());
    assert!(migrations::run_pending(&mut conn)
        .expect("again")
        .is_empty());

    let dir = tempfile::tempdir().expect("temp dir");
    let location = lablink_schema::connection::DatabaseLocation::sqlite_in(dir.path());
    let pool = lablink_schema::connection::build_pool(&location, 2).expect("pool");
    let mut sqlite = pool.get().expect("sqlite");
    assert_eq!(migrations::run_pending(&mut sqlite).expect("migrate"), all);
    assert!(migrations::run_pending(&mut sqlite)
        .expect("again")
        .is_empty());
}

#[test]
fn concurrent_migrators_on_postgres_wait_for_each_other() {
    let database = TestDatabase::empty();
    let url = database.url().to_owned();
    let migrators: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut conn = DbConnection::Pg(PgConnection::establish(&url).expect("connect"));
                migrations::run_pending(&mut conn).map_err(|err| err.to_string())
            })
        })
        .collect();
    let results: Vec<Result<Vec<String>, String>> = migrators
        .into_iter()
        .map(|handle| handle.join().expect("migrator thread"))
        .collect();
    for result in &results {
        assert!(result.is_ok(), "a concurrent migrator failed: {results:?}");
    }
    let applied_total: usize = results.iter().flatten().map(Vec::len).sum();
    assert_eq!(
        applied_total,
        migrations::embedded_versions(Backend::Postgres).len(),
        "each migration must be applied exactly once: {results:?}"
    );
}

/// Every change to a VM is announced; a report that changes only its heartbeat time (the
/// same status again, the same GPU health again) is not.
#[test]
fn every_vm_change_is_announced_by_hostname_only() {
    let database = TestDatabase::migrated();
    let mut listener = PgConnection::establish(database.url()).expect("connect");
    diesel::sql_query("LISTEN vm_updates")
        .execute(&mut listener)
        .expect("listen");

    let mut writer = database.connect();
    Vm::upsert_status(&mut writer, "vm-9", VmStatus::Running, None, now()).expect("insert");
    let later = now() + chrono::Duration::seconds(30);
    Vm::upsert_status(&mut writer, "vm-9", VmStatus::Running, None, later).expect("heartbeat");
    Vm::set_gpu_health(&mut writer, "vm-9", GpuHealth::Healthy, later).expect("health");
    Vm::set_gpu_health(&mut writer, "vm-9", GpuHealth::Healthy, later).expect("same health");
    Vm::set_in_use(&mut writer, "vm-9", false, later).expect("same in-use");
    Vm::upsert_status(&mut writer, "vm-9", VmStatus::Error, None, later).expect("new status");
    diesel::update(vms_table::table.find("vm-9"))
        .set((
            vms_table::crd_command.eq("secret-command"),
            vms_table::pin.eq("424242"),
        ))
        .execute(&mut writer)
        .expect("assign");
    Vm::delete(&mut writer, "vm-9").expect("delete");

    // Notifications arrive with the next round-trip on the listening connection.
    diesel::sql_query("SELECT 1")
        .execute(&mut listener)
        .expect("poll");
    let payloads: Vec<serde_json::Value> = listener
        .notifications_iter()
        .map(|n| {
            let n = n.expect("notification");
            assert_eq!(n.channel, "vm_updates");
            assert!(!n.payload.contains("secret") && !n.payload.contains("424242"));
            serde_json::from_str(&n.payload).expect("json payload")
        })
        .collect();
    let ops: Vec<(&str, &str)> = payloads
        .iter()
        .map(|p| {
            (
                p["hostname"].as_str().expect("hostname"),
                p["op"].as_str().expect("op"),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("vm-9", "insert"),
            ("vm-9", "update"), // GPU health first reported
            ("vm-9", "update"), // status error
            ("vm-9", "update"), // assigned
            ("vm-9", "delete")
        ]
    );
}

fn make_free(conn: &mut DbConnection, hostname: &str, health: GpuHealth) {
    Vm::upsert_status(conn, hostname, VmStatus::Running, None, now()).expect("register");
    Vm::set_gpu_health(conn, hostname, health, now())
        .expect("health")
        .expect("exists");
}

#[test]
fn claiming_takes_one_free_vm_and_release_frees_it_after_the_next_ready_report() {
    on_both_backends(|conn| {
        assert_eq!(
            Vm::claim_free(conn, "a@example.org", "cmd-a", "111111", None, None, now())
                .expect("claim"),
            None,
            "nothing is free yet"
        );
        make_free(conn, "vm-1", GpuHealth::Healthy);
        make_free(conn, "vm-2", GpuHealth::Unhealthy);
        Vm::upsert_status(conn, "vm-3", VmStatus::Running, None, now()).expect("no GPU report");

        let vm = Vm::claim_free(conn, "a@example.org", "cmd-a", "111111", None, None, now())
            .expect("claim")
            .expect("vm-1 is free");
        assert_eq!(vm.hostname, "vm-1");
        assert_eq!(vm.assignment_seq, 1);
        let assignment = vm.current_assignment().expect("assigned");
        assert_eq!(
            (assignment.pin.as_str(), assignment.command.as_str()),
            ("111111", "cmd-a")
        );
        assert!(!format!("{assignment:?}").contains("111111"));
        assert_eq!(
            Vm::find_by_email(conn, "a@example.org")
                .expect("find")
                .map(|v| v.hostname),
            Some("vm-1".to_owned())
        );
        assert_eq!(
            Vm::claim_free(conn, "b@example.org", "cmd-b", "222222", None, None, now())
                .expect("claim"),
            None,
            "an unhealthy or unreported GPU is never handed out"
        );

        let released = Vm::release(conn, "vm-1", now())
            .expect("release")
            .expect("exists");
        assert_eq!(released.current_assignment(), None);
        assert_eq!(released.status(), VmStatus::Initializing);
        assert_eq!(
            Vm::find_by_email(conn, "a@example.org").expect("find"),
            None
        );
        assert_eq!(
            Vm::count_free(conn).expect("count"),
            0,
            "not free until ready again"
        );

        Vm::upsert_status(conn, "vm-1", VmStatus::Running, None, now()).expect("ready");
        let again = Vm::claim_free(conn, "b@example.org", "cmd-b", "222222", None, None, now())
            .expect("claim")
            .expect("free again");
        assert_eq!((again.hostname.as_str(), again.assignment_seq), ("vm-1", 2));
        assert_eq!(Vm::release(conn, "ghost", now()).expect("release"), None);
    });
}

#[test]
fn a_token_hash_is_set_once_and_never_replaced_by_a_later_report() {
    on_both_backends(|conn| {
        let vm = Vm::upsert_status(conn, "vm-1", VmStatus::Initializing, Some("hash-1"), now())
            .expect("register");
        assert_eq!(vm.token_hash.as_deref(), Some("hash-1"));
        let vm = Vm::upsert_status(conn, "vm-1", VmStatus::Running, Some("hash-2"), now())
            .expect("report");
        assert_eq!(vm.token_hash.as_deref(), Some("hash-1"));
        let vm = Vm::upsert_status(conn, "vm-1", VmStatus::Running, None, now()).expect("report");
        assert_eq!(vm.token_hash.as_deref(), Some("hash-1"));
    });
}

#[test]
fn concurrent_claims_on_postgres_never_share_a_vm() {
    let database = TestDatabase::migrated();
    let mut conn = database.connect();
    for i in 0..20 {
        make_free(&mut conn, &format!("vm-{i:02}"), GpuHealth::Healthy);
    }
    let claimers: Vec<_> = (0..40)
        .map(|i| {
            let url = database.url().to_owned();
            std::thread::spawn(move || {
                let mut conn = DbConnection::Pg(PgConnection::establish(&url).expect("connect"));
                Vm::claim_free(
                    &mut conn,
                    &format!("r{i}@example.org"),
                    "cmd",
                    "123456",
                    None,
                    None,
                    now(),
                )
                .expect("claim")
                .map(|vm| vm.hostname)
            })
        })
        .collect();
    let mut won: Vec<String> = claimers
        .into_iter()
        .filter_map(|c| c.join().expect("claimer"))
        .collect();
    won.sort();
    let before = won.len();
    won.dedup();
    assert_eq!(before, won.len(), "a VM went to two researchers");
    assert_eq!(won.len(), 20, "every free VM is taken by someone");
}

#[test]
fn vms_and_operations_are_counted_by_state_for_metrics() {
    on_both_backends(|conn| {
        assert!(Vm::count_by_state(conn).expect("count").is_empty());
        make_free(conn, "free-1", GpuHealth::Healthy);
        make_free(conn, "free-2", GpuHealth::Healthy);
        make_free(conn, "taken", GpuHealth::Healthy);
        Vm::upsert_status(conn, "booting", VmStatus::Initializing, None, now()).expect("register");
        give_to(conn, "taken", "someone@example.org").expect("assign");
        Vm::set_in_use(conn, "taken", true, now()).expect("in use");
        let counts: Vec<(String, bool, bool, i64)> = Vm::count_by_state(conn)
            .expect("count")
            .into_iter()
            .map(|c| (c.status, c.assigned, c.in_use, c.count))
            .collect();
        assert_eq!(
            counts,
            vec![
                ("initializing".to_owned(), false, false, 1),
                ("running".to_owned(), false, false, 2),
                ("running".to_owned(), true, true, 1),
            ]
        );

        for state in [
            OperationState::Succeeded,
            OperationState::Succeeded,
            OperationState::Failed,
        ] {
            let op = Operation::insert(
                conn,
                &NewOperation::queued(OperationKind::Create, "admin", now()),
            )
            .expect("insert");
            Operation::finish(conn, op.id, state, None, "", now()).expect("finish");
        }
        Operation::insert(
            conn,
            &NewOperation::queued(OperationKind::DestroyAll, "admin", now()),
        )
        .expect("insert");
        assert_eq!(
            Operation::count_by_kind_and_state(conn).expect("count"),
            vec![
                ("create".to_owned(), "failed".to_owned(), 1),
                ("create".to_owned(), "succeeded".to_owned(), 2),
                ("destroy_all".to_owned(), "queued".to_owned(), 1),
            ]
        );
    });
}

#[test]
fn several_researchers_are_given_one_free_vm_each_in_one_statement() {
    on_both_backends(|conn| {
        for hostname in ["vm-a", "vm-b", "vm-c"] {
            make_free(conn, hostname, GpuHealth::Healthy);
        }
        let claims: Vec<(String, String, String, Option<String>)> = ["ada", "grace"]
            .iter()
            .map(|name| {
                (
                    format!("{name}@example.org"),
                    format!("cmd-{name}"),
                    "123456".to_owned(),
                    Some(format!("browser of {name}")),
                )
            })
            .collect();
        let claimed = Vm::claim_free_many(conn, &claims, None, now()).expect("claim");
        let mut given: Vec<(String, String, String, Option<String>)> = claimed
            .iter()
            .map(|vm| {
                (
                    vm.hostname.clone(),
                    vm.user_email.clone().expect("email"),
                    vm.crd_command.clone().expect("command"),
                    vm.claimed_by.clone(),
                )
            })
            .collect();
        given.sort();
        assert_eq!(
            given,
            vec![
                (
                    "vm-a".into(),
                    "ada@example.org".into(),
                    "cmd-ada".into(),
                    Some("browser of ada".into())
                ),
                (
                    "vm-b".into(),
                    "grace@example.org".into(),
                    "cmd-grace".into(),
                    Some("browser of grace".into())
                ),
            ]
        );
        assert!(claimed.iter().all(|vm| vm.assignment_seq == 1));
        let held = Vm::find_by_emails(conn, &["grace@example.org".to_owned()]).expect("find");
        assert_eq!(held.len(), 1);

        // Three more ask; one VM is left.
        let more: Vec<(String, String, String, Option<String>)> = ["alan", "edsger", "barbara"]
            .iter()
            .map(|name| {
                (
                    format!("{name}@example.org"),
                    "c".to_owned(),
                    "1".to_owned(),
                    None,
                )
            })
            .collect();
        let claimed = Vm::claim_free_many(conn, &more, None, now()).expect("claim");
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].hostname, "vm-c");
        assert_eq!(claimed[0].user_email.as_deref(), Some("alan@example.org"));
        assert_eq!(Vm::count_free(conn).expect("count"), 0);

        // A researcher who holds a VM is refused a second one: the whole statement fails.
        make_free(conn, "vm-d", GpuHealth::Healthy);
        let again = vec![(
            "ada@example.org".to_owned(),
            "c".to_owned(),
            "1".to_owned(),
            None,
        )];
        assert!(Vm::claim_free_many(conn, &again, None, now()).is_err());
    });
}

/// The quiet-heartbeats migration can be undone and done again (with the newer migrations
/// undone first, which must revert cleanly too): undone, a heartbeat is announced as before;
/// redone, it is not. Rows are written in plain SQL, as the model follows the newest schema.
#[test]
fn quiet_heartbeats_revert_and_reapply() {
    use diesel_migrations::MigrationHarness;

    let database = TestDatabase::migrated();
    let mut conn = PgConnection::establish(database.url()).expect("connect");
    let newer = [
        "20261208000021",
        "20261208000020",
        "20261203000019",
        "20261203000018",
        "20261203000017",
        "20261203000016",
        "20261203000015",
        "20261202000014",
        "20261202000013",
        "20261202000012",
        "20261202000011",
        "20261202000010",
        "20261202000009",
        "20261201000008",
        "20261201000007",
    ];
    for expected in newer.iter().chain(&["20261130000006"]) {
        let reverted = conn
            .revert_last_migration(migrations::POSTGRES_MIGRATIONS)
            .expect("revert");
        assert!(
            reverted.to_string() == *expected,
            "this test reverts the migrations down to quiet_heartbeats (2026-11-30-000006); \
             expected {expected}, not {reverted}: add a new migration to `newer`"
        );
    }
    let report = |conn: &mut PgConnection, at: NaiveDateTime| {
        diesel::sql_query(
            "INSERT INTO vms (hostname, status, last_heartbeat_at, created_at, updated_at) \
             VALUES ('vm-hb', 'running', $1, $1, $1) \
             ON CONFLICT (hostname) DO UPDATE SET status = excluded.status, \
             last_heartbeat_at = excluded.last_heartbeat_at, updated_at = excluded.updated_at",
        )
        .bind::<diesel::sql_types::Timestamp, _>(at)
        .execute(conn)
        .expect("report");
    };
    let heartbeats_announced = || {
        let mut listener = PgConnection::establish(database.url()).expect("connect");
        diesel::sql_query("LISTEN vm_updates")
            .execute(&mut listener)
            .expect("listen");
        let mut writer = PgConnection::establish(database.url()).expect("w");
        report(&mut writer, now() + chrono::Duration::seconds(30));
        diesel::sql_query("SELECT 1")
            .execute(&mut listener)
            .expect("poll");
        listener.notifications_iter().count()
    };
    let mut setup = PgConnection::establish(database.url()).expect("connect");
    report(&mut setup, now());
    assert_eq!(heartbeats_announced(), 1, "announced before the migration");
    conn.run_pending_migrations(migrations::POSTGRES_MIGRATIONS)
        .expect("reapply");
    assert_eq!(heartbeats_announced(), 0, "quiet after it");
}

/// The free-VM rule is written once in SQL (`FREE_VM_SQL`, used by the claim statements),
/// once as a diesel query (`count_free`) and once in Rust (`Vm::is_free`, through
/// `GpuHealth::allows_assignment`): for every status, GPU health and assignment, all three
/// must agree.
#[test]
fn the_free_vm_rule_is_one_rule() {
    use lablink_schema::vms::FREE_VM_SQL;
    let assignable: Vec<String> = GpuHealth::ASSIGNABLE
        .iter()
        .map(|health| format!("'{}'", health.as_str()))
        .collect();
    let blocking: Vec<String> = LifecycleState::BLOCKS_ASSIGNMENT
        .iter()
        .map(|state| format!("'{}'", state.as_str()))
        .collect();
    assert_eq!(
        FREE_VM_SQL.split_whitespace().collect::<Vec<_>>().join(" "),
        format!(
            "status = '{}' AND user_email IS NULL AND gpu_health IN ({}) AND state NOT IN ({})",
            VmStatus::Running.as_str(),
            assignable.join(", "),
            blocking.join(", ")
        ),
        "the SQL predicate says what GpuHealth::ASSIGNABLE and LifecycleState::BLOCKS_ASSIGNMENT say"
    );
    on_both_backends(|conn| {
        let mut expected_free = std::collections::BTreeSet::new();
        let healths = std::iter::once(None).chain(GpuHealth::ALL.map(Some));
        let mut n = 0;
        for (status, health, assigned, state) in VmStatus::ALL.into_iter().flat_map(|status| {
            healths.clone().flat_map(move |health| {
                [false, true].into_iter().flat_map(move |assigned| {
                    LifecycleState::ALL.map(move |state| (status, health, assigned, state))
                })
            })
        }) {
            n += 1;
            let hostname = format!("vm-{n:03}");
            Vm::upsert_status(conn, &hostname, status, None, now()).expect("insert");
            let change = Transition {
                to: state,
                reason: "test".to_owned(),
                recovery_attempts: 0,
                next_action: None,
            };
            let booting = ReadState {
                state: LifecycleState::Booting,
                recovery_attempts: 0,
            };
            Vm::transition(conn, &hostname, booting, &change, now())
                .expect("set state")
                .expect("the VM was booting");
            if let Some(health) = health {
                Vm::set_gpu_health(conn, &hostname, health, now()).expect("gpu");
            }
            if assigned {
                give_to(conn, &hostname, &format!("{hostname}@lab.example")).expect("give");
            }
            let vm = Vm::find_by_hostname(conn, &hostname)
                .expect("find")
                .expect("exists");
            if vm.is_free() {
                expected_free.insert(hostname);
            }
        }
        assert!(!expected_free.is_empty(), "some combination is free");
        assert_eq!(
            Vm::count_free(conn).expect("count"),
            i64::try_from(expected_free.len()).expect("small")
        );
        let mut claimed = std::collections::BTreeSet::new();
        while let Some(vm) = Vm::claim_free(
            conn,
            &format!("claimer-{}@lab.example", claimed.len()),
            "cmd",
            "123456",
            None,
            None,
            now(),
        )
        .expect("claim")
        {
            claimed.insert(vm.hostname);
        }
        assert_eq!(
            claimed, expected_free,
            "the claim takes exactly the free VMs"
        );
    });
}

/// An unfinished run is taken over only when nobody holds it: no lease, a lease that ran
/// out, or a holder known to be gone; a holder's renewal keeps it.
#[test]
fn only_abandoned_operations_are_taken_over() {
    on_both_backends(|conn| {
        let t = now();
        let later = t + chrono::Duration::seconds(30);
        let insert = |conn: &mut DbConnection, owner: Option<(&str, NaiveDateTime)>| {
            let mut new = NewOperation::queued(OperationKind::Create, "admin", t);
            if let Some((owner, until)) = owner {
                new = new.leased_to(owner, until);
            }
            Operation::insert(conn, &new).expect("insert").id
        };
        let unleased = insert(conn, None);
        let held = insert(conn, Some(("alive", later)));
        let expired = insert(conn, Some(("alive", t - chrono::Duration::seconds(1))));
        let orphaned = insert(conn, Some(("gone", later)));
        assert_eq!(
            Operation::renew_leases(conn, "alive", &[held, orphaned], later).expect("renew"),
            1,
            "only the owner's own leases are renewed"
        );
        let alive = |owner: &str| owner == "alive";
        let mut taken: Vec<i64> = Operation::take_over_abandoned(conn, "heir", later, t, &alive)
            .expect("take over")
            .into_iter()
            .map(|op| op.id)
            .collect();
        taken.sort_unstable();
        assert_eq!(taken, vec![unleased, expired, orphaned]);
        let inherited = Operation::find_by_id(conn, expired)
            .expect("find")
            .expect("row");
        assert_eq!(inherited.lease_owner.as_deref(), Some("heir"));
        assert_eq!(
            inherited.finished_at, None,
            "taken over to be run again, not failed"
        );
        let again = Operation::take_over_abandoned(conn, "other", later, t, &|o| o != "gone")
            .expect("take over");
        assert!(
            again.is_empty(),
            "a run taken over is held by its new owner"
        );
        let kept = Operation::find_by_id(conn, held)
            .expect("find")
            .expect("row");
        assert_eq!(kept.state(), OperationState::Queued);
        assert_eq!(kept.lease_owner.as_deref(), Some("alive"));
        assert_eq!(kept.finished_at, None);
        Operation::finish(conn, held, OperationState::Succeeded, None, "", t).expect("finish");
        let done = Operation::find_by_id(conn, held)
            .expect("find")
            .expect("row");
        assert_eq!(done.lease_owner, None, "a finished run holds no lease");
    });
}

/// Two allocators that read the same state and decide the same change: only the first
/// write applies, so only one of them goes on to reboot or replace the VM.
#[test]
fn a_lifecycle_change_applies_once_for_the_state_it_was_decided_on() {
    on_both_backends(|conn| {
        Vm::upsert_status(conn, "vm-1", VmStatus::Running, None, now()).expect("insert");
        let read = ReadState::of(
            &Vm::find_by_hostname(conn, "vm-1")
                .expect("read")
                .expect("vm"),
        );
        let unreachable = Transition {
            to: LifecycleState::Unreachable,
            reason: "no heartbeat".to_owned(),
            recovery_attempts: 0,
            next_action: Some("reboot 1 of 2".to_owned()),
        };
        let first = Vm::transition(conn, "vm-1", read, &unreachable, now()).expect("first");
        let second = Vm::transition(conn, "vm-1", read, &unreachable, now()).expect("second");
        let vm = first.expect("the first change applies");
        assert_eq!(vm.state(), LifecycleState::Unreachable);
        assert_eq!(vm.next_action.as_deref(), Some("reboot 1 of 2"));
        assert!(
            second.is_none(),
            "the second, decided on the old state, does not"
        );
        assert!(!vm.is_free());
        assert_eq!(
            Vm::clear_quarantine(conn, "vm-1", "admin", now()).expect("clear"),
            None,
            "an unreachable VM is not quarantined"
        );
        assert_eq!(
            Vm::transition(conn, "nope", read, &unreachable, now()).expect("unknown"),
            None
        );
    });
}

/// A participant's session opens with the claim, takes a heartbeat's figures only for its own
/// assignment (steps once, counters and peaks never going down), and closes with the release,
/// saying why; the row stays.
#[test]
fn a_participant_session_follows_its_assignment() {
    use lablink_schema::journey;
    use lablink_schema::wire::{GpuFigures, SessionFigures};
    on_both_backends(|conn| {
        make_free(conn, "vm-1", GpuHealth::Healthy);
        let vm = Vm::claim_free(conn, "a@example.org", "cmd-a", "111111", None, None, now())
            .expect("claim")
            .expect("vm-1 is free");
        let session = journey::of_assignment(conn, "vm-1", vm.assignment_seq)
            .expect("read")
            .expect("opened with the claim");
        assert_eq!(session.email, "a@example.org");
        assert_eq!(session.command_received_at, None);

        let mut figures = SessionFigures {
            assignment_id: vm.assignment_seq,
            command_received: true,
            desktop_up: false,
            software_used: true,
            software_secs: 120,
            gpu: Some(GpuFigures {
                active_secs: 60,
                peak_utilization: 90,
                peak_memory_mib: 2048,
            }),
            idle_secs: Some(5),
        };
        assert!(journey::record(conn, "vm-1", &figures, now()).expect("record"));
        let first = journey::of_assignment(conn, "vm-1", vm.assignment_seq)
            .expect("read")
            .expect("row");
        assert!(first.command_received_at.is_some() && first.software_first_used_at.is_some());
        assert_eq!(first.desktop_up_at, None);
        // A late, smaller heartbeat lowers nothing and moves no step's time.
        figures.software_secs = 10;
        figures.gpu = Some(GpuFigures {
            active_secs: 1,
            peak_utilization: 5,
            peak_memory_mib: 1,
        });
        figures.desktop_up = true;
        let later = now() + chrono::Duration::seconds(30);
        assert!(journey::record(conn, "vm-1", &figures, later).expect("record"));
        let second = journey::of_assignment(conn, "vm-1", vm.assignment_seq)
            .expect("read")
            .expect("row");
        assert_eq!(second.command_received_at, first.command_received_at);
        let desktop = second.desktop_up_at.expect("the desktop step");
        assert!(
            (desktop - later).num_milliseconds().abs() < 1,
            "{desktop} vs {later}"
        );
        assert_eq!(
            (
                second.software_secs,
                second.gpu_active_secs,
                second.gpu_peak_utilization,
                second.gpu_peak_memory_mib
            ),
            (120, 60, 90, 2048)
        );
        assert!(second.gpu_measured);
        figures.assignment_id += 1;
        assert!(
            !journey::record(conn, "vm-1", &figures, now()).expect("record"),
            "another assignment's figures are not this session's"
        );

        Vm::release(conn, "vm-1", now()).expect("release");
        let ended = journey::of_assignment(conn, "vm-1", vm.assignment_seq)
            .expect("read")
            .expect("kept");
        assert!(ended.ended_at.is_some());
        assert_eq!(
            ended.end_reason.as_deref(),
            Some(journey::end_reason::RELEASED)
        );
        assert_eq!(journey::of_workshop(conn, None).expect("list").len(), 1);
    });
}

#[test]
fn a_desktop_tunnel_is_listed_while_its_allocator_renews_it_and_a_newer_one_wins() {
    use lablink_schema::desktop_presence as presence;
    on_both_backends(|conn| {
        let (a, b) = ("http://10.0.0.1:5000", "http://10.0.0.2:5000");
        let start = now();
        let later = |secs| start + chrono::Duration::seconds(secs);
        presence::hold(conn, "vm-gone", a, "t0", start).expect("hold");
        assert_eq!(
            presence::holder(conn, "vm-gone", later(-60)).expect("read"),
            None,
            "a VM that does not exist gets no row"
        );

        Vm::upsert_status(conn, "vm-1", VmStatus::Running, None, start).expect("vm");
        presence::hold(conn, "vm-1", a, "t1", start).expect("hold");
        assert_eq!(
            presence::holder(conn, "vm-1", later(-60))
                .expect("read")
                .as_deref(),
            Some(a)
        );
        assert_eq!(
            presence::holder(conn, "vm-1", later(1)).expect("read"),
            None,
            "a row not renewed since counts as no tunnel"
        );
        assert_eq!(presence::refresh(conn, a, later(30)).expect("renew"), 1);
        assert_eq!(presence::refresh(conn, b, later(30)).expect("renew"), 0);
        assert!(presence::holder(conn, "vm-1", later(1))
            .expect("read")
            .is_some());

        // The agent reconnects through another allocator; the first tunnel's end comes late.
        presence::hold(conn, "vm-1", b, "t2", later(40)).expect("hold");
        presence::let_go(conn, "vm-1", "t1").expect("let go");
        assert_eq!(
            presence::holder(conn, "vm-1", later(1))
                .expect("read")
                .as_deref(),
            Some(b),
            "the old tunnel's end leaves the new one listed"
        );
        presence::let_go(conn, "vm-1", "t2").expect("let go");
        assert_eq!(
            presence::holder(conn, "vm-1", later(-60)).expect("read"),
            None
        );
    });
}

#[test]
fn an_instructors_view_counts_while_its_allocator_renews_it() {
    use lablink_schema::desktop_presence as presence;
    on_both_backends(|conn| {
        let a = "http://10.0.0.1:5000";
        let start = now();
        let later = |secs| start + chrono::Duration::seconds(secs);
        Vm::upsert_status(conn, "vm-1", VmStatus::Running, None, start).expect("vm");
        assert!(!presence::is_viewed(conn, "vm-1", later(-60)).expect("read"));
        presence::view_opened(conn, "v1", "vm-1", a, start).expect("open");
        presence::view_opened(conn, "v2", "vm-gone", a, start).expect("no such VM: nothing");
        assert!(presence::is_viewed(conn, "vm-1", later(-60)).expect("read"));
        assert!(!presence::is_viewed(conn, "vm-2", later(-60)).expect("read"));
        assert!(
            !presence::is_viewed(conn, "vm-1", later(1)).expect("read"),
            "a view whose allocator stopped renewing it is over"
        );
        assert_eq!(presence::refresh(conn, a, later(30)).expect("renew"), 1);
        assert!(presence::is_viewed(conn, "vm-1", later(1)).expect("read"));
        presence::view_closed(conn, "v1").expect("close");
        assert!(!presence::is_viewed(conn, "vm-1", later(-60)).expect("read"));
    });
}

/// The replacements' back-off: the first replacement at once, each later one after twice the
/// wait of the one before, none past the limit, and a reset starts the count again.
#[test]
fn failed_boot_replacements_back_off_stop_and_start_again() {
    use lablink_schema::boot_failures::{BootFailureStreak, ReplacementGate};
    use std::time::Duration;
    on_both_backends(|conn| {
        let boot = Duration::from_secs(60);
        // Whole seconds: the database keeps microseconds only.
        let t0 = chrono::NaiveDate::from_ymd_opt(2026, 12, 8)
            .and_then(|day| day.and_hms_opt(9, 0, 0))
            .expect("time");
        let at = |secs: i64| t0 + chrono::Duration::seconds(secs);
        let gate = |conn: &mut DbConnection, secs: i64| {
            BootFailureStreak::gate(conn, "workshop:1", boot, 3, at(secs)).expect("gate")
        };
        assert_eq!(gate(conn, 0), ReplacementGate::Now);
        BootFailureStreak::count_replacement(conn, "workshop:1", "no boot", at(0)).expect("count");
        // The second waits twice the boot timeout after the first.
        assert_eq!(gate(conn, 60), ReplacementGate::NotBefore(at(120)));
        assert_eq!(gate(conn, 120), ReplacementGate::Now);
        BootFailureStreak::count_replacement(conn, "workshop:1", "no boot", at(120))
            .expect("count");
        assert_eq!(gate(conn, 200), ReplacementGate::NotBefore(at(360)));
        BootFailureStreak::count_replacement(conn, "workshop:1", "no boot", at(360))
            .expect("count");
        assert_eq!(
            gate(conn, 100_000),
            ReplacementGate::GiveUp { replacements: 3 }
        );
        // Other settings are counted apart.
        assert_eq!(
            BootFailureStreak::gate(conn, "default", boot, 3, at(400)).expect("gate"),
            ReplacementGate::Now
        );
        assert!(BootFailureStreak::give_up(conn, "workshop:1", "no boot", at(400)).expect("stop"));
        assert!(
            !BootFailureStreak::give_up(conn, "workshop:1", "no boot", at(500)).expect("again"),
            "stopping is recorded once"
        );
        assert_eq!(
            BootFailureStreak::list_given_up(conn).expect("list")[0].settings_key,
            "workshop:1"
        );
        // A VM of those settings became ready: the count starts again.
        BootFailureStreak::reset(conn, "workshop:1").expect("reset");
        assert_eq!(gate(conn, 600), ReplacementGate::Now);
        assert!(BootFailureStreak::list_given_up(conn)
            .expect("list")
            .is_empty());
    });
}

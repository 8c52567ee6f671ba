//! The claim batcher against real databases: a lone claim, the same researcher twice, nobody
//! refused while a VM is free, and under a rush many claims to a transaction with the
//! invariants intact.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lablink_actors::change_feed::VmEvent;
use lablink_actors::claim_batcher::{AssignVm, ClaimBatcher};
use lablink_actors::db_writer::WriteError;
use lablink_schema::testing::{TestDatabase, TestSqliteDatabase};
use lablink_schema::vms::Vm;
use lablink_schema::wire::{GpuHealth, VmStatus};
use lablink_schema::{Backend, DbConnection, DbPool};
use tokio::sync::mpsc;

fn make_free(pool: &DbPool, count: usize) {
    let mut conn = pool.get().expect("connection");
    let conn: &mut DbConnection = &mut conn;
    let now = chrono::Utc::now().naive_utc();
    for i in 0..count {
        let hostname = format!("vm-{i:03}");
        Vm::upsert_status(conn, &hostname, VmStatus::Running, None, now).expect("register");
        Vm::set_gpu_health(conn, &hostname, GpuHealth::Healthy, now).expect("health");
    }
}

fn claim(email: &str) -> AssignVm {
    AssignVm {
        email: email.to_owned(),
        crd_command: format!("command of {email}"),
        pin: "123456".to_owned(),
        claimed_by: Some(format!("browser of {}", email)),
        workshop_id: None,
    }
}

async fn a_lone_claim_and_the_same_researcher_again(pool: DbPool, backend: Backend) {
    let (feed, mut events) = mpsc::unbounded_channel::<VmEvent>();
    let batcher = ClaimBatcher::start(pool.clone(), backend, Arc::new(feed), 2);
    assert!(matches!(
        batcher.assign(claim("ada@example.org")).await,
        Err(WriteError::NoFreeVm)
    ));
    make_free(&pool, 2);
    let first = batcher
        .assign(claim("ada@example.org"))
        .await
        .expect("a VM");
    assert!(first.newly_assigned);
    assert_eq!(first.vm.user_email.as_deref(), Some("ada@example.org"));
    let again = batcher
        .assign(claim("ada@example.org"))
        .await
        .expect("the same VM");
    assert!(!again.newly_assigned);
    assert_eq!(again.vm.hostname, first.vm.hostname);
    let (claims, transactions) = batcher.counts();
    assert_eq!(
        (claims, transactions),
        (3, 3),
        "one at a time, one transaction each"
    );
    // The new assignment, row and all, for this process's waiting agents; only one: asking
    // again assigned nothing new.
    match events.try_recv() {
        Ok(VmEvent::Claimed { row, .. }) => assert_eq!(*row, first.vm),
        other => panic!("expected the claimed row, got {other:?}"),
    }
    if backend == Backend::Sqlite {
        assert_eq!(
            events.try_recv().ok(),
            Some(VmEvent::Changed {
                hostname: first.vm.hostname.clone()
            }),
            "SQLite has no trigger: the batcher announces the assignment"
        );
    }
    assert!(events.try_recv().is_err(), "nothing more");
}

#[actix::test]
async fn a_lone_claim_is_served_at_once_on_postgres() {
    let database = TestDatabase::migrated();
    a_lone_claim_and_the_same_researcher_again(database.pool(), Backend::Postgres).await;
}

#[actix::test]
async fn a_lone_claim_is_served_at_once_on_sqlite() {
    let database = TestSqliteDatabase::migrated();
    a_lone_claim_and_the_same_researcher_again(database.pool(), Backend::Sqlite).await;
}

/// `researchers` claims at once (every third email repeats an earlier one) for `vms` VMs.
async fn rush(pool: DbPool, backend: Backend, vms: usize, researchers: usize) {
    make_free(&pool, vms);
    let (feed, _events) = mpsc::unbounded_channel::<VmEvent>();
    let batcher = ClaimBatcher::start(pool.clone(), backend, Arc::new(feed), 2);
    let emails: Vec<String> = (0..researchers)
        .map(|i| {
            let person = if i % 3 == 2 { i - 1 } else { i };
            format!("r{person}@example.org")
        })
        .collect();
    let answers = futures_util::future::join_all(emails.iter().map(|email| {
        let batcher = batcher.clone();
        let email = email.clone();
        async move { (email.clone(), batcher.assign(claim(&email)).await) }
    }))
    .await;

    let mut held: BTreeMap<String, String> = BTreeMap::new();
    let mut refused = 0;
    for (email, answer) in &answers {
        match answer {
            Ok(assignment) => {
                let previous = held.insert(email.clone(), assignment.vm.hostname.clone());
                if let Some(previous) = previous {
                    assert_eq!(previous, assignment.vm.hostname, "{email} got two VMs");
                }
            }
            Err(WriteError::NoFreeVm) => refused += 1,
            Err(err) => panic!("{email}: {err}"),
        }
    }
    let hostnames: BTreeSet<&String> = held.values().collect();
    assert_eq!(hostnames.len(), held.len(), "a VM went to two researchers");
    let people: BTreeSet<&String> = emails.iter().collect();
    assert_eq!(
        held.len(),
        people.len().min(vms),
        "everyone served while VMs were free"
    );
    if people.len() > vms {
        assert!(refused > 0);
    }
    let mut conn = pool.get().expect("connection");
    let stored = Vm::list_all(&mut conn).expect("list");
    for vm in &stored {
        if let Some(email) = &vm.user_email {
            assert_eq!(
                held.get(email),
                Some(&vm.hostname),
                "what was shown is stored"
            );
        }
    }
    let free_left = Vm::count_free(&mut conn).expect("count");
    assert!(
        free_left == 0 || refused == 0,
        "someone was refused while {free_left} VMs were free"
    );
    let (claims, transactions) = batcher.counts();
    assert_eq!(claims, researchers as u64);
    assert!(
        transactions < claims / 2,
        "{claims} claims took {transactions} transactions: not batched"
    );
}

#[actix::test]
async fn a_rush_shares_transactions_on_postgres_and_keeps_the_invariants() {
    let database = TestDatabase::migrated();
    rush(database.pool(), Backend::Postgres, 40, 120).await;
}

#[actix::test]
async fn a_rush_shares_transactions_on_sqlite_and_keeps_the_invariants() {
    let database = TestSqliteDatabase::migrated();
    rush(database.pool(), Backend::Sqlite, 40, 120).await;
}

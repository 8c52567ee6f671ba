//! The VM actor against a real database: agents that were waiting before a claim of this
//! process began are answered from the claimed row at once; an agent that started waiting
//! after it is left to its own read of the database; one agent waits per VM, the newest.

use std::time::{Duration, Instant};

use actix::Actor;
use lablink_actors::vm_actor::{AddWaiter, Claimed, CountWaiters, VmActor, WaitOutcome};
use lablink_schema::testing::TestDatabase;
use lablink_schema::vms::Vm;
use lablink_schema::wire::VmStatus;
use tokio::sync::oneshot;

#[actix::test]
async fn agents_waiting_before_a_claim_are_answered_from_its_row() {
    let database = TestDatabase::migrated();
    let mut conn = database.connect();
    let now = chrono::Utc::now().naive_utc();
    let stored =
        Vm::upsert_status(&mut conn, "vm-1", VmStatus::Running, None, now).expect("register");
    let actor = VmActor::new("vm-1".into(), database.pool()).start();

    let (reply, mut early) = oneshot::channel();
    actor
        .send(AddWaiter { held: None, reply })
        .await
        .expect("mailbox");
    // Its own read finds the VM free: it keeps waiting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(early.try_recv().is_err(), "answered before any assignment");

    let claim_started = Instant::now();
    // The row as a claim committed it. It is not written to the database, so an answer
    // carrying it can only come from the claimed row itself.
    let mut row = stored.clone();
    row.user_email = Some("ada@example.org".into());
    row.crd_command = Some("the researcher's command".into());
    row.pin = Some("123456".into());
    row.assignment_seq = 1;
    actor
        .send(Claimed {
            row: row.clone(),
            claim_started,
        })
        .await
        .expect("mailbox");

    match tokio::time::timeout(Duration::from_secs(5), &mut early).await {
        Ok(Ok(WaitOutcome::Assigned(assignment))) => {
            assert_eq!(assignment.assignment_id, 1);
            assert_eq!(assignment.pin, "123456");
            assert_eq!(assignment.command, "the researcher's command");
        }
        other => panic!("the early waiter got {other:?}"),
    }
    // A waiter that asked after the claim began: the claimed row may be older than its
    // question, so only its own read answers it, and the database says the VM is free.
    let (reply, mut late) = oneshot::channel();
    actor
        .send(AddWaiter { held: None, reply })
        .await
        .expect("mailbox");
    actor
        .send(Claimed { row, claim_started })
        .await
        .expect("mailbox");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        late.try_recv().is_err(),
        "a waiter that came after the claim began was answered from it"
    );

    // One request waits per VM: the next one replaces it.
    let (reply, mut newest) = oneshot::channel();
    actor
        .send(AddWaiter { held: None, reply })
        .await
        .expect("mailbox");
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), &mut late).await,
        Ok(Ok(WaitOutcome::Replaced))
    );
    assert_eq!(
        actor.send(CountWaiters).await.expect("mailbox"),
        1,
        "only the newest waits"
    );
    assert!(newest.try_recv().is_err());
}

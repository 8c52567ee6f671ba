//! The provisioning queue with the real `terraform` binary and terraform/local: create 2,
//! scale to 3 (the first 2 untouched), destroy 1 (only that one), destroy all; assigned VMs
//! need confirmation; operations run one at a time; interrupted ones are marked failed.
//! Each "VM" is a stand-in agent process that records the token it was started with.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use diesel::prelude::*;
use lablink_actors::change_feed::VmEvent;
use lablink_actors::db_writer::DbWriter;
use lablink_actors::provisioning::terraform::TerraformCli;
use lablink_actors::provisioning_queue::{
    CreateVms, DestroyAllVms, DestroyVms, OperationEvent, ProvisioningError, ProvisioningQueue,
    ProvisioningSettings, SubscribeOperations,
};
use lablink_actors::tokens::hash_token;
use lablink_schema::operations::{NewOperation, Operation, OperationKind};
use lablink_schema::schema::vms as vms_table;
use lablink_schema::testing::TestDatabase;
use lablink_schema::vms::Vm;
use lablink_schema::Backend;
use tokio::sync::{broadcast, mpsc};

const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

fn terraform_available() -> bool {
    let found = std::process::Command::new("terraform")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED: the terraform CLI is not installed; the executor tests need it");
    }
    found
}

struct Lab {
    database: TestDatabase,
    dir: tempfile::TempDir,
    executor: Addr<ProvisioningQueue>,
    events: broadcast::Receiver<OperationEvent>,
    /// Operations seen finishing, in whatever order they ran.
    finished: std::collections::HashSet<i64>,
}

impl Drop for Lab {
    /// Stops every stand-in agent still running, whatever the test's outcome.
    fn drop(&mut self) {
        let state = self.dir.path().join("state");
        for entry in std::fs::read_dir(state).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|ext| ext == "pid") {
                if let Ok(pid) = std::fs::read_to_string(entry.path()) {
                    let _ = std::process::Command::new("kill").arg(pid.trim()).status();
                }
            }
        }
    }
}

impl Lab {
    async fn start(database: TestDatabase) -> Lab {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).expect("state dir");
        // The stand-in agent: records name and token next to itself, then idles.
        let agent = dir.path().join("agent.sh");
        std::fs::write(
            &agent,
            "#!/bin/sh\nprintf '%s' \"$LABLINK_VM_TOKEN\" > \"$(dirname \"$0\")/state/$VM_NAME.token\"\nexec sleep 600\n",
        )
        .expect("agent script");
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("../terraform/local");
        let provisioner = TerraformCli {
            binary: PathBuf::from("terraform"),
            module_dir: module,
            work_dir: dir.path().join("work"),
            allocator_url: "http://127.0.0.1:9".to_owned(),
            variables: BTreeMap::from([
                ("agent_command".to_owned(), agent.display().to_string()),
                ("state_dir".to_owned(), state.display().to_string()),
            ]),
        };
        let (feed, _events) = mpsc::unbounded_channel::<VmEvent>();
        let writer = DbWriter::start(database.pool(), Backend::Postgres, Arc::new(feed), 2);
        let executor = ProvisioningQueue::new(
            database.pool(),
            writer,
            Arc::new(provisioner),
            ProvisioningSettings {
                name_prefix: "lablink-vm-test".to_owned(),
                max_vms: 5,
            },
        )
        .start();
        let events = executor.send(SubscribeOperations).await.expect("subscribe");
        Lab {
            database,
            dir,
            executor,
            events,
            finished: std::collections::HashSet::new(),
        }
    }

    /// Waits for operation `id` to finish and returns it as stored.
    async fn finished(&mut self, id: i64) -> Operation {
        let deadline = tokio::time::Instant::now() + OPERATION_TIMEOUT;
        while !self.finished.contains(&id) {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("the operation did not finish in time");
            if let Ok(OperationEvent::Finished { operation_id, .. }) = event {
                self.finished.insert(operation_id);
            }
        }
        let mut conn = self.database.connect();
        Operation::find_by_id(&mut conn, id)
            .expect("query")
            .expect("row")
    }

    fn vms(&self) -> Vec<Vm> {
        let mut conn = self.database.connect();
        Vm::list_all(&mut conn).expect("list")
    }

    fn pid_of(&self, hostname: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join(format!("state/{hostname}.pid")))
            .ok()
            .and_then(|pid| pid.trim().parse().ok())
    }

    async fn create(&mut self, count: u32) -> Operation {
        let queued = self
            .executor
            .send(CreateVms {
                workshop_id: None,
                count,
                requested_by: "admin".into(),
            })
            .await
            .expect("mailbox")
            .expect("queued");
        self.finished(queued.id).await
    }
}

fn alive(pid: u32) -> bool {
    // A killed child of init lingers as a zombie for a moment; count it as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

async fn until_gone(pid: u32) {
    for _ in 0..200 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("process {pid} still running");
}

fn hostnames(vms: &[Vm]) -> Vec<&str> {
    vms.iter().map(|vm| vm.hostname.as_str()).collect()
}

#[actix::test]
async fn create_scale_destroy_one_and_destroy_all_with_real_terraform() {
    if !terraform_available() {
        return;
    }
    let mut lab = Lab::start(TestDatabase::migrated()).await;

    // Create 2.
    let op = lab.create(2).await;
    assert_eq!(op.state, "succeeded", "{op:?}");
    assert!(op.output_tail.contains("2 added"), "{}", op.output_tail);
    let vms = lab.vms();
    assert_eq!(hostnames(&vms), ["lablink-vm-test-1", "lablink-vm-test-2"]);
    for vm in &vms {
        // Each agent was started with its own token, and the row holds its hash.
        let token =
            std::fs::read_to_string(lab.dir.path().join(format!("state/{}.token", vm.hostname)))
                .expect("the agent recorded its token");
        assert_eq!(vm.token_hash.as_deref(), Some(hash_token(&token).as_str()));
        assert!(alive(lab.pid_of(&vm.hostname).expect("pid")));
    }
    let first_pids = [
        lab.pid_of("lablink-vm-test-1"),
        lab.pid_of("lablink-vm-test-2"),
    ];

    // Scale to 3: one more, the first two untouched.
    let op = lab.create(1).await;
    assert_eq!(op.state, "succeeded", "{op:?}");
    assert!(
        op.output_tail.contains("1 added, 0 changed, 0 destroyed"),
        "{}",
        op.output_tail
    );
    assert_eq!(
        hostnames(&lab.vms()),
        [
            "lablink-vm-test-1",
            "lablink-vm-test-2",
            "lablink-vm-test-3"
        ]
    );
    assert_eq!(
        [
            lab.pid_of("lablink-vm-test-1"),
            lab.pid_of("lablink-vm-test-2")
        ],
        first_pids
    );

    // Destroy the middle one only.
    let victim = lab.pid_of("lablink-vm-test-2").expect("pid");
    let queued = lab
        .executor
        .send(DestroyVms {
            hostnames: vec!["lablink-vm-test-2".into()],
            confirm_assigned: false,
            requested_by: "admin".into(),
        })
        .await
        .expect("mailbox")
        .expect("queued");
    let op = lab.finished(queued.id).await;
    assert_eq!(op.state, "succeeded", "{op:?}");
    assert!(
        op.output_tail.contains("0 added, 0 changed, 1 destroyed"),
        "{}",
        op.output_tail
    );
    until_gone(victim).await;
    assert_eq!(
        hostnames(&lab.vms()),
        ["lablink-vm-test-1", "lablink-vm-test-3"]
    );
    assert!(alive(first_pids[0].expect("pid")));

    // An assigned VM is not destroyed without confirmation.
    {
        let mut conn = lab.database.connect();
        diesel::update(vms_table::table.find("lablink-vm-test-1"))
            .set(vms_table::user_email.eq("ada@example.org"))
            .execute(&mut conn)
            .expect("assign");
    }
    let refused = lab
        .executor
        .send(DestroyAllVms {
            confirm_assigned: false,
            requested_by: "admin".into(),
        })
        .await
        .expect("mailbox");
    assert_eq!(
        refused.expect_err("needs confirmation"),
        ProvisioningError::AssignedVms(vec!["lablink-vm-test-1".into()])
    );
    let unknown = lab
        .executor
        .send(DestroyVms {
            hostnames: vec!["nope".into()],
            confirm_assigned: true,
            requested_by: "admin".into(),
        })
        .await
        .expect("mailbox");
    assert_eq!(
        unknown.expect_err("unknown"),
        ProvisioningError::UnknownVms(vec!["nope".into()])
    );
    assert_eq!(lab.vms().len(), 2, "refusals change nothing");

    // Destroy all, confirmed.
    let pids: Vec<u32> = ["lablink-vm-test-1", "lablink-vm-test-3"]
        .iter()
        .filter_map(|h| lab.pid_of(h))
        .collect();
    let queued = lab
        .executor
        .send(DestroyAllVms {
            confirm_assigned: true,
            requested_by: "admin".into(),
        })
        .await
        .expect("mailbox")
        .expect("queued");
    let op = lab.finished(queued.id).await;
    assert_eq!(op.state, "succeeded", "{op:?}");
    for pid in pids {
        until_gone(pid).await;
    }
    assert!(lab.vms().is_empty());
}

#[actix::test]
async fn operations_run_one_at_a_time_and_bad_counts_are_refused() {
    if !terraform_available() {
        return;
    }
    let mut lab = Lab::start(TestDatabase::migrated()).await;
    for (count, expected) in [
        (0, ProvisioningError::InvalidCount { max: 5 }),
        (6, ProvisioningError::InvalidCount { max: 5 }),
    ] {
        let refused = lab
            .executor
            .send(CreateVms {
                workshop_id: None,
                count,
                requested_by: "admin".into(),
            })
            .await
            .expect("mailbox");
        assert_eq!(refused.expect_err("bad count"), expected);
    }
    // Two clicks at once: both queued, run one after the other.
    let (first, second) = futures_util::future::join(
        lab.executor.send(CreateVms {
            workshop_id: None,
            count: 2,
            requested_by: "admin".into(),
        }),
        lab.executor.send(CreateVms {
            workshop_id: None,
            count: 2,
            requested_by: "admin".into(),
        }),
    )
    .await;
    let (first, second) = (
        first.expect("mailbox").expect("queued"),
        second.expect("mailbox").expect("queued"),
    );
    // A third would exceed the maximum, counting what is queued.
    let too_many = lab
        .executor
        .send(CreateVms {
            workshop_id: None,
            count: 2,
            requested_by: "admin".into(),
        })
        .await
        .expect("mailbox");
    assert!(
        matches!(too_many, Err(ProvisioningError::TooMany { max: 5, .. })),
        "{too_many:?}"
    );
    let first = lab.finished(first.id).await;
    let second = lab.finished(second.id).await;
    assert_eq!(
        (first.state.as_str(), second.state.as_str()),
        ("succeeded", "succeeded")
    );
    // They may have been queued in either order; either way one ran after the other.
    let (earlier, later) = if first.started_at <= second.started_at {
        (&first, &second)
    } else {
        (&second, &first)
    };
    assert!(
        later.started_at.expect("started") >= earlier.finished_at.expect("finished"),
        "two terraform runs overlapped: {first:?} {second:?}"
    );
    assert_eq!(lab.vms().len(), 4);
    let queued = lab
        .executor
        .send(DestroyAllVms {
            confirm_assigned: false,
            requested_by: "admin".into(),
        })
        .await
        .expect("mailbox")
        .expect("queued");
    assert_eq!(lab.finished(queued.id).await.state, "succeeded");
}

/// An operation whose allocator stopped (here: no lease at all, as a crash before the
/// first renewal leaves it) is taken over at start and run again, not failed: a creation
/// whose names were recorded makes exactly those VMs.
#[actix::test]
async fn operations_left_unfinished_by_a_previous_process_are_taken_over_and_finished() {
    let database = TestDatabase::migrated();
    let interrupted = {
        let mut conn = database.connect();
        let mut new = NewOperation::queued(
            OperationKind::Create,
            "admin",
            chrono::Utc::now().naive_utc(),
        );
        new.requested_count = Some(1);
        let op = Operation::insert(&mut conn, &new).expect("insert");
        Operation::mark_running(&mut conn, op.id, chrono::Utc::now().naive_utc()).expect("running");
        // The interrupted run had named its VM and stored its row, token and all.
        Operation::set_targets(&mut conn, op.id, &["lablink-vm-test-7".to_owned()])
            .expect("targets");
        Vm::upsert_status(
            &mut conn,
            "lablink-vm-test-7",
            lablink_schema::wire::VmStatus::Initializing,
            Some("a token the dead allocator never kept"),
            chrono::Utc::now().naive_utc(),
        )
        .expect("row");
        op.id
    };
    let lab = Lab::start(database).await;
    let deadline = tokio::time::Instant::now() + OPERATION_TIMEOUT;
    let op = loop {
        let mut conn = lab.database.connect();
        let op = Operation::find_by_id(&mut conn, interrupted)
            .expect("query")
            .expect("row");
        if op.finished_at.is_some() {
            break op;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not finished: {op:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(op.state, "succeeded", "{op:?}");
    let vms = lab.vms();
    assert_eq!(
        vms.iter()
            .map(|vm| vm.hostname.as_str())
            .collect::<Vec<_>>(),
        ["lablink-vm-test-7"],
        "exactly the recorded VM, made once"
    );
    // Its agent was given a new token, and the row holds that token's hash.
    let token = std::fs::read_to_string(lab.dir.path().join("state/lablink-vm-test-7.token"))
        .expect("the agent recorded its token");
    assert_eq!(
        vms[0].token_hash.as_deref(),
        Some(hash_token(&token).as_str()),
        "the row holds the new token's hash"
    );
}

//! The local provider's agents are the lab's VMs, and no stop of the allocator lies about
//! them: after a SIGKILL the next allocator adopts the agents that run (and can destroy or
//! reboot them), after a graceful stop they are stopped and their VMs removed unless the
//! operator keeps them, and an agent that died meanwhile has its VM removed, never handed
//! out. Real allocator processes, killed with real signals; the agents are a stand-in
//! program that only runs (its token is checked against the allocator by the test).

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

#[path = "support/allocator_process.rs"]
mod allocator_process;
#[path = "support/stand_in_lab.rs"]
mod stand_in_lab;

use allocator_process::{operation_as, STOP_TIMEOUT};
use stand_in_lab::{AgentProcess, Lab, NoAgentLeftBehind, PASSWORD};

impl Lab {
    /// Queues an operation and returns its id.
    async fn queue(&self, base: &str, path: &str, body: Value) -> i64 {
        let queued: Value = self
            .admin_post(base, path, body)
            .await
            .json()
            .await
            .expect("json");
        queued["operation_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("not queued: {queued}"))
    }

    /// Waits for operation `id` to finish and returns it.
    async fn finished(&self, base: &str, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let op = operation_as(self.client.clone(), base.to_owned(), PASSWORD, id).await;
            if op["finished_at"] != Value::Null {
                return op;
            }
            assert!(
                Instant::now() < deadline,
                "operation {id} did not finish: {op}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether `agent`'s token is the one its VM's row holds: it may report as its VM.
    async fn token_works(&self, base: &str, agent: &AgentProcess) -> bool {
        self.client
            .post(format!("{base}/api/vm-status"))
            .bearer_auth(&agent.token)
            .json(&json!({"hostname": agent.hostname, "status": "running"}))
            .send()
            .await
            .expect("vm-status")
            .status()
            .is_success()
    }

    /// Checks the lab's invariant: one running agent per VM row and none without a row,
    /// each holding a token that works.
    async fn assert_one_working_agent_per_vm(&self, base: &str) {
        let agents = self.agents();
        let mut names: Vec<String> = agents.iter().map(|a| a.hostname.clone()).collect();
        names.sort();
        let mut rows = self.hostnames();
        rows.sort();
        assert_eq!(names, rows, "one agent per VM, none twice: {agents:?}");
        for agent in &agents {
            assert!(
                self.token_works(base, agent).await,
                "{}'s agent holds a token that no longer works",
                agent.hostname
            );
        }
    }
}

async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn after_a_sigkill_the_next_allocator_adopts_the_agents_and_a_sigterm_stops_them() {
    let lab = Lab::new();
    let _cleanup = NoAgentLeftBehind(lab.dir.path());

    let (mut first, base) = lab.allocator(&[]);
    let id = lab
        .queue(&base, "/api/admin/vms", json!({"count": 3}))
        .await;
    assert_eq!(lab.finished(&base, id).await["state"], "succeeded");
    assert_eq!(lab.agents().len(), 3);
    // A second creation, and the allocator killed hard as soon as it is asked.
    let interrupted = lab
        .queue(&base, "/api/admin/vms", json!({"count": 3}))
        .await;
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    let survivors = lab.agents();
    assert!(
        survivors.len() >= 3,
        "the agents outlive a crash: {survivors:?}"
    );

    // The next allocator adopts them, and finishes the interrupted creation without
    // starting any VM twice or leaving an agent with a dead token.
    let (mut second, base) = lab.allocator(&[]);
    assert_eq!(lab.finished(&base, interrupted).await["state"], "succeeded");
    assert_eq!(lab.hostnames().len(), 6);
    lab.assert_one_working_agent_per_vm(&base).await;
    for survivor in &survivors {
        assert!(
            lab.agents().contains(survivor),
            "{} kept running as it was",
            survivor.hostname
        );
    }

    // An adopted VM is destroyed for real: the operation succeeds once its agent is gone.
    let doomed = survivors[0].clone();
    let id = lab
        .queue(
            &base,
            "/api/admin/vms/destroy",
            json!({"hostnames": [doomed.hostname]}),
        )
        .await;
    assert_eq!(lab.finished(&base, id).await["state"], "succeeded");
    assert!(
        !lab.agents().iter().any(|a| a.hostname == doomed.hostname),
        "the destroyed VM's agent still runs"
    );
    assert!(!lab.hostnames().contains(&doomed.hostname));

    // An adopted VM reboots as itself: a new process with the same, working token.
    let rebooted = survivors[1].clone();
    let answer = lab
        .admin_post(
            &base,
            &format!("/api/admin/vms/{}/reboot", rebooted.hostname),
            json!({}),
        )
        .await;
    assert_eq!(
        answer.status(),
        200,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let now = lab
        .agents()
        .into_iter()
        .find(|a| a.hostname == rebooted.hostname)
        .expect("it runs again");
    assert_ne!(now.pid, rebooted.pid);
    assert_eq!(now.token, rebooted.token);
    lab.assert_one_working_agent_per_vm(&base).await;

    second.logged(
        "adopted the VMs a previous allocator left running",
        STOP_TIMEOUT,
    );

    // A graceful stop (the default) stops every agent and removes their VMs, and says so.
    second.signal("TERM");
    assert!(second.wait_for_exit().success());
    second.logged(
        "stopped the local agents and removed their VMs, so nothing is left running; set \
         provider.local.stop_agents_on_exit to false to keep them across restarts",
        STOP_TIMEOUT,
    );
    assert_eq!(lab.agents(), [], "nothing is left running");
    assert_eq!(
        lab.hostnames(),
        Vec::<String>::new(),
        "no VM of a dead agent"
    );
}

#[tokio::test]
async fn kept_agents_are_adopted_and_one_that_died_meanwhile_is_never_handed_out() {
    let lab = Lab::new();
    let _cleanup = NoAgentLeftBehind(lab.dir.path());

    let keep = [("LABLINK__PROVIDER__LOCAL__STOP_AGENTS_ON_EXIT", "false")];
    let (mut first, base) = lab.allocator(&keep);
    let id = lab
        .queue(&base, "/api/admin/vms", json!({"count": 2}))
        .await;
    assert_eq!(lab.finished(&base, id).await["state"], "succeeded");
    first.signal("TERM");
    assert!(first.wait_for_exit().success());
    first.logged(
        "leaving the local agents running (provider.local.stop_agents_on_exit is false); \
         the next allocator adopts them",
        STOP_TIMEOUT,
    );
    let kept = lab.agents();
    assert_eq!(
        kept.len(),
        2,
        "the agents outlive a graceful stop when kept"
    );

    // One VM dies while no allocator runs.
    let (dead, alive) = (kept[0].clone(), kept[1].clone());
    kill(Pid::from_raw(dead.pid), Signal::SIGKILL).expect("kill the agent");
    until("the killed agent is gone", || {
        !lab.agents().iter().any(|a| a.pid == dead.pid)
    })
    .await;

    let (mut second, base) = lab.allocator(&[]);
    second.logged(
        "this VM stopped while no allocator watched it: it is removed",
        STOP_TIMEOUT,
    );
    second.logged(
        "adopted the VMs a previous allocator left running",
        STOP_TIMEOUT,
    );
    until("the dead VM's row is removed", || {
        !lab.hostnames().contains(&dead.hostname)
    })
    .await;
    assert_eq!(lab.hostnames(), std::slice::from_ref(&alive.hostname));
    lab.assert_one_working_agent_per_vm(&base).await;

    // A new VM never takes the name of one whose agent runs.
    let id = lab
        .queue(&base, "/api/admin/vms", json!({"count": 1}))
        .await;
    assert_eq!(lab.finished(&base, id).await["state"], "succeeded");
    lab.assert_one_working_agent_per_vm(&base).await;

    second.signal("TERM");
    assert!(second.wait_for_exit().success());
    assert_eq!(lab.agents(), [], "the default stop leaves nothing running");
}

#[tokio::test]
async fn a_creation_whose_allocator_is_killed_is_finished_by_the_other_one_running() {
    let lab = Lab::new();
    let _cleanup = NoAgentLeftBehind(lab.dir.path());
    // Two allocators on one database and one agents' directory.
    let (mut first, first_base) = lab.allocator(&[]);
    let (mut second, second_base) = lab.allocator(&[]);

    let id = lab
        .queue(&first_base, "/api/admin/vms", json!({"count": 3}))
        .await;
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();

    // The other one, which never restarted, takes the job over (its holder is gone) and
    // finishes it.
    let finished = lab.finished(&second_base, id).await;
    assert_eq!(finished["state"], "succeeded", "{finished}");
    assert_eq!(lab.hostnames().len(), 3);
    lab.assert_one_working_agent_per_vm(&second_base).await;
    second.logged(
        "taking over an operation whose allocator stopped",
        STOP_TIMEOUT,
    );

    second.signal("TERM");
    assert!(second.wait_for_exit().success());
    assert_eq!(lab.agents(), [], "nothing is left running");
}

#[tokio::test]
async fn an_adopted_agent_that_dies_takes_its_vm_out_of_the_pool_at_once() {
    let lab = Lab::new();
    let _cleanup = NoAgentLeftBehind(lab.dir.path());
    let keep = [("LABLINK__PROVIDER__LOCAL__STOP_AGENTS_ON_EXIT", "false")];
    let (mut first, base) = lab.allocator(&keep);
    let id = lab
        .queue(&base, "/api/admin/vms", json!({"count": 1}))
        .await;
    assert_eq!(lab.finished(&base, id).await["state"], "succeeded");
    first.signal("TERM");
    assert!(first.wait_for_exit().success());

    // The next allocator adopts it; then it dies. Not its child: its pid record tells.
    let (mut second, _base) = lab.allocator(&keep);
    second.logged(
        "adopted the VMs a previous allocator left running",
        STOP_TIMEOUT,
    );
    let agent = lab.agents().remove(0);
    kill(Pid::from_raw(agent.pid), Signal::SIGKILL).expect("kill the agent");
    let killed = Instant::now();
    let state = || {
        let mut conn = lab.database.connect();
        lablink_schema::vms::Vm::find_by_hostname(&mut conn, &agent.hostname)
            .expect("read")
            .map(|vm| (vm.state, vm.state_reason))
    };
    until("the VM left the pool", || {
        state().is_some_and(|(state, _)| state == "boot_failed")
    })
    .await;
    // Well inside one heartbeat interval (30 s by default).
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "took {:?}",
        killed.elapsed()
    );
    let (_, reason) = state().expect("the VM stays, broken");
    assert!(reason.contains("the agent exited"), "{reason}");
}

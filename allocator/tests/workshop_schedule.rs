//! A workshop's planned actions are durable jobs: real allocator processes on one
//! PostgreSQL database, killed with real signals. An allocator killed before a workshop's
//! warning and teardown, and restarted after their time, still tears the workshop down but
//! skips the stale warning, writing down why; its pending notifications survive the kill.
//! Two allocators do each action once. A workshop that reaches its spend cap stops making
//! VMs (and here, as configured, is torn down), and each step is audited and notified.
//! The VMs are the local provider's, with a stand-in agent program.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use lablink_schema::audit_events::AuditEvent;
use lablink_schema::workshops::actions::WorkshopAction;
use lablink_schema::workshops::Workshop;
use serde_json::{json, Value};

#[path = "support/allocator_process.rs"]
mod allocator_process;
#[path = "support/receivers.rs"]
mod receivers;
#[path = "support/stand_in_lab.rs"]
mod stand_in_lab;

use allocator_process::Allocator;
use receivers::WebhookReceiver;
use stand_in_lab::{Lab, NoAgentLeftBehind};

const SECRET: &str = "schedule-test-webhook-secret";

/// The lab's configuration file: the webhook, quick retries, a 1 s boot estimate, warm-up
/// batches of one VM, and `price` per VM-hour of the local provider's VMs.
fn write_config(lab: &Lab, hook: &WebhookReceiver, price: f64) -> String {
    let path = lab.dir.path().join("lablink.yaml");
    let yaml = format!(
        "notifications:\n  webhooks:\n    - name: lab\n      url: {}\n      secret: {SECRET}\n  \
         retry_first_secs: 0.3\n  retry_max_secs: 1\n\
         workshops:\n  boot_estimate_secs: 1\n  warmup_batch_size: 1\n  prices:\n    local: {price}\n",
        hook.url
    );
    std::fs::write(&path, yaml).expect("config file");
    path.display().to_string()
}

fn start(lab: &Lab, config: &str) -> (Allocator, String) {
    lab.allocator(&[
        ("LABLINK_CONFIG", config),
        // Agents outlive a killed allocator, as VMs would; the next one adopts them.
        ("LABLINK__PROVIDER__LOCAL__STOP_AGENTS_ON_EXIT", "false"),
    ])
}

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn create(lab: &Lab, base: &str, body: Value) -> i64 {
    let created = lab.admin_post(base, "/api/admin/workshops", body).await;
    assert_eq!(created.status(), 201);
    created.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id")
}

fn workshop(lab: &Lab, id: i64) -> (Workshop, Vec<WorkshopAction>) {
    let mut conn = lab.database.connect();
    let workshop = Workshop::find(&mut conn, id)
        .expect("read")
        .expect("workshop");
    let actions = WorkshopAction::list_for(&mut conn, id).expect("actions");
    (workshop, actions)
}

async fn until(what: &str, patience: Duration, check: impl Fn() -> bool) {
    let deadline = Instant::now() + patience;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn workshop_vms(lab: &Lab, id: i64) -> usize {
    let mut conn = lab.database.connect();
    Workshop::vm_hostnames(&mut conn, id).expect("vms").len()
}

fn action<'a>(actions: &'a [WorkshopAction], kind: &str) -> &'a WorkshopAction {
    actions
        .iter()
        .find(|a| a.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} action: {actions:?}"))
}

/// Each accepted delivery key once.
fn assert_each_delivered_once(hook: &WebhookReceiver) {
    let mut keys: Vec<String> = hook
        .requests()
        .iter()
        .filter(|r| r.accepted)
        .map(|r| r.body["delivery_key"].as_str().expect("key").to_owned())
        .collect();
    let all = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), all, "a delivery arrived twice: {keys:?}");
}

#[actix_web::test]
async fn a_teardown_missed_while_down_still_happens_and_a_stale_warning_is_skipped() {
    let lab = Lab::new();
    let _cleanup = NoAgentLeftBehind(lab.dir.path());
    let hook = WebhookReceiver::start(SECRET);
    // Down for the first seconds: the warm-up notice is still pending when the allocator
    // is killed.
    hook.refuse_for(Duration::from_secs(60));
    let config = write_config(&lab, &hook, 0.0);
    let (mut first, base) = start(&lab, &config);
    let starts = Utc::now() + chrono::Duration::seconds(4);
    // The 1-minute warning is due at the start.
    let ends = starts + chrono::Duration::seconds(60);
    let id = create(
        &lab,
        &base,
        json!({
            "name": "Interrupted",
            "starts_at": rfc3339(starts),
            "ends_at": rfc3339(ends),
            "headcount": 2,
            "spare_vms": 0,
            "warmup_lead_secs": 4,
            "warning_minutes": [1],
        }),
    )
    .await;
    until("both VMs exist", Duration::from_secs(20), || {
        workshop_vms(&lab, id) == 2
    })
    .await;
    // Killed before the start, the warning and the teardown.
    first.signal("KILL");
    first.wait_for_exit();
    assert!(
        Utc::now() < starts,
        "the test machine is too slow for this test"
    );
    hook.refuse_for(Duration::ZERO);
    let wait = (ends - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1);
    tokio::time::sleep(wait).await;

    let (_second, _) = start(&lab, &config);
    until("the workshop is torn down", Duration::from_secs(30), || {
        workshop(&lab, id).0.state == "torn_down" && workshop_vms(&lab, id) == 0
    })
    .await;
    let (_, actions) = workshop(&lab, id);
    let warning = action(&actions, "warning");
    assert_eq!(warning.state, "skipped", "{warning:?}");
    assert!(
        warning
            .outcome
            .as_deref()
            .is_some_and(|why| why.contains("after the workshop had ended")),
        "{warning:?}"
    );
    assert_eq!(action(&actions, "open").state, "skipped");
    assert_eq!(action(&actions, "end").state, "done");
    let teardown = action(&actions, "teardown");
    assert_eq!(teardown.state, "done", "{teardown:?}");
    until("the agents are stopped", Duration::from_secs(20), || {
        lab.agents().is_empty()
    })
    .await;
    // The notice written before the kill was delivered after the restart; the stale
    // warning never was.
    hook.wait_for("workshop.warming_up", Duration::from_secs(10))
        .await;
    hook.wait_for("workshop.torn_down", Duration::from_secs(10))
        .await;
    assert!(hook.accepted("workshop.warning").is_empty());
    assert_each_delivered_once(&hook);
}

#[actix_web::test]
async fn two_allocators_do_each_planned_action_once() {
    let lab = Lab::new();
    let _cleanup = NoAgentLeftBehind(lab.dir.path());
    let hook = WebhookReceiver::start(SECRET);
    let config = write_config(&lab, &hook, 0.0);
    let (_a, base_a) = start(&lab, &config);
    let (_b, _base_b) = start(&lab, &config);
    let starts = Utc::now() + chrono::Duration::seconds(6);
    let ends = starts + chrono::Duration::seconds(61);
    let id = create(
        &lab,
        &base_a,
        json!({
            "name": "Shared",
            "starts_at": rfc3339(starts),
            "ends_at": rfc3339(ends),
            "headcount": 3,
            "spare_vms": 0,
            "warmup_lead_secs": 6,
            "warning_minutes": [1],
        }),
    )
    .await;
    let patience = (ends - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(30);
    until("the workshop is torn down", patience, || {
        workshop(&lab, id).0.state == "torn_down" && workshop_vms(&lab, id) == 0
    })
    .await;
    let (_, actions) = workshop(&lab, id);
    assert_eq!(actions.len(), 3 + 4, "{actions:?}");
    for action in &actions {
        assert_eq!(action.state, "done", "{action:?}");
    }
    // Three batches of one VM: three creations of one VM each, never a repeat.
    let mut conn = lab.database.connect();
    let creations: Vec<i32> = lablink_schema::operations::Operation::list_recent(&mut conn, 100)
        .expect("operations")
        .into_iter()
        .filter(|o| o.workshop_id == Some(id) && o.kind == "create")
        .map(|o| o.requested_count.unwrap_or(0))
        .collect();
    assert_eq!(creations, [1, 1, 1], "one creation per batch");
    for event in [
        "workshop.warming_up",
        "workshop.open",
        "workshop.warning",
        "workshop.ended",
        "workshop.torn_down",
    ] {
        hook.wait_for(event, Duration::from_secs(10)).await;
        assert_eq!(hook.accepted(event).len(), 1, "{event} sent once");
    }
    assert_each_delivered_once(&hook);
}

#[actix_web::test]
async fn a_workshop_at_its_spend_cap_stops_making_vms_and_is_torn_down() {
    let lab = Lab::new();
    let _cleanup = NoAgentLeftBehind(lab.dir.path());
    let hook = WebhookReceiver::start(SECRET);
    // 2 per VM-second: one VM spends the cap of 10 in 5 s.
    let config = write_config(&lab, &hook, 7200.0);
    let (_allocator, base) = start(&lab, &config);
    let starts = Utc::now() + chrono::Duration::seconds(20);
    let id = create(
        &lab,
        &base,
        json!({
            "name": "Capped",
            "starts_at": rfc3339(starts),
            "ends_at": rfc3339(starts + chrono::Duration::hours(1)),
            "headcount": 2,
            "spare_vms": 0,
            // The first batch now, the second 18.75 s from now.
            "warmup_lead_secs": 20,
            "spend_cap": 10.0,
            "teardown_at_cap": true,
        }),
    )
    .await;
    hook.wait_for("workshop.spend_warning", Duration::from_secs(20))
        .await;
    let reached = hook
        .wait_for("workshop.spend_cap_reached", Duration::from_secs(20))
        .await;
    assert!(
        reached["details"]["spent"].as_f64().expect("spent") >= 10.0,
        "{reached}"
    );
    until(
        "the capped workshop's VMs are gone",
        Duration::from_secs(20),
        || workshop_vms(&lab, id) == 0,
    )
    .await;
    let wait = (starts - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    until(
        "the second batch was decided",
        Duration::from_secs(10),
        || {
            workshop(&lab, id)
                .1
                .iter()
                .filter(|a| a.kind == "warm_up")
                .all(|a| a.state != "planned")
        },
    )
    .await;
    let (shown, actions) = workshop(&lab, id);
    assert_eq!(shown.spend_alert, "reached");
    let batches: Vec<&WorkshopAction> = actions.iter().filter(|a| a.kind == "warm_up").collect();
    assert_eq!(batches[0].state, "done");
    assert_eq!(batches[1].state, "skipped", "{:?}", batches[1]);
    assert!(batches[1]
        .outcome
        .as_deref()
        .is_some_and(|o| o.contains("spend cap")));
    assert_eq!(workshop_vms(&lab, id), 0, "nothing made after the cap");
    let mut conn = lab.database.connect();
    let audited: Vec<String> = AuditEvent::list_recent(&mut conn, 100)
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in [
        "workshop.spend_warned",
        "workshop.spend_reached",
        "workshop.teardown",
    ] {
        assert!(
            audited.iter().any(|a| a == action),
            "{action} in {audited:?}"
        );
    }
    assert_each_delivered_once(&hook);
}

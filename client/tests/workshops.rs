//! Workshops end to end with real agents started by the local provider: a workshop's VMs
//! are made ahead of its start and are ready at it; only its roster (or the holders of its
//! invite code) get VMs, and only while it is open; everyone is warned before the end,
//! through a real webhook receiver (signature checked) and a real SMTP server started here;
//! at the end its VMs are destroyed. The outbox keeps a notification until a receiver that
//! was down takes it, once.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use lablink_allocator::config::{EmailConfig, SmtpSecurity, WebhookConfig};
use lablink_schema::outbox::Delivery;
use lablink_schema::vms::Vm;
use serde_json::{json, Value};

#[path = "support/lab.rs"]
mod lab;
#[path = "../../allocator/tests/support/receivers.rs"]
mod receivers;

use lab::{Lab, ADMIN_PASSWORD};
use receivers::{SmtpServer, WebhookReceiver};

const HOOK_SECRET: &str = "workshop-test-webhook-secret";

async fn lab_with_receivers(
    prefix: &str,
    hook: &WebhookReceiver,
    smtp: Option<&SmtpServer>,
) -> Lab {
    let (url, port) = (hook.url.clone(), smtp.map(|s| s.port));
    Lab::start_with(prefix, move |config| {
        config.notifications.webhooks = vec![WebhookConfig {
            name: "lab".to_owned(),
            url: url.clone().into(),
            secret: HOOK_SECRET.into(),
        }];
        config.notifications.email = port.map(|port| EmailConfig {
            smtp_host: "127.0.0.1".to_owned(),
            smtp_port: port,
            security: SmtpSecurity::None,
            username: None,
            password: None,
            from: "LabLink <lablink@lab.example>".to_owned(),
            to: vec!["admins@lab.example".to_owned()],
        });
        config.notifications.retry_first_secs = 0.3;
        config.notifications.retry_max_secs = 1.0;
        config.workshops.boot_estimate_secs = 3.0;
        config.workshops.warmup_batch_size = 1;
    })
    .await
}

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn workshop(lab: &Lab, id: i64) -> Value {
    lab.client
        .get(lab.url(&format!("/api/admin/workshops/{id}")))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

async fn until_state(lab: &Lab, id: i64, state: &str, patience: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let shown = workshop(lab, id).await;
        if shown["state"] == state {
            return shown;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "workshop {id} never became {state}: {shown:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks for a VM from the workshop's start page, as a participant's browser does; returns
/// the status and the page.
async fn ask(lab: &Lab, id: i64, email: &str, invite: &str) -> (u16, String) {
    let browser = reqwest::Client::new();
    let start = browser
        .get(lab.url(&format!("/w/{id}")))
        .send()
        .await
        .expect("start page");
    assert_eq!(start.status(), 200);
    let code: String = format!("4/0AVG7fiQ{email}xxxxxxxxxx")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '/')
        .collect();
    let command = format!(
        "DISPLAY= /opt/google/chrome-remote-desktop/start-host --code=\"{code}\" \
         --redirect-url=\"https://remotedesktop.google.com/_/oauthredirect\" --name=$(hostname)"
    );
    let id = id.to_string();
    let response = browser
        .post(lab.url("/api/request_vm"))
        .form(&[
            ("email", email),
            ("crd_command", command.as_str()),
            ("workshop", id.as_str()),
            ("invite_code", invite),
        ])
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("page"))
}

fn workshop_vms(lab: &Lab, id: i64) -> Vec<Vm> {
    let mut conn = lab.database.connect();
    Vm::list_all(&mut conn)
        .expect("vms")
        .into_iter()
        .filter(|vm| vm.workshop_id == Some(id))
        .collect()
}

#[actix_web::test]
async fn a_workshop_warms_up_admits_its_roster_warns_everyone_and_is_torn_down() {
    let hook = WebhookReceiver::start(HOOK_SECRET);
    let smtp = SmtpServer::start();
    let lab = lab_with_receivers("lablink-vm-ws", &hook, Some(&smtp)).await;
    let starts = Utc::now() + chrono::Duration::seconds(12);
    // The 1-minute warning falls 2 s after the start.
    let ends = starts + chrono::Duration::seconds(62);
    let created = lab
        .admin_post(
            "/api/admin/workshops",
            json!({
                "name": "SLEAP <workshop>",
                "starts_at": rfc3339(starts),
                "ends_at": rfc3339(ends),
                "time_zone": "UTC",
                "headcount": 2,
                "spare_vms": 0,
                "warmup_lead_secs": 10,
                "roster": "name,email\nAda,ada@lab.example\nGrace,Grace@Lab.Example\n",
                "warning_minutes": [1],
            }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let created: Value = created.json().await.expect("json");
    let id = created["id"].as_i64().expect("id");
    assert_eq!(location, format!("/api/admin/workshops/{id}"));
    assert_eq!(created["state"], "scheduled");
    assert_eq!(created["roster_size"], 2);
    let kinds: Vec<&str> = created["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        ["warm_up", "warm_up", "open", "warning", "end", "teardown"],
        "{created:#}"
    );

    // Before the start: not open yet, whoever asks.
    let (status, page) = ask(&lab, id, "ada@lab.example", "").await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("not open yet"), "{page}");
    assert!(page.contains("SLEAP &lt;workshop&gt;"), "{page}");

    // Made ahead of the start, and ready at it.
    let wait = (starts - Utc::now()).to_std().expect("the start is ahead");
    tokio::time::sleep(wait).await;
    let at_start: Vec<Vm> = workshop_vms(&lab, id);
    assert_eq!(at_start.len(), 2, "{at_start:?}");
    assert!(
        at_start.iter().all(lab::ready),
        "not ready at the start: {at_start:?}"
    );
    let warmed = hook
        .wait_for("workshop.warming_up", Duration::from_secs(5))
        .await;
    assert_eq!(warmed["workshop_id"], id);
    let shown = until_state(&lab, id, "open", Duration::from_secs(5)).await;
    for action in shown["actions"].as_array().expect("actions").iter().take(2) {
        assert_eq!(action["state"], "done", "{action}");
        let done = chrono::NaiveDateTime::parse_from_str(
            action["done_at"].as_str().expect("done_at"),
            "%Y-%m-%dT%H:%M:%S%.f",
        )
        .expect("time");
        assert!(done < starts.naive_utc(), "made after the start: {action}");
    }

    // Open: the roster decides.
    let (status, page) = ask(&lab, id, "mallory@lab.example", "").await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("not on this workshop"), "{page}");
    let (status, page) = ask(&lab, id, "ada@lab.example", "").await;
    assert_eq!(status, 200, "{page}");
    let held: Vec<Vm> = workshop_vms(&lab, id)
        .into_iter()
        .filter(|vm| vm.user_email.as_deref() == Some("ada@lab.example"))
        .collect();
    assert_eq!(held.len(), 1, "ada holds one of the workshop's VMs");
    assert!(page.contains(&held[0].hostname), "{page}");

    // The warning reaches the webhook (signed), the mailbox and the participant's page.
    let warning = hook
        .wait_for("workshop.warning", Duration::from_secs(10))
        .await;
    assert_eq!(warning["details"]["minutes_left"], 1);
    let requests = hook.requests();
    let delivered = requests
        .iter()
        .find(|r| r.body["event"] == "workshop.warning")
        .expect("the warning request");
    assert!(delivered.signed, "the signature must verify");
    assert_eq!(
        delivered.headers["x-lablink-delivery"],
        warning["delivery_key"].as_str().expect("key")
    );
    let mail = smtp
        .wait_for("ends in 1 minute", Duration::from_secs(10))
        .await;
    assert_eq!(mail.to, ["<admins@lab.example>"]);
    let notice: Value = lab
        .client
        .get(lab.url(&format!("/api/workshops/{id}/notice")))
        .send()
        .await
        .expect("notice")
        .json()
        .await
        .expect("json");
    assert!(
        notice["notice"]
            .as_str()
            .expect("notice")
            .contains("ends in 1 minute."),
        "{notice}"
    );

    // The end: refused from then on, and every VM of the workshop destroyed.
    let wait = (ends - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    let shown = until_state(&lab, id, "torn_down", Duration::from_secs(30)).await;
    let (status, page) = ask(&lab, id, "grace@lab.example", "").await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("has ended"), "{page}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !workshop_vms(&lab, id).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the VMs were not destroyed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for action in shown["actions"].as_array().expect("actions") {
        assert_eq!(action["state"], "done", "{shown:#}");
    }
    hook.wait_for("workshop.ended", Duration::from_secs(5))
        .await;
    hook.wait_for("workshop.torn_down", Duration::from_secs(5))
        .await;
    // Each event reached the webhook once.
    let mut keys: Vec<String> = hook
        .requests()
        .iter()
        .filter(|r| r.accepted)
        .map(|r| r.body["delivery_key"].as_str().expect("key").to_owned())
        .collect();
    let all = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), all, "a delivery arrived twice");
}

#[actix_web::test]
async fn an_invite_workshop_lets_in_only_the_right_code() {
    let hook = WebhookReceiver::start(HOOK_SECRET);
    let lab = lab_with_receivers("lablink-vm-inv", &hook, None).await;
    let starts = Utc::now() + chrono::Duration::seconds(3);
    let created = lab
        .admin_post(
            "/api/admin/workshops",
            json!({
                "name": "Invite only",
                "starts_at": rfc3339(starts),
                "ends_at": rfc3339(starts + chrono::Duration::hours(2)),
                "headcount": 1,
                "spare_vms": 0,
                "warmup_lead_secs": 3,
                "admission": "invite",
            }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let id = created["id"].as_i64().expect("id");
    // The code was made here and is shown this once.
    let code = created["invite_code"]
        .as_str()
        .expect("invite code")
        .to_owned();
    assert_eq!(code.len(), 8);
    assert!(workshop(&lab, id).await.get("invite_code").is_none());
    let page = lab
        .client
        .get(lab.url(&format!("/w/{id}")))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(
        page.contains("Invite only") && page.contains("Opens at"),
        "{page}"
    );
    assert!(page.contains(r#"name="invite_code""#), "{page}");

    until_state(&lab, id, "open", Duration::from_secs(10)).await;
    lab.until("the workshop's VM is ready", |vms| {
        vms.iter()
            .any(|vm| vm.workshop_id == Some(id) && lab::ready(vm))
    })
    .await;
    let (status, page) = ask(&lab, id, "ada@lab.example", "WRONGCODE").await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("invite code is not right"), "{page}");
    let (status, page) = ask(&lab, id, "ada@lab.example", &code.to_lowercase()).await;
    assert_eq!(status, 200, "{page}");
    // A code shared too widely is replaced: the old one stops working.
    let replaced = lab
        .client
        .patch(lab.url(&format!("/api/admin/workshops/{id}")))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&json!({"invite_code": "Second-Code-42"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(replaced.status(), 200);
    let (status, page) = ask(&lab, id, "grace@lab.example", &code).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("invite code is not right"), "{page}");
    // The start page outside any workshop does not hand out the workshop's VM.
    let count: Value = lab
        .client
        .get(lab.url("/api/unassigned_vms_count"))
        .send()
        .await
        .expect("count")
        .json()
        .await
        .expect("json");
    assert_eq!(count["count"], 0);
}

#[actix_web::test]
async fn the_outbox_redelivers_once_the_receiver_is_back_and_only_once() {
    let hook = WebhookReceiver::start(HOOK_SECRET);
    hook.refuse_for(Duration::from_secs(3));
    let lab = lab_with_receivers("lablink-vm-obx", &hook, None).await;
    let starts = Utc::now() + chrono::Duration::hours(1);
    let created: Value = lab
        .admin_post(
            "/api/admin/workshops",
            json!({
                "name": "Ended early",
                "starts_at": rfc3339(starts),
                "ends_at": rfc3339(starts + chrono::Duration::hours(1)),
                "headcount": 1,
                "warmup_lead_secs": 60,
            }),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_i64().expect("id");
    let ended = lab
        .admin_post(&format!("/api/admin/workshops/{id}/end"), json!({}))
        .await;
    assert_eq!(ended.status(), 200);
    let ended = hook
        .wait_for("workshop.ended", Duration::from_secs(20))
        .await;
    let key = ended["delivery_key"].as_str().expect("key").to_owned();
    let tries: Vec<bool> = hook
        .requests()
        .iter()
        .filter(|r| r.body["delivery_key"] == key.as_str())
        .map(|r| r.accepted)
        .collect();
    assert!(tries.len() >= 2, "refused first, then taken: {tries:?}");
    assert_eq!(tries.iter().filter(|a| **a).count(), 1, "{tries:?}");
    assert!(!tries[0], "{tries:?}");
    // The database agrees: delivered, after more than one attempt.
    let mut conn = lab.database.connect();
    let event_id: i64 = ended["delivery_key"]
        .as_str()
        .and_then(|k| k.split('-').nth(1))
        .and_then(|n| n.parse().ok())
        .expect("event id in the key");
    let deliveries = Delivery::of_event(&mut conn, event_id).expect("deliveries");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].state, "delivered");
    assert!(deliveries[0].attempts >= 2, "{deliveries:?}");
    // Nothing more arrives for it later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let accepted = hook
        .requests()
        .iter()
        .filter(|r| r.accepted && r.body["delivery_key"] == key.as_str())
        .count();
    assert_eq!(accepted, 1);
}

/// A participant's browser: its key cookie kept by hand (the test client has no cookie jar).
struct Participant {
    client: reqwest::Client,
    cookie: String,
    base: String,
}

impl Participant {
    async fn open(lab: &Lab, id: i64) -> Participant {
        let client = reqwest::Client::new();
        let start = client
            .get(lab.url(&format!("/w/{id}")))
            .send()
            .await
            .expect("start page");
        let cookie = start
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("lablink_browser="))
            .and_then(|v| v.split(';').next())
            .expect("the browser's key")
            .to_owned();
        Participant {
            client,
            cookie,
            base: lab.base.clone(),
        }
    }

    async fn ask(&self, id: i64, email: &str) -> u16 {
        let command = format!(
            "DISPLAY= /opt/google/chrome-remote-desktop/start-host --code=\"4/0AVG7fiQ{}xxxxxxxxxx\" \
             --redirect-url=\"https://remotedesktop.google.com/_/oauthredirect\" --name=$(hostname)",
            email.len()
        );
        self.client
            .post(format!("{}/api/request_vm", self.base))
            .header("cookie", &self.cookie)
            .form(&[
                ("email", email),
                ("crd_command", command.as_str()),
                ("workshop", id.to_string().as_str()),
            ])
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }

    async fn session(&self) -> Value {
        self.client
            .get(format!("{}/api/session", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("session")
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    async fn until_warned(&self, text: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let session = self.session().await;
            if session["session_notice"]
                .as_str()
                .is_some_and(|n| n.contains(text))
            {
                return session;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no `{text}` warning: {session}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A lab whose agents heartbeat every second, so a warning reaches the desktop at once.
async fn lab_with_limits(prefix: &str, hook: &WebhookReceiver, limits: Value) -> (Lab, i64) {
    let url = hook.url.clone();
    let lab = Lab::start_with(prefix, move |config| {
        config.lifecycle.heartbeat_timeout_secs = 3.0;
        config.notifications.webhooks = vec![WebhookConfig {
            name: "lab".to_owned(),
            url: url.clone().into(),
            secret: HOOK_SECRET.into(),
        }];
        config.notifications.retry_first_secs = 0.3;
    })
    .await;
    let starts = Utc::now() + chrono::Duration::seconds(3);
    let mut request = json!({
        "name": "Limited",
        "starts_at": rfc3339(starts),
        "ends_at": rfc3339(starts + chrono::Duration::hours(2)),
        "headcount": 1,
        "spare_vms": 0,
        "warmup_lead_secs": 3,
        "idle_warning_secs": 8,
    });
    for (key, value) in limits.as_object().expect("limits") {
        request[key] = value.clone();
    }
    let created = lab.admin_post("/api/admin/workshops", request).await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    until_state(&lab, id, "open", Duration::from_secs(15)).await;
    lab.until("the workshop's VM is ready", |vms| {
        vms.iter()
            .any(|vm| vm.workshop_id == Some(id) && lab::ready(vm))
    })
    .await;
    (lab, id)
}

fn release_audited(lab: &Lab, why: &str) -> bool {
    let mut conn = lab.database.connect();
    lablink_schema::audit_events::AuditEvent::list_recent(&mut conn, 100)
        .expect("audit")
        .iter()
        .any(|e| {
            e.action == "vm.release"
                && e.actor == "supervisor"
                && e.detail.as_deref().is_some_and(|d| d.contains(why))
        })
}

#[actix_web::test]
async fn an_idle_session_is_warned_on_the_page_and_desktop_extended_then_released() {
    let hook = WebhookReceiver::start(HOOK_SECRET);
    let (lab, id) =
        lab_with_limits("lablink-vm-idle", &hook, json!({"idle_release_secs": 12})).await;
    let participant = Participant::open(&lab, id).await;
    assert_eq!(participant.ask(id, "ada@lab.example").await, 200);
    let hostname = workshop_vms(&lab, id)[0].hostname.clone();

    // Idle: warned on the participant's page and on the VM's desktop.
    let warned = participant
        .until_warned("will be released in 1 minute")
        .await;
    assert_eq!(warned["hostname"], hostname.as_str());
    lab.until_logged(&hostname, "desktop notice", 1).await;

    // "I am still here": the warning goes and the clock starts again.
    let extended = participant
        .client
        .post(format!("{}/api/session/extend", lab.base))
        .header("cookie", &participant.cookie)
        .send()
        .await
        .expect("extend");
    assert_eq!(extended.status(), 200);
    let page = extended.text().await.expect("page");
    assert!(page.contains(&hostname), "{page}");
    let extended_at = tokio::time::Instant::now();
    assert_eq!(participant.session().await["session_notice"], Value::Null);
    let other = Participant::open(&lab, id).await;
    let refused = other
        .client
        .post(format!("{}/api/session/extend", lab.base))
        .header("cookie", &other.cookie)
        .send()
        .await
        .expect("extend");
    assert_eq!(
        refused.status(),
        404,
        "a browser holding no VM extends nothing"
    );

    // Still idle: released 12 s after the extension, through the usual reset.
    lab.until("the idle session is released", |vms| {
        vms.iter()
            .any(|vm| vm.hostname == hostname && vm.user_email.is_none())
    })
    .await;
    assert!(
        extended_at.elapsed() >= Duration::from_secs(11),
        "released {:?} after the extension",
        extended_at.elapsed()
    );
    assert!(release_audited(&lab, "idle for 1 minute"));
    let released = hook
        .wait_for("vm.session_released", Duration::from_secs(10))
        .await;
    assert_eq!(released["hostname"], hostname.as_str());
    lab.until("the VM is ready for the next participant", |vms| {
        vms.iter()
            .any(|vm| vm.hostname == hostname && lab::ready(vm))
    })
    .await;
}

#[actix_web::test]
async fn a_session_ends_at_its_workshop_limit_after_a_warning() {
    let hook = WebhookReceiver::start(HOOK_SECRET);
    let (lab, id) = lab_with_limits("lablink-vm-max", &hook, json!({"max_session_secs": 10})).await;
    let participant = Participant::open(&lab, id).await;
    let asked = tokio::time::Instant::now();
    assert_eq!(participant.ask(id, "grace@lab.example").await, 200);
    let hostname = workshop_vms(&lab, id)[0].hostname.clone();
    participant
        .until_warned("Your session ends in 1 minute")
        .await;
    lab.until("the session is over", |vms| {
        vms.iter()
            .any(|vm| vm.hostname == hostname && vm.user_email.is_none())
    })
    .await;
    assert!(
        asked.elapsed() >= Duration::from_secs(9),
        "{:?}",
        asked.elapsed()
    );
    assert!(release_audited(&lab, "limit of 1 minute"));
}

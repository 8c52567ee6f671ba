//! `POST /vm_startup`: the agent gets its assignment whether it waited before or after the
//! assignment, after a dropped connection, and after a release; on both backends.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{crd_command, spawn_app, spawn_app_on_sqlite, RequestOutcome, TestApp};

/// Generous: delivery takes milliseconds, but CI machines stall.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

async fn wait_for(app: &TestApp, hostname: &str, token: &str, held: Option<i64>) -> Value {
    let response = tokio::time::timeout(DELIVERY_TIMEOUT, app.vm_startup(hostname, token, held))
        .await
        .expect("the waiting agent got no answer in time");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

async fn assigned_pin(app: &TestApp, email: &str) -> String {
    match app.request_vm(email, &crd_command(email)).await {
        RequestOutcome::Assigned { pin, .. } => pin,
        refused => panic!("{refused:?}"),
    }
}

async fn waiting_before_the_assignment_gets_it(app: TestApp) {
    let vms = app.free_vms(1).await;
    let (hostname, token) = &vms[0];
    let waiting = {
        let app = &app;
        async move { wait_for(app, hostname, token, None).await }
    };
    let assigning = async {
        // Let the agent start waiting first.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assigned_pin(&app, "ada@example.org").await
    };
    let (answer, pin) = futures_util::future::join(waiting, assigning).await;
    assert_eq!(answer["status"], "success");
    assert_eq!(answer["pin"], pin.as_str());
    assert_eq!(answer["command"], crd_command("ada@example.org").as_str());
    assert_eq!(answer["assignment_id"], 1);
}

#[actix_web::test]
async fn an_agent_waiting_before_the_assignment_gets_it_on_postgres() {
    waiting_before_the_assignment_gets_it(spawn_app().await).await;
}

#[actix_web::test]
async fn an_agent_waiting_before_the_assignment_gets_it_on_sqlite() {
    waiting_before_the_assignment_gets_it(spawn_app_on_sqlite().await).await;
}

#[actix_web::test]
async fn an_agent_that_starts_waiting_after_the_assignment_gets_it_at_once() {
    let app = spawn_app().await;
    let vms = app.free_vms(1).await;
    let pin = assigned_pin(&app, "ada@example.org").await;
    let answer = wait_for(&app, &vms[0].0, &vms[0].1, None).await;
    assert_eq!(answer["pin"], pin.as_str());
}

#[actix_web::test]
async fn an_agent_that_lost_its_connection_gets_the_assignment_when_it_comes_back() {
    let app = spawn_app().await;
    let vms = app.free_vms(1).await;
    let (hostname, token) = &vms[0];
    // The first wait is cut off by the client, as a dropped connection would be.
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let cut = short
        .post(app.url("/vm_startup"))
        .bearer_auth(token)
        .json(&serde_json::json!({"hostname": hostname}))
        .send()
        .await;
    assert!(cut.is_err(), "the first wait should have been cut off");
    let pin = assigned_pin(&app, "ada@example.org").await;
    let answer = wait_for(&app, hostname, token, None).await;
    assert_eq!(answer["pin"], pin.as_str());
}

#[actix_web::test]
async fn a_released_session_is_reported_and_the_agent_then_waits_for_the_next_one() {
    let app = spawn_app().await;
    let vms = app.free_vms(1).await;
    let (hostname, token) = &vms[0];
    assigned_pin(&app, "ada@example.org").await;
    let first = wait_for(&app, hostname, token, None).await;
    let held = first["assignment_id"].as_i64().expect("assignment id");

    // The agent now waits for its session to end.
    let ended = {
        let app = &app;
        async move { wait_for(app, hostname, token, Some(held)).await }
    };
    let release = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let response = app.release(hostname).await;
        assert_eq!(response.status(), 200);
    };
    let (ended, ()) = futures_util::future::join(ended, release).await;
    assert_eq!(ended, serde_json::json!({"status": "released"}));

    // Not handed out again until the agent says it is ready.
    let refused = app
        .request_vm("grace@example.org", &crd_command("grace"))
        .await;
    assert!(
        matches!(refused, RequestOutcome::Refused { status: 503, .. }),
        "{refused:?}"
    );
    app.make_ready(hostname, token, "Healthy").await;
    let next = {
        let app = &app;
        async move { wait_for(app, hostname, token, None).await }
    };
    let assign = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assigned_pin(&app, "grace@example.org").await
    };
    let (next, pin) = futures_util::future::join(next, assign).await;
    assert_eq!(next["pin"], pin.as_str());
    assert_eq!(next["assignment_id"], held + 1);
}

#[actix_web::test]
async fn an_agent_holding_the_current_assignment_is_not_given_it_again() {
    let app = spawn_app().await;
    let vms = app.free_vms(1).await;
    assigned_pin(&app, "ada@example.org").await;
    let held = wait_for(&app, &vms[0].0, &vms[0].1, None).await["assignment_id"]
        .as_i64()
        .expect("id");
    let again = tokio::time::timeout(
        Duration::from_millis(500),
        app.vm_startup(&vms[0].0, &vms[0].1, Some(held)),
    )
    .await;
    assert!(
        again.is_err(),
        "the same assignment must not be delivered twice"
    );
}

#[actix_web::test]
async fn many_agents_wait_at_once_and_each_gets_its_own_assignment() {
    let app = spawn_app().await;
    let vms = app.free_vms(30).await;
    let waits = vms.iter().map(|(hostname, token)| {
        let app = &app;
        async move { (hostname.clone(), wait_for(app, hostname, token, None).await) }
    });
    let assign = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        for i in 0..30 {
            assigned_pin(&app, &format!("r{i}@example.org")).await;
        }
    };
    let (answers, ()) =
        futures_util::future::join(futures_util::future::join_all(waits), assign).await;
    let stored = app.vms();
    for (hostname, answer) in answers {
        let vm = stored
            .iter()
            .find(|vm| vm.hostname == hostname)
            .expect("row");
        assert_eq!(answer["pin"], vm.pin.as_deref().expect("pin"), "{hostname}");
    }
}

#[actix_web::test]
async fn waiting_for_an_unknown_vm_is_a_404() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/vm_startup"))
        .basic_auth("admin", Some(crate::helpers::ADMIN_PASSWORD))
        .json(&serde_json::json!({"hostname": "ghost"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
}

#[actix_web::test]
async fn one_request_waits_per_vm_so_waiters_cannot_pile_up() {
    let app = spawn_app().await;
    let vms = app.free_vms(1).await;
    let (hostname, token) = &vms[0];
    // 200 requests wait for the same VM at once (the review's 3,000 exhausted the file
    // descriptors): each is replaced by the next, so all but the newest are answered.
    let waits: Vec<_> = (0..200)
        .map(|_| {
            let client = reqwest::Client::new();
            let url = app.url("/vm_startup");
            let (hostname, token) = (hostname.clone(), token.clone());
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&serde_json::json!({"hostname": hostname}))
                    .send()
                    .await
                    .expect("send")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.get_healthz().await.status(), 200);
    let mut finished = Vec::new();
    let mut still_waiting = 0;
    for wait in waits {
        match tokio::time::timeout(Duration::from_secs(5), wait).await {
            Ok(status) => finished.push(status.expect("task")),
            Err(_) => still_waiting += 1,
        }
    }
    assert_eq!(still_waiting, 1, "only the newest request waits");
    assert!(finished.iter().all(|status| *status == 409), "{finished:?}");
    // The one still waiting gets the assignment.
    let answer = wait_for_with(&app, hostname, token).await;
    assert_eq!(answer.status(), 200);
}

/// Waits as the agent does, while a researcher is assigned the VM.
async fn wait_for_with(app: &TestApp, hostname: &str, token: &str) -> reqwest::Response {
    let (answer, _) = tokio::join!(app.vm_startup(hostname, token, None), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assigned_pin(app, "last@example.org").await
    });
    answer
}

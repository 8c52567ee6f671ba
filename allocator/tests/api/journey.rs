//! The participant's journey through real HTTP: heartbeats with session figures move a
//! participant's page through every step (also on its event stream), figures of another
//! assignment are ignored, the instructor's funnel counts what the database holds with the
//! stuck participant on top, a participant whose VM broke takes another, and the
//! participants export carries each step's time and the usage figures.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use diesel::prelude::*;
use lablink_schema::schema::{participant_sessions, vms};
use lablink_schema::vms::Vm;
use serde_json::{json, Value};

use crate::helpers::{crd_command, spawn_app, TestApp};

fn at(offset_secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(offset_secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A participant's own browser, with its own cookies.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

async fn claim(
    app: &TestApp,
    browser: &reqwest::Client,
    email: &str,
    workshop: i64,
) -> (u16, String) {
    let start = browser
        .get(app.url(&format!("/w/{workshop}")))
        .send()
        .await
        .expect("start page");
    assert_eq!(start.status(), 200);
    let response = browser
        .post(app.url("/api/request_vm"))
        .form(&[
            ("email", email),
            ("crd_command", crd_command(email).as_str()),
            ("workshop", workshop.to_string().as_str()),
        ])
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("page"))
}

async fn journey(app: &TestApp, browser: &reqwest::Client) -> Value {
    let response = browser
        .get(app.url("/api/session/journey"))
        .send()
        .await
        .expect("journey");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

/// A heartbeat of `hostname` carrying these figures.
async fn heartbeat(app: &TestApp, hostname: &str, token: &str, session: Value) {
    let response = app
        .post_json(
            "/api/vm-status",
            Some(token),
            &json!({"hostname": hostname, "status": "running", "session": session}),
        )
        .await;
    assert_eq!(response.status(), 200, "heartbeat of {hostname}");
}

fn figures(assignment_id: i64, received: bool, desktop: bool, used: bool) -> Value {
    json!({
        "assignment_id": assignment_id,
        "command_received": received,
        "desktop_up": desktop,
        "software_used": used,
        "software_secs": if used { 95 } else { 0 },
        "gpu": if used { json!({"active_secs": 40, "peak_utilization": 87, "peak_memory_mib": 5120}) } else { Value::Null },
        "idle_secs": if used { json!(3) } else { Value::Null },
    })
}

/// The next `data:` event of an event stream (keep-alive comments skipped).
async fn next_data(stream: &mut reqwest::Response, seen: &mut String) -> String {
    loop {
        if let Some(end) = seen.find("\n\n") {
            let event: String = seen.drain(..end + 2).collect();
            if let Some(data) = event.strip_prefix("data: ") {
                return data.trim().to_owned();
            }
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .expect("bytes");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

fn held_vm(app: &TestApp, email: &str) -> Vm {
    app.vms()
        .into_iter()
        .find(|vm| vm.user_email.as_deref() == Some(email))
        .expect("the participant holds a VM")
}

#[actix_web::test]
async fn heartbeats_move_participants_through_the_journey_that_the_instructor_sees() {
    let app = spawn_app().await;
    let tokens: std::collections::HashMap<String, String> =
        app.free_vms(4).await.into_iter().collect();
    let created: Value = app
        .post_json_as_admin(
            "/api/admin/workshops",
            &json!({
                "name": "Pose tracking",
                "starts_at": at(1),
                "ends_at": at(3600),
                "headcount": 4,
                "spare_vms": 0,
                "warmup_lead_secs": 0,
            }),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_i64().expect("id");
    {
        let mut conn = app.connection();
        for hostname in tokens.keys() {
            Vm::set_workshop(&mut conn, hostname, Some(id)).expect("into the workshop");
        }
    }
    let (ada, bob, cy) = (browser(), browser(), browser());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, page) = claim(&app, &ada, "ada@lab.example", id).await;
        if status == 200 {
            assert!(
                page.contains("id=\"journey\"") && page.contains("VM assigned"),
                "{page}"
            );
            assert!(
                page.contains("url=/session"),
                "reloads without a script: {page}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never opened: {page}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(claim(&app, &bob, "bob@lab.example", id).await.0, 200);
    assert_eq!(claim(&app, &cy, "cy@lab.example", id).await.0, 200);

    // Ada's page follows her VM through every step, live.
    let first = journey(&app, &ada).await;
    assert_eq!(first["step"], "assigned");
    let mut stream = ada
        .get(app.url("/api/session/journey/events"))
        .send()
        .await
        .expect("events");
    let mut seen = String::new();
    let opened: Value =
        serde_json::from_str(&next_data(&mut stream, &mut seen).await).expect("json event");
    assert_eq!(opened["step"], "assigned");
    let ada_vm = held_vm(&app, "ada@lab.example");
    let ada_token = &tokens[&ada_vm.hostname];
    let seq = ada_vm.assignment_seq;
    // Figures of another assignment change nothing.
    heartbeat(
        &app,
        &ada_vm.hostname,
        ada_token,
        figures(seq + 7, true, true, true),
    )
    .await;
    assert_eq!(journey(&app, &ada).await["step"], "assigned");
    for (received, desktop, used, step) in [
        (true, false, false, "command_received"),
        (true, true, false, "desktop_up"),
        (true, true, true, "ready"),
    ] {
        heartbeat(
            &app,
            &ada_vm.hostname,
            ada_token,
            figures(seq, received, desktop, used),
        )
        .await;
        let event: Value =
            serde_json::from_str(&next_data(&mut stream, &mut seen).await).expect("json event");
        assert_eq!(event["step"], step, "{event}");
    }
    let done = journey(&app, &ada).await;
    let steps = done["steps"].as_array().expect("steps");
    assert!(
        steps
            .iter()
            .all(|s| s["done"] == true && s["at"].is_string()),
        "{done}"
    );

    // Bob's agent took the command ten minutes ago and nothing since: stuck.
    let bob_vm = held_vm(&app, "bob@lab.example");
    heartbeat(
        &app,
        &bob_vm.hostname,
        &tokens[&bob_vm.hostname],
        figures(bob_vm.assignment_seq, true, false, false),
    )
    .await;
    {
        let mut conn = app.connection();
        let ago = Utc::now().naive_utc() - chrono::Duration::minutes(10);
        diesel::update(
            participant_sessions::table.filter(participant_sessions::email.eq("bob@lab.example")),
        )
        .set(participant_sessions::claimed_at.eq(ago))
        .execute(&mut conn)
        .expect("back-date");
    }
    // Cy's VM broke.
    let cy_vm = held_vm(&app, "cy@lab.example");
    {
        let mut conn = app.connection();
        diesel::update(vms::table.find(&cy_vm.hostname))
            .set(vms::state.eq("unreachable"))
            .execute(&mut conn)
            .expect("break it");
    }
    let cy_journey = journey(&app, &cy).await;
    assert_eq!(cy_journey["step"], "failed");
    assert_eq!(cy_journey["failure"], "Your VM stopped answering.");

    let view: Value = app
        .get_as_admin(&format!("/api/admin/workshops/{id}/participants"))
        .await
        .json()
        .await
        .expect("json");
    let rows = view["rows"].as_array().expect("rows");
    assert_eq!(view["participants"], 3);
    assert_eq!(view["stuck"], 2, "{view}");
    assert!(
        rows[0]["stuck"] == true && rows[1]["stuck"] == true,
        "{view}"
    );
    assert_eq!(rows[2]["email"], "ada@lab.example");
    assert_eq!(rows[2]["software_secs"], 95);
    assert_eq!(rows[2]["gpu"]["peak_utilization"], 87);
    // The funnel counts what the database holds.
    {
        let mut conn = app.connection();
        let stored: Vec<(
            Option<chrono::NaiveDateTime>,
            Option<chrono::NaiveDateTime>,
            Option<chrono::NaiveDateTime>,
        )> = participant_sessions::table
            .filter(participant_sessions::workshop_id.eq(id))
            .select((
                participant_sessions::command_received_at,
                participant_sessions::desktop_up_at,
                participant_sessions::software_first_used_at,
            ))
            .load(&mut conn)
            .expect("sessions");
        let count = |step: &str| {
            view["funnel"]
                .as_array()
                .expect("funnel")
                .iter()
                .find(|f| f["step"] == step)
                .and_then(|f| f["count"].as_u64())
                .expect("a bar")
        };
        let ready = stored.iter().filter(|s| s.2.is_some()).count() as u64;
        let received_only = stored
            .iter()
            .filter(|s| s.0.is_some() && s.1.is_none())
            .count() as u64;
        assert_eq!(count("ready"), ready);
        assert_eq!(count("command_received"), received_only);
        assert_eq!(count("failed"), 1, "Cy's VM, by its state");
        assert_eq!(count("assigned"), 0);
    }

    // Cy takes another VM; the broken session ends and a new one opens.
    let renewed = cy
        .post(app.url("/api/session/new_vm"))
        .send()
        .await
        .expect("new vm");
    assert_eq!(renewed.status(), 200);
    let page = renewed.text().await.expect("page");
    let cy_new = held_vm(&app, "cy@lab.example");
    assert_ne!(cy_new.hostname, cy_vm.hostname);
    assert!(page.contains(&cy_new.hostname), "{page}");
    assert_eq!(journey(&app, &cy).await["step"], "assigned");
    // A working VM is not swapped.
    let again = cy
        .post(app.url("/api/session/new_vm"))
        .send()
        .await
        .expect("again");
    assert_eq!(again.status(), 409);

    // The export: one row per session, with each step's time and the figures.
    let export: Vec<Value> = app
        .get_as_admin(&format!(
            "/api/admin/export/participants?format=json&workshop={id}"
        ))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(export.len(), 4, "Cy's broken session stays: {export:?}");
    let ada_row = export
        .iter()
        .find(|r| r["email"] == "ada@lab.example")
        .expect("ada");
    for column in [
        "claimed_at",
        "command_received_at",
        "desktop_up_at",
        "software_first_used_at",
    ] {
        let time = ada_row[column].as_str().expect(column);
        assert!(
            time.ends_with('Z') && time.contains('T'),
            "{column}: {time}"
        );
    }
    assert_eq!(ada_row["gpu_peak_memory_mib"], 5120);
    assert_eq!(ada_row["gpu_measured"], true);
    let cy_old = export
        .iter()
        .find(|r| r["hostname"] == cy_vm.hostname.as_str())
        .expect("cy's first session");
    assert_eq!(cy_old["end_reason"], "vm_failed");
    assert_eq!(cy_old["gpu_measured"], false);

    // The instructor's page draws the funnel and the table.
    let page = crate::dashboard::signed_in_page(
        &app,
        &browser(),
        &format!("/admin/workshops/{id}/participants"),
    )
    .await;
    assert!(page.contains("<svg class=\"funnel\""), "{page}");
    assert!(
        page.contains("bob@lab.example") && page.contains("stuck"),
        "{page}"
    );
}

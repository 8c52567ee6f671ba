//! Workshops through the admin API and the pages: bad requests are refused with what to fix
//! and nothing saved; a good one is planned, shown with its estimates, extended and ended;
//! the start page of a workshop tells its state and never hands out another workshop's VM;
//! the dashboard's forms do the same through the same actions; a test send shows a channel
//! that cannot be reached.

use chrono::{SecondsFormat, Utc};
use diesel::prelude::*;
use lablink_schema::schema::{workshop_actions, workshop_roster, workshops};
use serde_json::{json, Value};

use crate::dashboard::{between, signed_in_page};
use crate::helpers::{crd_command, spawn_app_with, TestApp};

fn at(offset_secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(offset_secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn good_request() -> Value {
    json!({
        "name": "SLEAP workshop",
        "starts_at": at(3600),
        "ends_at": at(3600 + 8 * 3600),
        "headcount": 10,
        "spare_vms": 2,
        "warmup_lead_secs": 1800,
        "time_zone": "America/Los_Angeles",
        "vm_settings": {"instance_type": "g5.xlarge"},
    })
}

pub async fn app() -> TestApp {
    spawn_app_with(|config| {
        config.provider.local.agent_binary = Some("/nonexistent/lablink-client".into());
        config.workshops.prices.insert("g5.xlarge".to_owned(), 1.5);
        config.workshops.boot_estimate_secs = 240.0;
    })
    .await
}

fn counts(app: &TestApp) -> (i64, i64, i64) {
    let mut conn = app.connection();
    (
        workshops::table
            .count()
            .get_result(&mut conn)
            .expect("count"),
        workshop_actions::table
            .count()
            .get_result(&mut conn)
            .expect("count"),
        workshop_roster::table
            .count()
            .get_result(&mut conn)
            .expect("count"),
    )
}

#[actix_web::test]
async fn bad_workshop_requests_say_what_to_fix_and_save_nothing() {
    let app = app().await;
    let with = |change: Value| {
        let mut request = good_request();
        for (key, value) in change.as_object().expect("object") {
            request[key] = value.clone();
        }
        request
    };
    let cases = [
        (
            with(json!({"ends_at": at(1800)})),
            "must be after starts_at",
        ),
        (with(json!({"starts_at": at(-60)})), "in the past"),
        (
            with(json!({"headcount": 51})),
            "above provider.max_vms (50)",
        ),
        (with(json!({"headcount": 0})), "at least 1 participant"),
        (
            with(json!({"roster": "ada@lab.example\ngrace@lab.example\nnobody at all\n"})),
            "roster line 3: no email address in \"nobody at all\"",
        ),
        (
            with(json!({"roster": "ada@lab.example", "admission": "open"})),
            "roster: given, but admission is open",
        ),
        (with(json!({"invite_code": "abc"})), "invite_code: 8 to 64"),
        // Seven characters: too few to resist guessing.
        (
            with(json!({"invite_code": "Abc-123"})),
            "invite_code: 8 to 64",
        ),
        (
            with(json!({"vm_settings": {"Instance-Type": "x"}})),
            "not a variable name",
        ),
        (
            with(json!({"teardown_at_cap": true})),
            "set a spend_cap too",
        ),
        (with(json!({"warning_minutes": [0]})), "warning_minutes"),
        (with(json!({"name": "  "})), "give the workshop a name"),
        (
            with(json!({"starts_at": "2030-01-01T09:00:00"})),
            "`2030-01-01T09:00:00` is not a time with its offset",
        ),
        (with(json!({"colour": "blue"})), "colour"),
    ];
    for (request, expected) in cases {
        let response = app
            .post_json_as_admin("/api/admin/workshops", &request)
            .await;
        assert_eq!(response.status(), 400, "{request}");
        let body = response.text().await.expect("body");
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|json| json["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        assert!(
            message.contains(expected),
            "expected `{expected}` in {message}"
        );
    }
    assert_eq!(counts(&app), (0, 0, 0), "nothing half-saved");
    let unauthorized = app
        .client
        .post(app.url("/api/admin/workshops"))
        .json(&good_request())
        .send()
        .await
        .expect("request");
    assert_eq!(unauthorized.status(), 401);
}

#[actix_web::test]
async fn a_workshop_is_planned_shown_extended_and_ended() {
    let app = app().await;
    let created = app
        .post_json_as_admin("/api/admin/workshops", &good_request())
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let id = created["id"].as_i64().expect("id");
    assert_eq!(created["state"], "scheduled");
    assert_eq!(created["headcount"], 10);
    assert_eq!(created["vm_settings"]["instance_type"], "g5.xlarge");
    assert_eq!(created["boot_estimate_secs"], 240);
    assert!(created["link"]
        .as_str()
        .expect("link")
        .ends_with(&format!("/w/{id}")));
    // 12 VMs in batches of 10: 10 half an hour ahead, all 12 five minutes ahead (4 min of
    // boot with margin), so ready a minute before the start.
    let actions = created["actions"].as_array().expect("actions");
    let plan: Vec<(&str, i64)> = actions
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().expect("kind"),
                a["amount"].as_i64().expect("n"),
            )
        })
        .collect();
    assert_eq!(
        plan,
        [
            ("warm_up", 10),
            ("warm_up", 12),
            ("open", 0),
            ("warning", 30),
            ("warning", 5),
            ("end", 0),
            ("teardown", 0)
        ]
    );
    let starts = chrono::DateTime::parse_from_rfc3339(created["starts_at"].as_str().expect("t"))
        .expect("time");
    let ready =
        chrono::DateTime::parse_from_rfc3339(created["ready_estimate"].as_str().expect("t"))
            .expect("time");
    assert_eq!(starts - ready, chrono::Duration::minutes(1));
    // 12 VMs for 8 hours at 1.5 an hour.
    assert_eq!(created["spend"]["price_per_vm_hour"], 1.5);
    let projected = created["spend"]["projected"].as_f64().expect("projected");
    assert!((projected - 12.0 * 9.0 * 1.5).abs() < 1.0, "{projected}");

    let shown: Value = app
        .get_as_admin(&format!("/api/admin/workshops/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["id"], id);
    let listed: Value = app
        .get_as_admin("/api/admin/workshops")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().expect("list").len(), 1);
    assert_eq!(
        app.get_as_admin("/api/admin/workshops/999").await.status(),
        404
    );

    // Extending replans the warnings, end and teardown; an earlier end is refused.
    let earlier = app
        .post_json_as_admin(
            &format!("/api/admin/workshops/{id}/extend"),
            &json!({"ends_at": at(3600 + 3600)}),
        )
        .await;
    assert_eq!(earlier.status(), 400);
    assert!(earlier
        .text()
        .await
        .expect("body")
        .contains("later than the current end"));
    let extended = app
        .post_json_as_admin(
            &format!("/api/admin/workshops/{id}/extend"),
            &json!({"ends_at": at(3600 + 9 * 3600)}),
        )
        .await;
    assert_eq!(extended.status(), 200);
    let extended: Value = extended.json().await.expect("json");
    let states = |view: &Value, kind: &str| -> Vec<String> {
        view["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .filter(|a| a["kind"] == kind)
            .map(|a| a["state"].as_str().expect("state").to_owned())
            .collect()
    };
    assert_eq!(states(&extended, "teardown"), ["cancelled", "planned"]);
    assert_eq!(states(&extended, "warm_up"), ["planned", "planned"]);

    // Ending now: the warm-up is cancelled, the end and teardown run at once.
    let ended = app
        .post_json_as_admin(&format!("/api/admin/workshops/{id}/end"), &json!({}))
        .await;
    assert_eq!(ended.status(), 200);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let shown = loop {
        let shown: Value = app
            .get_as_admin(&format!("/api/admin/workshops/{id}"))
            .await
            .json()
            .await
            .expect("json");
        if shown["state"] == "torn_down" {
            break shown;
        }
        assert!(tokio::time::Instant::now() < deadline, "{shown:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        states(&shown, "warm_up").iter().all(|s| s == "cancelled"),
        "{shown:#}"
    );
    assert!(states(&shown, "teardown").contains(&"done".to_owned()));
    let again = app
        .post_json_as_admin(&format!("/api/admin/workshops/{id}/end"), &json!({}))
        .await;
    assert_eq!(again.status(), 409);
    let mut conn = app.connection();
    let actions: Vec<String> = lablink_schema::audit_events::AuditEvent::list_recent(&mut conn, 50)
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect();
    for expected in ["workshop.create", "workshop.extend", "workshop.end"] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
}

#[actix_web::test]
async fn a_workshop_start_page_tells_its_state_and_gives_only_its_own_vms() {
    let app = app().await;
    // A VM of no workshop: the start page's, never a workshop participant's.
    app.free_vms(1).await;
    let created: Value = app
        .post_json_as_admin(
            "/api/admin/workshops",
            &json!({
                "name": "Opens soon <b>",
                "starts_at": at(2),
                "ends_at": at(3600),
                "headcount": 1,
                "spare_vms": 0,
                "warmup_lead_secs": 0,
            }),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_i64().expect("id");
    let page = app
        .get(&format!("/w/{id}"))
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("Opens soon &lt;b&gt;") && page.contains("Opens at"),
        "{page}"
    );
    assert_eq!(app.get("/w/424242").await.status(), 404);
    let ask = |email: &'static str| {
        let app = &app;
        async move {
            app.browser_key_once().await;
            let response = app
                .client
                .post(app.url("/api/request_vm"))
                .form(&[
                    ("email", email),
                    ("crd_command", crd_command(email).as_str()),
                    ("workshop", id.to_string().as_str()),
                ])
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            (status, response.text().await.expect("page"))
        }
    };
    let (status, page) = ask("early@lab.example").await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("not open yet"), "{page}");

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let shown: Value = app
            .get_as_admin(&format!("/api/admin/workshops/{id}"))
            .await
            .json()
            .await
            .expect("json");
        if shown["state"] == "open" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{shown:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Its own VM could not be made (no agent program here): the free VM of no workshop
    // is not handed out instead.
    let (status, page) = ask("ada@lab.example").await;
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("No VM is free"), "{page}");
    assert_eq!(
        app.vms()
            .iter()
            .filter(|vm| vm.user_email.is_some())
            .count(),
        0
    );
    // The failed creation was notified, for this workshop.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let sent: Value = app
            .get_as_admin(&format!("/api/admin/workshops/{id}/notifications"))
            .await
            .json()
            .await
            .expect("json");
        if sent
            .as_array()
            .expect("list")
            .iter()
            .any(|n| n["event"] == "provisioning.failed")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{sent:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The plain start page still serves its own VM.
    let outcome = app.request_vm("bob@lab.example", &crd_command("bob")).await;
    assert!(
        matches!(outcome, crate::helpers::RequestOutcome::Assigned { ref hostname, .. } if hostname == "vm-000"),
        "{outcome:?}"
    );
}

#[actix_web::test]
async fn the_dashboard_plans_a_workshop_and_a_test_send_shows_an_unreachable_webhook() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let app = spawn_app_with(move |config| {
        config.provider.local.agent_binary = Some("/nonexistent/lablink-client".into());
        config.notifications.webhooks = vec![lablink_allocator::config::WebhookConfig {
            name: "down".to_owned(),
            // Slack-style: the path is the secret.
            url: format!("http://{closed}/services/T0/B0/sEcReTpAtH").into(),
            secret: "a-secret-of-sixteen-or-more".into(),
        }];
    })
    .await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = signed_in_page(&app, &browser, "/admin/workshops").await;
    assert!(page.contains("No workshops yet"), "{page}");
    let csrf = between(&page, r#"name="csrf_token" value=""#, "\"").expect("csrf");
    let local = |secs: i64| {
        (Utc::now() + chrono::Duration::seconds(secs))
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let (starts, ends) = (local(7200), local(7200 + 3600));
    let form = |ends: &str| {
        vec![
            ("csrf_token", csrf.clone()),
            ("name", "From the form".to_owned()),
            ("starts_at", starts.clone()),
            ("ends_at", ends.to_owned()),
            ("utc_offset", "+00:00".to_owned()),
            ("headcount", "3".to_owned()),
            ("warmup_lead_minutes", "20".to_owned()),
            ("admission", "roster".to_owned()),
            (
                "roster",
                "email\nada@lab.example\ngrace@lab.example\n".to_owned(),
            ),
            ("warning_minutes", "10".to_owned()),
        ]
    };
    let bad = browser
        .post(app.url("/admin/workshops/create"))
        .form(&form(&starts))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 400);
    assert!(bad
        .text()
        .await
        .expect("page")
        .contains("must be after starts_at"));
    assert_eq!(counts(&app).0, 0);
    let created = browser
        .post(app.url("/admin/workshops/create"))
        .form(&form(&ends))
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), 303);
    let location = created.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let detail = browser
        .get(app.url(&location))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(detail.contains("From the form"), "{detail}");
    assert!(detail.contains("2 on the roster"), "{detail}");
    assert!(
        detail.contains("warm_up") && detail.contains("teardown"),
        "{detail}"
    );

    // The webhook was accepted at start; the test send shows it cannot be reached.
    let tests: Value = app
        .post_json_as_admin("/api/admin/notifications/test", &json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(tests[0]["channel"], "webhook:down");
    assert!(
        tests[0]["error"]
            .as_str()
            .expect("an error")
            .contains("cannot reach"),
        "{tests}"
    );
    let shown = browser
        .post(app.url("/admin/notifications/test"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("post")
        .text()
        .await
        .expect("page");
    assert!(
        shown.contains("webhook:down: <span class=\"bad\">failed: cannot reach"),
        "{shown}"
    );
    // A channel's URL is a secret: the host is named, never the path, anywhere an admin
    // or a read-only token can look.
    assert!(
        tests.to_string().contains(&format!("http://{closed}/…")),
        "{tests}"
    );
    let log = app
        .get_as_admin("/api/admin/allocator-log")
        .await
        .text()
        .await
        .expect("log");
    let audit = app
        .get_as_admin("/api/admin/audit")
        .await
        .text()
        .await
        .expect("audit");
    for seen in [tests.to_string(), shown, log, audit] {
        assert!(
            !seen.contains("sEcReTpAtH"),
            "the webhook's path leaked: {seen}"
        );
    }
}

#[actix_web::test]
async fn a_workshop_is_edited_its_warm_up_replanned_and_bad_changes_refused() {
    let app = app().await;
    let mut request = good_request();
    request["roster"] = json!("ada@lab.example\n");
    let created: Value = app
        .post_json_as_admin("/api/admin/workshops", &request)
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_i64().expect("id");
    let patch = |body: Value| {
        let app = &app;
        async move {
            app.client
                .patch(app.url(&format!("/api/admin/workshops/{id}")))
                .basic_auth("admin", Some(crate::helpers::ADMIN_PASSWORD))
                .json(&body)
                .send()
                .await
                .expect("patch")
        }
    };
    let edited = patch(json!({
        "name": "SLEAP, day 2",
        "headcount": 25,
        "spare_vms": 0,
        "roster": "grace@lab.example\nada@lab.example\nalan@lab.example\n",
    }))
    .await;
    assert_eq!(edited.status(), 200);
    let edited: Value = edited.json().await.expect("json");
    assert_eq!(edited["name"], "SLEAP, day 2");
    assert_eq!(edited["roster_size"], 3);
    let batches: Vec<(String, i64)> = edited["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["kind"] == "warm_up")
        .map(|a| {
            (
                a["state"].as_str().expect("state").to_owned(),
                a["amount"].as_i64().expect("amount"),
            )
        })
        .collect();
    let planned: Vec<i64> = batches
        .iter()
        .filter(|(state, _)| state == "planned")
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(planned, [10, 20, 25], "{batches:?}");
    assert_eq!(batches.iter().filter(|(s, _)| s == "cancelled").count(), 2);

    for (body, expected) in [
        (json!({"headcount": 60}), "above provider.max_vms"),
        (json!({"headcount": 45, "spare_vms": 10}), "spare_vms"),
        (json!({"roster": "x\nnot an email\n"}), "roster line 2"),
        (json!({"name": ""}), "give the workshop a name"),
        (json!({"starts_at": "2030-01-01T00:00:00Z"}), "starts_at"),
    ] {
        let refused = patch(body.clone()).await;
        assert_eq!(refused.status(), 400, "{body}");
        let text = refused.text().await.expect("text");
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let unchanged: Value = app
        .get_as_admin(&format!("/api/admin/workshops/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(unchanged["headcount"], 25);
    assert_eq!(unchanged["roster_size"], 3);

    // The Instances page shows the workshop's state.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let page = signed_in_page(&app, &browser, "/admin").await;
    assert!(page.contains("SLEAP, day 2"), "{page}");
    assert!(
        page.contains("<strong>scheduled</strong>, 0 of 25 VMs"),
        "{page}"
    );

    let ended = app
        .post_json_as_admin(&format!("/api/admin/workshops/{id}/end"), &json!({}))
        .await;
    assert_eq!(ended.status(), 200);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let refused = patch(json!({"name": "too late"})).await;
        if refused.status() == 409 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "an ended workshop stayed editable"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn workshops_run_on_the_embedded_database_too() {
    let app = crate::helpers::spawn_app_on_sqlite().await;
    let created = app
        .post_json_as_admin(
            "/api/admin/workshops",
            &json!({
                "name": "On SQLite",
                "starts_at": at(3600),
                "ends_at": at(7200),
                "headcount": 1,
                "warmup_lead_secs": 600,
                "roster": "ada@lab.example",
            }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let ended = app
        .post_json_as_admin(&format!("/api/admin/workshops/{id}/end"), &json!({}))
        .await;
    assert_eq!(ended.status(), 200);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let shown: Value = app
            .get_as_admin(&format!("/api/admin/workshops/{id}"))
            .await
            .json()
            .await
            .expect("json");
        if shown["state"] == "torn_down" {
            let events: Value = app
                .get_as_admin(&format!("/api/admin/workshops/{id}/notifications"))
                .await
                .json()
                .await
                .expect("json");
            assert!(
                events
                    .as_array()
                    .expect("list")
                    .iter()
                    .any(|e| e["event"] == "workshop.ended"),
                "{events}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{shown:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_workshop_can_use_the_browser_desktop_while_the_start_page_keeps_crd() {
    let app = app().await;
    let free = app.free_vms(2).await;
    let bad: Value = {
        let mut request = good_request();
        request["desktop_mode"] = json!("vnc");
        let answer = app
            .post_json_as_admin("/api/admin/workshops", &request)
            .await;
        assert_eq!(answer.status(), 400);
        answer.json().await.expect("json")
    };
    assert!(
        bad["error"]["message"]
            .as_str()
            .is_some_and(|e| e.contains("`vnc`") && e.contains("`browser`")),
        "{bad}"
    );
    let created: Value = app
        .post_json_as_admin(
            "/api/admin/workshops",
            &json!({
                "name": "Browser desktops",
                "starts_at": at(1),
                "ends_at": at(3600),
                "headcount": 1,
                "spare_vms": 0,
                "warmup_lead_secs": 0,
                "desktop_mode": "browser",
            }),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(created["desktop_mode"], "browser", "{created:#}");
    let id = created["id"].as_i64().expect("id");
    {
        let mut conn = app.connection();
        lablink_schema::vms::Vm::set_workshop(&mut conn, &free[0].0, Some(id)).expect("move");
    }
    let page = app
        .get(&format!("/w/{id}"))
        .await
        .text()
        .await
        .expect("page");
    assert!(
        !page.contains("crd_command"),
        "no command asked for: {page}"
    );
    assert!(app
        .get("/")
        .await
        .text()
        .await
        .expect("page")
        .contains("crd_command"));

    let participant = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let answer = loop {
        let answer = participant
            .post(app.url("/api/request_vm"))
            .form(&[("email", "ada@lab.example"), ("workshop", &id.to_string())])
            .send()
            .await
            .expect("request");
        if answer.status() != 403 {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workshop never opened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()[reqwest::header::LOCATION], "/desktop");
    assert!(answer
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .any(|c| c.to_str().is_ok_and(|c| c.starts_with("lablink_desktop="))));
    let vm = app
        .vms()
        .into_iter()
        .find(|vm| vm.hostname == free[0].0)
        .expect("vm");
    assert_eq!(vm.user_email.as_deref(), Some("ada@lab.example"));
    assert_eq!(
        vm.crd_command.as_deref(),
        Some(""),
        "no command is handed to the agent"
    );

    // The plain start page still asks for a Chrome Remote Desktop command.
    let answer = participant
        .post(app.url("/api/request_vm"))
        .form(&[("email", "bob@lab.example")])
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 400);
}

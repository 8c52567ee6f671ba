//! Exports: participants, VMs and the audit trail as JSON and as CSV that a real CSV parser
//! reads back to the same values, formulas neutralised, filtered by workshop and time, and
//! bad queries refused with what to fix.

use chrono::{SecondsFormat, Utc};
use lablink_schema::audit_events::{AuditEvent, NewAuditEvent};
use serde_json::{json, Value};

use crate::dashboard::signed_in_page;
use crate::helpers::{crd_command, spawn_app, TestApp};

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.get_as_admin(path).await
}

/// The CSV body parsed with the `csv` crate: the header and the records.
fn parse_csv(body: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    assert!(
        body.starts_with("\u{feff}".as_bytes()),
        "a UTF-8 byte-order mark first"
    );
    let text = std::str::from_utf8(&body[3..]).expect("UTF-8");
    assert!(text.starts_with('"'), "every cell quoted: {text}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let records = reader
        .records()
        .map(|r| r.expect("record").iter().map(str::to_owned).collect())
        .collect();
    (header, records)
}

#[actix_web::test]
async fn exports_read_back_the_same_in_csv_and_json_with_formulas_neutralised() {
    let app = spawn_app().await;
    app.free_vms(2).await;
    let outcome = app.request_vm("ada@lab.example", &crd_command("ada")).await;
    assert!(
        matches!(outcome, crate::helpers::RequestOutcome::Assigned { .. }),
        "{outcome:?}"
    );
    {
        let mut conn = app.connection();
        AuditEvent::record(
            &mut conn,
            &NewAuditEvent {
                occurred_at: Utc::now().naive_utc(),
                actor: "admin".to_owned(),
                action: "test.note".to_owned(),
                target: None,
                detail: Some("=HYPERLINK(\"http://evil.example\")".to_owned()),
            },
        )
        .expect("audit");
    }

    for kind in ["participants", "vms", "audit"] {
        let json: Vec<Value> = get(&app, &format!("/api/admin/export/{kind}?format=json"))
            .await
            .json()
            .await
            .expect("json");
        let csv = get(&app, &format!("/api/admin/export/{kind}?format=csv")).await;
        assert_eq!(csv.status(), 200);
        assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
        assert!(csv.headers()["content-disposition"]
            .to_str()
            .expect("header")
            .contains(&format!("lablink-{kind}.csv")));
        let (header, records) = parse_csv(&csv.bytes().await.expect("body"));
        assert_eq!(records.len(), json.len(), "{kind}");
        for (record, object) in records.iter().zip(&json) {
            for (column, cell) in header.iter().zip(record) {
                let expected = match &object[column] {
                    Value::Null => String::new(),
                    Value::String(text) if text.starts_with('=') => format!("'{text}"),
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                assert_eq!(cell, &expected, "{kind}.{column}");
            }
        }
        if kind == "participants" {
            assert_eq!(json.len(), 1);
            assert_eq!(json[0]["email"], "ada@lab.example");
            let claimed = json[0]["claimed_at"].as_str().expect("time");
            assert!(claimed.ends_with('Z') && claimed.contains('T'), "{claimed}");
        }
        if kind == "vms" {
            assert_eq!(json.len(), 2);
        }
        if kind == "audit" {
            let note = records
                .iter()
                .find(|r| r.contains(&"test.note".to_owned()))
                .expect("the note");
            assert!(
                note.contains(&"'=HYPERLINK(\"http://evil.example\")".to_owned()),
                "{note:?}"
            );
        }
    }

    // Every export of participants' emails is in the audit trail, with who asked.
    let exported: Vec<(String, String)> = {
        let mut conn = app.connection();
        AuditEvent::list_recent(&mut conn, 50)
            .expect("audit")
            .into_iter()
            .filter(|e| e.action.starts_with("export."))
            .map(|e| (e.action, e.actor))
            .collect()
    };
    for kind in ["participants", "vms"] {
        assert_eq!(
            exported
                .iter()
                .filter(|(action, actor)| action == &format!("export.{kind}") && actor == "admin")
                .count(),
            2,
            "{exported:?}"
        );
    }

    // Filters: a time range after everything, and a workshop with none of these VMs.
    let later =
        (Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let none: Vec<Value> = get(
        &app,
        &format!("/api/admin/export/participants?from={later}"),
    )
    .await
    .json()
    .await
    .expect("json");
    assert!(none.is_empty());
    let created: Value = app
        .post_json_as_admin(
            "/api/admin/workshops",
            &json!({
                "name": "Elsewhere",
                "starts_at": later,
                "ends_at": (Utc::now() + chrono::Duration::hours(3)).to_rfc3339(),
                "headcount": 1,
                "warmup_lead_secs": 60,
            }),
        )
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_i64().expect("id");
    let vms: Vec<Value> = get(&app, &format!("/api/admin/export/vms?workshop={id}"))
        .await
        .json()
        .await
        .expect("json");
    assert!(vms.is_empty(), "{vms:?}");
    let audit: Vec<Value> = get(&app, &format!("/api/admin/export/audit?workshop={id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["action"], "workshop.create");
}

#[actix_web::test]
async fn bad_export_queries_say_what_to_fix() {
    let app = spawn_app().await;
    let early = "2027-01-01T00:00:00Z";
    let late = "2027-02-01T00:00:00Z";
    for (query, expected) in [
        (
            "/api/admin/export/vms?format=xml",
            "format: `xml` is not csv or json",
        ),
        (
            &format!("/api/admin/export/audit?from={late}&to={early}") as &str,
            "before its start",
        ),
        (
            "/api/admin/export/vms?workshop=999",
            "there is no workshop 999",
        ),
        (
            "/api/admin/export/vms?workshop=first",
            "not a workshop's number",
        ),
        (
            "/api/admin/export/audit?from=yesterday",
            "not a time with its offset",
        ),
        ("/api/admin/export/audit?colour=blue", "colour"),
    ] {
        let response = get(&app, query).await;
        assert_eq!(response.status(), 400, "{query}");
        let text = response.text().await.expect("text");
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert_eq!(get(&app, "/api/admin/export/secrets").await.status(), 404);
    let anonymous = app
        .client
        .get(app.url("/api/admin/export/vms"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);
    // From the dashboard, with a session.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let page = signed_in_page(&app, &browser, "/admin/audit").await;
    assert!(page.contains("/admin/export/audit?format=csv"), "{page}");
    let file = browser
        .get(app.url("/admin/export/audit?format=csv"))
        .send()
        .await
        .expect("export");
    assert_eq!(file.status(), 200);
    let (header, _) = parse_csv(&file.bytes().await.expect("body"));
    assert_eq!(
        header,
        ["occurred_at", "actor", "action", "target", "detail"]
    );
}

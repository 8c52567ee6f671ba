//! VM logs over HTTP: newest first with paging and filters, lines cut not refused, the
//! tagged body beside the original's, refusals that write nothing, and the download.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with};

async fn post_lines(app: &crate::helpers::TestApp, token: &str, body: Value) -> u16 {
    app.post_json("/api/vm-logs", Some(token), &body)
        .await
        .status()
        .as_u16()
}

#[actix_web::test]
async fn the_api_answers_the_newest_lines_first_and_pages_back() {
    let app = spawn_app().await;
    let token = app.register_vm("vm-1").await;
    // 2,500 lines: more than one page of the default 2,000.
    for batch in 0..5 {
        let messages: Vec<String> = (0..500)
            .map(|i| format!("line {:04}", batch * 500 + i))
            .collect();
        let body = json!({"log_group": "g", "log_stream": "vm-1", "messages": messages});
        assert_eq!(post_lines(&app, &token, body).await, 200);
    }
    let first: Value = app
        .get_as_admin("/api/vm-logs/vm-1")
        .await
        .json()
        .await
        .expect("json");
    let lines = first["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 2_000);
    assert_eq!(lines[0]["text"], "line 2499", "the newest comes first");
    assert_eq!(lines[1_999]["text"], "line 0500");
    // The original's `logs` holds the same page in the order it was logged.
    let logs = first["logs"].as_str().expect("logs");
    assert!(logs.starts_with("line 0500\n") && logs.ends_with("line 2499"));

    let before = first["next_before"].as_i64().expect("another page");
    let second: Value = app
        .get_as_admin(&format!("/api/vm-logs/vm-1?before={before}&limit=1000"))
        .await
        .json()
        .await
        .expect("json");
    let older = second["lines"].as_array().expect("lines");
    assert_eq!(older.len(), 500);
    assert_eq!(older[0]["text"], "line 0499");
    assert_eq!(older[499]["text"], "line 0000");
    assert_eq!(second["next_before"], Value::Null, "nothing older");

    for bad in [
        "limit=0",
        "limit=10001",
        "before=0",
        "before=abc",
        "colour=red",
    ] {
        let answer = app.get_as_admin(&format!("/api/vm-logs/vm-1?{bad}")).await;
        assert_eq!(answer.status(), 400, "{bad}");
        let body: Value = answer.json().await.expect("json error");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
}

#[actix_web::test]
async fn tagged_lines_are_kept_with_their_source_and_filtered_by_it_by_errors_and_by_text() {
    let app = spawn_app().await;
    let token = app.register_vm("vm-1").await;
    let body = json!({
        "log_group": "lablink",
        "log_stream": "vm-1",
        "messages": ["from an original agent"],
        "entries": [
            {"source": "boot", "logged_at": "2026-12-02T09:00:00Z", "text": "cloud-init done"},
            {"source": "software", "text": "Traceback (most recent call last):"},
            {"source": "software", "text": "KeyError: 'frames'"},
            {"source": "agent", "text": "INFO status reported"},
        ],
    });
    assert_eq!(post_lines(&app, &token, body).await, 200);
    let read = |query: &'static str| {
        let app = &app;
        async move {
            let page: Value = app
                .get_as_admin(&format!("/api/vm-logs/vm-1?{query}"))
                .await
                .json()
                .await
                .expect("json");
            page["lines"]
                .as_array()
                .expect("lines")
                .iter()
                .map(|l| {
                    format!(
                        "{} {}",
                        l["source"].as_str().unwrap_or("?"),
                        l["text"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<String>>()
        }
    };
    assert_eq!(
        read("").await,
        [
            "agent INFO status reported",
            "software KeyError: 'frames'",
            "software Traceback (most recent call last):",
            "boot cloud-init done",
            "vm from an original agent"
        ]
    );
    assert_eq!(read("source=boot").await, ["boot cloud-init done"]);
    assert_eq!(
        read("errors=true").await,
        [
            "software KeyError: 'frames'",
            "software Traceback (most recent call last):"
        ]
    );
    assert_eq!(read("q=CLOUD-INIT").await, ["boot cloud-init done"]);
    let page: Value = app
        .get_as_admin("/api/vm-logs/vm-1?source=boot")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page["lines"][0]["logged_at"], "2026-12-02T09:00:00");

    // A source that is not a plain name is refused, and nothing of the batch is written.
    let bad = json!({
        "log_group": "lablink",
        "log_stream": "vm-1",
        "entries": [
            {"source": "agent", "text": "fine"},
            {"source": "../etc", "text": "not fine"},
        ],
    });
    let answer = app.post_json("/api/vm-logs", Some(&token), &bad).await;
    assert_eq!(answer.status(), 400);
    let error: Value = answer.json().await.expect("json");
    assert!(
        error["error"].as_str().expect("error").contains("entry 1"),
        "{error}"
    );
    assert_eq!(read("").await.len(), 5, "nothing written");
}

#[actix_web::test]
async fn an_overlong_line_is_cut_with_a_marker_and_an_oversized_batch_writes_nothing() {
    let app = spawn_app_with(|config| {
        config.vm_logs.max_line_bytes = 100;
        config.clients.max_log_bytes_per_batch = 10_000;
    })
    .await;
    let token = app.register_vm("vm-1").await;
    let long = format!("{}{}", "a".repeat(100), "b".repeat(50));
    let body = json!({"log_group": "g", "log_stream": "vm-1", "messages": [long, "short"]});
    assert_eq!(post_lines(&app, &token, body).await, 200);
    let page: Value = app
        .get_as_admin("/api/vm-logs/vm-1")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page["lines"][0]["text"], "short");
    assert_eq!(
        page["lines"][1]["text"],
        format!("{} … [cut: 50 more bytes]", "a".repeat(100))
    );

    let huge = json!({"log_group": "g", "log_stream": "vm-1", "messages": ["x".repeat(6_000), "y".repeat(6_000)]});
    let answer = app.post_json("/api/vm-logs", Some(&token), &huge).await;
    assert_eq!(answer.status(), 413);
    let error: Value = answer.json().await.expect("json");
    assert!(
        error["error"]
            .as_str()
            .expect("error")
            .contains("at most 10000"),
        "the limit is in the message: {error}"
    );
    let page: Value = app
        .get_as_admin("/api/vm-logs/vm-1")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        page["lines"].as_array().expect("lines").len(),
        2,
        "nothing written"
    );
}

#[actix_web::test]
async fn the_whole_kept_history_downloads_as_a_text_file_oldest_first() {
    let app = spawn_app_with(|config| config.vm_logs.max_lines_per_vm = 12_000).await;
    let token = app.register_vm("vm-1").await;
    // More lines than the cap and than one download step: the oldest 1,000 are gone.
    for batch in 0..13 {
        let messages: Vec<String> = (0..1_000)
            .map(|i| format!("line {:05}", batch * 1_000 + i))
            .collect();
        let body = json!({"log_group": "g", "log_stream": "vm-1", "messages": messages});
        assert_eq!(post_lines(&app, &token, body).await, 200);
    }
    let answer = app.get_as_admin("/api/vm-logs/vm-1/download").await;
    assert_eq!(answer.status(), 200);
    let disposition = answer
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"vm-1-"),
        "{disposition}"
    );
    let text = answer.text().await.expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 12_000, "exactly what is kept");
    assert!(lines[0].ends_with(" vm line 01000"), "{}", lines[0]);
    assert!(
        lines[11_999].ends_with(" vm line 12999"),
        "{}",
        lines[11_999]
    );

    // Another VM's token reads nothing of it.
    let other = app.register_vm("vm-2").await;
    let refused = app
        .get_with_token("/api/vm-logs/vm-1/download", &other)
        .await;
    assert_eq!(refused.status(), 401);
}

#[actix_web::test]
async fn the_log_page_shows_the_newest_first_marks_errors_and_pages_back_with_its_filters() {
    let app = spawn_app().await;
    let token = app.register_vm("vm-1").await;
    let messages: Vec<String> = (0..2_100).map(|i| format!("line {i:04}")).collect();
    let body = json!({"log_group": "g", "log_stream": "vm-1", "messages": messages});
    assert_eq!(post_lines(&app, &token, body).await, 200);
    let errors = json!({"log_group": "g", "log_stream": "vm-1",
        "entries": [{"source": "software", "text": "ERROR <lost> the GPU"}]});
    assert_eq!(post_lines(&app, &token, errors).await, 200);

    let browser = crate::dashboard::browser();
    let page = crate::dashboard::signed_in_page(&app, &browser, "/admin/logs/vm-1").await;
    let newest = page
        .find("ERROR &lt;lost&gt; the GPU")
        .expect("the error line, escaped");
    let older = page.find("line 2099").expect("the newest plain line");
    assert!(newest < older, "newest first");
    assert!(
        !page.contains("line 0099"),
        "the oldest are on a later page"
    );
    assert!(
        page.contains(r#"class="log-line log-error""#),
        "errors are marked"
    );
    assert!(page.contains(r#"data-live="true""#));
    assert!(page.contains(r#"<option value="software">software</option>"#));
    let link = page
        .split(r#"<a id="older" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to older lines")
        .replace("&amp;", "&")
        .replace("&#x3D;", "=");
    let older_page = browser
        .get(app.url(&link))
        .send()
        .await
        .expect("older")
        .text()
        .await
        .expect("html");
    // Pages of 500: the next holds the 500 before the first page's oldest.
    assert!(older_page.contains("line 1600") && older_page.contains("line 1101"));
    assert!(!older_page.contains("line 2099") && !older_page.contains("line 1100"));
    assert!(
        !older_page.contains("data-live"),
        "only the newest page is live"
    );

    let filtered = browser
        .get(app.url("/admin/logs/vm-1?errors=true&q=gpu"))
        .send()
        .await
        .expect("filtered")
        .text()
        .await
        .expect("html");
    assert!(filtered.contains("the GPU") && !filtered.contains("line 2099"));
    let bad = browser
        .get(app.url("/admin/logs/vm-1?limit=0"))
        .send()
        .await
        .expect("bad");
    assert_eq!(bad.status(), 400);
}

#[actix_web::test]
async fn a_batch_sent_again_is_stored_once_and_a_new_spool_starts_afresh() {
    let app = spawn_app().await;
    let token = app.register_vm("vm-1").await;
    let batch = |stream: &str, seqs: std::ops::RangeInclusive<i64>| {
        let entries: Vec<Value> = seqs
            .map(|seq| json!({"source": "agent", "seq": seq, "text": format!("{stream} {seq}")}))
            .collect();
        json!({"log_group": "g", "log_stream": "vm-1", "stream": stream, "entries": entries})
    };
    assert_eq!(post_lines(&app, &token, batch("spool-a", 1..=3)).await, 200);
    // The answer was lost: the agent sends the same lines again, and one more.
    assert_eq!(post_lines(&app, &token, batch("spool-a", 1..=4)).await, 200);
    // The VM's disk was replaced: a new spool numbers from 1 again.
    assert_eq!(post_lines(&app, &token, batch("spool-b", 1..=2)).await, 200);
    let page: Value = app
        .get_as_admin("/api/vm-logs/vm-1")
        .await
        .json()
        .await
        .expect("json");
    let texts: Vec<&str> = page["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["text"].as_str().expect("text"))
        .collect();
    assert_eq!(
        texts,
        [
            "spool-b 2",
            "spool-b 1",
            "spool-a 4",
            "spool-a 3",
            "spool-a 2",
            "spool-a 1"
        ]
    );
}

#[actix_web::test]
async fn a_vm_cannot_post_lines_for_another_vm() {
    let app = spawn_app().await;
    let token = app.register_vm("vm-1").await;
    let _other = app.register_vm("vm-2").await;
    let forged = json!({"log_group": "g", "log_stream": "vm-2", "messages": ["not mine"]});
    let status = post_lines(&app, &token, forged).await;
    assert!(status == 401 || status == 403, "refused: {status}");
    let page: Value = app
        .get_as_admin("/api/vm-logs/vm-2?limit=10")
        .await
        .json()
        .await
        .unwrap_or(Value::Null);
    assert!(
        page["lines"].as_array().is_none_or(Vec::is_empty),
        "nothing written: {page}"
    );
}

//! The security and fault review's findings, each reproduced: an email alone no longer shows
//! an assignment, request rates are limited per address and in all, X-Forwarded-For counts
//! only from a trusted proxy, log batches are bounded and checked, a bare CR cannot inject
//! stream fields, a body that never finishes is cut off, and a database outage answers 503
//! pages that never say a claim failed when it may not have.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    crd_command, read_outcome, spawn_app, spawn_app_with, RequestOutcome, TestApp,
};

/// Another browser: its own cookies.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

async fn ask(
    app: &TestApp,
    browser: &reqwest::Client,
    fields: &[(&str, &str)],
) -> (u16, String, reqwest::header::HeaderMap) {
    let response = browser
        .post(app.url("/api/request_vm"))
        .form(fields)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.expect("page"), headers)
}

fn between(html: &str, start: &str, end: &str) -> Option<String> {
    let from = html.find(start)? + start.len();
    let to = html[from..].find(end)? + from;
    Some(html[from..to].to_owned())
}

#[actix_web::test]
async fn an_existing_assignment_is_shown_only_to_its_browser_or_with_the_rejoin_code() {
    let app = spawn_app().await;
    app.free_vms(2).await;
    let command = crd_command("ada");
    let first = browser();
    first.get(app.url("/")).send().await.expect("start page");
    let (status, page, _) = ask(
        &app,
        &first,
        &[("email", "ada@example.org"), ("crd_command", &command)],
    )
    .await;
    let RequestOutcome::Assigned { hostname, pin } = read_outcome(status, &page) else {
        panic!("{status}: {page}");
    };
    let code = between(&page, r#"<strong id="rejoin_code">"#, "</strong>").expect("code");

    // Someone else who knows the email: no hostname, no PIN, and no second VM.
    let stranger = browser();
    let (status, page, _) = ask(
        &app,
        &stranger,
        &[("email", "ada@example.org"), ("crd_command", &command)],
    )
    .await;
    assert_eq!(status, 409);
    assert!(!page.contains(&pin) && !page.contains(&hostname), "{page}");
    assert!(page.contains("already has a VM"), "{page}");
    let (status, page, _) = ask(
        &app,
        &stranger,
        &[
            ("email", "ada@example.org"),
            ("crd_command", &command),
            ("rejoin_code", "AAAAA-00000"),
        ],
    )
    .await;
    assert_eq!(status, 409, "a wrong code proves nothing: {page}");
    assert_eq!(
        app.vms()
            .iter()
            .filter(|vm| vm.user_email.is_some())
            .count(),
        1
    );

    // The same browser, and another one with the code (typed loosely), are shown it.
    let (status, page, _) = ask(
        &app,
        &first,
        &[("email", "ada@example.org"), ("crd_command", &command)],
    )
    .await;
    assert_eq!(
        read_outcome(status, &page),
        RequestOutcome::Assigned {
            hostname: hostname.clone(),
            pin: pin.clone()
        }
    );
    assert!(!page.contains("rejoin_code\""), "the code is shown once");
    let typed = code.to_lowercase().replace('-', " ");
    let (status, page, _) = ask(
        &app,
        &stranger,
        &[
            ("email", "ada@example.org"),
            ("crd_command", &command),
            ("rejoin_code", &typed),
        ],
    )
    .await;
    assert_eq!(
        read_outcome(status, &page),
        RequestOutcome::Assigned { hostname, pin }
    );
}

#[actix_web::test]
async fn a_double_press_from_one_browser_shows_the_vm_both_times() {
    let app = spawn_app().await;
    app.free_vms(1).await;
    let command = crd_command("grace");
    let one = browser();
    one.get(app.url("/")).send().await.expect("start page");
    let fields = [
        ("email", "grace@example.org"),
        ("crd_command", command.as_str()),
    ];
    let (a, b) = tokio::join!(ask(&app, &one, &fields), ask(&app, &one, &fields));
    for (status, page, _) in [a, b] {
        assert!(
            matches!(read_outcome(status, &page), RequestOutcome::Assigned { .. }),
            "{status}: {page}"
        );
    }
}

#[actix_web::test]
async fn one_address_is_rate_limited_with_a_page_that_says_when_to_retry() {
    let app = spawn_app_with(|config| {
        config.rate_limits.request_vm_per_address_per_minute = 5;
        config.rate_limits.exempt_loopback = false;
        config.server.trusted_proxies = "127.0.0.1".to_owned();
    })
    .await;
    let script = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut last = None;
    for i in 0..8 {
        let email = format!("bot{i}@example.org");
        let response = script
            .post(app.url("/api/request_vm"))
            .form(&[
                ("email", email.as_str()),
                ("crd_command", &crd_command("x")),
            ])
            .send()
            .await
            .expect("send");
        statuses.push(response.status().as_u16());
        last = Some(response);
    }
    assert_eq!(
        statuses,
        [503, 503, 503, 503, 503, 429, 429, 429],
        "no VM is free: 503"
    );
    let refused = last.expect("response");
    let retry: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=12).contains(&retry), "{retry}");
    let page = refused.text().await.expect("page");
    assert!(page.contains(&format!("wait {retry} seconds")), "{page}");

    // Behind the trusted proxy (127.0.0.1 here), each client behind it has its own limit…
    let behind = script
        .post(app.url("/api/request_vm"))
        .header("x-forwarded-for", "198.51.100.20")
        .form(&[
            ("email", "person@example.org"),
            ("crd_command", &crd_command("p")),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(behind.status(), 503, "not limited: its own bucket");
    // …and what a client writes left of the proxy's entry is not believed.
    let app = spawn_app_with(|config| {
        config.rate_limits.request_vm_per_address_per_minute = 1;
        config.rate_limits.exempt_loopback = false;
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let spoofed = format!("203.0.113.{i}");
        let response = script
            .post(app.url("/api/request_vm"))
            .header("x-forwarded-for", spoofed)
            .form(&[
                ("email", "s@example.org"),
                ("crd_command", &crd_command("s")),
            ])
            .send()
            .await
            .expect("send");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses,
        [503, 429, 429],
        "no trusted proxy: the header is ignored"
    );
}

#[actix_web::test]
async fn log_batches_are_checked_and_bounded_per_vm() {
    let app = spawn_app_with(|config| {
        config.clients.max_log_bytes_per_batch = 1_000;
        config.clients.max_log_bytes_per_minute = 2_500;
    })
    .await;
    let token = app.register_vm("vm-1").await;
    let post = |messages: serde_json::Value| {
        let app = &app;
        let token = token.clone();
        async move {
            let body = json!({"log_group": "g", "log_stream": "vm-1", "messages": messages});
            let response = app.post_json("/api/vm-logs", Some(&token), &body).await;
            let status = response.status().as_u16();
            let retry = response.headers().get("retry-after").cloned();
            let text: serde_json::Value = response.json().await.unwrap_or_default();
            (
                status,
                text["error"].as_str().unwrap_or_default().to_owned(),
                retry,
            )
        }
    };
    let (status, error, _) = post(json!(["fine", "bad\u{0}line"])).await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error.contains("log line 1") && error.contains("NUL"),
        "{error}"
    );
    let (status, _, _) = post(json!(["x".repeat(1_001)])).await;
    assert_eq!(status, 413);
    for _ in 0..2 {
        assert_eq!(post(json!(["y".repeat(1_000)])).await.0, 200);
    }
    let (status, error, retry) = post(json!(["z".repeat(1_000)])).await;
    assert_eq!(status, 429, "{error}");
    assert!(retry.is_some());
    let mut conn = app.connection();
    let stored = lablink_schema::vm_logs::VmLogLine::list_for_host(&mut conn, "vm-1", None, 100)
        .expect("lines");
    assert_eq!(stored.len(), 2, "refused batches store nothing");
}

#[actix_web::test]
async fn a_hostname_with_a_nul_in_a_path_is_a_400_not_a_500() {
    let app = spawn_app().await;
    for path in ["/api/vm-status/a%00b", "/api/vm-logs/a%00b"] {
        assert_eq!(app.get_as_admin(path).await.status(), 400, "{path}");
    }
    // Nor in a query's filter (PostgreSQL refuses NUL in text: it was a 500).
    for path in [
        "/api/admin/audit?actor=a%00b",
        "/api/admin/audit?action=%00",
        "/api/vm-logs/vm-000?q=a%00b",
        "/api/vm-logs/vm-000?source=%00",
    ] {
        let answer = app.get_as_admin(path).await;
        assert_eq!(answer.status(), 400, "{path}");
        assert!(
            answer.text().await.unwrap_or_default().contains("NUL"),
            "{path} says why"
        );
    }
    let browser = browser();
    let page = crate::dashboard::signed_in_page(&app, &browser, "/admin").await;
    assert!(page.contains("Instances"));
    let logs = browser
        .get(app.url("/admin/logs/a%00b"))
        .send()
        .await
        .expect("logs");
    assert_eq!(logs.status(), 400);
    assert_eq!(
        logs.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/html; charset=utf-8"),
        "a page answers with a page"
    );
}

#[actix_web::test]
async fn a_bare_cr_in_a_log_line_cannot_inject_stream_fields() {
    let app = spawn_app().await;
    let token = app.register_vm("vm-1").await;
    let browser = browser();
    let page = crate::dashboard::signed_in_page(&app, &browser, "/admin/logs/vm-1").await;
    let after = between(&page, r#"data-after=""#, "\"").expect("after");
    let mut stream = browser
        .get(app.url(&format!("/admin/logs/vm-1/stream?after={after}")))
        .send()
        .await
        .expect("stream");
    let body = json!({"log_group": "g", "log_stream": "vm-1",
                      "messages": ["ok\revent: vms\rid: 7"]});
    assert_eq!(
        app.post_json("/api/vm-logs", Some(&token), &body)
            .await
            .status(),
        200
    );
    let mut seen = String::new();
    while !seen.contains("id: 7") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("in time")
            .expect("stream")
            .expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!seen.contains('\r'), "{seen:?}");
    assert!(
        seen.contains("data: ok\ndata: event: vms\ndata: id: 7\n\n"),
        "every piece stays data: {seen:?}"
    );
}

#[actix_web::test]
async fn a_body_that_never_finishes_is_cut_off() {
    let app = spawn_app_with(|config| config.server.body_timeout_secs = 1).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    socket
        .write_all(
            b"POST /api/vm-status HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"hostname\":",
        )
        .await
        .expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection was held open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(app.get_healthz().await.status(), 200);
}

/// Takes the app's database away: no new connections, and the open ones are ended.
fn take_database_away(app: &TestApp, allow: bool) {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let database = app.postgres();
    let name = database.name().to_owned();
    let mut admin =
        PgConnection::establish(&lablink_schema::testing::server_url()).expect("server");
    diesel::sql_query(format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {allow}"
    ))
    .execute(&mut admin)
    .expect("alter");
    if !allow {
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .execute(&mut admin)
        .expect("terminate");
    }
}

#[actix_web::test]
async fn during_a_database_outage_pages_answer_503_pages_and_never_say_a_claim_failed() {
    let app = spawn_app().await;
    app.free_vms(1).await;
    app.browser_key_once().await;
    take_database_away(&app, false);

    let home = app.get("/").await;
    assert_eq!(home.status(), 503);
    assert_eq!(
        home.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/html; charset=utf-8")
    );
    assert!(home.text().await.expect("page").contains("try again"));
    let count = app.get("/api/unassigned_vms_count").await;
    assert_eq!(count.status(), 503);
    assert!(
        count.json::<serde_json::Value>().await.is_ok(),
        "JSON where JSON was asked"
    );
    let asked = app
        .request_vm_raw("ada@example.org", &crd_command("ada"))
        .await;
    assert_eq!(asked.status(), 503);
    let page = asked.text().await.expect("page");
    assert!(page.contains("you may already have a VM"), "{page}");

    take_database_away(&app, true);
    // Back: the same press now shows the VM (none was taken meanwhile).
    let mut outcome = app.request_vm("ada@example.org", &crd_command("ada")).await;
    for _ in 0..20 {
        if matches!(outcome, RequestOutcome::Assigned { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        outcome = app.request_vm("ada@example.org", &crd_command("ada")).await;
    }
    assert!(
        matches!(outcome, RequestOutcome::Assigned { .. }),
        "{outcome:?}"
    );
}

#[actix_web::test]
async fn a_cross_site_request_cannot_change_state_with_cached_basic_credentials() {
    let app = spawn_app().await;
    app.free_vms(1).await;
    app.request_vm("ada@example.org", &crd_command("ada")).await;
    let release = |build: fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder| {
        let request = app
            .client
            .post(app.url("/api/admin/vms/vm-000/release"))
            .basic_auth("admin", Some(crate::helpers::ADMIN_PASSWORD));
        async move { build(request).send().await.expect("send").status().as_u16() }
    };
    // What another site's form can send: a form body, its Origin, Sec-Fetch-Site.
    assert_eq!(
        release(|r| r
            .header("content-type", "application/x-www-form-urlencoded")
            .body("x=1"))
        .await,
        403
    );
    assert_eq!(release(|r| r).await, 403, "no body and no custom header");
    assert_eq!(
        release(|r| r.header("origin", "https://evil.example").json(&json!({}))).await,
        403
    );
    assert_eq!(
        release(|r| r
            .header("sec-fetch-site", "cross-site")
            .header("x-lablink-client", "x"))
        .await,
        403
    );
    assert!(app.vms()[0].user_email.is_some(), "nothing was released");
    // A script: JSON or the custom header.
    assert_eq!(
        release(|r| r.header("x-lablink-client", "script")).await,
        200
    );
}

/// Spellings of one admin path that the router routes alike: percent-escapes of ordinary
/// letters in each part of `/api/admin`.
fn spellings(path: &str) -> Vec<String> {
    let rest = path.trim_start_matches("/api/admin");
    vec![
        format!("/api/%61dmin{rest}"),
        format!("/%61pi/admin{rest}"),
        format!("/api/adm%69n{rest}"),
        format!("/%61%70%69/%61%64%6d%69%6e{rest}"),
    ]
}

#[actix_web::test]
async fn no_spelling_of_an_admin_path_lets_a_cross_site_request_through() {
    let app = spawn_app().await;
    app.free_vms(1).await;
    app.request_vm("ada@example.org", &crd_command("ada")).await;
    let routes: Vec<_> = lablink_allocator::routes::table()
        .into_iter()
        .filter(|route| route.path.starts_with("/api/admin") && route.method != "get")
        .collect();
    assert!(routes.len() > 10, "the admin routes: {routes:?}");
    let mut tried = 0;
    for route in routes {
        // Every parameter filled with something plausible: the check comes before them.
        let path = route
            .path
            .split('/')
            .map(|part| {
                if part.starts_with('{') {
                    "vm-000"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for spelled in spellings(&path) {
            let method = reqwest::Method::from_bytes(route.method.to_uppercase().as_bytes())
                .expect("method");
            // What another site's form sends, with the browser's cached Basic credentials.
            let answer = app
                .client
                .request(method, app.url(&spelled))
                .basic_auth("admin", Some(crate::helpers::ADMIN_PASSWORD))
                .header("origin", "https://evil.example")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("x=1")
                .send()
                .await
                .expect("send");
            let status = answer.status().as_u16();
            let body = answer.text().await.unwrap_or_default();
            assert!(
                status == 403 && body.contains("cross-site"),
                "{} {spelled} answered {status}: {body}",
                route.method
            );
            tried += 1;
        }
    }
    assert!(tried > 40, "{tried} requests");
    assert!(app.vms()[0].user_email.is_some(), "nothing was released");
}

#[actix_web::test]
async fn a_burst_of_wrong_passwords_gets_no_more_checks_than_the_lockout_allows() {
    let app = spawn_app_with(|config| config.admin.max_failed_logins = 5).await;
    let guesses = (0..60).map(|i| {
        app.client
            .get(app.url("/api/vm-status"))
            .basic_auth("admin", Some(format!("wrong-guess-{i}")))
            .send()
    });
    let statuses: Vec<u16> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(|answer| answer.expect("send").status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(checked, 5, "checked passwords: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 55);
}

#[actix_web::test]
async fn wrong_basic_credentials_are_locked_out_audited_and_hashed_off_the_workers() {
    let app = spawn_app_with(|config| {
        config.admin.max_failed_logins = 3;
        config.server.workers = 1;
    })
    .await;
    let with_password = |password: &'static str| {
        let request = app
            .client
            .get(app.url("/api/vm-status"))
            .basic_auth("admin", Some(password));
        async move { request.send().await.expect("send").status().as_u16() }
    };
    // Wrong passwords in flight on the only worker: /healthz is answered meanwhile, because
    // argon2 runs on the blocking pool.
    let wrong = futures_util::future::join_all((0..3).map(|_| with_password("wrong-password")));
    let healthz = async {
        let status = app.get_healthz().await.status().as_u16();
        (status, std::time::Instant::now())
    };
    let started = std::time::Instant::now();
    let (statuses, (health, answered)) = tokio::join!(
        async {
            let statuses = wrong.await;
            (statuses, std::time::Instant::now())
        },
        healthz
    );
    let (statuses, wrong_done) = statuses;
    assert_eq!(statuses, [401, 401, 401]);
    assert_eq!(health, 200);
    assert!(
        answered <= wrong_done,
        "healthz waited for argon2 ({:?})",
        started.elapsed()
    );
    // Locked out now, even with the right password (it was never verified before).
    let locked = app
        .client
        .get(app.url("/api/vm-status"))
        .basic_auth("admin", Some(crate::helpers::ADMIN_PASSWORD))
        .send()
        .await
        .expect("send");
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));
    let mut conn = app.connection();
    let failures = lablink_schema::audit_events::AuditEvent::list_recent(&mut conn, 10)
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "admin.basic_failed")
        .count();
    assert_eq!(failures, 3);
}

#[actix_web::test]
async fn a_sign_in_form_cannot_be_replayed() {
    let app = spawn_app().await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = plain
        .get(app.url("/admin/login"))
        .send()
        .await
        .expect("form");
    let cookie = form
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("login cookie")
        .to_owned();
    let html = form.text().await.expect("html");
    let nonce = between(&html, r#"name="login_nonce" value=""#, "\"").expect("nonce");
    let post = || {
        plain
            .post(app.url("/admin/login"))
            .header("cookie", cookie.clone())
            .form(&[
                ("user", "admin"),
                ("password", crate::helpers::ADMIN_PASSWORD),
                ("login_nonce", nonce.as_str()),
            ])
            .send()
    };
    assert_eq!(post().await.expect("first").status(), 303, "signed in");
    assert_eq!(
        post().await.expect("replay").status(),
        403,
        "the nonce is one-time"
    );
}

#[actix_web::test]
async fn the_embedded_database_holds_a_rush_while_agents_report() {
    let app = crate::helpers::spawn_app_on_sqlite().await;
    let vms = app.free_vms(40).await;
    app.browser_key_once().await;
    let reports = vms.iter().map(|(hostname, token)| {
        let app = &app;
        async move {
            let mut statuses = Vec::new();
            for i in 0..15 {
                let (path, body) = match i % 3 {
                    0 => (
                        "/api/vm-status",
                        json!({"hostname": hostname, "status": "running"}),
                    ),
                    1 => (
                        "/api/gpu_health",
                        json!({"hostname": hostname, "gpu_status": "Healthy"}),
                    ),
                    _ => (
                        "/api/vm-logs",
                        json!({"log_group": "g", "log_stream": hostname, "messages": ["line"]}),
                    ),
                };
                statuses.push(
                    app.post_json(path, Some(token), &body)
                        .await
                        .status()
                        .as_u16(),
                );
            }
            statuses
        }
    });
    let claims = (0..60).map(|i| {
        let app = &app;
        async move {
            let email = format!("r{i}@example.org");
            app.request_vm_raw(&email, &crd_command(&email))
                .await
                .status()
                .as_u16()
        }
    });
    let (reported, claimed) = tokio::join!(
        futures_util::future::join_all(reports),
        futures_util::future::join_all(claims)
    );
    let failed: Vec<u16> = reported
        .into_iter()
        .flatten()
        .chain(claimed.iter().copied())
        .filter(|status| *status >= 500 && *status != 503)
        .collect();
    assert!(
        failed.is_empty(),
        "{} requests failed: {failed:?}",
        failed.len()
    );
    assert_eq!(
        claimed.iter().filter(|s| **s == 200).count(),
        40,
        "every VM was handed out: {claimed:?}"
    );
}

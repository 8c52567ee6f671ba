//! Closed enrollment: a machine joins only with a credential. The rogue sequence from the
//! security review is refused step by step; enrollment tokens work once per use and say why
//! they do not; the legacy switch serves original agents only for VMs without a token.

use serde_json::{json, Value};

use crate::helpers::{crd_command, spawn_app, spawn_app_with, RequestOutcome, TestApp};

async fn enroll(app: &TestApp, hostname: &str, token: &str) -> reqwest::Response {
    app.post_json(
        "/api/vm-status",
        Some(token),
        &json!({"hostname": hostname, "status": "running"}),
    )
    .await
}

async fn new_token(app: &TestApp, body: Value) -> (i64, String) {
    let response = app.create_enrollment_token(&body).await;
    assert_eq!(response.status(), 201, "{body}");
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let created: Value = response.json().await.expect("json");
    (
        created["id"].as_i64().expect("id"),
        created["token"].as_str().expect("token").to_owned(),
    )
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    (
        status,
        body["error"]
            .as_str()
            .or(body["error"]["message"].as_str())
            .unwrap_or_default()
            .to_owned(),
    )
}

#[actix_web::test]
async fn the_rogue_sequence_is_refused_step_by_step_by_default() {
    let app = spawn_app().await;
    // A real VM, free for the next participant.
    app.free_vms(1).await;

    // 1. A token-less report for a name never seen: no token, no row.
    let (status, error) = error_of(
        app.post_json(
            "/api/vm-status",
            None,
            &json!({"hostname": "aaa", "status": "running"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 401);
    assert!(error.contains("enrollment token"), "{error}");
    assert!(app.vms().iter().all(|vm| vm.hostname != "aaa"));
    // 2. GPU `N/A` and 3. waiting for an assignment: refused, without a token.
    let gpu = app
        .post_json(
            "/api/gpu_health",
            None,
            &json!({"hostname": "aaa", "gpu_status": "N/A"}),
        )
        .await;
    assert_eq!(gpu.status(), 401);
    let wait = app
        .post_json("/vm_startup", None, &json!({"hostname": "aaa"}))
        .await;
    assert_eq!(wait.status(), 401);
    // 4. The next participant gets the real VM.
    match app
        .request_vm("next@example.org", &crd_command("next"))
        .await
    {
        RequestOutcome::Assigned { hostname, .. } => assert_eq!(hostname, "vm-000"),
        other => panic!("{other:?}"),
    }
    // An agent presenting a made-up token is no better off.
    let (status, _) = error_of(enroll(&app, "aaa", "made-up").await).await;
    assert_eq!(status, 401);
    assert_eq!(app.vms().len(), 1);
}

#[actix_web::test]
async fn an_enrollment_token_mints_the_vms_own_token_and_every_use_is_audited() {
    let app = spawn_app().await;
    let anonymous = app
        .post_json("/api/admin/enrollment-tokens", None, &json!({}))
        .await;
    assert_eq!(anonymous.status(), 401);
    let (id, token) = new_token(&app, json!({"label": "bench PCs", "max_uses": 2})).await;
    assert!(token.starts_with("lle_") && token.len() == 68, "{token}");

    let response = enroll(&app, "bench-1", &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let vm_token = body["token"]
        .as_str()
        .expect("the VM's own token")
        .to_owned();
    assert_ne!(vm_token, token);
    // The VM acts with its own token; the enrollment token is worth nothing for that.
    let report = json!({"hostname": "bench-1", "gpu_status": "Healthy"});
    assert_eq!(
        app.post_json("/api/gpu_health", Some(&token), &report)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.post_json("/api/gpu_health", Some(&vm_token), &report)
            .await
            .status(),
        200
    );
    // The token's own report later neither mints a new token nor fails.
    let again = enroll(&app, "bench-1", &vm_token).await;
    assert_eq!(again.status(), 200);
    assert!(again
        .json::<Value>()
        .await
        .expect("json")
        .get("token")
        .is_none());

    // Listed without the secret, with its use counted; only hashes are stored.
    let listed: Value = app
        .get_as_admin("/api/admin/enrollment-tokens")
        .await
        .json()
        .await
        .expect("json");
    let entry = &listed["tokens"][0];
    assert_eq!(entry["id"], id);
    assert_eq!(entry["uses"], 1);
    assert_eq!(entry["max_uses"], 2);
    assert_eq!(entry["state"], "active");
    assert!(!listed.to_string().contains(&token[4..]), "{listed}");
    let mut conn = app.connection();
    let stored = lablink_schema::enrollment::EnrollmentToken::list(&mut conn).expect("list");
    assert_eq!(
        stored[0].token_hash,
        lablink_actors::tokens::hash_token(&token)
    );

    let events =
        lablink_schema::audit_events::AuditEvent::list_recent(&mut conn, 10).expect("audit");
    let enrolled = events
        .iter()
        .find(|e| e.action == "vm.enroll")
        .expect("the use is audited");
    assert_eq!(enrolled.target.as_deref(), Some("bench-1"));
    assert!(
        enrolled
            .detail
            .as_deref()
            .is_some_and(|d| d.contains(&format!("token {id}"))),
        "{enrolled:?}"
    );
    assert!(events.iter().any(|e| e.action == "enrollment_token.create"));
}

#[actix_web::test]
async fn every_kind_of_bad_enrollment_token_is_refused_saying_which_and_writes_nothing() {
    let app = spawn_app().await;
    let (_, single) = new_token(&app, json!({"max_uses": 1})).await;
    assert_eq!(enroll(&app, "first", &single).await.status(), 200);
    let (revoked_id, revoked) = new_token(&app, json!({})).await;
    let revoke = app
        .post_json_as_admin(
            &format!("/api/admin/enrollment-tokens/{revoked_id}/revoke"),
            &json!({}),
        )
        .await;
    assert_eq!(revoke.status(), 200);
    assert_eq!(
        revoke.json::<Value>().await.expect("json")["state"],
        "revoked"
    );
    let (expiring_id, expiring) = new_token(&app, json!({"expires_in_secs": 3600})).await;
    {
        // An hour passes: the stored expiry is moved into the past.
        use diesel::prelude::*;
        use lablink_schema::schema::enrollment_tokens::dsl;
        let mut conn = app.connection();
        let past = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1);
        diesel::update(dsl::enrollment_tokens.find(expiring_id))
            .set(dsl::expires_at.eq(past))
            .execute(&mut *conn)
            .expect("expire");
    }
    let unknown = format!("lle_{}", "0".repeat(64));
    for (token, says) in [
        (single.as_str(), "used as often as it allows"),
        (revoked.as_str(), "revoked"),
        (expiring.as_str(), "expired"),
        (unknown.as_str(), "not known"),
    ] {
        let (status, error) = error_of(enroll(&app, "second", token).await).await;
        assert_eq!(status, 401, "{says}");
        assert!(error.contains(says), "{says}: {error}");
    }
    // An enrollment for a name that exists: 409, and the VM keeps its token.
    let (_, fresh) = new_token(&app, json!({})).await;
    let before = app.vms();
    let (status, error) = error_of(enroll(&app, "first", &fresh).await).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(app.vms(), before, "nothing written");
    let listed: Value = app
        .get_as_admin("/api/admin/enrollment-tokens")
        .await
        .json()
        .await
        .expect("json");
    assert!(
        listed["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .all(|t| t["uses"] == if t["max_uses"] == 1 { 1 } else { 0 }),
        "refusals use nothing up: {listed}"
    );
    // Bad requests for tokens.
    for body in [
        json!({"max_uses": 0}),
        json!({"expires_in_secs": 0}),
        json!({"label": "x".repeat(101)}),
        json!({"colour": "red"}),
    ] {
        assert_eq!(
            app.create_enrollment_token(&body).await.status(),
            400,
            "{body}"
        );
    }
    assert_eq!(
        app.post_json_as_admin("/api/admin/enrollment-tokens/9999/revoke", &json!({}))
            .await
            .status(),
        404
    );
}

#[actix_web::test]
async fn enrolled_vms_are_bounded_apart_from_the_providers_own() {
    let app = spawn_app_with(|config| {
        config.provider.max_vms = 2;
        config.provider.local.agent_binary = Some("/nonexistent/lablink-client".into());
    })
    .await;
    let (_, token) = new_token(&app, json!({})).await;
    assert_eq!(enroll(&app, "junk-1", &token).await.status(), 200);
    assert_eq!(enroll(&app, "junk-2", &token).await.status(), 200);
    let (status, error) = error_of(enroll(&app, "junk-3", &token).await).await;
    assert_eq!(status, 403, "{error}");
    assert!(error.contains("max_vms"), "{error}");
    assert_eq!(app.vms().len(), 2);
    // The junk does not block a real creation.
    let created = app
        .post_json_as_admin("/api/admin/vms", &json!({"count": 2}))
        .await;
    assert_eq!(created.status(), 202);
}

#[actix_web::test]
async fn a_providers_vm_token_acts_only_on_its_own_vm() {
    let app = spawn_app().await;
    // What a provider writes at creation (the executor's AddProvisionedVms).
    let (token, hash) = lablink_actors::tokens::new_vm_token();
    {
        let mut conn = app.connection();
        let now = chrono::Utc::now().naive_utc();
        for (hostname, hash) in [("made-1", hash.as_str()), ("made-2", "other-hash")] {
            lablink_schema::vms::Vm::upsert_status(
                &mut conn,
                hostname,
                lablink_schema::wire::VmStatus::Initializing,
                Some(hash),
                now,
            )
            .expect("provisioned");
        }
    }
    let on = |hostname: &str| json!({"hostname": hostname, "status": "running"});
    assert_eq!(
        app.post_json("/api/vm-status", Some(&token), &on("made-1"))
            .await
            .status(),
        200
    );
    for path in ["/api/vm-status", "/vm_startup"] {
        assert_eq!(
            app.post_json(path, Some(&token), &on("made-2"))
                .await
                .status(),
            401,
            "{path}"
        );
    }
}

#[actix_web::test]
async fn the_legacy_switch_serves_original_agents_only_for_vms_without_a_token() {
    let app = spawn_app_with(|config| config.clients.legacy_unauthenticated = true).await;
    // The original agent's exact requests, token-less.
    let status = app
        .post_json(
            "/api/vm-status",
            None,
            &json!({"hostname": "lablink-vm-prod-1", "status": "running"}),
        )
        .await;
    assert_eq!(status.status(), 200);
    let body: Value = status.json().await.expect("json");
    assert_eq!(body["message"], "VM status updated successfully.");
    assert!(body.get("token").is_none(), "a legacy VM stays token-less");
    let gpu = app
        .post_json(
            "/api/gpu_health",
            None,
            &json!({"hostname": "lablink-vm-prod-1", "gpu_status": "Healthy"}),
        )
        .await;
    assert_eq!(gpu.status(), 200);
    let in_use = app
        .post_json(
            "/api/update_inuse_status",
            None,
            &json!({"hostname": "lablink-vm-prod-1", "status": false}),
        )
        .await;
    assert_eq!(in_use.status(), 200);
    let logs = app
        .post_json(
            "/api/vm-logs",
            None,
            &json!({"log_group": "lablink-cloud-init-prod", "log_stream": "lablink-vm-prod-1",
                    "messages": ["Cloud-init v. 23.1 running"]}),
        )
        .await;
    assert_eq!(logs.status(), 200);
    let waiting = {
        let app = &app;
        async move {
            app.post_json(
                "/vm_startup",
                None,
                &json!({"hostname": "lablink-vm-prod-1"}),
            )
            .await
        }
    };
    let (answer, outcome) = tokio::join!(waiting, async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        app.request_vm("ada@example.org", &crd_command("ada")).await
    });
    assert!(
        matches!(outcome, RequestOutcome::Assigned { .. }),
        "{outcome:?}"
    );
    assert_eq!(answer.status(), 200);
    let assignment: Value = answer.json().await.expect("json");
    assert_eq!(assignment["status"], "success");
    assert!(assignment["command"]
        .as_str()
        .is_some_and(|c| c.contains("--code=")));

    // A VM with a token of its own: token-less requests are refused, even with the switch,
    // and its participant's code and PIN are never handed out.
    let vm_token = app.register_vm("has-token").await;
    app.make_ready("has-token", &vm_token, "Healthy").await;
    let holder = app
        .request_vm("grace@example.org", &crd_command("grace"))
        .await;
    assert!(
        matches!(holder, RequestOutcome::Assigned { ref hostname, .. } if hostname == "has-token")
    );
    for (path, body) in [
        ("/vm_startup", json!({"hostname": "has-token"})),
        (
            "/api/vm-status",
            json!({"hostname": "has-token", "status": "running"}),
        ),
        (
            "/api/gpu_health",
            json!({"hostname": "has-token", "gpu_status": "N/A"}),
        ),
        (
            "/api/update_inuse_status",
            json!({"hostname": "has-token", "status": true}),
        ),
        (
            "/api/vm-logs",
            json!({"log_group": "g", "log_stream": "has-token", "messages": ["x"]}),
        ),
    ] {
        let response = app.post_json(path, None, &body).await;
        assert_eq!(response.status(), 401, "{path}");
    }
    // The dashboard says what the switch allows.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let dashboard = crate::dashboard::signed_in_page(&app, &browser, "/admin").await;
    assert!(dashboard.contains(r#"id="legacy_banner""#), "{dashboard}");
}

#[actix_web::test]
async fn the_dashboard_makes_a_token_shows_it_once_with_the_command_and_revokes_it() {
    let app = spawn_app().await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let page = crate::dashboard::signed_in_page(&app, &browser, "/admin/enrollment").await;
    assert!(!page.contains("legacy_banner"), "off by default");
    let csrf =
        crate::dashboard::between(&page, r#"name="csrf_token" value=""#, "\"").expect("csrf");
    let shown = browser
        .post(app.url("/admin/enrollment/create"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("label", "room 204"),
            ("expires_in_hours", "24"),
            ("max_uses", "3"),
        ])
        .send()
        .await
        .expect("create")
        .text()
        .await
        .expect("html");
    let token = crate::dashboard::between(&shown, r#"<code id="enrollment_token">"#, "</code>")
        .expect("the token is shown");
    let command = crate::dashboard::between(&shown, r#"<pre id="enrollment_command">"#, "</pre>")
        .expect("the command is shown")
        .replace("&#x3D;", "=")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    assert!(
        command.contains("LABLINK_ENROLLMENT_TOKEN_FILE="),
        "{command}"
    );
    assert!(
        command
            .lines()
            .filter(|l| l.contains(&token))
            .all(|l| l.trim() == token),
        "the token is never on a command line: {command}"
    );
    // It works, and it is never shown again.
    assert_eq!(enroll(&app, "room-204-pc1", &token).await.status(), 200);
    let again = crate::dashboard::signed_in_page(&app, &browser, "/admin/enrollment").await;
    assert!(!again.contains(&token));
    assert!(
        again.contains("room 204") && again.contains("1 of 3"),
        "{again}"
    );
    // (Signing in again began a new session, with a CSRF token of its own.)
    let csrf =
        crate::dashboard::between(&again, r#"name="csrf_token" value=""#, "\"").expect("csrf");
    // Without the CSRF token nothing is made.
    let forged = browser
        .post(app.url("/admin/enrollment/create"))
        .form(&[("label", "forged")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);
    // Revoked from the dashboard: the token stops working.
    let id = app
        .get_as_admin("/api/admin/enrollment-tokens")
        .await
        .json::<Value>()
        .await
        .expect("json")["tokens"][0]["id"]
        .as_i64()
        .expect("id");
    let revoked = browser
        .post(app.url(&format!("/admin/enrollment/{id}/revoke")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("revoke");
    assert!(revoked.status().is_success(), "{}", revoked.status());
    let (status, error) = error_of(enroll(&app, "room-204-pc2", &token).await).await;
    assert_eq!((status, error.contains("revoked")), (401, true), "{error}");
}

//! The admin API's tokens, its one error shape and its idempotent creations: a token acts
//! for the admin and the audit trail names it; a read-only one can only read; expired,
//! revoked and unknown ones are refused saying which; every admin API refusal is
//! `{"error": {"code", "message"}}` while the original's routes keep theirs; a retried
//! creation with the same `Idempotency-Key` creates once.

use diesel::prelude::*;
use lablink_schema::schema::{api_tokens, enrollment_tokens, idempotency_keys, workshops};
use serde_json::{json, Value};

use crate::dashboard::{between, signed_in_page};
use crate::helpers::{spawn_app, TestApp};

/// Makes a token with Basic; returns its id and secret.
async fn make_token(app: &TestApp, body: Value) -> (i64, String) {
    let answer = app.post_json_as_admin("/api/admin/tokens", &body).await;
    assert_eq!(answer.status(), 201, "{body}");
    let created: Value = answer.json().await.expect("json");
    (
        created["id"].as_i64().expect("id"),
        created["token"].as_str().expect("token").to_owned(),
    )
}

async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json error");
    (
        status,
        body["error"]["code"].as_str().expect("code").to_owned(),
        body["error"]["message"]
            .as_str()
            .expect("message")
            .to_owned(),
    )
}

fn audit_actors(app: &TestApp, action: &str) -> Vec<String> {
    let mut conn = app.connection();
    lablink_schema::audit_events::AuditEvent::list_recent(&mut conn, 50)
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| e.actor)
        .collect()
}

#[actix_web::test]
async fn an_admin_token_acts_for_the_admin_and_the_audit_trail_names_it() {
    let app = spawn_app().await;
    let answer = app
        .post_json_as_admin(
            "/api/admin/tokens",
            &json!({"name": " nightly export ", "scope": "admin"}),
        )
        .await;
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let location = answer.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let created: Value = answer.json().await.expect("json");
    let (id, token) = (
        created["id"].as_i64().expect("id"),
        created["token"].clone(),
    );
    let token = token.as_str().expect("token").to_owned();
    assert_eq!(location, format!("/api/admin/tokens/{id}"));
    assert!(token.starts_with("lla_") && token.len() == 68, "{token}");
    assert_eq!(created["name"], "nightly export");
    assert_eq!(created["state"], "active");

    // Only the hash is stored.
    let stored: String = api_tokens::table
        .find(id)
        .select(api_tokens::token_hash)
        .first(&mut app.connection())
        .expect("row");
    assert_ne!(stored, token);
    assert!(!stored.contains(&token[4..]));

    // The token makes an enrollment token; the audit trail says which token did.
    let made = app
        .post_json(
            "/api/admin/enrollment-tokens",
            Some(&token),
            &json!({"label": "bench"}),
        )
        .await;
    assert_eq!(made.status(), 201);
    assert_eq!(
        audit_actors(&app, "enrollment_token.create"),
        vec![format!("token:{id}:nightly export")]
    );
    assert_eq!(audit_actors(&app, "api_token.create"), vec!["admin"]);

    // Listed (never with the secret), with its last use noted.
    let listed = app.get_with_token("/api/admin/tokens", &token).await;
    assert_eq!(listed.status(), 200);
    let listed = listed.text().await.expect("body");
    assert!(!listed.contains(&token), "the list shows no secret");
    let shown: Value = app
        .get_with_token(&location, &token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["scope"], "admin");
    assert!(shown["last_used_at"].is_string(), "{shown}");
    assert!(shown.get("token").is_none());

    // A token is the admin's, never a VM's.
    let as_vm = app
        .post_json(
            "/api/vm-status",
            Some(&token),
            &json!({"hostname": "vm-x", "status": "running"}),
        )
        .await;
    assert_eq!(as_vm.status(), 403);
}

#[actix_web::test]
async fn a_read_only_token_reads_but_changes_nothing() {
    let app = spawn_app().await;
    let (_, token) = make_token(&app, json!({"name": "watcher", "scope": "read-only"})).await;
    for path in [
        "/api/admin/vms",
        "/api/admin/operations",
        "/api/admin/tokens",
    ] {
        assert_eq!(
            app.get_with_token(path, &token).await.status(),
            200,
            "{path}"
        );
    }
    let (status, code, message) = error_of(
        app.post_json(
            "/api/admin/enrollment-tokens",
            Some(&token),
            &json!({"label": "x"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "read_only_token"));
    assert!(message.contains("admin scope"), "{message}");
    let count: i64 = enrollment_tokens::table
        .count()
        .get_result(&mut app.connection())
        .expect("count");
    assert_eq!(count, 0, "nothing was made");
    let (status, code, _) = error_of(
        app.post_json(
            "/api/admin/tokens",
            Some(&token),
            &json!({"name": "escalate", "scope": "admin"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "read_only_token"));
}

#[actix_web::test]
async fn expired_revoked_and_unknown_tokens_are_refused_saying_which() {
    let app = spawn_app().await;
    let (_, expiring) = make_token(
        &app,
        json!({"name": "short", "scope": "admin", "expires_in_secs": 1}),
    )
    .await;
    let (revoked_id, revoked) = make_token(&app, json!({"name": "gone", "scope": "admin"})).await;
    assert_eq!(
        app.get_with_token("/api/admin/vms", &revoked)
            .await
            .status(),
        200
    );

    let revoke = app
        .post_json_as_admin(
            &format!("/api/admin/tokens/{revoked_id}/revoke"),
            &json!({}),
        )
        .await;
    assert_eq!(revoke.status(), 200);
    let view: Value = revoke.json().await.expect("json");
    assert_eq!(view["state"], "revoked");
    assert_eq!(audit_actors(&app, "api_token.revoke"), vec!["admin"]);

    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    for (token, expected) in [
        (expiring.as_str(), "token_expired"),
        (revoked.as_str(), "token_revoked"),
        (
            "lla_0000000000000000000000000000000000000000000000000000000000000000",
            "token_unknown",
        ),
    ] {
        let (status, code, message) =
            error_of(app.get_with_token("/api/admin/vms", token).await).await;
        assert_eq!((status, code.as_str()), (401, expected), "{message}");
    }
    // The admin's password still works, for compatibility.
    assert_eq!(app.get_as_admin("/api/admin/vms").await.status(), 200);
    let unknown = app
        .post_json_as_admin("/api/admin/tokens/999/revoke", &json!({}))
        .await;
    assert_eq!(error_of(unknown).await.1, "not_found");
}

#[actix_web::test]
async fn bad_token_requests_are_refused_with_what_to_fix() {
    let app = spawn_app().await;
    for (body, expected) in [
        (
            json!({"name": "", "scope": "admin"}),
            "give the token a name",
        ),
        (json!({"name": "x", "scope": "root"}), "unknown variant"),
        (json!({"name": "x"}), "missing field `scope`"),
        (
            json!({"name": "x", "scope": "admin", "expires_in_secs": 0}),
            "at least 1",
        ),
        (
            json!({"name": "x", "scope": "admin", "extra": 1}),
            "unknown field",
        ),
    ] {
        let (status, code, message) =
            error_of(app.post_json_as_admin("/api/admin/tokens", &body).await).await;
        assert_eq!((status, code.as_str()), (400, "bad_request"), "{body}");
        assert!(message.contains(expected), "{body}: {message}");
    }
    let count: i64 = api_tokens::table
        .count()
        .get_result(&mut app.connection())
        .expect("count");
    assert_eq!(count, 0);
}

#[actix_web::test]
async fn every_admin_api_refusal_has_one_shape_and_the_original_routes_keep_theirs() {
    let app = spawn_app().await;
    let (status, code, message) = error_of(app.get_as_admin("/api/admin/nothing-here").await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    assert!(message.contains("/api/admin/nothing-here"), "{message}");

    let anonymous = app
        .client
        .get(app.url("/api/admin/vms"))
        .send()
        .await
        .expect("request");
    assert!(anonymous.headers().contains_key("www-authenticate"));
    assert_eq!(error_of(anonymous).await.1, "unauthorized");

    let not_json = app
        .client
        .post(app.url("/api/admin/tokens"))
        .basic_auth("admin", Some(crate::helpers::ADMIN_PASSWORD))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(error_of(not_json).await.1, "bad_request");

    let wrong_method = app
        .client
        .delete(app.url("/api/admin/tokens"))
        .basic_auth("admin", Some(crate::helpers::ADMIN_PASSWORD))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    let (status, code, _) = error_of(wrong_method).await;
    assert!(status == 404 || status == 405, "{status}");
    assert!(
        code == "not_found" || code == "method_not_allowed",
        "{code}"
    );

    // The original's route keeps `{"error": "…"}`.
    let original: Value = app
        .get_as_admin("/api/vm-status/no-such-vm")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(original["error"], "VM not found.");
}

#[actix_web::test]
async fn a_retried_creation_with_the_same_idempotency_key_creates_once() {
    let app = crate::workshops::app().await;
    let post = |key: &'static str, body: Value| {
        let request = app
            .client
            .post(app.url("/api/admin/workshops"))
            .basic_auth("admin", Some(crate::helpers::ADMIN_PASSWORD))
            .header("Idempotency-Key", key)
            .json(&body);
        async move { request.send().await.expect("request") }
    };
    let body = crate::workshops::good_request();
    let first = post("workshop-1", body.clone()).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.expect("json");

    let again = post("workshop-1", body.clone()).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"], location);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["id"], first["id"]);
    let made: i64 = workshops::table
        .count()
        .get_result(&mut app.connection())
        .expect("count");
    assert_eq!(made, 1, "the retry made no second workshop");

    // The same key for another request is a mistake, said so.
    let mut other = body.clone();
    other["name"] = json!("Another workshop");
    let (status, code, _) = error_of(post("workshop-1", other.clone()).await).await;
    assert_eq!((status, code.as_str()), (422, "idempotency_key_reused"));
    // A refused request keeps no key: fixed, it runs.
    let mut bad = other.clone();
    bad["headcount"] = json!(0);
    assert_eq!(post("workshop-2", bad).await.status(), 400);
    assert_eq!(post("workshop-2", other).await.status(), 201);
    let (status, code, _) = error_of(post(" ", body.clone()).await).await;
    assert_eq!((status, code.as_str()), (400, "bad_request"));

    // A key is its sender's: a token's key does not collide with the admin's.
    let (_, token) = make_token(&app, json!({"name": "script", "scope": "admin"})).await;
    let by_token = app
        .client
        .post(app.url("/api/admin/workshops"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "workshop-1")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(by_token.status(), 201);
    assert!(by_token.headers().get("idempotent-replayed").is_none());
}

#[actix_web::test]
async fn a_retried_token_creation_makes_no_second_token_and_never_shows_the_secret_again() {
    let app = spawn_app().await;
    let post = || {
        app.client
            .post(app.url("/api/admin/tokens"))
            .basic_auth("admin", Some(crate::helpers::ADMIN_PASSWORD))
            .header("Idempotency-Key", "token-1")
            .json(&json!({"name": "ci", "scope": "admin"}))
            .send()
    };
    let first = post().await.expect("request");
    assert_eq!(first.status(), 201);
    let token = first.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let again = post().await.expect("request");
    let (status, code, message) = error_of(again).await;
    assert_eq!((status, code.as_str()), (409, "idempotent_secret_shown"));
    assert!(message.contains("/api/admin/tokens/"), "{message}");
    let count: i64 = api_tokens::table
        .count()
        .get_result(&mut app.connection())
        .expect("count");
    assert_eq!(count, 1);
    let kept: Vec<Option<String>> = idempotency_keys::table
        .select(idempotency_keys::body)
        .load(&mut app.connection())
        .expect("keys");
    assert!(
        kept.iter().flatten().all(|body| !body.contains(&token)),
        "the secret is never kept"
    );
}

#[actix_web::test]
async fn the_dashboard_makes_shows_once_and_revokes_tokens() {
    let app = spawn_app().await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let page = signed_in_page(&app, &browser, "/admin/tokens").await;
    assert!(page.contains("No API tokens yet."), "{page}");
    let csrf = between(&page, r#"name="csrf_token" value=""#, "\"").expect("csrf");
    let made = browser
        .post(app.url("/admin/tokens/create"))
        .header("origin", &app.address)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "laptop"),
            ("scope", "read-only"),
            ("expires_in_days", "30"),
        ])
        .send()
        .await
        .expect("create")
        .text()
        .await
        .expect("html");
    let token = between(&made, r#"<code id="api_token">"#, "</code>").expect("token shown");
    assert!(token.starts_with("lla_"));
    assert_eq!(
        app.get_with_token("/api/admin/vms", &token).await.status(),
        200
    );
    let again = browser
        .get(app.url("/admin/tokens"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(!again.contains(&token), "shown once");
    assert!(again.contains("laptop") && again.contains("read-only"));

    let id: i64 = api_tokens::table
        .select(api_tokens::id)
        .first(&mut app.connection())
        .expect("id");
    let revoked = browser
        .post(app.url(&format!("/admin/tokens/{id}/revoke")))
        .header("origin", &app.address)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("revoke");
    assert!(revoked.status().is_success() || revoked.status().is_redirection());
    assert_eq!(
        app.get_with_token("/api/admin/vms", &token).await.status(),
        401
    );
}

#[actix_web::test]
async fn the_audit_trail_is_filtered_and_paged_by_cursor() {
    let app = spawn_app().await;
    for i in 0..5 {
        let made = app
            .post_json_as_admin(
                "/api/admin/enrollment-tokens",
                &json!({"label": format!("t{i}")}),
            )
            .await;
        assert_eq!(made.status(), 201);
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = app
            .get_as_admin(&format!(
                "/api/admin/audit?action=enrollment_token.create&limit=2{cursor}"
            ))
            .await
            .json()
            .await
            .expect("json");
        let events = page["events"].as_array().expect("events");
        assert!(events.len() <= 2);
        seen.extend(events.iter().map(|e| e["id"].as_i64().expect("id")));
        match page["next_before"].as_i64() {
            Some(next) => cursor = format!("&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );
    let none: Value = app
        .get_as_admin("/api/admin/audit?actor=nobody")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(none["events"], json!([]));
    let (status, code, _) = error_of(app.get_as_admin("/api/admin/audit?limit=0").await).await;
    assert_eq!((status, code.as_str()), (400, "bad_request"));
    let (status, _, _) = error_of(app.get_as_admin("/api/admin/audit?colour=1").await).await;
    assert_eq!(status, 400);

    let version: Value = app.get("/api/version").await.json().await.expect("json");
    assert_eq!(version["api"], 1);
    let me: Value = app
        .get_as_admin("/api/admin/whoami")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me, json!({"actor": "admin", "scope": "admin"}));
}

#[actix_web::test]
async fn the_operation_list_is_paged_by_cursor() {
    let app = crate::workshops::app().await;
    for _ in 0..3 {
        let queued = app
            .post_json_as_admin("/api/admin/vms", &json!({"count": 1}))
            .await;
        assert_eq!(queued.status(), 202);
    }
    let first = app.get_as_admin("/api/admin/operations?limit=2").await;
    let next = first.headers()["link"].to_str().expect("link").to_owned();
    let first: Value = first.json().await.expect("json");
    let ids: Vec<i64> = first
        .as_array()
        .expect("array")
        .iter()
        .map(|op| op["operation_id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, vec![3, 2]);
    assert_eq!(
        next,
        "</api/admin/operations?before=2&limit=2>; rel=\"next\""
    );
    let path = next
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("target");
    let last = app.get_as_admin(path).await;
    assert!(
        last.headers().get("link").is_none(),
        "the oldest page has no next"
    );
    let last: Value = last.json().await.expect("json");
    assert_eq!(last.as_array().map(Vec::len), Some(1));
    assert_eq!(last[0]["operation_id"], 1);
    let (status, _, _) = error_of(app.get_as_admin("/api/admin/operations?limit=5000").await).await;
    assert_eq!(status, 400);
}

/// Follows `Link: rel="next"` from `path`, returning each page's items.
async fn pages(app: &TestApp, path: &str, items: impl Fn(&Value) -> Vec<Value>) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(path) = next.take() {
        let answer = app.get_as_admin(&path).await;
        assert_eq!(answer.status(), 200, "{path}");
        next = answer.headers().get("link").map(|link| {
            link.to_str()
                .expect("link")
                .trim_start_matches('<')
                .split('>')
                .next()
                .expect("target")
                .to_owned()
        });
        pages.push(items(&answer.json::<Value>().await.expect("json")));
        assert!(pages.len() < 10, "the pages end");
    }
    pages
}

#[actix_web::test]
async fn whole_lists_are_paged_by_cursor_with_their_filters_kept() {
    let app = spawn_app().await;
    for name in ["vm-c", "vm-a", "vm-b"] {
        app.register_vm(name).await;
    }
    let vm_pages = pages(&app, "/api/admin/vms?limit=2", |body| {
        body.as_array().expect("array").clone()
    })
    .await;
    let names: Vec<Vec<&str>> = vm_pages
        .iter()
        .map(|page| {
            page.iter()
                .map(|vm| vm["hostname"].as_str().expect("name"))
                .collect()
        })
        .collect();
    assert_eq!(names, vec![vec!["vm-a", "vm-b"], vec!["vm-c"]]);
    // A filter is kept in the next page's link.
    let filtered = app
        .get_as_admin("/api/admin/vms?assigned=false&limit=1")
        .await;
    let link = filtered.headers()["link"]
        .to_str()
        .expect("link")
        .to_owned();
    assert_eq!(
        link,
        "</api/admin/vms?assigned=false&after=vm-a&limit=1>; rel=\"next\""
    );
    let gone = app.get_as_admin("/api/admin/vms?after=vm-zzz").await;
    assert_eq!(error_of(gone).await.0, 400);

    for name in ["one", "two", "three"] {
        make_token(&app, json!({"name": name, "scope": "read-only"})).await;
    }
    let token_pages = pages(&app, "/api/admin/tokens?limit=2", |body| {
        body["tokens"].as_array().expect("tokens").clone()
    })
    .await;
    let names: Vec<Vec<&str>> = token_pages
        .iter()
        .map(|page| {
            page.iter()
                .map(|t| t["name"].as_str().expect("name"))
                .collect()
        })
        .collect();
    assert_eq!(names, vec![vec!["three", "two"], vec!["one"]]);
}

#[actix_web::test]
async fn a_token_made_with_a_token_never_outlives_it() {
    let app = spawn_app().await;
    let (parent_id, parent) = make_token(
        &app,
        json!({"name": "ci", "scope": "admin", "expires_in_secs": 3600}),
    )
    .await;
    // Made with the parent, asking for no expiry at all, and then for more than it has.
    let mut children = Vec::new();
    for body in [
        json!({"name": "child", "scope": "admin"}),
        json!({"name": "longer", "scope": "read-only", "expires_in_secs": 86_400}),
    ] {
        let answer = app
            .client
            .post(app.url("/api/admin/tokens"))
            .bearer_auth(&parent)
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(answer.status(), 201);
        let made: Value = answer.json().await.expect("json");
        children.push(made);
    }
    let parent_view: Value = app
        .get_as_admin(&format!("/api/admin/tokens/{parent_id}"))
        .await
        .json()
        .await
        .expect("json");
    for child in &children {
        assert_eq!(
            child["expires_at"], parent_view["expires_at"],
            "capped by its parent: {child}"
        );
    }
    // A grandchild too.
    let child_token = children[0]["token"].as_str().expect("token").to_owned();
    let grandchild: Value = app
        .client
        .post(app.url("/api/admin/tokens"))
        .bearer_auth(&child_token)
        .json(&json!({"name": "grandchild", "scope": "read-only"}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let grandchild_token = grandchild["token"].as_str().expect("token").to_owned();
    assert_eq!(
        app.get_with_token("/api/admin/vms", &grandchild_token)
            .await
            .status(),
        200
    );

    // Revoking the parent ends them all, at once.
    let revoked = app
        .post_json_as_admin(&format!("/api/admin/tokens/{parent_id}/revoke"), &json!({}))
        .await;
    assert_eq!(revoked.status(), 200);
    for token in [
        child_token.as_str(),
        children[1]["token"].as_str().expect("token"),
        grandchild_token.as_str(),
    ] {
        assert_eq!(
            app.get_with_token("/api/admin/vms", token).await.status(),
            401,
            "a token made with a revoked one is refused"
        );
    }
}

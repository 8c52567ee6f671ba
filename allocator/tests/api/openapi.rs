//! The OpenAPI document at `/api/openapi.json` against the route table and against real
//! answers: every API route is in it (and nothing else), and the answers of a walk through
//! the admin API and the agents' routes match the schemas it gives for their status.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp, ADMIN_PASSWORD};

/// Whether a route belongs in the document: the JSON API and what machines call, not pages.
fn documented(path: &str) -> bool {
    path.starts_with("/api/") || ["/healthz", "/readyz", "/metrics", "/vm_startup"].contains(&path)
}

#[actix_web::test]
async fn every_api_route_of_the_route_table_is_in_the_document_and_nothing_else() {
    let app = spawn_app_with(|_| {}).await;
    let doc: Value = app
        .get("/api/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let in_doc: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("item")
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let in_table: BTreeSet<(String, String)> = lablink_allocator::routes::table()
        .into_iter()
        .filter(|route| documented(route.path))
        .map(|route| {
            // `{path:.*}` is actix's pattern; OpenAPI names the parameter only.
            let path = regex::Regex::new(r"\{(\w+):[^}]*\}")
                .expect("regex")
                .replace_all(route.path, "{$1}")
                .into_owned();
            (route.method.to_owned(), path)
        })
        .collect();
    let missing: Vec<_> = in_table.difference(&in_doc).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    let stale: Vec<_> = in_doc.difference(&in_table).collect();
    assert!(
        stale.is_empty(),
        "documented routes that do not exist: {stale:?}"
    );
}

/// Checks answers against the document.
struct Checker {
    doc: Value,
    checked: usize,
}

impl Checker {
    /// Reads the answer and fails unless its status is documented for `method path` and a
    /// JSON body matches that status's schema. Returns the body.
    async fn check(&mut self, method: &str, path: &str, response: reqwest::Response) -> Value {
        let status = response.status().as_u16().to_string();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        // A stream must end too (an operation's, once it finished).
        let text = tokio::time::timeout(std::time::Duration::from_secs(30), response.text())
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: the answer did not end"))
            .expect("body");
        let documented = &self.doc["paths"][path][method]["responses"][&status];
        assert!(
            documented.is_object(),
            "{method} {path} answered {status}, which the document does not list: {text}"
        );
        self.checked += 1;
        if !content_type.starts_with("application/json") {
            return Value::Null;
        }
        let body: Value = serde_json::from_str(&text).expect("a JSON body");
        let schema = &documented["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {path} {status}: a JSON answer without a schema in the document: {body}"
        );
        if let Err(problem) = self.matches(schema, &body, "$", true) {
            panic!("{method} {path} {status} does not match its schema: {problem}\n{body:#}");
        }
        body
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/schemas/");
                &self.doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    /// The properties `schema` names, with those of the parts it is made of (`allOf`, which
    /// is how a flattened struct is written).
    fn known_properties(&self, schema: &Value) -> Option<BTreeSet<String>> {
        let schema = self.resolve(schema);
        let mut known: Option<BTreeSet<String>> = schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect());
        for part in schema["allOf"].as_array().into_iter().flatten() {
            if let Some(more) = self.known_properties(part) {
                known.get_or_insert_with(BTreeSet::new).extend(more);
            }
        }
        known
    }

    /// Whether `value` matches `schema` (the parts of JSON Schema the document uses). With
    /// `strict`, a field the schema (with its `allOf` parts) does not name is a mismatch.
    fn matches(&self, schema: &Value, value: &Value, at: &str, strict: bool) -> Result<(), String> {
        let schema = self.resolve(schema);
        for key in ["oneOf", "anyOf"] {
            if let Some(options) = schema[key].as_array() {
                let any = options
                    .iter()
                    .any(|o| self.matches(o, value, at, strict).is_ok());
                if !any {
                    return Err(format!("{at}: matches none of {key} ({value})"));
                }
            }
        }
        if let Some(all) = schema["allOf"].as_array() {
            // Each part is checked for what it says; the fields are checked against all.
            for part in all {
                self.matches(part, value, at, false)?;
            }
        }
        if let Some(choices) = schema["enum"].as_array() {
            if !choices.contains(value) {
                return Err(format!("{at}: {value} is not one of {choices:?}"));
            }
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() {
            let fits = types.iter().any(|t| match *t {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "null" => value.is_null(),
                _ => true,
            });
            if !fits {
                return Err(format!("{at}: {value} is not {types:?}"));
            }
        }
        if let Value::Object(object) = value {
            if let Some(required) = schema["required"].as_array() {
                for name in required.iter().filter_map(Value::as_str) {
                    if !object.contains_key(name) {
                        return Err(format!("{at}: `{name}` is required"));
                    }
                }
            }
            let properties = schema["properties"].as_object();
            let known = self.known_properties(schema);
            for (name, field) in object {
                if let Some(field_schema) = properties.and_then(|p| p.get(name)) {
                    self.matches(field_schema, field, &format!("{at}.{name}"), true)?;
                    continue;
                }
                match &schema["additionalProperties"] {
                    extra @ Value::Object(_) => {
                        self.matches(extra, field, &format!("{at}.{name}"), true)?
                    }
                    // A schema that names its fields says what the object has: a field it
                    // does not name is undocumented.
                    _ if strict && known.as_ref().is_some_and(|k| !k.contains(name)) => {
                        return Err(format!("{at}: `{name}` is not in the schema"))
                    }
                    _ => {}
                }
            }
        }
        if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
            for (i, item) in items.iter().enumerate() {
                self.matches(item_schema, item, &format!("{at}[{i}]"), true)?;
            }
        }
        Ok(())
    }
}

async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("X-LabLink-Client", "test");
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

#[actix_web::test]
async fn answers_match_the_schemas_the_document_gives() {
    use reqwest::Method;
    let app = crate::workshops::app().await;
    let doc: Value = app
        .get("/api/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    let mut c = Checker { doc, checked: 0 };

    c.check("get", "/healthz", app.get("/healthz").await).await;
    c.check("get", "/readyz", app.get("/readyz").await).await;
    c.check("get", "/api/version", app.get("/api/version").await)
        .await;
    c.check(
        "get",
        "/api/unassigned_vms_count",
        app.get("/api/unassigned_vms_count").await,
    )
    .await;

    // The agents' routes, with a VM that enrolled.
    let token = app.register_vm("vm-doc").await;
    let report = app
        .post_json(
            "/api/vm-status",
            Some(&token),
            &json!({"hostname": "vm-doc", "status": "running"}),
        )
        .await;
    c.check("post", "/api/vm-status", report).await;
    let gpu = app
        .post_json(
            "/api/gpu_health",
            Some(&token),
            &json!({"hostname": "vm-doc", "gpu_status": "Healthy"}),
        )
        .await;
    c.check("post", "/api/gpu_health", gpu).await;
    let in_use = app
        .post_json(
            "/api/update_inuse_status",
            Some(&token),
            &json!({"hostname": "vm-doc", "status": false}),
        )
        .await;
    c.check("post", "/api/update_inuse_status", in_use).await;
    let logs = app
        .post_json(
            "/api/vm-logs",
            Some(&token),
            &json!({"log_group": "g", "log_stream": "vm-doc", "messages": ["hello"]}),
        )
        .await;
    c.check("post", "/api/vm-logs", logs).await;
    c.check(
        "get",
        "/api/vm-status/{hostname}",
        app.get_with_token("/api/vm-status/vm-doc", &token).await,
    )
    .await;
    c.check(
        "get",
        "/api/vm-status",
        app.get_as_admin("/api/vm-status").await,
    )
    .await;
    c.check(
        "get",
        "/api/vm-logs/{hostname}",
        app.get_as_admin("/api/vm-logs/vm-doc").await,
    )
    .await;
    c.check(
        "get",
        "/api/vm-logs/{hostname}",
        app.get_as_admin("/api/vm-logs/nobody").await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/vms/{hostname}/logs",
        app.get_as_admin("/api/admin/vms/vm-doc/logs").await,
    )
    .await;

    // The admin API: lists, one of each, refusals.
    c.check(
        "get",
        "/api/admin/vms",
        app.get_as_admin("/api/admin/vms").await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/vms",
        app.get_as_admin("/api/admin/vms?state=nope").await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/vms/{hostname}",
        app.get_as_admin("/api/admin/vms/vm-doc").await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/vms/{hostname}",
        app.get_as_admin("/api/admin/vms/ghost").await,
    )
    .await;
    c.check(
        "post",
        "/api/admin/vms/{hostname}/release",
        admin(
            &app,
            Method::POST,
            "/api/admin/vms/vm-doc/release",
            Some(json!({})),
        )
        .await,
    )
    .await;
    c.check(
        "post",
        "/api/admin/vms/{hostname}/clear-quarantine",
        admin(
            &app,
            Method::POST,
            "/api/admin/vms/vm-doc/clear-quarantine",
            Some(json!({})),
        )
        .await,
    )
    .await;
    let created = admin(
        &app,
        Method::POST,
        "/api/admin/vms",
        Some(json!({"count": 1})),
    )
    .await;
    let operation = c.check("post", "/api/admin/vms", created).await;
    let id = operation["operation_id"].as_i64().expect("id");
    app.finished_operation(id).await;
    c.check(
        "post",
        "/api/admin/vms",
        admin(
            &app,
            Method::POST,
            "/api/admin/vms",
            Some(json!({"count": 0})),
        )
        .await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/operations",
        app.get_as_admin("/api/admin/operations").await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/operations/{id}",
        app.get_as_admin(&format!("/api/admin/operations/{id}"))
            .await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/operations/{id}/events",
        app.get_as_admin(&format!("/api/admin/operations/{id}/events"))
            .await,
    )
    .await;
    c.check(
        "post",
        "/api/admin/vms/destroy",
        admin(
            &app,
            Method::POST,
            "/api/admin/vms/destroy",
            Some(json!({"hostnames": ["ghost"]})),
        )
        .await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/audit",
        app.get_as_admin("/api/admin/audit?limit=5").await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/whoami",
        app.get_as_admin("/api/admin/whoami").await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/allocator-log",
        app.get_as_admin("/api/admin/allocator-log").await,
    )
    .await;

    let made = admin(
        &app,
        Method::POST,
        "/api/admin/tokens",
        Some(json!({"name": "doc", "scope": "read-only"})),
    )
    .await;
    c.check("post", "/api/admin/tokens", made).await;
    c.check(
        "get",
        "/api/admin/tokens",
        app.get_as_admin("/api/admin/tokens").await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/tokens/{id}",
        app.get_as_admin("/api/admin/tokens/1").await,
    )
    .await;
    c.check(
        "post",
        "/api/admin/tokens/{id}/revoke",
        admin(
            &app,
            Method::POST,
            "/api/admin/tokens/1/revoke",
            Some(json!({})),
        )
        .await,
    )
    .await;
    c.check(
        "post",
        "/api/admin/tokens",
        admin(
            &app,
            Method::POST,
            "/api/admin/tokens",
            Some(json!({"name": ""})),
        )
        .await,
    )
    .await;

    let enrollment = admin(
        &app,
        Method::POST,
        "/api/admin/enrollment-tokens",
        Some(json!({"label": "doc"})),
    )
    .await;
    let enrollment = c
        .check("post", "/api/admin/enrollment-tokens", enrollment)
        .await;
    let enrollment_id = enrollment["id"].as_i64().expect("id");
    c.check(
        "get",
        "/api/admin/enrollment-tokens",
        app.get_as_admin("/api/admin/enrollment-tokens").await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/enrollment-tokens/{id}",
        app.get_as_admin(&format!("/api/admin/enrollment-tokens/{enrollment_id}"))
            .await,
    )
    .await;
    c.check(
        "post",
        "/api/admin/enrollment-tokens/{id}/revoke",
        admin(
            &app,
            Method::POST,
            &format!("/api/admin/enrollment-tokens/{enrollment_id}/revoke"),
            Some(json!({})),
        )
        .await,
    )
    .await;

    let mut request = crate::workshops::good_request();
    request["admission"] = json!("invite");
    let workshop = admin(&app, Method::POST, "/api/admin/workshops", Some(request)).await;
    let workshop = c.check("post", "/api/admin/workshops", workshop).await;
    let wid = workshop["id"].as_i64().expect("id");
    c.check(
        "get",
        "/api/admin/workshops",
        app.get_as_admin("/api/admin/workshops").await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/workshops/{id}",
        app.get_as_admin(&format!("/api/admin/workshops/{wid}"))
            .await,
    )
    .await;
    c.check(
        "patch",
        "/api/admin/workshops/{id}",
        admin(
            &app,
            Method::PATCH,
            &format!("/api/admin/workshops/{wid}"),
            Some(json!({"headcount": 4})),
        )
        .await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/workshops/{id}/participants",
        app.get_as_admin(&format!("/api/admin/workshops/{wid}/participants"))
            .await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/workshops/{id}/notifications",
        app.get_as_admin(&format!("/api/admin/workshops/{wid}/notifications"))
            .await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/notifications",
        app.get_as_admin("/api/admin/notifications").await,
    )
    .await;
    c.check(
        "post",
        "/api/admin/notifications/test",
        admin(
            &app,
            Method::POST,
            "/api/admin/notifications/test",
            Some(json!({})),
        )
        .await,
    )
    .await;
    c.check(
        "post",
        "/api/admin/workshops/{id}/end",
        admin(
            &app,
            Method::POST,
            &format!("/api/admin/workshops/{wid}/end"),
            Some(json!({})),
        )
        .await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/workshops/{id}",
        app.get_as_admin("/api/admin/workshops/999").await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/export/{kind}",
        app.get_as_admin("/api/admin/export/vms?format=csv").await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/vms",
        app.client
            .get(app.url("/api/admin/vms"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    c.check("get", "/metrics", app.get_as_admin("/metrics").await)
        .await;
    c.check(
        "get",
        "/api/vm-logs/{hostname}/download",
        app.get_as_admin("/api/vm-logs/vm-doc/download").await,
    )
    .await;
    assert!(c.checked >= 50, "{} answers checked", c.checked);

    // The check itself tells a wrong answer from a right one.
    let version = json!({"$ref": "#/components/schemas/VersionView"});
    assert!(c
        .matches(&version, &json!({"version": "1", "api": 1}), "$", true)
        .is_ok());
    for wrong in [
        json!({"version": 1, "api": 1}),
        json!({"version": "1"}),
        json!({"version": "1", "api": 1, "extra": true}),
    ] {
        assert!(c.matches(&version, &wrong, "$", true).is_err(), "{wrong}");
    }
}

/// `docs/api.md` names every route of the document, as `` `METHOD /path` ``, and no route
/// the document lacks.
#[actix_web::test]
async fn the_api_guide_names_every_documented_route_and_no_other() {
    let app = spawn_app_with(|_| {}).await;
    let doc: Value = app
        .get("/api/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md"))
        .expect("docs/api.md");
    let named: BTreeSet<(String, String)> =
        regex::Regex::new(r"`(GET|POST|PATCH|PUT|DELETE) (/[^`\s]*)`")
            .expect("regex")
            .captures_iter(&guide)
            .map(|c| {
                (
                    c[1].to_lowercase(),
                    c[2].split('?').next().unwrap_or_default().to_owned(),
                )
            })
            .filter(|(_, path)| documented(path))
            .collect();
    let in_doc: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("item")
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let unnamed: Vec<_> = in_doc.difference(&named).collect();
    assert!(
        unnamed.is_empty(),
        "routes docs/api.md does not name: {unnamed:?}"
    );
    let unknown: Vec<_> = named.difference(&in_doc).collect();
    assert!(
        unknown.is_empty(),
        "docs/api.md names routes that do not exist: {unknown:?}"
    );
}

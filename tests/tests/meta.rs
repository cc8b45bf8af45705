//! What every endpoint shares: the root, health, the documentation, CORS, trailing
//! slashes, and the problem responses of the HTTP layer (404, 405, 413, 415, bad JSON).

use std::time::Duration;

use api_tests::{
    Backend, Failures, MAX_BODY_BYTES, Method, StatusCode, TestApp, Value, all_at_once,
    check_problem, expect_json, expect_problem, header, id_of, ids, json, on_both_backends,
    query_i64, wait_for_count, wait_for_replica_states,
};

const PREFLIGHT_HEADERS: &str = "authorization,content-type";

async fn the_root_points_to_the_docs(app: TestApp) {
    let response = app.get("/", None).await;
    let body = expect_json(response, StatusCode::OK, "GET /").await;
    assert!(body["message"].is_string(), "GET / has a message: {body}");
    assert!(
        body.to_string().contains("/docs"),
        "GET / points to /docs: {body}"
    );
}

async fn health_reports_the_service_and_database_ok(app: TestApp) {
    // Each replica the application reads on (see `tests/cluster/run`), once in use.
    let in_use = vec!["in_use"; app.replicas];
    let replicas: Vec<Value> = (1..=app.replicas)
        .map(|replica| json!({ "replica": replica, "state": "in_use" }))
        .collect();
    assert_eq!(
        wait_for_replica_states(&app, &in_use, Duration::from_secs(10)).await,
        in_use
    );
    let response = app.get("/health", None).await;
    let body = expect_json(response, StatusCode::OK, "GET /health").await;
    assert_eq!(
        body,
        json!({ "status": "ok", "database": "ok", "replicas": replicas })
    );
}

async fn the_docs_and_redoc_are_html_pages(app: TestApp) {
    let mut failures = Failures::new();
    for (path, marker) in [("/docs", "swagger"), ("/redoc", "redoc")] {
        let response = app.get(path, None).await;
        let status = response.status();
        let content_type = header(&response, "content-type").unwrap_or_default();
        let page = response.text().await.unwrap_or_default().to_lowercase();
        if status != StatusCode::OK {
            failures.check::<()>(Err(format!("GET {path}: expected 200, got {status}")));
        } else if !content_type.starts_with("text/html") {
            failures.check::<()>(Err(format!(
                "GET {path}: expected HTML, got {content_type}"
            )));
        } else if !page.contains(marker) {
            failures.check::<()>(Err(format!("GET {path} is not a {marker} page")));
        }
    }
    failures.assert_none();
}

async fn the_spec_is_served_as_json_and_yaml(app: TestApp) {
    let response = app.get("/openapi.json", None).await;
    let content_type = header(&response, "content-type").unwrap_or_default();
    let spec = expect_json(response, StatusCode::OK, "GET /openapi.json").await;
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document"
    );
    assert!(
        spec["paths"]["/posts"].is_object(),
        "the spec documents /posts"
    );

    let response = app.get("/openapi.yaml", None).await;
    assert_eq!(response.status(), StatusCode::OK, "GET /openapi.yaml");
    let content_type = header(&response, "content-type").unwrap_or_default();
    assert!(
        content_type.contains("yaml"),
        "a YAML content type: {content_type}"
    );
    let yaml = response.text().await.unwrap_or_default();
    assert_eq!(
        yaml,
        api::openapi_yaml(),
        "the served YAML is api::openapi_yaml()"
    );

    // Both forms describe the same operations.
    for item in spec["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("a path item").values() {
            if let Some(id) = operation["operationId"].as_str() {
                assert!(
                    yaml.contains(&format!("operationId: {id}")),
                    "the YAML lacks operation {id}"
                );
            }
        }
    }
}

async fn cors_preflight_allows_any_origin_by_default(app: TestApp) {
    let response = app
        .request(Method::OPTIONS, "/posts", None)
        .header("origin", "https://frontend.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", PREFLIGHT_HEADERS)
        .send()
        .await
        .expect("the preflight completes");
    assert!(
        response.status().is_success(),
        "the preflight is answered: {}",
        response.status()
    );

    let origin = header(&response, "access-control-allow-origin").unwrap_or_default();
    assert!(
        origin == "*" || origin == "https://frontend.example",
        "any origin may call: {origin:?}"
    );
    let methods = header(&response, "access-control-allow-methods").unwrap_or_default();
    assert!(
        methods.to_uppercase().contains("POST"),
        "POST is allowed: {methods:?}"
    );
    let allowed = header(&response, "access-control-allow-headers")
        .unwrap_or_default()
        .to_lowercase();
    for name in ["authorization", "content-type"] {
        assert!(
            allowed.split(',').any(|h| h.trim() == name),
            "{name} is listed by name in Access-Control-Allow-Headers: {allowed:?}"
        );
    }
}

async fn cors_headers_come_with_ordinary_responses(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app
        .request(Method::GET, "/posts", Some(&user.token))
        .header("origin", "https://frontend.example")
        .send()
        .await
        .expect("the request completes");
    assert_eq!(response.status(), StatusCode::OK);
    let origin = header(&response, "access-control-allow-origin").unwrap_or_default();
    assert!(
        origin == "*" || origin == "https://frontend.example",
        "the response may be read cross-origin: {origin:?}"
    );
}

async fn in_production_only_configured_origins_pass_cors(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |settings| {
        api_tests::production(settings);
        settings.cors_allowed_origins = Some(vec!["https://allowed.example".to_owned()]);
    })
    .await;
    let preflight = |origin: &'static str| {
        app.request(Method::OPTIONS, "/posts", None)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", PREFLIGHT_HEADERS)
            .send()
    };

    let response = preflight("https://allowed.example")
        .await
        .expect("the preflight completes");
    assert!(
        response.status().is_success(),
        "the allowed origin: {}",
        response.status()
    );
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("https://allowed.example")
    );

    let response = preflight("https://evil.example")
        .await
        .expect("the preflight completes");
    let origin = header(&response, "access-control-allow-origin");
    assert!(
        origin
            .as_deref()
            .is_none_or(|o| o != "*" && o != "https://evil.example"),
        "another origin is not allowed: {origin:?}"
    );
}

async fn a_trailing_slash_is_accepted(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app
        .post(
            "/posts/",
            Some(&user.token),
            &json!({ "title": "Slash", "content": "x" }),
        )
        .await;
    let post = expect_json(response, StatusCode::CREATED, "POST /posts/").await;

    let with_slash = expect_json(
        app.get("/posts/", Some(&user.token)).await,
        StatusCode::OK,
        "GET /posts/",
    )
    .await;
    let without = expect_json(
        app.get("/posts", Some(&user.token)).await,
        StatusCode::OK,
        "GET /posts",
    )
    .await;
    assert_eq!(with_slash, without, "/posts/ is /posts");

    let response = app
        .get(&format!("/posts/{}/", id_of(&post)), Some(&user.token))
        .await;
    assert_eq!(
        expect_json(response, StatusCode::OK, "GET /posts/{id}/").await,
        post
    );
    let response = app.get("/users/me/", Some(&user.token)).await;
    assert_eq!(
        expect_json(response, StatusCode::OK, "GET /users/me/").await["id"],
        user.id
    );
    let response = app.get("/health/", None).await;
    expect_json(response, StatusCode::OK, "GET /health/").await;
    let response = app.get("/posts/?limit=0", Some(&user.token)).await;
    expect_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "GET /posts/?limit=0",
    )
    .await;
}

async fn an_unknown_route_is_404_problem_json(app: TestApp) {
    let user = app.create_user_and_login().await;
    let mut failures = Failures::new();
    for path in [
        "/nope",
        "/posts/1/comments",
        "/users/me/posts",
        "/api/posts",
    ] {
        let response = app.get(path, Some(&user.token)).await;
        failures
            .check(check_problem(response, StatusCode::NOT_FOUND, &format!("GET {path}")).await);
    }
    failures.assert_none();
}

async fn a_wrong_method_is_405_problem_json_with_allow(app: TestApp) {
    let user = app.create_user_and_login().await;
    let cases = [
        (Method::PUT, "/users/me", &["GET", "PATCH", "DELETE"][..]),
        (Method::DELETE, "/posts", &["GET", "POST"][..]),
        (Method::GET, "/vote", &["POST"][..]),
        (Method::PUT, "/login", &["POST"][..]),
        (Method::POST, "/health", &["GET"][..]),
    ];
    let mut failures = Failures::new();
    for (method, path, allowed) in cases {
        let response = app
            .request(method.clone(), path, Some(&user.token))
            .json(&json!({}))
            .send()
            .await
            .expect("the request completes");
        let allow = header(&response, "allow")
            .unwrap_or_default()
            .to_uppercase();
        let context = format!("{method} {path}");
        failures.check(check_problem(response, StatusCode::METHOD_NOT_ALLOWED, &context).await);
        for name in allowed {
            if !allow.split(',').any(|m| m.trim() == *name) {
                failures.check::<()>(Err(format!(
                    "{context}: Allow should list {name}: {allow:?}"
                )));
            }
        }
    }
    failures.assert_none();
}

async fn a_body_over_one_mebibyte_is_413_problem_json(app: TestApp) {
    let user = app.create_user_and_login().await;
    let content = "x".repeat(MAX_BODY_BYTES);
    let body = json!({ "title": "Too big", "content": content });
    assert!(body.to_string().len() > MAX_BODY_BYTES);

    let mut failures = Failures::new();
    let response = app.create_post(&user.token, &body).await;
    let context = "POST /posts with over 1 MiB";
    failures.check(check_problem(response, StatusCode::PAYLOAD_TOO_LARGE, context).await);
    let response = app
        .post(
            "/users",
            None,
            &json!({ "email": "big@example.io", "password": content }),
        )
        .await;
    let context = "POST /users with over 1 MiB";
    failures.check(check_problem(response, StatusCode::PAYLOAD_TOO_LARGE, context).await);
    failures.assert_none();
    assert!(
        app.list_posts(&user.token, &[]).await.is_empty(),
        "nothing was stored"
    );
}

async fn a_json_body_sent_as_text_plain_is_415_problem_json_naming_the_type(app: TestApp) {
    let user = app.create_user_and_login().await;
    let cases = [
        (
            "/posts",
            Some(user.token.as_str()),
            r#"{"title":"t","content":"c"}"#.to_owned(),
        ),
        (
            "/users",
            None,
            r#"{"email":"plain@example.io","password":"correct horse"}"#.to_owned(),
        ),
        (
            "/login",
            None,
            format!(
                r#"{{"email":"{}","password":"{}"}}"#,
                user.email, user.password
            ),
        ),
        (
            "/vote",
            Some(user.token.as_str()),
            r#"{"post_id":1,"dir":1}"#.to_owned(),
        ),
    ];
    let mut failures = Failures::new();
    for (path, token, body) in cases {
        let response = app
            .send_body(Method::POST, path, token, Some("text/plain"), body)
            .await;
        let context = format!("POST {path} as text/plain");
        let problem = check_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, &context).await;
        // The detail is the service's own sentence, naming the type that was sent.
        failures.check(
            problem.and_then(|problem| match problem["detail"].as_str() {
                Some(detail) if detail.contains("text/plain") && detail.contains("/docs") => Ok(()),
                _ => Err(format!("{context}: detail {}", problem["detail"])),
            }),
        );
    }
    failures.assert_none();
}

async fn malformed_json_is_a_400_or_422_problem(app: TestApp) {
    let user = app.create_user_and_login().await;
    let cases = [
        (
            "/posts",
            Some(user.token.as_str()),
            r#"{"title": "t", "content": "#,
        ),
        ("/posts", Some(user.token.as_str()), "not json at all"),
        ("/users", None, r#"{"email": "a@b.io",}"#),
        ("/login", None, "{"),
        ("/vote", Some(user.token.as_str()), ""),
    ];
    let mut failures = Failures::new();
    for (path, token, body) in cases {
        let response = app
            .send_body(Method::POST, path, token, Some("application/json"), body)
            .await;
        let status = response.status();
        let context = format!("POST {path} with {body:?}");
        if status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY {
            failures.check(check_problem(response, status, &context).await);
        } else {
            failures.check::<()>(Err(format!("{context}: expected 400 or 422, got {status}")));
        }
    }
    failures.assert_none();
}

on_both_backends!(
    the_root_points_to_the_docs,
    health_reports_the_service_and_database_ok,
    the_docs_and_redoc_are_html_pages,
    the_spec_is_served_as_json_and_yaml,
    cors_preflight_allows_any_origin_by_default,
    cors_headers_come_with_ordinary_responses,
    in_production_only_configured_origins_pass_cors,
    a_trailing_slash_is_accepted,
    an_unknown_route_is_404_problem_json,
    a_wrong_method_is_405_problem_json_with_allow,
    a_body_over_one_mebibyte_is_413_problem_json,
    a_json_body_sent_as_text_plain_is_415_problem_json_naming_the_type,
    malformed_json_is_a_400_or_422_problem,
);

/// Only PostgreSQL can lose its database under a running application.
mod postgres_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_is_503_when_the_database_is_unreachable() {
        let Some(app) = TestApp::spawn_or_skip(Backend::Postgres).await else {
            return;
        };
        let user = app.create_user_and_login().await;
        app.make_database_unreachable().await;

        let response = app.get("/health", None).await;
        expect_problem(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "GET /health without a database",
        )
        .await;
        let response = app.get("/posts", Some(&user.token)).await;
        expect_problem(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "GET /posts without a database",
        )
        .await;
        let response = app.get("/", None).await;
        expect_json(response, StatusCode::OK, "GET / needs no database").await;
    }

    /// A restart of PostgreSQL, or a proxy timing out idle sessions, ends the sessions the
    /// service holds. The reads that find their connection gone ask again on a new one, so
    /// clients do not see it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_carry_on_when_the_server_ends_the_sessions() {
        let Some(app) = TestApp::spawn_or_skip(Backend::Postgres).await else {
            return;
        };
        let user = app.create_user_and_login().await;
        let post = app.new_post(&user, "still here", true).await;
        let id = id_of(&post);
        // Eight reads at once, so that the service holds several connections.
        let read_all = || {
            all_at_once((0..8).map(|n| {
                let path = if n % 2 == 0 {
                    "/posts".to_owned()
                } else {
                    format!("/posts/{id}")
                };
                let request = app.request(Method::GET, &path, Some(&user.token));
                async move { (path, request.send().await.expect("the service answers")) }
            }))
        };
        for (path, response) in read_all().await {
            expect_json(response, StatusCode::OK, &format!("GET {path} before")).await;
        }

        let db = app.database().await;
        let others = "FROM pg_stat_activity \
                      WHERE datname = current_database() AND pid <> pg_backend_pid()";
        let ended = query_i64(
            &db,
            &format!("SELECT COUNT(pg_terminate_backend(pid)) {others}"),
        )
        .await;
        assert!(ended > 0, "the service held no sessions to end");
        // The pool may open a new session meanwhile: waiting is enough, not asserted.
        wait_for_count(&db, &format!("SELECT COUNT(*) {others}"), 0).await;

        for (path, response) in read_all().await {
            let body = expect_json(response, StatusCode::OK, &format!("GET {path} after")).await;
            if path == "/posts" {
                assert_eq!(
                    ids(body.as_array().expect("a list")),
                    vec![id],
                    "GET /posts after"
                );
            } else {
                assert_eq!(body["title"], "still here", "GET {path} after");
            }
        }
    }
}

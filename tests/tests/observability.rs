//! What operators see: request ids, liveness and readiness, metrics.

use api_tests::{
    Backend, Method, Response, StatusCode, TestApp, expect_json, expect_problem, on_both_backends,
};

/// A counter's value in a Prometheus text page (0 when absent).
fn counter(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// `GET path` with the request id `id`.
async fn get_with_request_id(app: &TestApp, path: &str, id: &str) -> Response {
    let request = app.request(Method::GET, path, None);
    request.header("x-request-id", id).send().await.unwrap()
}

async fn a_well_formed_request_id_is_echoed(app: TestApp) {
    let response = get_with_request_id(&app, "/health", "trace-42.a_b:c").await;
    assert_eq!(response.headers()["x-request-id"], "trace-42.a_b:c");
}

async fn a_missing_or_malformed_request_id_is_replaced(app: TestApp) {
    for sent in [None, Some("two words"), Some("x".repeat(200).as_str())] {
        let mut request = app.request(Method::GET, "/health", None);
        if let Some(id) = sent {
            request = request.header("x-request-id", id);
        }
        let response = request.send().await.unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            !id.is_empty() && Some(id.as_str()) != sent,
            "{sent:?} → {id}"
        );
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    }
}

async fn a_problem_names_its_request_in_instance(app: TestApp) {
    let response = get_with_request_id(&app, "/nowhere", "req-7").await;
    let problem = expect_problem(response, StatusCode::NOT_FOUND, "GET /nowhere").await;
    assert_eq!(problem["instance"], "urn:request:req-7");
}

/// Asserts that `GET /health/live` says the process is alive.
async fn assert_alive(app: &TestApp, context: &str) {
    let body = expect_json(app.get("/health/live", None).await, StatusCode::OK, context).await;
    assert_eq!(body["message"], "alive", "{context}");
}

async fn liveness_answers_without_the_database(app: TestApp) {
    assert_alive(&app, "liveness").await;
    // Only a PostgreSQL database can be taken away from a running service.
    if app.backend != Backend::Postgres {
        return;
    }
    app.make_database_unreachable().await;
    assert_alive(&app, "liveness without the database").await;
    expect_problem(
        app.get("/health", None).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "readiness without a database",
    )
    .await;
}

async fn metrics_count_requests_logins_and_the_pool(app: TestApp) {
    let before = scrape(&app).await;
    let user = app.create_user_and_login().await;
    for _ in 0..3 {
        assert_eq!(
            app.get("/posts", Some(&user.token)).await.status(),
            StatusCode::OK
        );
    }
    let response = app.login_json(&user.email, "not the password").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let after = scrape(&app).await;

    let listed = r#"http_requests_total{operation="listPosts",status="200"}"#;
    assert!(
        counter(&after, listed) - counter(&before, listed) >= 3.0,
        "{after}"
    );
    let failures = "login_failures_total";
    assert!(
        counter(&after, failures) - counter(&before, failures) >= 1.0,
        "{after}"
    );
    assert!(
        after.contains("http_request_duration_seconds_bucket"),
        "{after}"
    );
    assert!(counter(&after, "db_pool_connections") >= 1.0, "{after}");
    assert!(after.contains("db_pool_connections_in_use"), "{after}");
}

async fn metrics_can_be_turned_off(app: TestApp) {
    let off = TestApp::spawn_with(app.backend, |settings| settings.metrics_enabled = false).await;
    let response = off.get("/metrics", None).await;
    expect_problem(response, StatusCode::NOT_FOUND, "GET /metrics when off").await;
}

on_both_backends!(
    a_well_formed_request_id_is_echoed,
    a_missing_or_malformed_request_id_is_replaced,
    a_problem_names_its_request_in_instance,
    liveness_answers_without_the_database,
    metrics_count_requests_logins_and_the_pool,
    metrics_can_be_turned_off,
);

//! Findings of the security audit, held: registrations limited per client address and
//! hashing waits bounded, trusted-proxy ranges and IPv6 clients counted by their /64,
//! migrations (at start-up too) and seeding free of the requests' statement timeout, and an
//! account deleted while it posts answered with 401, never 500.

use std::time::Duration;

use api_tests::{
    Backend, Method, Response, StatusCode, TestApp, expect_json, expect_problem, json,
    on_both_backends, tally, unique_email,
};
use sea_orm::ConnectionTrait;

async fn register_from(app: &TestApp, client: &str) -> Response {
    app.request(Method::POST, "/users", None)
        .header("x-forwarded-for", client)
        .json(&json!({ "email": unique_email(), "password": "correct horse" }))
        .send()
        .await
        .expect("the registration is answered")
}

fn retry_after(response: &Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric Retry-After: {:?}", response.headers()))
}

/// The 21st registration from one address within the window is a 429 that says it is about
/// registrations; another address still registers.
async fn registrations_are_limited_per_client_address(app: TestApp) {
    let limit = api::Settings::default().register_max_per_address;
    assert_eq!(limit, 20, "the documented default");
    let app = TestApp::spawn_with(app.backend, |settings| {
        settings.register_max_per_address = limit;
        settings.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let (flooder, neighbour) = ("203.0.113.7", "198.51.100.23");
    for attempt in 1..=limit {
        let response = register_from(&app, flooder).await;
        expect_json(
            response,
            StatusCode::CREATED,
            &format!("registration {attempt} of {limit}"),
        )
        .await;
    }
    let response = register_from(&app, flooder).await;
    let wait = retry_after(&response);
    assert!((1..=15 * 60).contains(&wait), "Retry-After {wait}");
    let problem = expect_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "one registration past the limit",
    )
    .await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("registrations") && !detail.contains("failed logins"),
        "the detail names registrations: {detail}"
    );
    let response = register_from(&app, neighbour).await;
    expect_json(response, StatusCode::CREATED, "another address registers").await;
}

/// With every hashing slot taken and a tiny wait, registrations get a 503 with
/// `Retry-After` instead of queueing without bound; none is a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_waits_for_a_hashing_slot_no_longer_than_its_bound() {
    let app = TestApp::spawn_with(Backend::Sqlite, |settings| {
        settings.bcrypt_cost = 12;
        settings.bcrypt_max_concurrency = 1;
        settings.bcrypt_max_wait_milliseconds = 1;
    })
    .await;
    let requests = (0..6).map(|_| {
        let request = app
            .request(Method::POST, "/users", None)
            .json(&json!({ "email": unique_email(), "password": "correct horse" }));
        async move { request.send().await.expect("the registration is answered") }
    });
    let responses = api_tests::all_at_once(requests).await;
    let statuses: Vec<StatusCode> = responses.iter().map(Response::status).collect();
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::SERVICE_UNAVAILABLE),
        "only 201 or 503: {:?}",
        tally(&statuses)
    );
    let busy: Vec<&Response> = responses
        .iter()
        .filter(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(
        !busy.is_empty(),
        "some registrations gave up waiting: {:?}",
        tally(&statuses)
    );
    for response in busy {
        assert!(retry_after(response) >= 1);
    }
}

/// Behind the proxy `trusted`, at most 3 failed logins per client address, any emails.
fn behind_a_proxy(trusted: &str) -> impl FnOnce(&mut api::Settings) {
    move |settings| {
        settings.trusted_proxies = vec![trusted.to_owned()];
        settings.login_max_failures = 0;
        settings.login_max_failures_per_address = 3;
    }
}

async fn fail_login_from(app: &TestApp, client: &str) -> StatusCode {
    app.login_json_forwarded_for(client, &unique_email(), "a wrong guess")
        .await
        .status()
}

/// `TRUSTED_PROXIES` takes a CIDR range: behind a proxy in it, each client is counted by
/// its own address, not the proxy's.
async fn a_trusted_proxy_range_is_believed(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, behind_a_proxy("127.0.0.0/8")).await;
    for attempt in 0..3 {
        let status = fail_login_from(&app, "203.0.113.7").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {attempt}");
    }
    let status = fail_login_from(&app, "203.0.113.7").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "past the limit");
    let status = fail_login_from(&app, "198.51.100.23").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "another client behind the same proxy is not locked"
    );
}

/// An IPv6 client may pick any address of its /64: the per-address limit counts the /64.
async fn an_ipv6_client_is_counted_by_its_64(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, behind_a_proxy("127.0.0.1")).await;
    for (attempt, client) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:a:b:c:d"]
        .into_iter()
        .enumerate()
    {
        let status = fail_login_from(&app, client).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {attempt}");
    }
    let status = fail_login_from(&app, "2001:db8:1:2:ffff::9").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a new address in the same /64"
    );
    let status = fail_login_from(&app, "2001:db8:1:3::1").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the next /64 is not locked"
    );
}

/// Creating posts while the account is deleted: every create is a 201 or a 401, never a 5xx.
async fn posting_while_the_account_is_deleted_is_201_or_401(app: TestApp) {
    let mut statuses = Vec::new();
    for _round in 0..10 {
        let user = app.create_user_and_login().await;
        let creates = (0..30).map(|i| {
            let request = app
                .request(Method::POST, "/posts", Some(&user.token))
                .json(&json!({ "title": format!("race {i}"), "content": "words" }));
            async move {
                request
                    .send()
                    .await
                    .expect("the create is answered")
                    .status()
            }
        });
        let delete = {
            let request = app.request(Method::DELETE, "/users/me", Some(&user.token));
            async move {
                tokio::time::sleep(Duration::from_millis(15)).await;
                request
                    .send()
                    .await
                    .expect("the delete is answered")
                    .status()
            }
        };
        let (created, deleted) = tokio::join!(api_tests::all_at_once(creates), delete);
        assert_eq!(deleted, StatusCode::NO_CONTENT, "the account is deleted");
        statuses.extend(created);
    }
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::UNAUTHORIZED),
        "every create is 201 or 401: {:?}",
        tally(&statuses)
    );
}

on_both_backends!(
    registrations_are_limited_per_client_address,
    a_trusted_proxy_range_is_believed,
    an_ipv6_client_is_counted_by_its_64,
    posting_while_the_account_is_deleted_is_201_or_401,
);

/// How long the lock is held: past the requests' 15 s statement timeout.
const PAST_THE_STATEMENT_TIMEOUT: Duration = Duration::from_millis(16_500);

/// Holds an exclusive lock on every table of the app's PostgreSQL database for longer than
/// the requests' statement timeout, while `work` runs against it; returns what `work` did.
async fn with_tables_locked<T>(
    app: &TestApp,
    work: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T>
where
    T: Send + 'static,
{
    use sea_orm::TransactionTrait;
    let db = app.database().await;
    let locker = db.begin().await.expect("a transaction to hold the locks");
    let tables = api_tests::query_strings(
        &db,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
         AND tablename <> 'seaql_migrations'",
    )
    .await;
    locker
        .execute_unprepared(&format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            tables.join(", ")
        ))
        .await
        .expect("the tables are locked");
    let work = tokio::spawn(work);
    tokio::time::sleep(PAST_THE_STATEMENT_TIMEOUT).await;
    locker.commit().await.expect("the locks are released");
    work.await.expect("the work did not panic")
}

fn maintenance_settings(app: &TestApp) -> api::Settings {
    api::Settings {
        database_url: app.database_url.clone(),
        bcrypt_cost: 4,
        database_max_connections: 2,
        ..api::Settings::default()
    }
}

/// A migration that waits (as one rewriting a large table runs) past the requests' statement
/// timeout still completes: `api migrate` is not cut off at 15 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_outlasting_the_statement_timeout_completes() {
    let Some(app) = TestApp::spawn_or_skip(Backend::Postgres).await else {
        return;
    };
    let settings = maintenance_settings(&app);
    let rolled_back = with_tables_locked(&app, async move {
        api::migrate(&settings, api::MigrateAction::Down).await
    })
    .await;
    let lines = rolled_back.unwrap_or_else(|err| panic!("the migration failed: {err:#}"));
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("Pending")).count(),
        1,
        "{lines:?}"
    );
}

/// `api seed` waiting past the requests' statement timeout still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_outlasting_the_statement_timeout_completes() {
    let Some(app) = TestApp::spawn_or_skip(Backend::Postgres).await else {
        return;
    };
    let settings = maintenance_settings(&app);
    let seeded = with_tables_locked(&app, async move {
        let counts = service::seed::SeedCounts {
            users: 3,
            posts: 5,
            votes: 5,
        };
        api::seed(&settings, counts, "password123", |_, _, _| {}).await
    })
    .await;
    seeded.unwrap_or_else(|err| panic!("seeding failed: {err:#}"));
    let db = app.database().await;
    assert_eq!(
        api_tests::query_i64(&db, "SELECT COUNT(*) FROM users").await,
        3
    );
}

/// An instance starting while another migrates waits for it past the requests' statement
/// timeout: the migrations at start-up run on the service's pool, their transaction free of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_waiting_past_the_statement_timeout_for_anothers_migrations_starts() {
    let Some(first) = TestApp::spawn_or_skip(Backend::Postgres).await else {
        return;
    };
    // The migrations' lock (see `migration::run_pending`), as another instance holds it.
    let migrating = first.database().await;
    migrating
        .execute_unprepared("SELECT pg_advisory_lock(7265462031)")
        .await
        .expect("the migrations' lock is taken");
    let starting = async {
        first
            .spawn_sibling_with(|settings| settings.database_statement_timeout_seconds = 1)
            .await
    };
    let release = async {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        migrating
            .execute_unprepared("SELECT pg_advisory_unlock(7265462031)")
            .await
            .expect("the migrations' lock is released");
    };
    let (second, ()) = tokio::join!(starting, release);
    expect_json(
        second.get("/health", None).await,
        StatusCode::OK,
        "GET /health of the instance that waited",
    )
    .await;
}

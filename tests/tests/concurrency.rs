//! Many requests at once: every one gets its correct status (never a "database is locked",
//! never a 5xx), and afterwards the database holds exactly what was acknowledged. A pool
//! with no free connection answers 503 quickly instead of making clients wait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_tests::{
    Backend, Method, StatusCode, TestApp, TestUser, Value, all_at_once,
    assert_one_created_and_the_rest_conflict, describe, expect_json, expect_problem, header, id_of,
    json, on_both_backends, query_i64, query_i64s, query_strings, send_all_at_once, unique_email,
    wait_for_count,
};
use sea_orm::ConnectionTrait;

/// Sends `POST path` with `body` (and the token, if any) and returns the status and body.
async fn send_json(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (StatusCode, String) {
    let response = app
        .request(Method::POST, path, token)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|err| panic!("POST {path} did not complete: {err}"));
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// Registers and logs in `count` users, a few at a time.
async fn users(app: &Arc<TestApp>, count: usize) -> Vec<TestUser> {
    let mut all = Vec::with_capacity(count);
    while all.len() < count {
        let batch = (count - all.len()).min(10);
        let futures = (0..batch).map(|_| {
            let app = Arc::clone(app);
            async move { app.create_user_and_login().await }
        });
        all.extend(all_at_once(futures).await);
    }
    all
}

async fn two_hundred_concurrent_posts_from_twenty_users_are_stored_exactly_once(app: TestApp) {
    let app = Arc::new(app);
    let authors = users(&app, 20).await;
    let requests = (0..200).map(|n| {
        let app = Arc::clone(&app);
        let author = authors[n % authors.len()].clone();
        async move {
            let title = format!("storm {n}");
            let body = json!({ "title": title, "content": format!("post number {n}") });
            let (status, text) = send_json(&app, "/posts", Some(&author.token), &body).await;
            (status, text, author.id, title)
        }
    });
    let outcomes = all_at_once(requests).await;

    let plain: Vec<(StatusCode, String)> = outcomes
        .iter()
        .map(|(s, t, _, _)| (*s, t.clone()))
        .collect();
    assert!(
        plain.iter().all(|(s, _)| *s == StatusCode::CREATED),
        "every post is a 201: {}",
        describe(&plain)
    );
    let mut acknowledged: Vec<String> = outcomes
        .iter()
        .map(|(_, text, owner, title)| {
            let post: Value = serde_json::from_str(text).expect("a 201 carries the post");
            assert_eq!(post["title"].as_str(), Some(title.as_str()), "{post}");
            assert_eq!(post["owner_id"].as_i64(), Some(*owner), "{post}");
            format!("{}|{owner}|{title}", id_of(&post))
        })
        .collect();
    acknowledged.sort();

    let db = app.database().await;
    let mut stored = query_strings(
        &db,
        "SELECT CAST(id AS TEXT) || '|' || CAST(owner_id AS TEXT) || '|' || title FROM posts",
    )
    .await;
    stored.sort();
    assert_eq!(
        stored, acknowledged,
        "the database holds exactly the acknowledged posts, each once"
    );
    let listed = app
        .list_posts(&authors[0].token, &[("limit", "100"), ("search", "storm")])
        .await;
    assert_eq!(listed.len(), 100, "the listing pages through the new posts");
}

async fn two_hundred_concurrent_votes_on_one_post_count_exactly_the_201s(app: TestApp) {
    let app = Arc::new(app);
    let author = app.create_user_and_login().await;
    let post = app.new_post(&author, "Vote storm", true).await;
    let post_id = id_of(&post);
    // A hundred voters, each voting twice at the same moment: each must get one 201 and
    // one 409, whichever of their two requests wins.
    let voters = users(&app, 100).await;
    let requests = (0..200).map(|n| {
        let app = Arc::clone(&app);
        let voter = voters[n % voters.len()].clone();
        async move {
            let body = json!({ "post_id": post_id, "dir": 1 });
            let (status, text) = send_json(&app, "/vote", Some(&voter.token), &body).await;
            (voter.id, status, text)
        }
    });
    let outcomes = all_at_once(requests).await;

    let plain: Vec<(StatusCode, String)> =
        outcomes.iter().map(|(_, s, t)| (*s, t.clone())).collect();
    let created = plain
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let conflicts = plain
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .count();
    assert_eq!(
        (created, conflicts),
        (100, 100),
        "one 201 and one 409 per voter: {}",
        describe(&plain)
    );
    for voter in &voters {
        let mine: Vec<StatusCode> = outcomes
            .iter()
            .filter(|(id, _, _)| *id == voter.id)
            .map(|(_, s, _)| *s)
            .collect();
        assert!(
            mine.contains(&StatusCode::CREATED) && mine.contains(&StatusCode::CONFLICT),
            "voter {} got {mine:?}",
            voter.id
        );
    }

    let db = app.database().await;
    let stored = query_i64(
        &db,
        &format!("SELECT COUNT(*) FROM votes WHERE post_id = {post_id}"),
    )
    .await;
    assert_eq!(stored, 100, "the database holds one vote per 201");
    let mut stored_voters = query_i64s(
        &db,
        &format!("SELECT user_id FROM votes WHERE post_id = {post_id}"),
    )
    .await;
    stored_voters.sort_unstable();
    let mut expected: Vec<i64> = voters.iter().map(|v| v.id).collect();
    expected.sort_unstable();
    assert_eq!(stored_voters, expected, "exactly the voters who got a 201");
    assert_eq!(
        app.fetch_post(&author.token, post_id).await["votes"],
        100,
        "the post counts the acknowledged votes"
    );
}

async fn fifty_identical_concurrent_votes_by_one_person_give_one_201_and_forty_nine_409s(
    app: TestApp,
) {
    let author = app.create_user_and_login().await;
    let voter = app.create_user_and_login().await;
    let post_id = id_of(&app.new_post(&author, "Once only", true).await);
    let body = json!({ "post_id": post_id, "dir": 1 });
    let requests = (0..50).map(|_| {
        app.request(Method::POST, "/vote", Some(&voter.token))
            .json(&body)
    });
    assert_one_created_and_the_rest_conflict(&send_all_at_once(requests).await);
    let db = app.database().await;
    assert_eq!(
        query_i64(
            &db,
            &format!("SELECT COUNT(*) FROM votes WHERE post_id = {post_id}")
        )
        .await,
        1
    );
    assert_eq!(app.fetch_post(&voter.token, post_id).await["votes"], 1);
}

/// Registers each of `emails` at once, expects one 201 and the rest 409, and returns the
/// addresses stored.
async fn register_all_at_once(app: &TestApp, emails: &[String]) -> Vec<String> {
    let requests = emails.iter().map(|email| {
        let body = json!({ "email": email, "password": "correct horse battery" });
        app.request(Method::POST, "/users", None).json(&body)
    });
    assert_one_created_and_the_rest_conflict(&send_all_at_once(requests).await);
    let db = app.database().await;
    query_strings(&db, "SELECT email FROM users").await
}

async fn twenty_concurrent_registrations_of_one_email_in_different_cases_create_one_account(
    app: TestApp,
) {
    let email = unique_email();
    // Twenty spellings of one address: the n-th upper-cases its letters by the bits of n,
    // and every fourth is padded with spaces.
    let variants: Vec<String> = (0..20_u32)
        .map(|n| {
            let mut letter = 0;
            let spelled: String = email
                .chars()
                .map(|c| {
                    if !c.is_ascii_alphabetic() {
                        return c;
                    }
                    letter += 1;
                    if n & (1 << (letter % 5)) != 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            if n % 4 == 0 {
                format!("  {spelled} ")
            } else {
                spelled
            }
        })
        .collect();
    let distinct: std::collections::BTreeSet<&String> = variants.iter().collect();
    assert_eq!(distinct.len(), 20, "the spellings differ: {variants:?}");

    let stored = register_all_at_once(&app, &variants).await;
    assert_eq!(stored, vec![email.clone()], "one account, lower-cased");
    app.login(&email.to_uppercase(), "correct horse battery")
        .await;
}

async fn twenty_concurrent_registrations_of_look_alike_addresses_create_one_account(app: TestApp) {
    // Latin letters of `victim@example.org` and the Cyrillic letters that look the same: the
    // n-th spelling takes the Cyrillic one where its bit of n is set (the 0th is plain ASCII).
    let twins = [
        (1, '\u{456}'),
        (2, '\u{441}'),
        (7, '\u{435}'),
        (9, '\u{430}'),
        (15, '\u{43e}'),
    ];
    let variants: Vec<String> = (0..20_u32)
        .map(|n| {
            let mut chars: Vec<char> = "victim@example.org".chars().collect();
            for (bit, (at, twin)) in twins.iter().enumerate() {
                if n & (1 << bit) != 0 {
                    chars[*at] = *twin;
                }
            }
            chars.into_iter().collect()
        })
        .collect();
    let stored = register_all_at_once(&app, &variants).await;
    assert_eq!(stored.len(), 1, "one account: {stored:?}");
}

/// One request of the mixed storm: a token and what it does.
enum Action {
    Vote(String, i64, i64),
    VoteOnDoomed(String, i64),
    Patch(String, i64, usize),
    Delete(String, i64),
    Create(String, usize),
    List(String),
}

/// Sends `action` and returns its kind, status and body.
async fn act(app: Arc<TestApp>, action: Action) -> (String, StatusCode, String) {
    let (kind, request) = match &action {
        Action::Vote(token, post_id, dir) => (
            format!("vote dir {dir}"),
            app.request(Method::POST, "/vote", Some(token))
                .json(&json!({ "post_id": post_id, "dir": dir })),
        ),
        Action::VoteOnDoomed(token, post_id) => (
            "vote on a post being deleted".to_owned(),
            app.request(Method::POST, "/vote", Some(token))
                .json(&json!({ "post_id": post_id, "dir": 1 })),
        ),
        Action::Patch(token, post_id, n) => (
            "patch".to_owned(),
            app.request(Method::PATCH, &format!("/posts/{post_id}"), Some(token))
                .json(&json!({ "content": format!("edit {n}") })),
        ),
        Action::Delete(token, post_id) => (
            "delete".to_owned(),
            app.request(Method::DELETE, &format!("/posts/{post_id}"), Some(token)),
        ),
        Action::Create(token, n) => (
            "create".to_owned(),
            app.request(Method::POST, "/posts", Some(token))
                .json(&json!({ "title": format!("fresh {n}"), "content": "x" })),
        ),
        Action::List(token) => (
            "list".to_owned(),
            app.request(Method::GET, "/posts?limit=100", Some(token)),
        ),
    };
    let response = request
        .send()
        .await
        .unwrap_or_else(|err| panic!("{kind} did not complete: {err}"));
    let status = response.status();
    (kind, status, response.text().await.unwrap_or_default())
}

async fn a_mixed_write_storm_never_surfaces_a_busy_error(app: TestApp) {
    let app = Arc::new(app);
    // Every kind of write at once on the same rows: votes cast and taken back, the post
    // patched by its owner, other posts created and deleted, listings read. Each request
    // may win or lose its race, but only with a status the contract names.
    let owner = app.create_user_and_login().await;
    let post_id = id_of(&app.new_post(&owner, "Contested", true).await);
    let fans = users(&app, 10).await;
    let mut doomed = Vec::new();
    for n in 0..10 {
        doomed.push(id_of(
            &app.new_post(&owner, &format!("doomed {n}"), true).await,
        ));
    }

    let mut actions = Vec::new();
    for (n, fan) in fans.iter().enumerate() {
        for dir in [1, 0, 1] {
            actions.push(Action::Vote(fan.token.clone(), post_id, dir));
        }
        actions.push(Action::Patch(owner.token.clone(), post_id, n));
        actions.push(Action::Delete(owner.token.clone(), doomed[n]));
        actions.push(Action::VoteOnDoomed(fan.token.clone(), doomed[n]));
        actions.push(Action::Create(fan.token.clone(), n));
        actions.push(Action::List(fan.token.clone()));
    }
    let requests = actions
        .into_iter()
        .map(|action| act(Arc::clone(&app), action));
    let outcomes = all_at_once(requests).await;

    let allowed = |kind: &str, status: StatusCode| match kind {
        "vote dir 1" => [StatusCode::CREATED, StatusCode::CONFLICT].contains(&status),
        "vote dir 0" => [StatusCode::OK, StatusCode::NOT_FOUND].contains(&status),
        "vote on a post being deleted" => {
            [StatusCode::CREATED, StatusCode::NOT_FOUND].contains(&status)
        }
        "patch" | "list" => status == StatusCode::OK,
        "delete" => status == StatusCode::NO_CONTENT,
        "create" => status == StatusCode::CREATED,
        _ => false,
    };
    let wrong: Vec<String> = outcomes
        .iter()
        .filter(|(kind, status, _)| !allowed(kind, *status))
        .map(|(kind, status, body)| format!("{kind}: {status} {body}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} requests got a status outside the contract:\n  {}",
        wrong.len(),
        outcomes.len(),
        wrong.join("\n  ")
    );

    let db = app.database().await;
    let stored_votes = query_i64(
        &db,
        &format!("SELECT COUNT(*) FROM votes WHERE post_id = {post_id}"),
    )
    .await;
    assert_eq!(
        app.fetch_post(&owner.token, post_id).await["votes"].as_i64(),
        Some(stored_votes),
        "the API counts what is stored"
    );
    let doomed_list = doomed
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        query_i64(
            &db,
            &format!("SELECT COUNT(*) FROM votes WHERE post_id IN ({doomed_list})")
        )
        .await,
        0,
        "no vote outlives its deleted post"
    );
    assert_eq!(
        query_i64(&db, "SELECT COUNT(*) FROM posts WHERE title LIKE 'fresh %'").await,
        10
    );
}

/// Takes the write lock of the application's database from outside and holds it until the
/// returned connection is released: a write inside the application then waits, holding one
/// of its pool's connections.
async fn hold_the_write_lock(app: &TestApp) -> sea_orm::DatabaseConnection {
    // One connection, so that the lock and its release happen on the same one.
    let mut options = sea_orm::ConnectOptions::new(app.database_url.clone());
    options
        .max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    let db = sea_orm::Database::connect(options)
        .await
        .expect("a connection of the test's own to the database");
    let statements: &[&str] = match app.backend {
        Backend::Sqlite => &["BEGIN IMMEDIATE"],
        // Readers of posts wait too: the page reads' own connections can be held up as well.
        Backend::Postgres => &["BEGIN", "LOCK TABLE posts IN ACCESS EXCLUSIVE MODE"],
    };
    for statement in statements {
        db.execute_unprepared(statement)
            .await
            .unwrap_or_else(|err| panic!("`{statement}` failed: {err}"));
    }
    db
}

async fn an_exhausted_pool_answers_503_quickly_instead_of_hanging(app: TestApp) {
    let app = Arc::new(
        TestApp::spawn_with(app.backend, |settings| {
            settings.database_max_connections = 1;
            settings.database_acquire_timeout_seconds = 1;
            // The primary's pools are the subject: a read on a replica waits for no lock of
            // the primary's.
            settings.database_replica_url.clear();
        })
        .await,
    );
    let user = app.create_user_and_login().await;
    let lock = hold_the_write_lock(&app).await;
    let locked_at = Instant::now();

    // This write waits for the lock, holding the pool's only connection.
    let writer = {
        let app = Arc::clone(&app);
        let token = user.token.clone();
        tokio::spawn(async move {
            let body = json!({ "title": "patient", "content": "waits for the lock" });
            send_json(&app, "/posts", Some(&token), &body).await
        })
    };

    // Until the writer holds the connection, a check may still get it: try a few times.
    let mut exhausted = None;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let response = app.get("/health", None).await;
        let elapsed = started.elapsed();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            exhausted = Some((response, elapsed));
            break;
        }
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "while the pool still has its connection"
        );
    }
    let (response, elapsed) =
        exhausted.expect("with its only connection held, the pool gave /health a 503");
    let retry_after = header(&response, "retry-after");
    expect_problem(response, StatusCode::SERVICE_UNAVAILABLE, "GET /health").await;
    assert!(
        retry_after.is_some_and(|v| v.trim().parse::<u64>().is_ok_and(|s| s > 0)),
        "a 503 says when to retry"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "the 503 came after {elapsed:?}: the acquire timeout is 1 s"
    );

    // On PostgreSQL the page reads have connections of their own: a read waiting for the
    // lock holds the only one. (On SQLite they share the writer's.)
    let reader = (app.backend == Backend::Postgres).then(|| {
        let request = app.request(Method::GET, "/posts", Some(&user.token));
        tokio::spawn(async move { request.send().await.expect("the service answers").status() })
    });
    if reader.is_some() {
        // Not on the lock's connection: inside its transaction the activity view stays as
        // it was first read.
        let watch = app.database().await;
        let waiting = "SELECT COUNT(*) FROM pg_stat_activity \
                       WHERE datname = current_database() AND wait_event_type = 'Lock'";
        let waiters = wait_for_count(&watch, waiting, 2).await;
        assert_eq!(
            waiters,
            2,
            "the write and the read wait for the lock: {:?}",
            query_strings(
                &watch,
                "SELECT COALESCE(wait_event_type, '-') || ' ' || COALESCE(query, '') \
                 FROM pg_stat_activity WHERE datname = current_database()"
            )
            .await
        );
    }
    let started = Instant::now();
    let response = app.get("/posts", Some(&user.token)).await;
    let elapsed = started.elapsed();
    expect_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "GET /posts while the pool is exhausted",
    )
    .await;
    assert!(elapsed < Duration::from_secs(4), "it took {elapsed:?}");
    assert!(
        locked_at.elapsed() < Duration::from_secs(4),
        "the checks ran while the lock was held (SQLite's writer waits 5 s at most)"
    );

    lock.execute_unprepared("COMMIT")
        .await
        .expect("the lock is released");
    let (status, body) = writer.await.expect("the writer task ran");
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the waiting write completes once the lock is gone: {body}"
    );
    if let Some(reader) = reader {
        let status = reader.await.expect("the reader task ran");
        assert_eq!(status, StatusCode::OK, "the waiting read completes too");
    }
    expect_json(
        app.get("/health", None).await,
        StatusCode::OK,
        "GET /health after the pool is free again",
    )
    .await;
}

on_both_backends!(
    two_hundred_concurrent_posts_from_twenty_users_are_stored_exactly_once,
    two_hundred_concurrent_votes_on_one_post_count_exactly_the_201s,
    fifty_identical_concurrent_votes_by_one_person_give_one_201_and_forty_nine_409s,
    twenty_concurrent_registrations_of_one_email_in_different_cases_create_one_account,
    twenty_concurrent_registrations_of_look_alike_addresses_create_one_account,
    a_mixed_write_storm_never_surfaces_a_busy_error,
    an_exhausted_pool_answers_503_quickly_instead_of_hanging,
);

/// SQLite only: PostgreSQL makes a blocked writer wait for the lock instead of timing out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_write_locked_out_past_the_busy_timeout_is_a_503_not_a_500() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.create_user_and_login().await;
    // Another process (a backup, a migration) holds the write lock longer than the
    // service's five-second busy timeout.
    let lock = hold_the_write_lock(&app).await;
    let started = Instant::now();
    let (status, body) = send_json(
        &app,
        "/posts",
        Some(&user.token),
        &json!({ "title": "blocked", "content": "by another process" }),
    )
    .await;
    let elapsed = started.elapsed();
    lock.execute_unprepared("ROLLBACK")
        .await
        .expect("the lock is released");
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a busy database is a reason to retry, not a server error: {body}"
    );
    assert!(elapsed < Duration::from_secs(15), "it took {elapsed:?}");
    let db = app.database().await;
    assert_eq!(query_i64(&db, "SELECT COUNT(*) FROM posts").await, 0);
}

/// PostgreSQL only: a statement stuck behind a lock past the statement timeout is cancelled
/// (SQLSTATE 57014, which reads like a number but is no SQLite code): every request is a
/// 503 with `Retry-After`, and none of them changed anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_statement_past_its_timeout_is_a_503_and_changes_nothing() {
    let Some(first) = TestApp::spawn_or_skip(Backend::Postgres).await else {
        return;
    };
    let app = first
        .spawn_sibling_with(|settings| settings.database_statement_timeout_seconds = 1)
        .await;
    let user = app.create_user_and_login().await;
    let post = app.new_post(&user, "before the lock", true).await;
    let id = id_of(&post);
    let path = format!("/posts/{id}");
    let lock = hold_the_write_lock(&app).await;

    let requests = [
        app.request(Method::PATCH, &path, Some(&user.token))
            .json(&json!({ "title": "during the lock" })),
        app.request(Method::GET, &path, Some(&user.token)),
        app.request(Method::GET, "/posts", Some(&user.token)),
        app.request(Method::POST, "/posts", Some(&user.token))
            .json(&json!({ "title": "during the lock", "content": "never stored" })),
    ];
    let mut answers = Vec::new();
    for request in requests {
        let described = format!("{request:?}");
        let started = Instant::now();
        let response = request.send().await.expect("the service answers");
        let elapsed = started.elapsed();
        let retry_after = header(&response, "retry-after");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        answers.push((described, status, retry_after, elapsed, body));
    }
    lock.execute_unprepared("ROLLBACK")
        .await
        .expect("the lock is released");

    for (request, status, retry_after, elapsed, body) in &answers {
        assert_eq!(
            *status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{request}: a statement cancelled by its timeout is a reason to retry: {body}"
        );
        assert!(
            retry_after
                .as_deref()
                .is_some_and(|v| v.trim().parse::<u64>().is_ok_and(|s| s > 0)),
            "{request}: a 503 says when to retry"
        );
        assert!(
            *elapsed < Duration::from_secs(4),
            "{request}: it took {elapsed:?}, the statement timeout is 1 s"
        );
    }
    let db = app.database().await;
    assert_eq!(query_i64(&db, "SELECT COUNT(*) FROM posts").await, 1);
    let after = app.fetch_post(&user.token, id).await;
    assert_eq!(after, post, "the cancelled PATCH changed nothing");
}

//! Page reads on a streaming replica (`DATABASE_REPLICA_URL`) and through a transaction-mode
//! pooler, against the real ones `tests/cluster/run` starts: every read is as fresh as on
//! the primary, whatever the replica's lag, and a replica that stops or falls behind costs
//! nothing but throughput. Skipped without the cluster.

use std::time::{Duration, Instant};

use api_tests::{
    Backend, Replica, SseRead, SseStream, StatusCode, TestApp, TestUser, id_of, json, query_i64,
    wait_for_replica_states,
};
use sea_orm::DatabaseConnection;

/// How soon a replica that stops or falls behind is passed over.
const FALLBACK: Duration = Duration::from_secs(1);

/// An application reading through the cluster's replica, held for this test alone, once
/// the replica is in use; with a connection to its copy of the application's database.
async fn app_on_replica() -> Option<OnReplica> {
    let replica = Replica::of_cluster()?;
    let held = replica.exclusive().await;
    let app = TestApp::spawn(Backend::Postgres).await;
    // In use once it has replayed the database's creation.
    assert_eq!(
        wait_for_replica_states(&app, &["in_use"], Duration::from_secs(10)).await,
        ["in_use"],
        "the replica comes into use"
    );
    let db = replica.connect(&app.database_url).await;
    Some(OnReplica {
        app,
        replica,
        db,
        _held: held,
    })
}

struct OnReplica {
    app: TestApp,
    replica: Replica,
    /// The application's database on the replica.
    db: DatabaseConnection,
    /// Held until the test ends.
    _held: tokio::sync::MutexGuard<'static, ()>,
}

impl OnReplica {
    async fn pause_replay(&self, paused: bool) {
        self.replica.pause_replay(&self.db, paused).await;
    }
}

/// Whether the suite runs without the cluster's pooler (and says so: the test is skipped).
fn without_pooler() -> bool {
    let without = std::env::var("TEST_POOLER_URL").is_err();
    if without {
        eprintln!("skipping: no pooler (run the suite with tests/cluster/run)");
    }
    without
}

/// How many of the service's connections to the replica last ran a page read.
async fn page_reads_seen_on(replica: &DatabaseConnection) -> i64 {
    query_i64(
        replica,
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND query LIKE 'WITH caller AS%'",
    )
    .await
}

async fn titles_listed(app: &TestApp, user: &TestUser) -> Vec<String> {
    let listed = app.get("/posts?limit=100", Some(&user.token)).await;
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: serde_json::Value = listed.json().await.expect("a list");
    listed
        .as_array()
        .expect("an array of posts")
        .iter()
        .map(|post| post["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The replica serves the page reads, and each write is read back at once: the read waits
/// for the replica to replay it (or goes to the primary).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_replica_and_read_back_every_write_at_once() {
    let Some(on) = app_on_replica().await else {
        return;
    };
    let app = &on.app;
    let user = app.create_user_and_login().await;
    for round in 0..30 {
        let title = format!("Written then read, round {round}");
        let post = app.new_post(&user, &title, true).await;
        let path = format!("/posts/{}", id_of(&post));
        let read = app.get(&path, Some(&user.token)).await;
        assert_eq!(read.status(), StatusCode::OK, "round {round}");
        let changed = app
            .patch(
                &path,
                Some(&user.token),
                &json!({"title": format!("{title}, changed")}),
            )
            .await;
        assert_eq!(changed.status(), StatusCode::OK);
        let listed = titles_listed(app, &user).await;
        assert_eq!(
            listed.first(),
            Some(&format!("{title}, changed")),
            "round {round}"
        );
    }
    assert!(
        page_reads_seen_on(&on.db).await > 0,
        "the replica served page reads"
    );
}

/// Others' writes that narrow what is visible are never served stale, while the replica
/// cannot replay them: an unpublished post, a deleted one, a hidden one, a deleted account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_hide_something_are_never_read_stale_while_the_replica_lags() {
    let Some(on) = app_on_replica().await else {
        return;
    };
    let app = &on.app;
    let owner = app.create_user_and_login().await;
    let leaving = app.create_user_and_login().await;
    let reader = app.create_user_and_login().await;
    let moderator = app.create_user_and_login().await;
    app.grant(&moderator.email, "moderator").await;
    let unpublished = id_of(&app.new_post(&owner, "To be unpublished", true).await);
    let deleted = id_of(&app.new_post(&owner, "To be deleted", true).await);
    let hidden = id_of(&app.new_post(&owner, "To be hidden", true).await);
    let left = id_of(&app.new_post(&leaving, "Its author leaves", true).await);
    for id in [unpublished, deleted, hidden, left] {
        let read = app.get(&format!("/posts/{id}"), Some(&reader.token)).await;
        assert_eq!(read.status(), StatusCode::OK, "post {id} is visible first");
    }

    on.pause_replay(true).await;
    let steps = [
        app.patch(
            &format!("/posts/{unpublished}"),
            Some(&owner.token),
            &json!({"published": false}),
        )
        .await,
        app.delete(&format!("/posts/{deleted}"), Some(&owner.token))
            .await,
        app.post(
            &format!("/posts/{hidden}/hide"),
            Some(&moderator.token),
            &json!({"reason": "Off topic"}),
        )
        .await,
        app.delete("/users/me", Some(&leaving.token)).await,
    ];
    let statuses: Vec<StatusCode> = steps.iter().map(|step| step.status()).collect();
    for id in [unpublished, deleted, hidden, left] {
        let read = app.get(&format!("/posts/{id}"), Some(&reader.token)).await;
        assert_eq!(
            read.status(),
            StatusCode::NOT_FOUND,
            "post {id} after {statuses:?}"
        );
    }
    let listed = titles_listed(app, &reader).await;
    on.pause_replay(false).await;
    assert!(
        statuses[0] == StatusCode::OK && statuses[1..].iter().all(|s| *s == StatusCode::NO_CONTENT),
        "{statuses:?}"
    );
    assert_eq!(listed, Vec::<String>::new(), "nothing of it is listed");
}

/// A session ended on the primary cannot read through the replica after its logout's 204,
/// however far behind the replica is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_session_reads_nothing_while_the_replica_lags() {
    let Some(on) = app_on_replica().await else {
        return;
    };
    let app = &on.app;
    let user = app.create_user_and_login().await;
    let post = id_of(
        &app.new_post(&user, "Read before and after the logout", true)
            .await,
    );
    let path = format!("/posts/{post}");
    assert_eq!(
        app.get(&path, Some(&user.token)).await.status(),
        StatusCode::OK
    );

    on.pause_replay(true).await;
    let logout = app.post("/logout", Some(&user.token), &json!({})).await;
    let by_id = app.get(&path, Some(&user.token)).await.status();
    let list = app.get("/posts", Some(&user.token)).await.status();
    let profile = app.get("/users/me", Some(&user.token)).await.status();
    on.pause_replay(false).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        (by_id, list, profile),
        (
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED
        )
    );
}

/// A replica whose replay is paused is passed over within a second: reads go on, fresh,
/// from the primary, and `GET /health` says it lags; resumed, it is used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_falls_behind_is_passed_over_within_a_second() {
    let Some(on) = app_on_replica().await else {
        return;
    };
    let app = &on.app;
    let user = app.create_user_and_login().await;

    on.pause_replay(true).await;
    let paused = Instant::now();
    // The primary moves on (the replica could not have this post).
    app.new_post(&user, "Written while the replica is paused", true)
        .await;
    let states = wait_for_replica_states(app, &["lagging"], FALLBACK).await;
    let noticed = paused.elapsed();
    let read = Instant::now();
    let listed = titles_listed(app, &user).await;
    let read = read.elapsed();
    on.pause_replay(false).await;
    assert_eq!(states, ["lagging"], "after {noticed:?}");
    assert_eq!(listed, ["Written while the replica is paused"]);
    assert!(
        read < FALLBACK,
        "a read took {read:?} with the replica passed over"
    );
    assert_eq!(
        wait_for_replica_states(app, &["in_use"], Duration::from_secs(5)).await,
        ["in_use"],
        "resumed, it is used again"
    );
}

/// A replica whose server stops is passed over within a second (`GET /health` says it is
/// unreachable, and stays 200); started again, it is used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_stops_is_passed_over_within_a_second() {
    let Some(on) = app_on_replica().await else {
        return;
    };
    let app = &on.app;
    let user = app.create_user_and_login().await;
    app.new_post(&user, "Read while the replica is down", true)
        .await;

    on.replica.stop();
    let stopped = Instant::now();
    let listed = titles_listed(app, &user).await;
    let first_read = stopped.elapsed();
    let states = wait_for_replica_states(app, &["unreachable"], FALLBACK).await;
    let health = app.get("/health", None).await.status();
    on.replica.start();
    assert_eq!(listed, ["Read while the replica is down"]);
    assert!(
        first_read < FALLBACK,
        "the first read took {first_read:?} with the replica down"
    );
    assert_eq!(states, ["unreachable"]);
    assert_eq!(
        health,
        StatusCode::OK,
        "a replica down is no reason to stop"
    );
    assert_eq!(
        wait_for_replica_states(app, &["in_use"], Duration::from_secs(10)).await,
        ["in_use"],
        "started again, it is used again"
    );
}

/// Behind a transaction-mode pooler with no direct connection to `LISTEN` on, live events
/// from another instance still arrive, by the outbox's poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_listen_events_from_another_instance_arrive_by_the_poll() {
    if without_pooler() {
        return;
    }
    let writer = TestApp::spawn(Backend::Postgres).await;
    let reader = writer
        .spawn_sibling_with(|settings| settings.database_listen_url = None)
        .await;
    let author = writer.create_user_and_login().await;
    let follower = reader.create_user_and_login().await;
    let mut stream = SseStream::open(&reader, "/events", Some(&follower.token), None).await;
    let post = writer.new_post(&author, "Carried by the poll", true).await;
    match stream.next(Duration::from_secs(3)).await {
        SseRead::Event(event) => {
            assert_eq!(event.event, "post.created");
            assert_eq!(event.payload()["id"], post["id"]);
        }
        other => panic!("the event did not arrive: {other:?}"),
    }
}

/// The command line's database work goes through the pooler too: `api migrate` (every
/// step rolled back and applied again, in transactions of their own) and `api admin`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_and_the_admin_command_work_through_the_pooler() {
    if without_pooler() {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let user = app.create_user_and_login().await;
    let settings = api::Settings {
        database_url: app.service_database_url.clone(),
        database_pool_mode: api::PoolMode::Transaction,
        database_max_connections: 1,
        ..api::Settings::default()
    };
    let applied = |lines: &[String]| lines.iter().filter(|l| l.starts_with("Applied")).count();
    let before = api::migrate(&settings, api::MigrateAction::Status)
        .await
        .expect("api migrate status through the pooler");
    let down = api::migrate(&settings, api::MigrateAction::Down)
        .await
        .expect("api migrate down through the pooler");
    let up = api::migrate(&settings, api::MigrateAction::Up)
        .await
        .expect("api migrate up through the pooler");
    assert_eq!(
        (applied(&down), applied(&up)),
        (applied(&before) - 1, applied(&before)),
        "{before:?} {down:?} {up:?}"
    );
    let granted = api::admin(
        &settings,
        api::AdminAction::Grant {
            email: user.email.clone(),
            role: "moderator".into(),
        },
    )
    .await
    .expect("api admin grant through the pooler");
    assert!(granted.ends_with("member → moderator"), "{granted}");
    let me = app.get("/users/me", Some(&user.token)).await;
    let me: serde_json::Value = me.json().await.expect("an account");
    assert_eq!(me["role"], "moderator");
}

/// Many page reads at once through the pooler, of many shapes, from two instances (so that
/// a shape is prepared on some of the pooler's server connections and not on others, and a
/// client's messages land on either): every one is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_of_many_shapes_through_the_pooler_all_succeed() {
    if without_pooler() {
        return;
    }
    let configure = |settings: &mut api::Settings| {
        settings.database_max_connections = 8;
        // The primary's pooled reads are the subject.
        settings.database_replica_url.clear();
    };
    let first = TestApp::spawn_with(Backend::Postgres, configure).await;
    let second = first.spawn_sibling_with(configure).await;
    let user = first.create_user_and_login().await;
    for n in 0..12 {
        first.new_post(&user, &format!("Post {n}"), true).await;
    }
    for round in 0..3 {
        let reads = (0..120).map(|k| {
            let instance = if k % 2 == 0 { &first } else { &second };
            let client = api_tests::ApiClient::new(instance.address.clone(), FALLBACK * 30);
            let token = user.token.clone();
            // Limits 1 to 40 and two filters: 80 statements' texts.
            let path = match k % 3 {
                0 => format!("/posts?limit={}&search=Post", 1 + k % 40),
                _ => format!("/posts?limit={}", 1 + (k + round) % 40),
            };
            async move { client.get(&path, Some(&token)).await.status() }
        });
        let statuses = api_tests::all_at_once(reads).await;
        let failed: Vec<_> = statuses
            .iter()
            .filter(|status| **status != StatusCode::OK)
            .collect();
        assert!(failed.is_empty(), "round {round}: {failed:?}");
    }
}

/// Through the pooler with no statement timeout (`0`), a page read waits as long as it must:
/// the bound on waiting for the pooler is not taken for one on the read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_statement_timeout_a_pooled_read_waits_past_the_acquire_timeout() {
    if without_pooler() {
        return;
    }
    let app = TestApp::spawn_with(Backend::Postgres, |settings| {
        settings.database_statement_timeout_seconds = 0;
        settings.database_acquire_timeout_seconds = 1;
        settings.database_replica_url.clear();
    })
    .await;
    let user = app.create_user_and_login().await;
    let own = api_tests::open_database(&app.database_url).await;
    let lock = sea_orm::TransactionTrait::begin(&own)
        .await
        .expect("a transaction");
    sea_orm::ConnectionTrait::execute_unprepared(
        &lock,
        "LOCK TABLE posts IN ACCESS EXCLUSIVE MODE",
    )
    .await
    .expect("the lock is taken");
    let read = {
        let request = app.request(api_tests::Method::GET, "/posts", Some(&user.token));
        tokio::spawn(async move { request.send().await.expect("an answer").status() })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    lock.commit().await.expect("the lock is released");
    assert_eq!(read.await.expect("the read ran"), StatusCode::OK);
}

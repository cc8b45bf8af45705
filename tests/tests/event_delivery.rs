//! Live events under stress (`GET /events`): nothing lost, repeated or reordered across a
//! reconnection in a write storm; an event exactly when its write committed, whoever wrote
//! it; a reset past the replay window, and an outbox trimmed from its oldest end only; every
//! instance hearing of every write on PostgreSQL, its listener killed included; and
//! subscribers that stop reading, ended without holding up the others.
//!
//! The truth these tests compare with is the `events` table, read directly: what a subscriber
//! receives must be exactly what it may see of it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use api_tests::{
    ApiClient, Backend, Method, SseEvent, SseRead, SseStream, StatusCode, TestApp, TestUser, Value,
    expect_json, id_of, json, on_both_backends, query_i64, query_i64s, query_strings,
    send_all_at_once, wait_for_count,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long an event may take to arrive when the instance serving it wrote it, or read the
/// outbox for it (once a second at the latest).
const ARRIVAL: Duration = Duration::from_secs(2);

/// How long to wait to be sure that nothing more comes.
const QUIET: Duration = Duration::from_millis(700);

/// How far behind a stream's client may fall, in bytes of events
/// (`EVENT_STREAM_MAX_LAG_BYTES`).
const MAX_LAG_BYTES: usize = 1024 * 1024;

async fn follow(app: &ApiClient, user: &TestUser, after: Option<i64>) -> SseStream {
    let after = after.map(|id| id.to_string());
    SseStream::open(app, "/events", Some(&user.token), after.as_deref()).await
}

/// The events of `stream` until one with an id of at least `id`, which must come within
/// `wait`.
async fn read_through(stream: &mut SseStream, id: i64, wait: Duration) -> Vec<SseEvent> {
    let deadline = Instant::now() + wait;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match stream.next(left).await {
            SseRead::Event(event) => {
                let number = event.number();
                events.push(event);
                if number >= id {
                    return events;
                }
            }
            other => panic!(
                "waiting for event {id}: {other:?} after {} events, the last {:?}",
                events.len(),
                events.last().map(|e| &e.id)
            ),
        }
    }
}

/// The events of `stream` until the creation of a post titled `title`, which must come
/// within `wait`.
async fn read_until_created(stream: &mut SseStream, title: &str, wait: Duration) -> Vec<SseEvent> {
    let deadline = Instant::now() + wait;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match stream.next(left).await {
            SseRead::Event(event) => {
                let last = event.event == "post.created" && event.payload()["title"] == title;
                events.push(event);
                if last {
                    return events;
                }
            }
            other => panic!(
                "waiting for {title:?}: {other:?} after {} events, the last {:?}",
                events.len(),
                events.last().map(|e| &e.id)
            ),
        }
    }
}

/// Every event of `stream` for `span`; the stream must not end meanwhile.
async fn read_for(stream: &mut SseStream, span: Duration) -> Vec<SseEvent> {
    let deadline = Instant::now() + span;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match stream.next(left).await {
            SseRead::Event(event) => events.push(event),
            SseRead::TimedOut => return events,
            SseRead::Ended => panic!("the stream ended after {} events", events.len()),
        }
    }
}

fn numbers(events: &[SseEvent]) -> Vec<i64> {
    events.iter().map(SseEvent::number).collect()
}

fn assert_ids_grow(ids: &[i64], context: &str) {
    if let Some(pair) = ids.windows(2).find(|pair| pair[0] >= pair[1]) {
        panic!(
            "{context}: ids must grow, but {} comes after {} (of {} events)",
            pair[1],
            pair[0],
            ids.len()
        );
    }
}

/// Asserts two subscribers received the same events, naming the first difference rather than
/// printing thousands of them.
fn assert_same_events(got: &[SseEvent], expected: &[SseEvent], context: &str) {
    if let Some(at) = (0..got.len().min(expected.len())).find(|&at| got[at] != expected[at]) {
        panic!(
            "{context}: event {at} differs: {:?} instead of {:?}",
            got[at], expected[at]
        );
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "{context}: as many events (the last ones: {:?} and {:?})",
        got.last().map(|e| &e.id),
        expected.last().map(|e| &e.id)
    );
}

/// Asserts `got` equals `expected`, naming the ids missing, repeated or out of place rather
/// than printing thousands of them.
fn assert_same_ids(got: &[i64], expected: &[i64], context: &str) {
    if got == expected {
        return;
    }
    let (got_set, expected_set): (BTreeSet<i64>, BTreeSet<i64>) = (
        got.iter().copied().collect(),
        expected.iter().copied().collect(),
    );
    let missing: Vec<i64> = expected_set
        .difference(&got_set)
        .take(10)
        .copied()
        .collect();
    let unexpected: Vec<i64> = got_set
        .difference(&expected_set)
        .take(10)
        .copied()
        .collect();
    let at = (0..got.len().min(expected.len()))
        .find(|&at| got[at] != expected[at])
        .unwrap_or(got.len().min(expected.len()));
    panic!(
        "{context}: {} ids instead of {}; missing {missing:?}, unexpected {unexpected:?}; \
         the first difference at {at}: {:?} instead of {:?}",
        got.len(),
        expected.len(),
        got.get(at),
        expected.get(at)
    );
}

/// The ids of the events in `from..=through` that someone who owns no post may see: those of
/// posts published before or after the write.
async fn visible_to_others(db: &DatabaseConnection, from: i64, through: i64) -> Vec<i64> {
    query_i64s(
        db,
        &format!(
            "SELECT id FROM events WHERE id >= {from} AND id <= {through} \
             AND (public_before OR public_after) ORDER BY id"
        ),
    )
    .await
}

async fn newest_event(db: &DatabaseConnection) -> i64 {
    query_i64(db, "SELECT COALESCE(MAX(id), 0) FROM events").await
}

/// `INSERT` of a copy of post `id` titled `title`, as another process writing to the
/// database would (the copy keeps the original's owner, timestamps and content).
fn copy_of_post(id: i64, title: &str) -> String {
    format!(
        "INSERT INTO posts (title, content, published, created_at, updated_at, owner_id) \
         SELECT '{title}', content, published, created_at, updated_at, owner_id \
         FROM posts WHERE id = {id}"
    )
}

/// One statement writing `count` copies of post `id`: as many events at once.
fn copies_of_post(id: i64, count: usize) -> String {
    format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) \
         INSERT INTO posts (title, content, published, created_at, updated_at, owner_id) \
         SELECT 'A copy', p.content, p.published, p.created_at, p.updated_at, p.owner_id \
         FROM n, posts p WHERE p.id = {id}"
    )
}

// Nothing lost, in order.

/// How long the storm runs with both subscribers, then without the one that disconnects,
/// then with both again.
const BEFORE_THE_GAP: Duration = Duration::from_secs(2);
const THE_GAP: Duration = Duration::from_secs(5);
const AFTER_THE_GAP: Duration = Duration::from_secs(2);

/// The title of the post written once the storm is over: both subscribers read until it.
const THE_END: &str = "The storm is over";

/// Writes until `stop`: posts created (one in four a draft), edited, published or made
/// drafts, voted on and unvoted by the others, and deleted. Every request must succeed.
/// Returns how many requests it sent.
async fn write_until(
    app: Arc<TestApp>,
    writer: TestUser,
    voters: Vec<TestUser>,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut requests = 0;
    let mut round = 0;
    let expect = |response: api_tests::Response, status: StatusCode, what: &'static str| async move {
        let got = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(got, status, "{what} in the storm: {body}");
    };
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let mut published = round % 4 != 0;
        let title = format!("Storm {} {round}", writer.id);
        let post = app.new_post(&writer, &title, published).await;
        let path = format!("/posts/{}", id_of(&post));
        let edit = json!({ "title": format!("{title} edited") });
        let edited = app.patch(&path, Some(&writer.token), &edit).await;
        expect(edited, StatusCode::OK, "an edit").await;
        requests += 2;
        let voter = &voters[round % voters.len()];
        if published {
            let voted = app.vote(&voter.token, id_of(&post), 1).await;
            expect(voted, StatusCode::CREATED, "a vote").await;
            requests += 1;
        }
        if round % 3 == 0 {
            let toggled = json!({ "published": !published });
            let toggled = app.patch(&path, Some(&writer.token), &toggled).await;
            expect(
                toggled,
                StatusCode::OK,
                "a publication or a return to draft",
            )
            .await;
            requests += 1;
            published = !published;
        }
        if published && round % 4 == 1 {
            let unvoted = app.vote(&voter.token, id_of(&post), 0).await;
            expect(unvoted, StatusCode::OK, "a vote taken back").await;
            requests += 1;
        }
        if round % 2 == 0 {
            let deleted = app.delete(&path, Some(&writer.token)).await;
            expect(deleted, StatusCode::NO_CONTENT, "a deletion").await;
            requests += 1;
        }
    }
    requests
}

async fn a_subscriber_back_after_five_seconds_of_a_write_storm_gets_every_missed_event_once_in_order(
    app: TestApp,
) {
    let app = Arc::new(app);
    let watcher = app.create_user_and_login().await;
    let mut writers = Vec::new();
    for _ in 0..4 {
        writers.push(app.create_user_and_login().await);
    }
    let mut steady = follow(&app, &watcher, None).await;
    let mut resuming = follow(&app, &watcher, None).await;
    let start = app.new_post(&writers[0], "The storm begins", true).await;
    let first = steady.expect_event(ARRIVAL, "the first post").await;
    assert_eq!(first.payload(), start);
    let start_id = first.number();
    let before_the_gap = vec![first.clone()];
    assert_eq!(
        resuming.expect_event(ARRIVAL, "the first post").await,
        first
    );

    let stop = Arc::new(AtomicBool::new(false));
    let storm: Vec<_> = writers
        .iter()
        .map(|writer| {
            let voters = writers.iter().filter(|v| v.id != writer.id).cloned();
            tokio::spawn(write_until(
                Arc::clone(&app),
                writer.clone(),
                voters.collect(),
                Arc::clone(&stop),
            ))
        })
        .collect();
    let steady = tokio::spawn(async move {
        let mut events = vec![first];
        events.extend(read_until_created(&mut steady, THE_END, Duration::from_secs(40)).await);
        events
    });

    let mut before = before_the_gap;
    before.extend(read_for(&mut resuming, BEFORE_THE_GAP).await);
    let last_seen = before.last().expect("an event").number();
    drop(resuming);
    tokio::time::sleep(THE_GAP).await;
    let db = app.database().await;
    let gap_end = newest_event(&db).await;
    let mut resumed = follow(&app, &watcher, Some(last_seen)).await;
    let resumed = tokio::spawn(async move {
        read_until_created(&mut resumed, THE_END, Duration::from_secs(40)).await
    });
    tokio::time::sleep(AFTER_THE_GAP).await;
    stop.store(true, Ordering::SeqCst);
    let mut requests = 0;
    for writer in storm {
        requests += writer.await.expect("a writer of the storm failed");
    }
    let end = app.new_post(&writers[0], THE_END, true).await;

    let steady = steady.await.expect("the steady subscriber read to the end");
    let after = resumed
        .await
        .expect("the resumed subscriber read to the end");
    let end_id = steady.last().expect("the last event").number();
    assert_eq!(steady.last().unwrap().payload(), end);
    let steady_ids = numbers(&steady);
    assert_ids_grow(&steady_ids, "the steady subscriber");
    assert_same_ids(
        &steady_ids,
        &visible_to_others(&db, start_id, end_id).await,
        "the steady subscriber, against the outbox",
    );
    assert_ne!(after[0].event, "reset", "the gap is well within the window");
    let whole: Vec<SseEvent> = before.iter().chain(&after).cloned().collect();
    assert_same_events(&whole, &steady, "the subscriber that resumed");
    assert_ids_grow(&numbers(&whole), "the subscriber that resumed");

    let missed: Vec<&SseEvent> = after.iter().filter(|e| e.number() <= gap_end).collect();
    let mut kinds: Vec<&str> = missed.iter().map(|e| e.event.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    eprintln!(
        "{requests} requests in the storm; {} events seen, {} of them missed in the gap",
        steady.len(),
        missed.len()
    );
    assert!(
        missed.len() >= 100,
        "the storm went on during the gap: {} missed",
        missed.len()
    );
    assert_eq!(
        kinds,
        ["post.created", "post.deleted", "post.updated", "vote"],
        "every kind of event was missed and replayed"
    );
}

// An event exactly when its write committed.

/// Waits until the write of `task` waits behind a transaction held open by the test (on
/// PostgreSQL, seen in `pg_stat_activity`), or is done (then it did not wait, and the test
/// will say what came of that).
async fn wait_until_behind<T>(app: &TestApp, task: &tokio::task::JoinHandle<T>) {
    match app.backend {
        Backend::Postgres => {
            let watch = app.database().await;
            let waiting = "SELECT COUNT(*) FROM pg_stat_activity \
                           WHERE datname = current_database() AND wait_event_type = 'Lock'";
            let deadline = Instant::now() + Duration::from_secs(5);
            while !task.is_finished()
                && query_i64(&watch, waiting).await == 0
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // SQLite's writer waits for its busy timeout: nothing shows it waiting.
        Backend::Sqlite => tokio::time::sleep(Duration::from_millis(500)).await,
    }
}

/// A post the service writes while the test holds a transaction open: its task, once the write
/// waits behind the transaction (or is done).
async fn service_write_during(
    app: &TestApp,
    owner: &TestUser,
    title: &'static str,
) -> tokio::task::JoinHandle<Value> {
    let (client, owner) = (ApiClient::clone(app), owner.clone());
    let task = tokio::spawn(async move { client.new_post(&owner, title, true).await });
    wait_until_behind(app, &task).await;
    task
}

async fn an_event_exists_exactly_when_its_write_committed_whoever_wrote_it(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let mut stream = follow(&app, &owner, None).await;
    let template = app.new_post(&owner, "A template", true).await;
    let template_id = id_of(&template);
    stream.expect_event(ARRIVAL, "the template").await;
    let db = app.database().await;

    // Another process writes, and nothing wakes this instance: it reads the outbox anyway.
    db.execute_unprepared(&copy_of_post(template_id, "Written by another process"))
        .await
        .expect("a post written directly");
    let seen = stream
        .expect_event(ARRIVAL, "a post written by another process")
        .await;
    assert_eq!(seen.event, "post.created");
    assert_eq!(seen.payload()["title"], "Written by another process");

    // A write rolled back, with a write of the service waiting behind it.
    let transaction = db.begin().await.expect("a transaction");
    transaction
        .execute_unprepared(&copy_of_post(template_id, "Rolled back"))
        .await
        .expect("a post written in a transaction");
    let waiting = service_write_during(&app, &owner, "Written after a rollback").await;
    transaction.rollback().await.expect("the rollback");
    waiting.await.expect("the write after the rollback");

    // A write committed by another process, with a write of the service waiting behind it:
    // its event comes first, as it committed first.
    let transaction = db.begin().await.expect("a transaction");
    transaction
        .execute_unprepared(&copy_of_post(template_id, "Committed by another process"))
        .await
        .expect("a post written in a transaction");
    let waiting = service_write_during(&app, &owner, "Written after a commit").await;
    transaction.commit().await.expect("the commit");
    let last = waiting.await.expect("the write after the commit");

    let last_id = query_i64(
        &db,
        &format!(
            "SELECT MAX(id) FROM events WHERE post_id = {}",
            id_of(&last)
        ),
    )
    .await;
    let mut events = read_through(&mut stream, last_id, ARRIVAL).await;
    events.extend(stream.drain(QUIET).await);
    let titles: Vec<String> = events
        .iter()
        .map(|e| format!("{} {}", e.event, e.payload()["title"]))
        .collect();
    assert_eq!(
        titles,
        [
            "post.created \"Written after a rollback\"",
            "post.created \"Committed by another process\"",
            "post.created \"Written after a commit\"",
        ],
        "nothing of the write rolled back; the others in commit order"
    );
    assert_ids_grow(&numbers(&events), "events in commit order");
    let recorded = "SELECT COUNT(*) FROM events WHERE title = 'Rolled back'";
    assert_eq!(query_i64(&db, recorded).await, 0, "the outbox has no trace");
}

// The replay window.

/// Makes every event of the outbox an hour old.
const AGE_EVERY_EVENT: &str = "UPDATE events SET created_at = created_at - 3600";

async fn a_subscriber_resuming_past_the_replay_window_is_told_to_reset_and_the_outbox_is_trimmed(
    app: TestApp,
) {
    let user = app.create_user_and_login().await;
    let mut stream = follow(&app, &user, None).await;
    let mut old = Vec::new();
    for title in ["First", "Second", "Third"] {
        app.new_post(&user, title, true).await;
        old.push(stream.expect_event(ARRIVAL, title).await.number());
    }
    let db = app.database().await;
    db.execute_unprepared(AGE_EVERY_EVENT)
        .await
        .expect("the events made old");
    app.new_post(&user, "Fresh", true).await;
    let fresh = stream.expect_event(ARRIVAL, "a fresh post").await.number();

    // An instance trims the outbox as it starts (and every minute after).
    let _trimming = app.spawn_sibling().await;
    let outbox = "SELECT COUNT(*) FROM events";
    assert_eq!(wait_for_count(&db, outbox, 1).await, 1, "the old events go");
    assert_eq!(query_i64s(&db, "SELECT id FROM events").await, [fresh]);

    let mut resumed = follow(&app, &user, Some(old[0])).await;
    let reset = resumed
        .expect_event(ARRIVAL, "resuming past the window")
        .await;
    assert_eq!(reset.event, "reset", "{reset:?}");
    assert_eq!(
        reset.number(),
        fresh,
        "a reset names where the outbox stands"
    );
    let live = app.new_post(&user, "Live after the reset", true).await;
    let next = resumed.expect_event(ARRIVAL, "live after the reset").await;
    assert_eq!(next.payload(), live, "then it goes on live");
    let live = next.number();

    // Resuming from the event just before the oldest kept misses nothing: no reset.
    let mut replayed = follow(&app, &user, Some(old[2])).await;
    let events = read_through(&mut replayed, live, ARRIVAL).await;
    assert_eq!(numbers(&events), [fresh, live]);

    // Past the window, the newest event stays, so that whoever saw it resumes without a reset.
    db.execute_unprepared(AGE_EVERY_EVENT)
        .await
        .expect("the events made old");
    let _trimming_again = app.spawn_sibling().await;
    assert_eq!(
        wait_for_count(&db, outbox, 1).await,
        1,
        "all but the newest go"
    );
    assert_eq!(query_i64s(&db, "SELECT id FROM events").await, [live]);
    let mut up_to_date = follow(&app, &user, Some(live)).await;
    let post = app
        .new_post(&user, "After everything was trimmed", true)
        .await;
    let next = up_to_date.expect_event(ARRIVAL, "after the trim").await;
    assert_eq!(
        next.payload(),
        post,
        "no reset for who saw the newest event"
    );
    let mut behind = follow(&app, &user, Some(old[2])).await;
    let first = behind.expect_event(ARRIVAL, "further back").await;
    assert_eq!(first.event, "reset", "{first:?}");
}

async fn the_outbox_is_trimmed_from_its_oldest_end_only(app: TestApp) {
    let user = app.create_user_and_login().await;
    let mut stream = follow(&app, &user, None).await;
    let mut ids = Vec::new();
    for title in ["First", "Second", "Third", "Fourth"] {
        app.new_post(&user, title, true).await;
        ids.push(stream.expect_event(ARRIVAL, title).await.number());
    }
    // PostgreSQL stamps an event with the start of its transaction: one that began long
    // before it wrote has an old event after newer ones. Here the first and the third are old.
    let db = app.database().await;
    db.execute_unprepared(&format!(
        "UPDATE events SET created_at = created_at - 3600 WHERE id IN ({}, {})",
        ids[0], ids[2]
    ))
    .await
    .expect("two events made old");
    let _trimming = app.spawn_sibling().await;
    let first_kept = format!("SELECT COUNT(*) FROM events WHERE id = {}", ids[0]);
    assert_eq!(wait_for_count(&db, &first_kept, 0).await, 0, "the trim ran");

    // Whoever saw the first event gets every later one, or a reset: never a silent gap.
    let mut resumed = follow(&app, &user, Some(ids[0])).await;
    let first = resumed.expect_event(ARRIVAL, "resuming").await;
    if first.event != "reset" {
        let mut events = vec![first];
        events.extend(resumed.drain(QUIET).await);
        assert_eq!(numbers(&events), ids[1..], "every event after the first");
    }
    assert_eq!(
        query_i64s(&db, "SELECT id FROM events ORDER BY id").await,
        ids[1..],
        "an event newer than one kept stays"
    );
}

// A subscriber that stops reading.

/// A subscription whose client stopped reading once it had the response's head: a small
/// receive buffer, soon full.
struct Stalled {
    stream: tokio::net::TcpStream,
    /// What was read past the head.
    read: Vec<u8>,
}

async fn stalled_subscriber(app: &ApiClient, token: &str) -> Stalled {
    let address: std::net::SocketAddr = app.socket_address().parse().expect("an address");
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("a small receive buffer");
    let mut stream = socket.connect(address).await.expect("a connection");
    let request = format!(
        "GET /events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request sent");
    let mut read = Vec::new();
    let head_end = loop {
        if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let got = tokio::time::timeout(ARRIVAL, stream.read_buf(&mut read))
            .await
            .expect("the head comes")
            .expect("the head is read");
        assert!(got > 0, "the connection closed before the head");
    };
    let head = String::from_utf8_lossy(&read[..head_end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    Stalled {
        stream,
        read: read.split_off(head_end),
    }
}

/// What reading a stalled subscription again finds.
struct Rest {
    /// The ids of the whole events it was sent.
    ids: Vec<i64>,
    /// Whether its response ended (its last chunk came); if not, the connection closed.
    ended: bool,
}

/// Reads the rest of a stalled subscription: its chunks until the last one or until the
/// connection closes, which must happen within `wait`.
async fn read_rest(stalled: Stalled, wait: Duration) -> Rest {
    let Stalled { mut stream, read } = stalled;
    let (mut raw, mut body, mut at) = (read, Vec::new(), 0);
    let deadline = Instant::now() + wait;
    let ended = loop {
        if let Ok(httparse::Status::Complete((start, size))) =
            httparse::parse_chunk_size(&raw[at..])
        {
            let size = usize::try_from(size).expect("a chunk size");
            if size == 0 {
                break true;
            }
            if raw.len() >= at + start + size + 2 {
                body.extend_from_slice(&raw[at + start..at + start + size]);
                at += start + size + 2;
                continue;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read_buf(&mut raw)).await {
            Err(_) => panic!(
                "after {} bytes of events, the server neither ended the stream nor closed the \
                 connection",
                body.len()
            ),
            Ok(Ok(0) | Err(_)) => break false,
            Ok(Ok(_)) => {}
        }
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let whole = match text.rfind("\n\n") {
        Some(end) => &text[..end],
        None => "",
    };
    let ids = whole
        .lines()
        .filter_map(|line| line.strip_prefix("id:"))
        .map(|id| id.trim().parse().expect("a numeric id"))
        .collect();
    Rest { ids, ended }
}

/// Asserts that a stalled subscriber was sent a beginning of `truth`, and not all of it.
fn assert_a_beginning(got: &[i64], truth: &[i64], context: &str) {
    assert!(
        got.len() < truth.len(),
        "{context}: it was sent all {} events",
        truth.len()
    );
    assert_same_ids(got, &truth[..got.len()], context);
}

/// A subscriber that reads every event, and one that stopped reading, of a new user who has
/// written a post (`body`) for the test to copy.
struct Stall {
    owner: TestUser,
    steady: SseStream,
    template: Value,
    /// The id of the template's event.
    start: i64,
    stalled: Stalled,
}

async fn stall(app: &TestApp, body: &Value) -> Stall {
    let owner = app.create_user_and_login().await;
    let mut steady = follow(app, &owner, None).await;
    let template = expect_json(
        app.create_post(&owner.token, body).await,
        StatusCode::CREATED,
        "the post to copy",
    )
    .await;
    let start = steady
        .expect_event(ARRIVAL, "the post to copy")
        .await
        .number();
    let stalled = stalled_subscriber(app, &owner.token).await;
    Stall {
        owner,
        steady,
        template,
        start,
        stalled,
    }
}

async fn a_subscriber_that_stops_reading_is_ended_once_it_falls_a_mebibyte_behind(app: TestApp) {
    const ROUNDS: usize = 12;
    const PER_ROUND: usize = 1000;
    let body = json!({ "title": "A template", "content": "Some words. ".repeat(20) });
    let Stall {
        owner,
        mut steady,
        template,
        start,
        stalled,
    } = stall(&app, &body).await;

    // Each round at once, in one statement; the steady subscriber takes each in full, and so
    // stays within the feed's buffer, while the stalled one falls ever further behind.
    let db = app.database().await;
    let mut event_bytes = 0;
    for round in 0..ROUNDS {
        db.execute_unprepared(&copies_of_post(id_of(&template), PER_ROUND))
            .await
            .expect("a round of posts written");
        let newest = newest_event(&db).await;
        let events = read_through(&mut steady, newest, Duration::from_secs(10)).await;
        assert_eq!(events.len(), PER_ROUND, "round {round}: every event");
        event_bytes = events[0].data.len();
    }
    let truth = visible_to_others(&db, start + 1, newest_event(&db).await).await;
    assert_eq!(truth.len(), ROUNDS * PER_ROUND);

    let rest = read_rest(stalled, Duration::from_secs(10)).await;
    eprintln!(
        "the stalled subscriber was sent {} of {} events",
        rest.ids.len(),
        truth.len()
    );
    assert!(rest.ended, "its stream ended (it was too far behind)");
    assert_a_beginning(&rest.ids, &truth, "the stalled subscriber");
    let unsent_bytes = (truth.len() - rest.ids.len()) * event_bytes;
    assert!(
        unsent_bytes > MAX_LAG_BYTES,
        "it was ended only once more than {MAX_LAG_BYTES} bytes behind, not {unsent_bytes}"
    );

    // It resumes where it was.
    let last = rest.ids.last().copied().unwrap_or(start);
    let mut resumed = follow(&app, &owner, Some(last)).await;
    let next = resumed.expect_event(ARRIVAL, "resuming").await;
    assert_eq!(next.number(), truth[rest.ids.len()]);
}

async fn a_stream_whose_client_stopped_reading_is_closed_after_the_idle_timeout(app: TestApp) {
    const IDLE_TIMEOUT: u64 = 3;
    let app = TestApp::spawn_with(app.backend, |settings| {
        settings.http_idle_timeout_seconds = IDLE_TIMEOUT;
    })
    .await;
    let body = json!({ "title": "A long post", "content": "x".repeat(20_000) });
    let Stall {
        owner,
        mut steady,
        template,
        start,
        stalled,
    } = stall(&app, &body).await;

    // Far more than the stalled connection's buffers hold (the kernel lets a socket's grow
    // to 4 MiB here): its bytes stop moving. The steady subscriber reads as they come, as a
    // client must to stay within `EVENT_STREAM_MAX_LAG_BYTES` of a burst.
    const COPIES: usize = 400;
    let db = app.database().await;
    let newest = newest_event(&db).await + i64::try_from(COPIES).unwrap();
    let reading = tokio::spawn(async move {
        read_through(&mut steady, newest, Duration::from_secs(20)).await;
        steady
    });
    db.execute_unprepared(&copies_of_post(id_of(&template), COPIES))
        .await
        .expect("long posts written");
    assert_eq!(newest_event(&db).await, newest, "one event a copy");
    let mut steady = reading.await.expect("the steady subscriber read them all");

    // The steady subscriber goes on receiving, well past the idle timeout.
    let busy_until = Instant::now() + Duration::from_secs(IDLE_TIMEOUT + 2);
    let mut posts = 0;
    while Instant::now() < busy_until {
        posts += 1;
        let post = app.new_post(&owner, &format!("Short {posts}"), true).await;
        let seen = steady.expect_event(ARRIVAL, "a short post").await;
        assert_eq!(seen.payload(), post);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let truth = visible_to_others(&db, start + 1, newest_event(&db).await).await;

    let rest = read_rest(stalled, Duration::from_secs(10)).await;
    eprintln!(
        "the stalled connection was sent {} of {} events",
        rest.ids.len(),
        truth.len()
    );
    assert!(
        !rest.ended,
        "the connection was closed, not its response ended"
    );
    assert_a_beginning(&rest.ids, &truth, "the stalled connection");
}

// Bulk writes.

/// How many posts the bulk writes touch in one transaction (API.md: tested with 100,000).
const BULK_POSTS: usize = 100_000;

/// An account's posts and the votes on them, each written in one statement (as a bulk load
/// writes) with every event recorded, then the account deleted: no lock is taken per row
/// (PostgreSQL's lock table holds about 6,400), so each goes through, and every write is in
/// the outbox.
async fn an_account_with_a_hundred_thousand_voted_posts_is_deleted_with_every_event_recorded(
    app: TestApp,
) {
    let owner = app.create_user_and_login().await;
    let voter = app.create_user_and_login().await;
    let first = app.new_post(&owner, "The first of many", true).await;
    let db = app.database().await;
    db.execute_unprepared(&copies_of_post(id_of(&first), BULK_POSTS - 1))
        .await
        .expect("the posts are written in one statement");
    db.execute_unprepared(&format!(
        "INSERT INTO votes (user_id, post_id) SELECT {}, id FROM posts WHERE owner_id = {}",
        voter.id, owner.id
    ))
    .await
    .expect("a vote on every post is written in one statement");
    let recorded = |kind: &str| {
        format!(
            "SELECT COUNT(*) FROM events WHERE kind = '{kind}' AND owner_id = {}",
            owner.id
        )
    };
    let bulk = i64::try_from(BULK_POSTS).expect("a count");
    assert_eq!(query_i64(&db, &recorded("post.created")).await, bulk);
    assert_eq!(query_i64(&db, &recorded("vote")).await, bulk);

    let response = app.delete("/users/me", Some(&owner.token)).await;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::NO_CONTENT, "DELETE /users/me: {body}");
    let left = format!(
        "SELECT (SELECT COUNT(*) FROM users WHERE id = {owner}) \
         + (SELECT COUNT(*) FROM posts WHERE owner_id = {owner}) + (SELECT COUNT(*) FROM votes)",
        owner = owner.id
    );
    assert_eq!(
        query_i64(&db, &left).await,
        0,
        "the account, its posts and their votes"
    );
    assert_eq!(query_i64(&db, &recorded("post.deleted")).await, bulk);
}

/// Votes on one post all at once, with its owner editing it meanwhile: each vote is recorded
/// with the count it made, and each edit with the count before it, in the order they
/// committed (on PostgreSQL the writers of a post wait for each other on its row, and two
/// votes never deadlock on it).
async fn concurrent_votes_on_one_post_are_recorded_with_exact_counts_in_commit_order(app: TestApp) {
    const VOTERS: i64 = 40;
    let owner = app.create_user_and_login().await;
    let id = id_of(&app.new_post(&owner, "Vote on me", true).await);
    let mut voters = Vec::new();
    for _ in 0..VOTERS {
        voters.push(app.create_user_and_login().await);
    }
    let path = format!("/posts/{id}");
    let mut requests: Vec<_> = voters
        .iter()
        .map(|voter| {
            app.request(Method::POST, "/vote", Some(&voter.token))
                .json(&json!({ "post_id": id, "dir": 1 }))
        })
        .collect();
    requests.extend((0..8).map(|n| {
        app.request(Method::PATCH, &path, Some(&owner.token))
            .json(&json!({ "content": format!("Edit {n}") }))
    }));
    for (status, body) in send_all_at_once(requests).await {
        assert!(status.is_success(), "{status}: {body}");
    }

    let db = app.database().await;
    let recorded = query_strings(
        &db,
        &format!(
            "SELECT kind || ' ' || CAST(votes AS TEXT) FROM events \
             WHERE post_id = {id} AND kind IN ('vote', 'post.updated') ORDER BY id"
        ),
    )
    .await;
    let mut votes = 0;
    for entry in &recorded {
        let (kind, count) = entry.split_once(' ').expect("a kind and a count");
        if kind == "vote" {
            votes += 1;
        }
        assert_eq!(count, votes.to_string(), "in commit order: {recorded:?}");
    }
    assert_eq!(votes, VOTERS, "{recorded:?}");
}

on_both_backends!(
    a_subscriber_back_after_five_seconds_of_a_write_storm_gets_every_missed_event_once_in_order,
    an_event_exists_exactly_when_its_write_committed_whoever_wrote_it,
    a_subscriber_resuming_past_the_replay_window_is_told_to_reset_and_the_outbox_is_trimmed,
    the_outbox_is_trimmed_from_its_oldest_end_only,
    a_subscriber_that_stops_reading_is_ended_once_it_falls_a_mebibyte_behind,
    a_stream_whose_client_stopped_reading_is_closed_after_the_idle_timeout,
    an_account_with_a_hundred_thousand_voted_posts_is_deleted_with_every_event_recorded,
    concurrent_votes_on_one_post_are_recorded_with_exact_counts_in_commit_order,
);

/// Only PostgreSQL runs several instances on one database.
mod postgres_only {
    use super::*;

    /// The backends of the database's listeners (each instance has one): the last thing
    /// they ran is their `LISTEN`.
    const LISTENERS: &str = "SELECT CAST(pid AS BIGINT) FROM pg_stat_activity \
        WHERE datname = current_database() AND query ILIKE 'LISTEN%' ORDER BY pid";

    /// Waits until `count` listeners other than `gone` listen, for at most five seconds;
    /// returns them.
    async fn listeners(db: &DatabaseConnection, count: usize, gone: &[i64]) -> Vec<i64> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = query_i64s(db, LISTENERS).await;
            let new = pids.iter().filter(|pid| !gone.contains(pid)).count();
            if (new == count && pids.len() == count) || Instant::now() > deadline {
                return pids;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes posts through `writing` one after another, each once the last has arrived on
    /// `stream`, and returns how long each took from its request to its arrival.
    async fn arrival_times(
        writing: &ApiClient,
        user: &TestUser,
        stream: &mut SseStream,
        count: usize,
    ) -> Vec<Duration> {
        let mut times = Vec::new();
        for n in 0..count {
            let started = Instant::now();
            let post = writing
                .new_post(user, &format!("Elsewhere {n}"), true)
                .await;
            let seen = stream.expect_event(ARRIVAL, "a write elsewhere").await;
            times.push(started.elapsed());
            assert_eq!(seen.payload(), post);
        }
        times
    }

    /// Asserts that every write arrived within a second, and most well before the feed's
    /// once-a-second read: a `NOTIFY` woke it. (Each write follows the arrival of the last,
    /// so without one, each would wait for the next read, about a second.)
    fn assert_notified(times: &[Duration], context: &str) {
        let mut sorted = times.to_vec();
        sorted.sort_unstable();
        assert!(
            sorted[sorted.len() - 1] < Duration::from_secs(1),
            "{context}: every write arrives within a second: {times:?}"
        );
        assert!(
            sorted[sorted.len() / 2] < Duration::from_millis(500),
            "{context}: woken by a notification, not by the once-a-second read: {times:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_instance_hears_of_a_write_within_a_second_even_after_its_listener_is_killed() {
        let Some(app) = TestApp::spawn_or_skip(Backend::Postgres).await else {
            return;
        };
        let writing = app.spawn_sibling().await;
        let user = app.create_user_and_login().await;
        let mut stream = follow(&app, &user, None).await;
        let db = app.database().await;
        let killed = listeners(&db, 2, &[]).await;
        assert_eq!(killed.len(), 2, "each instance listens: {killed:?}");
        let times = arrival_times(&writing, &user, &mut stream, 10).await;
        assert_notified(&times, "from the other instance");

        for pid in &killed {
            db.execute_unprepared(&format!("SELECT pg_terminate_backend({pid})"))
                .await
                .expect("a listener killed");
        }
        // Written while nobody listens: it arrives by the catch-up after the reconnection, or
        // by the once-a-second read.
        let post = writing.new_post(&user, "While nobody listens", true).await;
        let seen = stream
            .expect_event(ARRIVAL, "a write while nobody listens")
            .await;
        assert_eq!(seen.payload(), post);

        let listening = listeners(&db, 2, &killed).await;
        assert!(
            listening.len() == 2 && listening.iter().all(|pid| !killed.contains(pid)),
            "each instance listens again: {listening:?}, after {killed:?}"
        );
        let times = arrival_times(&writing, &user, &mut stream, 10).await;
        assert_notified(&times, "after the listeners reconnected");
    }
}

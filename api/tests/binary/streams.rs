//! The memory event streams hold, measured on the process (`VmRSS` from `/proc`): clients
//! that resume from the start of a large outbox and never read, the worst a client can do to
//! the live events.

use std::time::{Duration, Instant};

use api_tests::{Backend, StatusCode, TestDatabase, expect_json, json, open_database};
use service::sea_orm::ConnectionTrait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::Service;

/// Accounts, each with as many streams as it may open (`EVENT_STREAMS_PER_ACCOUNT`).
const ACCOUNTS: usize = 10;
const STREAMS_PER_ACCOUNT: usize = 5;

/// Published posts as long as a post may be (20,000 characters of four bytes each): 40 MB of
/// events for each stream to replay.
const POSTS: usize = 512;
const LONG_CONTENT_CHARS: usize = 20_000;

/// The bound on the whole process while the streams stall.
const MAX_RSS_KB: u64 = 150 * 1024;

/// How far above its idle level the process may stay once the streams have closed.
const SETTLED_SLACK_KB: u64 = 40 * 1024;

/// The process's resident memory, in kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the process's status can be read");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in the status")
}

/// A `GET /events` resuming from id 0 on a socket with a 4 KB receive buffer, read only
/// until its response's head.
async fn stalled_stream(service: &Service, token: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("a small receive buffer");
    let mut stream = socket
        .connect(service.socket_address())
        .await
        .expect("a connection");
    let request = format!(
        "GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\nLast-Event-ID: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut read = Vec::new();
    while !read.windows(4).any(|w| w == b"\r\n\r\n") {
        let got = tokio::time::timeout(Duration::from_secs(10), stream.read_buf(&mut read))
            .await
            .expect("the head comes")
            .expect("the head is read");
        assert!(got > 0, "the connection closed before the head");
    }
    let head = String::from_utf8_lossy(&read);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream
}

async fn stalled_resuming_streams_keep_the_process_small(backend: Backend) {
    let Some(database) = TestDatabase::create_or_skip(backend).await else {
        return;
    };
    let service = Service::start(&[
        ("DATABASE_URL", database.url()),
        // Longer than the test: the streams stall until it closes them.
        ("HTTP_IDLE_TIMEOUT_SECONDS", "300"),
        // mimalloc keeps freed pages mapped until the thread that owns them allocates again
        // (an idle process: never); with no purge delay it returns them as they are freed.
        // Without it, RSS stays near its peak after the streams close.
        ("MIMALLOC_PURGE_DELAY", "0"),
    ]);
    let pid = service.pid();
    let long = "\u{1D11E}".repeat(LONG_CONTENT_CHARS);
    let mut tokens = Vec::new();
    let mut first_post = 0;
    for n in 0..ACCOUNTS {
        let user = service.api.create_user_and_login().await;
        let body = json!({ "title": format!("Long {n}"), "content": long, "published": true });
        let post = expect_json(
            service.api.create_post(&user.token, &body).await,
            StatusCode::CREATED,
            "a long post",
        )
        .await;
        if n == 0 {
            first_post = post["id"].as_i64().expect("an id");
        }
        tokens.push(user.token);
    }
    // The rest as copies of the first, in one statement, as another process could write them.
    let db = open_database(database.url()).await;
    db.execute_unprepared(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
         INSERT INTO posts (title, content, published, created_at, updated_at, owner_id) \
         SELECT p.title, p.content, p.published, p.created_at, p.updated_at, p.owner_id \
         FROM n, posts p WHERE p.id = {first_post}",
        POSTS - ACCOUNTS
    ))
    .await
    .expect("the long posts are written");
    db.close().await.expect("the test's connection closes");
    // The feed reads them (once a second at the latest); then the process is idle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rss_kb(pid);

    let mut streams = Vec::new();
    for token in &tokens {
        for _ in 0..STREAMS_PER_ACCOUNT {
            streams.push(stalled_stream(&service, token).await);
        }
    }
    // Each stream replays until its connection's buffers are full, then waits.
    let mut peak = 0;
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(10) {
        peak = peak.max(rss_kb(pid));
        if peak > MAX_RSS_KB {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(streams);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kb(pid);
    eprintln!(
        "{backend:?}: RSS {} MB idle, {} MB at most with {} stalled streams replaying {POSTS} \
         posts of 80 KB, {} MB after they closed",
        idle / 1024,
        peak / 1024,
        ACCOUNTS * STREAMS_PER_ACCOUNT,
        after / 1024
    );
    assert!(
        peak <= MAX_RSS_KB,
        "{} MB with the stalled streams (bound {} MB)",
        peak / 1024,
        MAX_RSS_KB / 1024
    );
    assert!(
        after <= idle + SETTLED_SLACK_KB,
        "{} MB after the streams closed, {} MB idle before",
        after / 1024,
        idle / 1024
    );
    // Every slot is free again: each account opens as many streams anew.
    let mut again = Vec::new();
    for token in &tokens {
        for _ in 0..STREAMS_PER_ACCOUNT {
            again.push(stalled_stream(&service, token).await);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_stalled_streams_replaying_long_posts_keep_the_process_small_on_postgres() {
    stalled_resuming_streams_keep_the_process_small(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_stalled_streams_replaying_long_posts_keep_the_process_small_on_sqlite() {
    stalled_resuming_streams_keep_the_process_small(Backend::Sqlite).await;
}

//! The binary as a real process, through the faults a machine and a database have:
//! SIGKILL in the middle of a write storm, SIGTERM in the middle of a request, a
//! PostgreSQL server that goes away for ten seconds under load, and clients that open
//! connections and hold them (slow or unfinished request heads, idle keep-alive, stalled
//! bodies, more connections than the cap).
//!
//! The PostgreSQL test starts a throwaway cluster of its own with `initdb` and `pg_ctl` (from
//! `PG_BIN`, default `/usr/lib/postgresql/15/bin`) on a free port in a temporary directory;
//! without them it is skipped, unless `TEST_REQUIRE_POSTGRES=1`.

use std::{
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use api_tests::{
    Backend, Method, StatusCode, TestDatabase, Value, expect_json, json, open_database, query_i64s,
    query_strings, read_raw_response, unique_email,
};
use service::sea_orm::{self, ConnectionTrait};
use tokio::io::AsyncWriteExt;

use crate::support::{Service, temp_dir};

const PASSWORD: &str = "correct horse battery";

/// A whole request, and one whose head never ends.
const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
const PARTIAL_HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n";

/// A request head and the start of a body that never comes.
const STALLED_BODY: &[u8] =
    b"POST /users HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
    content-length: 100\r\n\r\n{\"email\":";

/// Connects to `address` and sends `bytes`: a request, or the start of one.
async fn connect_and_send(address: SocketAddr, bytes: &[u8]) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("a connection");
    stream.write_all(bytes).await.expect("the bytes are sent");
    stream
}

/// Reads one response off `stream` and returns its status.
async fn read_status(stream: &mut tokio::net::TcpStream) -> u16 {
    read_raw_response(stream)
        .await
        .expect("a whole response comes")
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_write_storm_on_sqlite_loses_no_acknowledged_write_and_corrupts_nothing() {
    let database = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("a SQLite database");
    let settings = [("DATABASE_URL", database.url())];
    let mut service = Service::start(&settings);

    // Each writer creates posts and votes for each one it creates; every 201 is noted.
    let posts = Arc::new(Mutex::new(Vec::<String>::new()));
    let votes = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for writer in 0..6 {
        let user = service.api.create_user_and_login().await;
        let (user_id, token) = (user.id, user.token);
        let (api, posts, votes) = (service.api.clone(), Arc::clone(&posts), Arc::clone(&votes));
        writers.push(tokio::spawn(async move {
            let post = |body| {
                api.request(Method::POST, "/posts", Some(&token))
                    .json(&body)
            };
            let vote = |body| api.request(Method::POST, "/vote", Some(&token)).json(&body);
            for n in 0.. {
                let title = format!("writer {writer} post {n}");
                let body = json!({ "title": title, "content": "written in a storm" });
                let Some(response) = created(post(body)).await else {
                    return;
                };
                let Ok(post) = response.json::<Value>().await else {
                    return;
                };
                let post_id = post["id"].as_i64().expect("a post id");
                posts.lock().unwrap().push(format!("{post_id}|{title}"));
                if created(vote(json!({ "post_id": post_id, "dir": 1 })))
                    .await
                    .is_none()
                {
                    return;
                }
                votes.lock().unwrap().push(format!("{user_id}|{post_id}"));
            }
        }));
    }

    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1)
        || (posts.lock().unwrap().len() < 100 && started.elapsed() < Duration::from_secs(30))
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service.kill_9();
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(40), writer)
            .await
            .expect("every writer stops once the service is gone")
            .expect("no writer panicked");
    }
    let acknowledged_posts = posts.lock().unwrap().clone();
    let acknowledged_votes = votes.lock().unwrap().clone();
    assert!(
        acknowledged_posts.len() >= 20,
        "the storm wrote too little to prove anything: {} posts",
        acknowledged_posts.len()
    );

    // The file as the killed process left it (SQLite recovers its WAL on opening).
    let db = open_database(database.url()).await;
    let check = query_strings(&db, "PRAGMA integrity_check").await;
    assert_eq!(check, vec!["ok".to_owned()], "PRAGMA integrity_check");
    let dangling = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "PRAGMA foreign_key_check",
        ))
        .await
        .expect("PRAGMA foreign_key_check runs");
    assert!(
        dangling.is_empty(),
        "rows whose parent is gone: {dangling:?}"
    );
    let posts = "SELECT CAST(id AS TEXT) || '|' || title FROM posts";
    assert_all_stored(&db, posts, &acknowledged_posts, "posts").await;
    let votes = "SELECT CAST(user_id AS TEXT) || '|' || CAST(post_id AS TEXT) FROM votes";
    assert_all_stored(&db, votes, &acknowledged_votes, "votes").await;
    db.close().await.expect("the test's connection closes");

    // The service starts again on the same file and carries on.
    let service = Service::start(&settings);
    let response = service.api.get("/health", None).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", service.logs());
    let user = service.api.create_user_and_login().await;
    let last_vote = acknowledged_votes.last().expect("some vote");
    let voted_post: i64 = last_vote.split('|').nth(1).unwrap().parse().unwrap();
    let post = service.api.fetch_post(&user.token, voted_post).await;
    assert_eq!(post["votes"], 1, "with its acknowledged vote: {post}");
    let body = json!({ "title": "after the crash", "content": "still writing" });
    let response = service.api.create_post(&user.token, &body).await;
    expect_json(response, StatusCode::CREATED, "writing after the crash").await;
}

/// Asserts that every one of `acknowledged` is among the rows `sql` returns.
async fn assert_all_stored(
    db: &sea_orm::DatabaseConnection,
    sql: &str,
    acknowledged: &[String],
    what: &str,
) {
    let stored: std::collections::HashSet<String> =
        query_strings(db, sql).await.into_iter().collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|row| !stored.contains(*row))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged {what} are gone: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
}

/// The response to `request` if it is a 201; `None` for any other outcome, such as the
/// service being gone.
async fn created(request: reqwest::RequestBuilder) -> Option<reqwest::Response> {
    let response = request.send().await.ok()?;
    (response.status() == StatusCode::CREATED).then_some(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_request_finish_then_stops_accepting_and_exits_0() {
    // bcrypt at cost 14 makes a login take about a second: a real slow request.
    let mut service =
        Service::on_sqlite(&[("BCRYPT_COST", "14"), ("SHUTDOWN_GRACE_SECONDS", "30")]).await;
    let email = unique_email();
    let response = service.api.register(&email, PASSWORD).await;
    expect_json(response, StatusCode::CREATED, "registering").await;

    let login = {
        let credentials = json!({ "email": email, "password": PASSWORD });
        let request = service
            .api
            .request(Method::POST, "/login", None)
            .json(&credentials);
        tokio::spawn(async move {
            let response = request.send().await;
            (response, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let signalled = Instant::now();
    service.signal("TERM");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = TcpStream::connect_timeout(&service.socket_address(), Duration::from_secs(2));
    assert!(
        refused.is_err(),
        "a new connection was accepted after SIGTERM"
    );

    let (response, finished) = login.await.expect("the login task ran");
    let response = response.expect("the in-flight login completed");
    assert!(
        finished > signalled,
        "the login finished before the signal, so this proved nothing: raise BCRYPT_COST"
    );
    assert_eq!(response.status(), StatusCode::OK, "the in-flight login");
    let token: Value = response.json().await.expect("a JSON token");
    assert!(token["access_token"].is_string(), "{token}");

    let status = service
        .wait_for_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no exit within the grace period:\n{}", service.logs()));
    let exited = Instant::now();
    assert_eq!(status.code(), Some(0), "{}", service.logs());
    assert!(
        exited.duration_since(finished) < Duration::from_secs(5),
        "the process lingered {:?} after its last request",
        exited.duration_since(finished)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_0_when_the_grace_period_ends_even_if_a_request_never_does() {
    let mut service = Service::on_sqlite(&[("SHUTDOWN_GRACE_SECONDS", "2")]).await;
    // A request whose body never comes: it is in flight until the server gives up on it.
    let stuck = connect_and_send(service.socket_address(), STALLED_BODY).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    service.signal("TERM");
    let status = service
        .wait_for_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no exit 20 s after SIGTERM:\n{}", service.logs()));
    let waited = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{}", service.logs());
    assert!(
        waited >= Duration::from_millis(1_500),
        "it exited after {waited:?}: the in-flight request was not given its grace period"
    );
    assert!(
        waited < Duration::from_secs(6),
        "it exited {waited:?} after SIGTERM with a grace period of 2 s"
    );
    drop(stuck);
}

/// A PostgreSQL cluster of the test's own, in a temporary directory, on a free port.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// Creates and starts the cluster, or says why it cannot.
    fn create() -> Result<Self, String> {
        let bin = std::env::var_os("PG_BIN").map_or_else(
            || PathBuf::from("/usr/lib/postgresql/15/bin"),
            PathBuf::from,
        );
        if !bin.join("initdb").is_file() || !bin.join("pg_ctl").is_file() {
            return Err(format!("no initdb and pg_ctl in {}", bin.display()));
        }
        // PostgreSQL refuses to run as root: as root, run it as the postgres user.
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let dir = temp_dir("pg");
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .map_err(|err| format!("chown: {err}"))?;
            if !status.success() {
                return Err("cannot hand the cluster's directory to the postgres user".into());
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|err| format!("no free port: {err}"))?
            .port();
        let cluster = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        cluster.start()?;
        Ok(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|err| format!("{} did not run: {err}", program.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {args:?} failed: {}{}",
                program.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    fn start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=30 \
             -c shared_buffers=16MB",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "start", "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options,
            ],
        )
    }

    fn stop(&self) -> Result<(), String> {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["stop", "-D", &data, "-m", "fast", "-w", "-t", "60"],
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
    }
}

/// One request made during the outage test.
struct Outcome {
    kind: &'static str,
    /// When it was sent and when its answer came, from the start of the load.
    sent: Duration,
    answered: Duration,
    status: Result<StatusCode, String>,
    problem: Option<(String, Option<String>)>,
    post_id: Option<i64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_second_postgres_outage_fails_fast_with_503_and_heals_without_a_restart() {
    let cluster = match Cluster::create() {
        Ok(cluster) => cluster,
        Err(reason) if std::env::var("TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("cannot start a PostgreSQL cluster: {reason} (TEST_REQUIRE_POSTGRES=1)")
        }
        Err(reason) => {
            eprintln!("skipping: cannot start a PostgreSQL cluster: {reason}");
            return;
        }
    };
    let database_url = cluster.url();
    let acquire_timeout = Duration::from_secs(3);
    let service = Service::start(&[
        ("DATABASE_URL", database_url.as_str()),
        ("DATABASE_MAX_CONNECTIONS", "5"),
        ("DATABASE_ACQUIRE_TIMEOUT_SECONDS", "3"),
    ]);
    let client_timeout = Duration::from_secs(30);
    let client = reqwest::Client::builder()
        .timeout(client_timeout)
        .build()
        .expect("the HTTP client builds");
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(service.api.create_user_and_login().await.token);
    }

    let reader_token = tokens[0].clone();
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let mut load = Vec::new();
    for (writer, token) in tokens.into_iter().enumerate() {
        let (client, stop, outcomes) = (client.clone(), Arc::clone(&stop), Arc::clone(&outcomes));
        let url = service.url("/posts");
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({ "title": format!("writer {writer} post {n}"), "content": "x" });
                let sent = t0.elapsed();
                let result = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                let outcome = observe("POST /posts", sent, t0, result).await;
                outcomes.lock().unwrap().push(outcome);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    // A reader of the list, whose statements take connections of their own on PostgreSQL.
    {
        let (client, stop, outcomes) = (client.clone(), Arc::clone(&stop), Arc::clone(&outcomes));
        let (url, token) = (service.url("/posts?limit=5"), reader_token);
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let sent = t0.elapsed();
                let result = client.get(&url).bearer_auth(&token).send().await;
                let outcome = observe("GET /posts", sent, t0, result).await;
                outcomes.lock().unwrap().push(outcome);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }));
    }
    // Three pollers of /health: during the outage each answer takes up to the acquire
    // timeout, and the outage must see several.
    for poller in 0..3_u64 {
        let (client, stop, outcomes) = (client.clone(), Arc::clone(&stop), Arc::clone(&outcomes));
        let url = service.url("/health");
        load.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(70 * poller)).await;
            while !stop.load(Ordering::Relaxed) {
                let sent = t0.elapsed();
                let result = client.get(&url).send().await;
                let outcome = observe("GET /health", sent, t0, result).await;
                outcomes.lock().unwrap().push(outcome);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopping = t0.elapsed();
    tokio::task::block_in_place(|| cluster.stop()).expect("the cluster stops");
    let stopped = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let restarting = t0.elapsed();
    tokio::task::block_in_place(|| cluster.start()).expect("the cluster starts again");
    let restarted = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        tokio::time::timeout(client_timeout + Duration::from_secs(5), task)
            .await
            .expect("the load stops")
            .expect("no load task panicked");
    }
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let timeline = format!(
        "stop sent at {stopping:?}, done at {stopped:?}; start sent at {restarting:?}, done at {restarted:?}"
    );
    let describe = |o: &Outcome| {
        format!(
            "{} sent at {:?}, answered at {:?}: {:?} {:?}",
            o.kind, o.sent, o.answered, o.status, o.problem
        )
    };

    if std::env::var_os("OUTAGE_DEBUG").is_some() {
        for outcome in &outcomes {
            eprintln!("{}", describe(outcome));
        }
    }
    // Every request got an answer, a 503 problem or a success, and quickly.
    let mut wrong = Vec::new();
    for outcome in &outcomes {
        let success = match outcome.kind {
            "POST /posts" => StatusCode::CREATED,
            _ => StatusCode::OK,
        };
        let fine = match &outcome.status {
            Ok(status) if *status == success => true,
            Ok(status) if *status == StatusCode::SERVICE_UNAVAILABLE => outcome
                .problem
                .as_ref()
                .is_some_and(|(content_type, retry)| {
                    content_type.starts_with("application/problem+json") && retry.is_some()
                }),
            _ => false,
        };
        let took = outcome.answered - outcome.sent;
        if !fine || took > acquire_timeout + Duration::from_secs(2) {
            wrong.push(describe(outcome));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} requests were not a quick success or 503 problem ({timeline}):\n  {}",
        wrong.len(),
        wrong.join("\n  ")
    );

    // During the outage every answer is a 503, /health included.
    let during: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.sent > stopped + Duration::from_millis(500) && o.answered < restarting)
        .collect();
    for kind in ["POST /posts", "GET /posts", "GET /health"] {
        let of_kind: Vec<&&Outcome> = during.iter().filter(|o| o.kind == kind).collect();
        assert!(
            of_kind.len() >= 3,
            "too few {kind} requests during the outage to judge ({timeline})"
        );
        let unavailable: Vec<String> = of_kind
            .iter()
            .filter(|o| o.status != Ok(StatusCode::SERVICE_UNAVAILABLE))
            .map(|o| describe(o))
            .collect();
        assert!(
            unavailable.is_empty(),
            "{kind} during the outage must be 503 ({timeline}):\n  {}",
            unavailable.join("\n  ")
        );
    }

    // Within five seconds of PostgreSQL's return, everything works again, for good.
    let healed_by = restarted + Duration::from_secs(5);
    let late_failures: Vec<String> = outcomes
        .iter()
        .filter(|o| o.sent >= healed_by && !matches!(o.status, Ok(s) if s.is_success()))
        .map(describe)
        .collect();
    assert!(
        late_failures.is_empty(),
        "still failing 5 s after PostgreSQL returned ({timeline}):\n  {}",
        late_failures.join("\n  ")
    );
    for kind in ["POST /posts", "GET /posts", "GET /health"] {
        assert!(
            outcomes
                .iter()
                .any(|o| o.kind == kind && o.sent >= healed_by && o.status.is_ok()),
            "no {kind} after recovery was observed ({timeline})"
        );
    }

    // Every acknowledged post is stored.
    let acknowledged: Vec<i64> = outcomes.iter().filter_map(|o| o.post_id).collect();
    assert!(
        acknowledged.len() >= 20,
        "too few posts were acknowledged to judge: {}",
        acknowledged.len()
    );
    let db = open_database(&database_url).await;
    let stored: std::collections::HashSet<i64> = query_i64s(&db, "SELECT id FROM posts")
        .await
        .into_iter()
        .collect();
    let lost: Vec<&i64> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged posts missing from the database: {lost:?}"
    );
    let _ = db.close().await;
    drop(service);
}

/// Records what a request got.
async fn observe(
    kind: &'static str,
    sent: Duration,
    t0: Instant,
    result: reqwest::Result<reqwest::Response>,
) -> Outcome {
    match result {
        Err(err) => Outcome {
            kind,
            sent,
            answered: t0.elapsed(),
            status: Err(err.to_string()),
            problem: None,
            post_id: None,
        },
        Ok(response) => {
            let status = response.status();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let answered = t0.elapsed();
            Outcome {
                kind,
                sent,
                answered,
                status: Ok(status),
                problem: (status == StatusCode::SERVICE_UNAVAILABLE)
                    .then_some((content_type, retry_after)),
                post_id: (status == StatusCode::CREATED)
                    .then(|| body["id"].as_i64())
                    .flatten(),
            }
        }
    }
}

/// How long until the server closes `stream`: reads (and throws away) what comes until the end
/// of the stream or an error; `None` when it is still open after `limit`.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut buffer = [0_u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// The sockets the process holds open: its listener and its connections (and a socket pair
/// of the signal handler).
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's descriptors can be listed")
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Polls `/health` on a new connection every 100 ms until `stop`; returns what each poll got
/// and how long it took.
fn poll_health(
    service: &Service,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(Result<StatusCode, String>, Duration)>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("the HTTP client builds");
    let url = service.url("/health");
    tokio::spawn(async move {
        let mut polls = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let status = client
                .get(&url)
                .send()
                .await
                .map(|r| r.status())
                .map_err(|e| e.to_string());
            polls.push((status, started.elapsed()));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        polls
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_request_heads_are_closed_within_the_header_timeout_while_health_answers() {
    let header_timeout = Duration::from_secs(2);
    let metrics_address = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let service = Service::on_sqlite(&[
        ("METRICS_LISTEN", metrics_address.as_str()),
        ("HTTP_HEADER_READ_TIMEOUT_SECONDS", "2"),
        // Far longer than the test: only the header timeout can close these.
        ("HTTP_IDLE_TIMEOUT_SECONDS", "60"),
    ])
    .await;
    // The metrics listener binds after the API's address is logged: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&metrics_address).is_err() {
        assert!(
            Instant::now() < deadline,
            "the metrics listener never opened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let health = poll_health(&service, Arc::clone(&stop));

    // 500 heads that stop before their blank line, 100 connections that send nothing, 100
    // heads trickled a byte every 300 ms (which no inactivity timeout would ever close), and 10
    // heads cut short on the metrics listener.
    let address = service.socket_address();
    let metrics: SocketAddr = metrics_address.parse().unwrap();
    let mut clients = Vec::new();
    for n in 0..710 {
        // One connection after another: all at once, they would overflow the listen queue (128
        // here), and the kernel would complete some handshakes seconds later.
        let mut stream = tokio::net::TcpStream::connect(if n < 700 { address } else { metrics })
            .await
            .expect("a connection");
        let opened = Instant::now();
        clients.push(tokio::spawn(async move {
            let limit = Duration::from_secs(8);
            if !(500..700).contains(&n) {
                stream
                    .write_all(PARTIAL_HEAD)
                    .await
                    .expect("the partial head is sent");
            } else if (600..700).contains(&n) {
                let head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                for byte in head.iter().cycle() {
                    if closed_within(&mut stream, Duration::from_millis(300))
                        .await
                        .is_some()
                    {
                        return (n, Some(opened.elapsed()));
                    }
                    if stream.write_all(&[*byte]).await.is_err() || opened.elapsed() > limit {
                        break;
                    }
                }
                let closed = closed_within(&mut stream, Duration::from_millis(100)).await;
                return (n, closed.map(|_| opened.elapsed()));
            }
            let closed = closed_within(&mut stream, limit).await;
            (n, closed.map(|_| opened.elapsed()))
        }));
    }
    let mut lifetimes = Vec::new();
    for client in clients {
        lifetimes.push(client.await.expect("no client panicked"));
    }
    stop.store(true, Ordering::Relaxed);
    let polls = health.await.expect("the health poller ran");

    let still_open: Vec<usize> = lifetimes
        .iter()
        .filter(|(_, closed)| closed.is_none())
        .map(|(n, _)| *n)
        .collect();
    assert!(
        still_open.is_empty(),
        "{} of 710 connections were still open after 8 s (header timeout 2 s): {:?}",
        still_open.len(),
        &still_open[..still_open.len().min(20)]
    );
    let (slowest, longest) = lifetimes
        .iter()
        .filter_map(|(n, c)| c.map(|c| (*n, c)))
        .max_by_key(|(_, c)| *c)
        .unwrap();
    let shortest = lifetimes.iter().filter_map(|(_, c)| *c).min().unwrap();
    eprintln!(
        "slow heads closed between {shortest:?} and {longest:?} (connection {slowest}) after \
         connecting"
    );
    assert!(
        shortest >= header_timeout - Duration::from_millis(200),
        "a connection was closed after {shortest:?}, before the header timeout"
    );
    assert!(
        longest <= header_timeout + Duration::from_millis(1_500),
        "a connection was closed only after {longest:?} (header timeout 2 s)"
    );

    let slowest_poll = polls.iter().map(|(_, took)| *took).max().unwrap();
    eprintln!(
        "{} /health polls meanwhile, slowest {slowest_poll:?}",
        polls.len()
    );
    let failed: Vec<_> = polls
        .iter()
        .filter(|(status, took)| *status != Ok(StatusCode::OK) || *took > Duration::from_secs(1))
        .collect();
    assert!(polls.len() >= 10, "too few /health polls: {}", polls.len());
    assert!(
        failed.is_empty(),
        "/health did not answer 200 within 1 s throughout: {failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_and_stalled_bodies_are_closed_after_the_idle_timeout() {
    let service = Service::on_sqlite(&[
        ("HTTP_HEADER_READ_TIMEOUT_SECONDS", "1"),
        ("HTTP_IDLE_TIMEOUT_SECONDS", "3"),
    ])
    .await;
    let address = service.socket_address();

    // A keep-alive connection stays open between requests for longer than the header timeout
    // and serves its next request...
    let mut kept = connect_and_send(address, HEALTH).await;
    assert_eq!(read_status(&mut kept).await, 200);
    assert_eq!(
        closed_within(&mut kept, Duration::from_secs(2)).await,
        None,
        "an idle keep-alive connection was closed before the idle timeout (3 s)"
    );
    kept.write_all(HEALTH).await.unwrap();
    assert_eq!(read_status(&mut kept).await, 200, "the second request");
    // ...and is closed once it has been idle for the idle timeout (3 s).
    let idle_timeout = (Duration::from_millis(2_800), Duration::from_millis(4_500));
    assert_closed_between(&mut kept, idle_timeout, "an idle keep-alive connection").await;

    // A head begun on a kept-alive connection, after it was idle for longer than the header
    // timeout (1 s), still gets only the header timeout.
    let mut slow = connect_and_send(address, HEALTH).await;
    assert_eq!(read_status(&mut slow).await, 200);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    slow.write_all(PARTIAL_HEAD).await.unwrap();
    let header_timeout = (Duration::from_millis(900), Duration::from_millis(1_500));
    assert_closed_between(
        &mut slow,
        header_timeout,
        "a slow head on a kept-alive connection",
    )
    .await;

    // A request whose body stops coming holds the connection for the idle timeout, no longer.
    let mut stalled = connect_and_send(address, STALLED_BODY).await;
    assert_closed_between(&mut stalled, idle_timeout, "a stalled body's connection").await;
}

/// Asserts that the server closes `stream` between `earliest` and `latest` from now.
async fn assert_closed_between(
    stream: &mut tokio::net::TcpStream,
    (earliest, latest): (Duration, Duration),
    what: &str,
) {
    let closed = closed_within(stream, Duration::from_secs(6))
        .await
        .unwrap_or_else(|| panic!("{what} is still open after 6 s"));
    eprintln!("{what} was closed after {closed:?}");
    assert!(
        closed >= earliest && closed <= latest,
        "{what} was closed after {closed:?}, not between {earliest:?} and {latest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_new_connections_wait_in_the_backlog_until_a_slot_frees() {
    let service = Service::on_sqlite(&[
        ("HTTP_MAX_CONNECTIONS", "50"),
        ("HTTP_HEADER_READ_TIMEOUT_SECONDS", "3"),
    ])
    .await;
    let address = service.socket_address();
    let pid = service.pid();
    // One request first, so that everything the process opens once (the signal handler's
    // sockets) is open before counting.
    let close = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut first = connect_and_send(address, close).await;
    closed_within(&mut first, Duration::from_secs(5))
        .await
        .expect("the first request's connection is closed after its response");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let baseline = open_sockets(pid);

    // 50 slow heads fill the cap...
    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..50 {
        slow.push(connect_and_send(address, PARTIAL_HEAD).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...a complete request then waits in the backlog (connecting works: the kernel queues it)...
    let mut waiting = connect_and_send(address, HEALTH).await;
    let answered = tokio::spawn(async move {
        let status = read_status(&mut waiting).await;
        (status, opened.elapsed())
    });
    // ...and so do 150 more slow heads behind it.
    for _ in 0..150 {
        slow.push(connect_and_send(address, PARTIAL_HEAD).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = open_sockets(pid) - baseline;
    eprintln!("with 201 connections made and a cap of 50, the process holds {held} of them");
    assert!(
        held <= 50,
        "the process holds {held} connections with HTTP_MAX_CONNECTIONS=50"
    );

    let (status, at) = tokio::time::timeout(Duration::from_secs(10), answered)
        .await
        .expect("the waiting request is answered once the slow heads are closed")
        .expect("the waiting client ran");
    eprintln!("the request waiting at the cap was answered {at:?} after the cap filled");
    assert_eq!(status, 200);
    assert!(
        at >= Duration::from_millis(2_700),
        "the 51st connection was served after {at:?}, while 50 others held every slot"
    );
    assert!(
        at <= Duration::from_millis(5_000),
        "the 51st connection was served only after {at:?} (header timeout 3 s)"
    );
}

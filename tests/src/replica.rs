//! The streaming replica of `tests/cluster/run`, for the tests of reads on a replica.
//!
//! Every application on PostgreSQL reads through it when `TEST_REPLICA_URL` is set. The
//! tests that pause its replay or stop its server hold [`Replica::exclusive`], as do those
//! that count what it served, so that they do not disturb one another; the other tests'
//! reads then go to the primary, as they should.

use std::{process::Command, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::sync::{Mutex, MutexGuard};

use crate::databases::open_database;

static EXCLUSIVE: Mutex<()> = Mutex::const_new(());

/// The cluster's replica, when the suite runs beside one.
pub struct Replica {
    pg_bin: String,
    data: String,
}

impl Replica {
    /// The replica, or `None` (after saying so on stderr) when the suite runs without
    /// `tests/cluster/run`.
    pub fn of_cluster() -> Option<Replica> {
        let (Ok(pg_bin), Ok(dir), Ok(_)) = (
            std::env::var("CLUSTER_PG_BIN"),
            std::env::var("CLUSTER_DIR"),
            std::env::var("TEST_REPLICA_URL"),
        ) else {
            eprintln!("skipping: no replica (run the suite with tests/cluster/run)");
            return None;
        };
        Some(Replica {
            pg_bin,
            data: format!("{dir}/replica"),
        })
    }

    /// Holds the replica for one test until the guard is dropped.
    pub async fn exclusive(&self) -> MutexGuard<'static, ()> {
        EXCLUSIVE.lock().await
    }

    /// A connection to the database `url` names (a database of the primary) on the replica.
    pub async fn connect(&self, primary_database_url: &str) -> DatabaseConnection {
        let name = reqwest::Url::parse(primary_database_url)
            .expect("a database URL")
            .path()
            .to_owned();
        let mut url = reqwest::Url::parse(&std::env::var("TEST_REPLICA_URL").expect("set"))
            .expect("TEST_REPLICA_URL is a URL");
        url.set_path(&name);
        open_database(url.as_str()).await
    }

    /// Pauses (`true`) or resumes the replica's replay of the primary's log.
    pub async fn pause_replay(&self, replica: &DatabaseConnection, paused: bool) {
        let sql = if paused {
            "SELECT pg_wal_replay_pause()"
        } else {
            "SELECT pg_wal_replay_resume()"
        };
        replica
            .execute_unprepared(sql)
            .await
            .unwrap_or_else(|err| panic!("`{sql}` on the replica: {err}"));
    }

    /// Stops the replica's server.
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    /// Starts the replica's server again.
    pub fn start(&self) {
        let log = format!("{}.log", self.data);
        self.pg_ctl(&["-l", &log, "-w", "start"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{}/pg_ctl", self.pg_bin))
            .args(["-D", &self.data])
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl {args:?} on the replica: {status}");
    }
}

/// Waits up to `within` for `GET /health` to say the replicas are in the `states` given
/// (`in_use`, `lagging`, `unreachable`, one per replica); returns the last answer's.
pub async fn wait_for_replica_states(
    app: &crate::TestApp,
    states: &[&str],
    within: Duration,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let health = app.get("/health", None).await;
        let body: serde_json::Value = health.json().await.expect("health is JSON");
        let seen: Vec<String> = body["replicas"]
            .as_array()
            .map(|replicas| {
                replicas
                    .iter()
                    .map(|replica| replica["state"].as_str().unwrap_or("?").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        if seen == states || tokio::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

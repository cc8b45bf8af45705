//! The one way these tests start the service: the binary cargo built for them, as a process
//! of its own on a free port, with its log lines kept.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use api_tests::{ApiClient, Backend, TestDatabase};

/// The `api` binary of this build.
pub const BINARY: &str = env!("CARGO_BIN_EXE_api");

/// The secret every started service signs its tokens with.
pub const SECRET_KEY: &str = "a process test secret that is long enough, 42";

/// A temporary directory, removed when dropped.
pub fn temp_dir(purpose: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("api-{purpose}-"))
        .tempdir()
        .expect("the temporary directory is created")
}

/// The service running as a process of its own; killed when dropped, if still running.
pub struct Service {
    child: Child,
    /// A client of the service, at its logged address.
    pub api: ApiClient,
    logs: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    /// The working directory: empty, so that no `config.toml` or `.env` of the developer's
    /// applies.
    _dir: tempfile::TempDir,
    /// The SQLite database of [`Service::on_sqlite`], removed after the process is gone.
    _database: Option<TestDatabase>,
}

impl Service {
    /// Starts the binary with the test defaults (port 0, bcrypt cost 4, no registration or
    /// write limit, `info` logs) overridden by `settings`, and nothing else in its
    /// environment. The limits have tests of their own; these tests write a lot from one
    /// account.
    pub fn start(settings: &[(&str, &str)]) -> Self {
        let dir = temp_dir("process");
        let mut child = Command::new(BINARY)
            .current_dir(dir.path())
            .env_clear()
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("SECRET_KEY", SECRET_KEY)
            .env("BCRYPT_COST", "4")
            .env("REGISTER_MAX_PER_ADDRESS", "0")
            .env("WRITES_PER_MINUTE", "0")
            .env("RUST_LOG", "info")
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the api binary starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (send, lines) = mpsc::channel::<String>();
        let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        let readers = [stdout, stderr]
            .into_iter()
            .map(|stream| {
                let send = send.clone();
                let logs = Arc::clone(&logs);
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        logs.lock().unwrap().push(line.clone());
                        let _ = send.send(line);
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the service logged no address within 60 s:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            };
            if let Some(rest) = line.split("address=").nth(1) {
                let url = rest.split_whitespace().next().unwrap_or_default();
                break url.trim_matches('"').trim_end_matches('/').to_owned();
            }
        };
        Self {
            child,
            api: ApiClient::new(address, Duration::from_secs(60)),
            logs,
            readers,
            _dir: dir,
            _database: None,
        }
    }

    /// Like [`Service::start`], on a SQLite file of its own.
    pub async fn on_sqlite(settings: &[(&str, &str)]) -> Self {
        let database = TestDatabase::create(Backend::Sqlite)
            .await
            .expect("a SQLite database");
        let mut all = vec![("DATABASE_URL", database.url())];
        all.extend_from_slice(settings);
        let mut service = Self::start(&all);
        service._database = Some(database);
        service
    }

    pub fn url(&self, path: &str) -> String {
        self.api.url(path)
    }

    pub fn socket_address(&self) -> SocketAddr {
        self.api
            .socket_address()
            .parse()
            .expect("the service listens on an IP address and port")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the signal `name` (`TERM`, `INT`) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be polled") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as when the machine's OOM killer or an operator takes the process away;
    /// returns once everything it logged has been read.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().expect("the killed process is reaped");
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// Everything the process has logged so far, one line a line.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

//! A real SMTP server for the tests that read mail: aiosmtpd (Python, `tests/mail/
//! requirements.txt`) with its Maildir handler, as a process of its own on a port of the
//! test's, each mail it accepts a file in a directory the test reads. It can be stopped and
//! started again on the same port, as an outage.
//!
//! The interpreter is `TEST_PYTHON`, else `python3` when it has aiosmtpd, else a virtual
//! environment the tests make under `target/` ([`python`]); `.ci/run` makes one and names it.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use crate::{Backend, TestApp};

/// An SMTP server the test controls, and the mails it has accepted.
pub struct Mailbox {
    port: u16,
    dir: tempfile::TempDir,
    server: Option<Child>,
}

/// One mail as the server received it.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// The message's headers and body, as received (CRLF or LF line ends).
    pub raw: String,
}

impl Mailbox {
    /// A mailbox on a free port, its server started.
    pub fn start() -> Mailbox {
        let mut mailbox = Self::stopped();
        mailbox.start_server();
        mailbox
    }

    /// A mailbox on a free port whose server is not started: connections to it are refused
    /// until [`Mailbox::start_server`].
    pub fn stopped() -> Mailbox {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Mailbox {
            port,
            dir: tempfile::Builder::new()
                .prefix("api-tests-mail-")
                .tempdir()
                .expect("the maildir's directory is created"),
            server: None,
        }
    }

    /// The Maildir the server writes, made by the server (Python's `mailbox.Maildir` makes
    /// the folders of one that does not exist yet, and none in one that does).
    fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    /// `SMTP_URL` for the service.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the mailbox's port, and waits until it accepts.
    pub fn start_server(&mut self) {
        assert!(self.server.is_none(), "the SMTP server is already running");
        let python = python();
        let mut child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("{python} cannot be started: {err}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = child.try_wait().expect("the server can be polled") {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!(
                    "the SMTP server exited ({status}); is aiosmtpd installed (pip install -r \
                     tests/mail/requirements.txt)?\n{stderr}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "the SMTP server did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.server = Some(child);
    }

    /// Stops the server: connections are refused until it starts again.
    pub fn stop_server(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every mail accepted so far, in the order they arrived.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        let new = self.maildir().join("new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let modified = entry.metadata().ok()?.modified().ok()?;
                Some((modified, entry.path()))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| std::fs::read(path).ok())
            .map(|bytes| ReceivedMail {
                raw: String::from_utf8_lossy(&bytes).into_owned(),
            })
            .collect()
    }

    /// The mails to `recipient`.
    pub fn mails_to(&self, recipient: &str) -> Vec<ReceivedMail> {
        self.mails()
            .into_iter()
            .filter(|mail| mail.to().contains(recipient))
            .collect()
    }

    /// Waits up to `limit` until `count` mails to `recipient` have arrived; returns them.
    pub async fn wait_for_mails_to(
        &self,
        recipient: &str,
        count: usize,
        limit: Duration,
    ) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + limit;
        loop {
            let mails = self.mails_to(recipient);
            if mails.len() >= count {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "{} mail(s) to {recipient} arrived within {limit:?}, not {count}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.stop_server();
    }
}

impl ReceivedMail {
    /// The value of header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self
            .raw
            .split("\r\n\r\n")
            .next()
            .filter(|head| head.len() < self.raw.len())
            .or_else(|| self.raw.split("\n\n").next())?;
        let unfolded = head
            .replace("\r\n", "\n")
            .replace("\n ", " ")
            .replace("\n\t", " ");
        unfolded.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    pub fn to(&self) -> String {
        self.header("To").unwrap_or_default()
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    pub fn message_id(&self) -> String {
        self.header("Message-ID")
            .expect("every mail has a Message-ID")
    }

    /// The body with quoted-printable soft breaks and escapes undone: the text and HTML
    /// parts, as a reader sees them.
    pub fn decoded_body(&self) -> String {
        let body = self.raw.replace("\r\n", "\n");
        let body = body.split_once("\n\n").map_or(body.as_str(), |(_, b)| b);
        let mut out = Vec::with_capacity(body.len());
        let bytes = body.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 2;
                    continue;
                }
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(value);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The first link below `public_url` with a token in the mail
    /// (`{public_url}/verify-email?token=…`, `{public_url}/reset-password?token=…`).
    pub fn link(&self, public_url: &str) -> String {
        let body = self.decoded_body();
        body.match_indices(public_url)
            .map(|(at, _)| {
                body[at..]
                    .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
                    .next()
                    .unwrap_or_default()
            })
            .find(|link| link.contains("?token="))
            .unwrap_or_else(|| panic!("no link to {public_url} with a token in the mail:\n{body}"))
            .to_owned()
    }

    /// The token of the mail's link.
    pub fn token(&self, public_url: &str) -> String {
        let link = self.link(public_url);
        link.rsplit_once("token=")
            .map(|(_, token)| token.to_owned())
            .expect("the link has a token")
    }
}

/// The interpreter that runs aiosmtpd: `TEST_PYTHON`; else `python3` when it has aiosmtpd;
/// else a virtual environment under `target/` made once with it (pinned in
/// `tests/mail/requirements.txt`), so that `cargo test` needs no set-up of its own.
fn python() -> String {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Ok(python) = std::env::var("TEST_PYTHON") {
                return python;
            }
            if has_aiosmtpd("python3") {
                return "python3".to_owned();
            }
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let venv = root.join("target/test-mail-venv");
            let python = venv.join("bin/python");
            if !has_aiosmtpd(&python.to_string_lossy()) {
                // Made beside it and moved into place: test binaries running at once each
                // make one, and the first in place is the one all use.
                let made = root.join(format!("target/test-mail-venv-{}", std::process::id()));
                let ran = |program: &Path, args: &[&str]| {
                    Command::new(program)
                        .args(args)
                        .status()
                        .is_ok_and(|status| status.success())
                };
                let requirements = root.join("tests/mail/requirements.txt");
                assert!(
                    ran(
                        Path::new("python3"),
                        &["-m", "venv", &made.to_string_lossy()]
                    ) && ran(
                        &made.join("bin/pip"),
                        &["install", "-q", "-r", &requirements.to_string_lossy()]
                    ),
                    "cannot make a virtual environment with aiosmtpd in {}; set TEST_PYTHON",
                    made.display()
                );
                if std::fs::rename(&made, &venv).is_err() {
                    let _ = std::fs::remove_dir_all(&made);
                }
            }
            python.to_string_lossy().into_owned()
        })
        .clone()
}

fn has_aiosmtpd(python: &str) -> bool {
    Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The front end the links of the tests' mails point to.
pub const PUBLIC_URL: &str = "https://social.example.org";

/// The app, sending its mail to `mailbox` (links to [`PUBLIC_URL`]), with `customize`
/// applied after.
pub async fn app_mailing_to(
    backend: Backend,
    mailbox: &Mailbox,
    customize: impl FnOnce(&mut api::Settings),
) -> TestApp {
    let url = mailbox.url();
    TestApp::spawn_with(backend, move |settings| {
        settings.smtp_url = Some(url.into());
        settings.mail_from = Some("Social API <noreply@example.org>".into());
        settings.public_url = Some(PUBLIC_URL.into());
        customize(settings);
    })
    .await
}

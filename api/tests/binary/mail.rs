//! The outbox against the faults of a real process: a service killed (`kill -9`) between
//! recording a mail and handing it over delivers it exactly once after a restart; a mail
//! that fails for the whole of `MAIL_RETRY_HOURS` is dropped with a log line that names the
//! mail, not its recipient.

use std::{
    net::TcpListener,
    sync::mpsc,
    time::{Duration, Instant},
};

use api_tests::{Backend, Mailbox, StatusCode, TestDatabase, expect_empty, json, unique_email};

use crate::support::Service;

const PUBLIC_URL: &str = "https://social.example.org";

/// The mail settings of a service sending to `smtp_url`.
fn mail_settings(smtp_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_URL", smtp_url.to_owned()),
        ("MAIL_FROM", "noreply@example.org".to_owned()),
        ("PUBLIC_URL", PUBLIC_URL.to_owned()),
        // A stalled attempt gives up after a second; its claim runs out 5 s later.
        ("MAIL_SEND_TIMEOUT_SECONDS", "1".to_owned()),
    ]
}

fn start(database_url: &str, settings: &[(&'static str, String)]) -> Service {
    let mut all: Vec<(&str, &str)> = vec![("DATABASE_URL", database_url)];
    all.extend(settings.iter().map(|(name, value)| (*name, value.as_str())));
    Service::start(&all)
}

/// An SMTP server that accepts connections and never says a word: every attempt stalls
/// until the client's timeout. Each accepted connection is reported on the receiver.
fn stalling_smtp_server() -> (String, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let (accepted, connections) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            held.push(stream);
            if accepted.send(()).is_err() {
                return;
            }
        }
    });
    (url, connections)
}

async fn killed_between_recording_and_sending(backend: Backend) {
    let Some(database) = TestDatabase::create_or_skip(backend).await else {
        return;
    };
    let (stalling, connections) = stalling_smtp_server();
    let mut service = start(database.url(), &mail_settings(&stalling));
    let email = unique_email();
    service
        .api
        .create_user(&email, "a password before the crash")
        .await;
    // The worker has claimed the mail and is in the middle of sending it.
    connections
        .recv_timeout(Duration::from_secs(20))
        .expect("the worker tried to send the mail");
    service.kill_9();

    let mailbox = Mailbox::start();
    let service = start(database.url(), &mail_settings(&mailbox.url()));
    let mails = mailbox
        .wait_for_mails_to(&email, 1, Duration::from_secs(40))
        .await;
    let token = mails[0].token(PUBLIC_URL);
    // Long enough for a second delivery, had the mail been left claimable.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(mailbox.mails_to(&email).len(), 1, "exactly once");
    let response = service
        .api
        .post("/users/verify", None, &json!({ "token": token }))
        .await;
    expect_empty(response, StatusCode::NO_CONTENT, "the mail's token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_of_a_service_killed_before_sending_arrives_once_after_a_restart_on_sqlite() {
    killed_between_recording_and_sending(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_of_a_service_killed_before_sending_arrives_once_after_a_restart_on_postgres() {
    killed_between_recording_and_sending(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_failing_past_mail_retry_hours_is_dropped_with_a_log_line_naming_only_its_id() {
    // Nothing listens on the port of a listener just closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let mut settings = mail_settings(&format!("smtp://127.0.0.1:{port}"));
    settings.push(("MAIL_RETRY_HOURS", (2.0 / 3600.0).to_string()));
    let mut service = Service::on_sqlite(
        &settings
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    let email = unique_email();
    service
        .api
        .create_user(&email, "a password of a lost mail")
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !service.logs().contains("gave up on a mail") {
        assert!(
            Instant::now() < deadline,
            "no line says the mail was given up:\n{}",
            service.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    service.kill_9();
    let logs = service.logs();
    let line = logs
        .lines()
        .find(|line| line.contains("gave up on a mail"))
        .unwrap();
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("mail_id=1"), "{line}");
    assert!(
        !logs.contains(&email),
        "the recipient appears in the logs:\n{logs}"
    );
}

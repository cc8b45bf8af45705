//! No secret reaches a log: a full journey through the real binary, logging at `debug`, on
//! PostgreSQL with a password in `DATABASE_URL` (the server's trust authentication accepts
//! any password, so it can be a marker).

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use service::sea_orm::{ConnectionTrait, Database};

const PASSWORD: &str = "journey-password-7Qx";
const SECRET_KEY: &str = "journey-secret-key-that-is-long-enough-9Zp";
const DB_PASSWORD: &str = "journey-db-password-3Kv";

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    address: String,
}

impl Server {
    fn start(database_url: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_api"))
            .env("DATABASE_URL", database_url)
            .env("SECRET_KEY", SECRET_KEY)
            .env("BCRYPT_COST", "4")
            .env("REGISTER_MAX_PER_ADDRESS", "0")
            .env("PORT", "0")
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the api binary starts");
        let (send, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let send = send.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = send.send(line);
                }
            });
        }
        let mut seen = Vec::new();
        let address = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| {
                    panic!("no address logged; output so far:\n{}", seen.join("\n"))
                });
            if let Some(rest) = line.split("address=").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_matches('"')
                    .to_owned();
            }
            seen.push(line);
        };
        Self {
            child,
            lines,
            address,
        }
    }

    /// Stops the server and returns everything it logged.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        self.lines.try_iter().collect::<Vec<_>>().join("\n")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journey_logs_no_password_token_or_secret() {
    let admin_url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let admin = match Database::connect(&admin_url).await {
        Ok(admin) => admin,
        Err(err) if std::env::var("TEST_REQUIRE_POSTGRES").as_deref() != Ok("1") => {
            eprintln!("skipping: PostgreSQL not reachable at {admin_url}: {err}");
            return;
        }
        Err(err) => {
            panic!("PostgreSQL not reachable at {admin_url}: {err} (TEST_REQUIRE_POSTGRES=1)")
        }
    };
    let name = format!("apilogs_{}", std::process::id());
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (host_part, _) = admin_url.rsplit_once('/').unwrap();
    let with_password = host_part.replacen("postgres@", &format!("postgres:{DB_PASSWORD}@"), 1);
    let server = Server::start(&format!("{with_password}/{name}"));

    let token = journey(&server.address).await;
    let logs = server.stop();
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();

    assert!(
        logs.contains("route=\"/login\""),
        "the journey was logged:\n{logs}"
    );
    for (what, secret) in [
        ("the password", PASSWORD),
        ("the token", token.as_str()),
        ("SECRET_KEY", SECRET_KEY),
        ("the database password", DB_PASSWORD),
    ] {
        assert!(
            !logs.contains(secret),
            "{what} appears in the logs:\n{logs}"
        );
    }
}

/// Registers, logs in both ways, writes, reads, votes and deletes; returns a token.
async fn journey(address: &str) -> String {
    let client = reqwest::Client::new();
    let email = "journey@example.org";
    let credentials = serde_json::json!({ "email": email, "password": PASSWORD });
    let response = client
        .post(format!("{address}/users"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = client
        .post(format!("{address}/login"))
        .form(&[("username", email), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .post(format!("{address}/login"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    let token: serde_json::Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let wrong = serde_json::json!({ "email": email, "password": format!("{PASSWORD}-wrong") });
    let response = client
        .post(format!("{address}/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let post = serde_json::json!({ "title": "journey", "content": "through the logs" });
    let response = client
        .post(format!("{address}/posts"))
        .header("authorization", &bearer)
        .json(&post)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    for path in [
        "/posts".to_owned(),
        format!("/posts/{}", created["id"]),
        "/users/me".into(),
    ] {
        let response = client
            .get(format!("{address}{path}"))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let vote = serde_json::json!({ "post_id": created["id"], "dir": 1 });
    let response = client
        .post(format!("{address}/vote"))
        .header("authorization", &bearer)
        .json(&vote)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = client
        .delete(format!("{address}/users/me"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    token
}

//! No secret reaches a log: a full journey through the real binary, logging at `debug`, on
//! PostgreSQL with a password in `DATABASE_URL` (the server's trust authentication accepts
//! any password, so it can be a marker).

use api_tests::{Backend, StatusCode, TestDatabase, expect_empty, expect_json, id_of};

use crate::support::{SECRET_KEY, Service};

const PASSWORD: &str = "journey-password-7Qx";
const DB_PASSWORD: &str = "journey-db-password-3Kv";
const SMTP_PASSWORD: &str = "journey-smtp-password-8Wd";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journey_logs_no_password_token_or_secret() {
    let Some(database) = TestDatabase::create_or_skip(Backend::Postgres).await else {
        return;
    };
    let mut url = reqwest::Url::parse(database.url()).expect("the database URL parses");
    url.set_password(Some(DB_PASSWORD))
        .expect("the database URL takes a password");
    // An SMTP server where nothing listens: the verification mail fails, and is retried.
    let smtp_url = format!("smtp://mailer:{SMTP_PASSWORD}@127.0.0.1:1");
    let mut service = Service::start(&[
        ("DATABASE_URL", url.as_str()),
        ("RUST_LOG", "debug"),
        ("SMTP_URL", &smtp_url),
    ]);

    let token = journey(&service).await;
    service.kill_9();
    let logs = service.logs();

    assert!(
        logs.contains("route=\"/login\""),
        "the journey was logged:\n{logs}"
    );
    for (what, secret) in [
        ("the password", PASSWORD),
        ("the token", token.as_str()),
        ("SECRET_KEY", SECRET_KEY),
        ("the database password", DB_PASSWORD),
        ("the SMTP password", SMTP_PASSWORD),
    ] {
        assert!(
            !logs.contains(secret),
            "{what} appears in the logs:\n{logs}"
        );
    }
}

/// Registers, logs in both ways, writes, reads, votes and deletes; returns a token.
async fn journey(service: &Service) -> String {
    let api = &service.api;
    let email = "journey@example.org";
    let response = api.register(email, PASSWORD).await;
    expect_json(response, StatusCode::CREATED, "registering").await;
    let response = api
        .login_form(&[("username", email), ("password", PASSWORD)])
        .await;
    expect_json(response, StatusCode::OK, "logging in with a form").await;
    let token = api.login(email, PASSWORD).await;
    let response = api.login_json(email, &format!("{PASSWORD}-wrong")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let post = serde_json::json!({ "title": "journey", "content": "through the logs" });
    let response = api.create_post(&token, &post).await;
    let post = id_of(&expect_json(response, StatusCode::CREATED, "posting").await);
    for path in [
        "/posts".to_owned(),
        format!("/posts/{post}"),
        "/users/me".into(),
    ] {
        let response = api.get(&path, Some(&token)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let response = api.vote(&token, post, 1).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = api.delete("/users/me", Some(&token)).await;
    expect_empty(response, StatusCode::NO_CONTENT, "deleting the account").await;
    token
}

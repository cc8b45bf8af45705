//! Mail as its recipients meet it: a real SMTP server ([`Mailbox`]) receives what the
//! service sends, and the tests read the links in it. Registering mails a verification
//! link whose token works once; a newer one voids the older; writes can require a verified
//! address; a mail survives an SMTP outage and is dropped after `MAIL_RETRY_HOURS` without
//! holding up the mails after it.

use std::time::Duration;

use api_tests::{
    Mailbox, PUBLIC_URL, StatusCode, TestApp, Value, app_mailing_to, expect_empty, expect_invalid,
    expect_json, expect_problem, header, json, query_i64, unique_email,
};

/// How long a test waits for a mail that should come.
const MAIL_WAIT: Duration = Duration::from_secs(30);

async fn me(app: &TestApp, token: &str) -> Value {
    expect_json(
        app.get("/users/me", Some(token)).await,
        StatusCode::OK,
        "GET /users/me",
    )
    .await
}

/// `POST /users/me/verification` as the caller of `token`.
async fn ask_for_a_new_mail(app: &TestApp, token: &str) -> api_tests::Response {
    app.post("/users/me/verification", Some(token), &json!({}))
        .await
}

async fn verify(app: &TestApp, token: &str) -> api_tests::Response {
    app.post("/users/verify", None, &json!({ "token": token }))
        .await
}

async fn registering_mails_a_link_whose_token_verifies_the_address_once(app: TestApp) {
    let mailbox = Mailbox::start();
    let app = app_mailing_to(app.backend, &mailbox, |_| {}).await;
    let user = app.create_user_and_login().await;
    assert_eq!(me(&app, &user.token).await["email_verified"], false);

    let mails = mailbox.wait_for_mails_to(&user.email, 1, MAIL_WAIT).await;
    let mail = &mails[0];
    assert!(mail.subject().contains("Verify"), "{}", mail.raw);
    assert!(
        mail.header("From")
            .unwrap_or_default()
            .contains("noreply@example.org"),
        "{}",
        mail.raw
    );
    assert!(mail.message_id().ends_with("@example.org>"), "{}", mail.raw);
    for part in ["text/plain", "text/html", "multipart/alternative"] {
        assert!(mail.raw.contains(part), "a {part} part: {}", mail.raw);
    }
    let token = mail.token(PUBLIC_URL);
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    assert!(
        mail.decoded_body()
            .contains(&format!("href=\"{}\"", mail.link(PUBLIC_URL))),
        "the HTML part links too: {}",
        mail.raw
    );

    expect_empty(
        verify(&app, &token).await,
        StatusCode::NO_CONTENT,
        "the token",
    )
    .await;
    assert_eq!(me(&app, &user.token).await["email_verified"], true);
    expect_invalid(verify(&app, &token).await, "token", "the token again").await;
    expect_invalid(
        verify(&app, "not-a-token").await,
        "token",
        "a made-up token",
    )
    .await;

    // The stored token is its hash, never the token itself.
    let db = app.database().await;
    let stored = query_i64(
        &db,
        &format!("SELECT COUNT(*) FROM account_tokens WHERE token_hash = '{token}'"),
    )
    .await;
    assert_eq!(stored, 0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mailbox.mails_to(&user.email).len(), 1, "one mail, once");
}

async fn a_new_mail_within_the_resend_interval_is_429_and_a_newer_token_voids_the_older(
    app: TestApp,
) {
    let mailbox = Mailbox::start();
    let app = app_mailing_to(app.backend, &mailbox, |settings| {
        settings.verification_resend_seconds = 1.0;
    })
    .await;
    let user = app.create_user_and_login().await;
    let first = mailbox.wait_for_mails_to(&user.email, 1, MAIL_WAIT).await[0].clone();

    // The registration's mail counts: a request at once is too soon.
    let response = ask_for_a_new_mail(&app, &user.token).await;
    let retry_after = header(&response, "Retry-After").expect("a Retry-After");
    expect_problem(response, StatusCode::TOO_MANY_REQUESTS, "at once").await;
    assert!(matches!(retry_after.as_str(), "1"), "{retry_after}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = ask_for_a_new_mail(&app, &user.token).await;
    expect_empty(response, StatusCode::ACCEPTED, "a second later").await;
    let response = ask_for_a_new_mail(&app, &user.token).await;
    assert!(header(&response, "Retry-After").is_some());
    expect_problem(response, StatusCode::TOO_MANY_REQUESTS, "again at once").await;

    let mails = mailbox.wait_for_mails_to(&user.email, 2, MAIL_WAIT).await;
    let second = &mails[1];
    assert_ne!(first.message_id(), second.message_id());
    let (old, new) = (first.token(PUBLIC_URL), second.token(PUBLIC_URL));
    assert_ne!(old, new);
    expect_invalid(verify(&app, &old).await, "token", "the voided token").await;
    expect_empty(
        verify(&app, &new).await,
        StatusCode::NO_CONTENT,
        "the newer token",
    )
    .await;
    assert_eq!(me(&app, &user.token).await["email_verified"], true);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = ask_for_a_new_mail(&app, &user.token).await;
    expect_problem(response, StatusCode::CONFLICT, "already verified").await;
    let response = app.post("/users/me/verification", None, &json!({})).await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "no token").await;
}

async fn an_expired_token_is_422_naming_token(app: TestApp) {
    let mailbox = Mailbox::start();
    let app = app_mailing_to(app.backend, &mailbox, |settings| {
        settings.verification_token_hours = 1.0 / 3600.0;
    })
    .await;
    let user = app.create_user_and_login().await;
    let mail = mailbox.wait_for_mails_to(&user.email, 1, MAIL_WAIT).await[0].clone();
    assert!(
        mail.decoded_body().contains("within 1 second:"),
        "{}",
        mail.raw
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let problem = expect_invalid(
        verify(&app, &mail.token(PUBLIC_URL)).await,
        "token",
        "expired",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem}"
    );
    assert_eq!(me(&app, &user.token).await["email_verified"], false);
}

async fn require_verified_email_refuses_writes_until_the_address_is_verified(app: TestApp) {
    let mailbox = Mailbox::start();
    let app = app_mailing_to(app.backend, &mailbox, |settings| {
        settings.require_verified_email = true;
    })
    .await;
    let user = app.create_user_and_login().await;
    let post = json!({"title": "Hello", "content": "world"});
    let problem = expect_problem(
        app.create_post(&user.token, &post).await,
        StatusCode::FORBIDDEN,
        "an unverified write",
    )
    .await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("POST /users/me/verification"), "{detail}");
    expect_problem(
        app.vote(&user.token, 1, 1).await,
        StatusCode::FORBIDDEN,
        "an unverified vote",
    )
    .await;
    // Reading needs nothing.
    expect_json(
        app.get("/posts", Some(&user.token)).await,
        StatusCode::OK,
        "a read",
    )
    .await;

    let mail = mailbox.wait_for_mails_to(&user.email, 1, MAIL_WAIT).await[0].clone();
    expect_empty(
        verify(&app, &mail.token(PUBLIC_URL)).await,
        StatusCode::NO_CONTENT,
        "verify",
    )
    .await;
    expect_json(
        app.create_post(&user.token, &post).await,
        StatusCode::CREATED,
        "a verified write",
    )
    .await;
}

async fn a_mail_recorded_while_the_smtp_server_is_down_arrives_once_when_it_is_back(app: TestApp) {
    let mut mailbox = Mailbox::stopped();
    let app = app_mailing_to(app.backend, &mailbox, |_| {}).await;
    let email = unique_email();
    app.create_user(&email, "a password of the outage").await;
    // A few attempts fail while nothing listens.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(mailbox.mails().is_empty());
    mailbox.start_server();
    let mails = mailbox.wait_for_mails_to(&email, 1, MAIL_WAIT).await;
    let token = mails[0].token(PUBLIC_URL);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mailbox.mails_to(&email).len(), 1, "exactly once");
    expect_empty(
        verify(&app, &token).await,
        StatusCode::NO_CONTENT,
        "its token",
    )
    .await;
    let db = app.database().await;
    assert_eq!(
        query_i64(&db, "SELECT COUNT(*) FROM mails").await,
        0,
        "the outbox is empty"
    );
}

async fn a_mail_failing_for_mail_retry_hours_is_dropped_and_later_mails_still_arrive(app: TestApp) {
    let mut mailbox = Mailbox::stopped();
    let app = app_mailing_to(app.backend, &mailbox, |settings| {
        settings.mail_retry_hours = 2.0 / 3600.0;
    })
    .await;
    let dropped = unique_email();
    app.create_user(&dropped, "a password of the lost mail")
        .await;
    let db = app.database().await;
    assert_eq!(query_i64(&db, "SELECT COUNT(*) FROM mails").await, 1);
    // Tried at once, after 1 s, and at the end of the 2 s: then dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while query_i64(&db, "SELECT COUNT(*) FROM mails").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the mail was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    mailbox.start_server();
    let later = unique_email();
    app.create_user(&later, "a password of the next mail").await;
    mailbox.wait_for_mails_to(&later, 1, MAIL_WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        mailbox.mails_to(&dropped).is_empty(),
        "the dropped mail stays dropped"
    );
}

async fn a_failing_mail_does_not_hold_up_the_mails_recorded_after_it(app: TestApp) {
    let mut mailbox = Mailbox::stopped();
    let app = app_mailing_to(app.backend, &mailbox, |_| {}).await;
    let first = unique_email();
    app.create_user(&first, "a password of the first mail")
        .await;
    // The first mail has failed a few times and waits for its next attempt.
    tokio::time::sleep(Duration::from_secs(4)).await;
    mailbox.start_server();
    let second = unique_email();
    app.create_user(&second, "a password of the second mail")
        .await;
    // The second goes at once, before the first's next attempt (8 s after it was recorded).
    mailbox
        .wait_for_mails_to(&second, 1, Duration::from_secs(3))
        .await;
    mailbox.wait_for_mails_to(&first, 1, MAIL_WAIT).await;
}

api_tests::on_both_backends!(
    registering_mails_a_link_whose_token_verifies_the_address_once,
    a_new_mail_within_the_resend_interval_is_429_and_a_newer_token_voids_the_older,
    an_expired_token_is_422_naming_token,
    require_verified_email_refuses_writes_until_the_address_is_verified,
    a_mail_recorded_while_the_smtp_server_is_down_arrives_once_when_it_is_back,
    a_mail_failing_for_mail_retry_hours_is_dropped_and_later_mails_still_arrive,
    a_failing_mail_does_not_hold_up_the_mails_recorded_after_it,
);

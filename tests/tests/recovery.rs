//! A forgotten password: `POST /password-reset` mails a link (read from a real SMTP server)
//! whose token, posted to `POST /password-reset/confirm` with a new password, changes it once
//! and ends every session; the request answers alike, in the same time, whether or not the
//! address has an account; requests are limited per address and per client. `PUT
//! /users/me/email` moves an account to a new address once a link mailed there is opened,
//! and tells the old address.

use std::time::{Duration, Instant};

use api_tests::{
    Mailbox, PUBLIC_URL, StatusCode, TestApp, app_mailing_to, check_invalid_fields, expect_empty,
    expect_invalid, expect_json, expect_problem, header, json, on_both_backends, query_i64,
    shown_limits, unique_email,
};

const MAIL_WAIT: Duration = Duration::from_secs(30);

async fn ask_for_a_reset(app: &TestApp, email: &str) -> api_tests::Response {
    app.post("/password-reset", None, &json!({ "email": email }))
        .await
}

async fn reset(app: &TestApp, token: &str, new_password: &str) -> api_tests::Response {
    app.post(
        "/password-reset/confirm",
        None,
        &json!({ "token": token, "new_password": new_password }),
    )
    .await
}

/// The tokens of the reset mails `email` has received, oldest first, once there are `count`.
async fn reset_tokens(mailbox: &Mailbox, email: &str, count: usize) -> Vec<String> {
    let mut waited = Duration::ZERO;
    loop {
        let tokens: Vec<String> = mailbox
            .mails_to(email)
            .iter()
            .filter(|mail| mail.subject().contains("Reset"))
            .map(|mail| mail.token(PUBLIC_URL))
            .collect();
        if tokens.len() >= count || waited >= MAIL_WAIT {
            assert_eq!(tokens.len(), count, "reset mails to {email}");
            return tokens;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
}

async fn a_reset_link_sets_the_password_once_and_ends_every_session(app: TestApp) {
    let mailbox = Mailbox::start();
    let app = app_mailing_to(app.backend, &mailbox, |_| {}).await;
    let user = app.create_user_and_login().await;
    let other_device = app.start_session(&user.email, &user.password).await;

    let answer = ask_for_a_reset(&app, &user.email.to_uppercase()).await;
    expect_empty(answer, StatusCode::ACCEPTED, "asking for a reset").await;
    let token = reset_tokens(&mailbox, &user.email, 1).await.remove(0);
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    let mail = mailbox
        .mails_to(&user.email)
        .into_iter()
        .find(|mail| mail.subject().contains("Reset"))
        .expect("the reset mail");
    assert!(
        mail.link(PUBLIC_URL)
            .starts_with(&format!("{PUBLIC_URL}/reset-password?token=")),
        "{}",
        mail.raw
    );

    let done = reset(&app, &token, "a brand new password").await;
    expect_empty(done, StatusCode::NO_CONTENT, "resetting").await;
    for (token, what) in [
        (&user.token, "the first session"),
        (&other_device.access_token, "the second"),
    ] {
        expect_problem(
            app.get("/users/me", Some(token)).await,
            StatusCode::UNAUTHORIZED,
            &format!("{what} has ended"),
        )
        .await;
    }
    expect_problem(
        app.refresh(&other_device.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "its refresh token too",
    )
    .await;
    expect_problem(
        app.login_json(&user.email, &user.password).await,
        StatusCode::UNAUTHORIZED,
        "the old password",
    )
    .await;
    let token_now = app.login(&user.email, "a brand new password").await;
    let me = expect_json(
        app.get("/users/me", Some(&token_now)).await,
        StatusCode::OK,
        "GET /users/me",
    )
    .await;
    assert_eq!(
        me["email_verified"], true,
        "the mail reached the address: {me}"
    );

    let again = reset(&app, &token, "yet another password").await;
    expect_invalid(again, "token", "a used token").await;
    let short = app
        .post(
            "/password-reset/confirm",
            None,
            &json!({ "new_password": "short" }),
        )
        .await;
    check_invalid_fields(short, &["new_password", "token"], "both broken")
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
}

async fn an_unknown_address_gets_the_same_answer_and_no_mail(app: TestApp) {
    let mailbox = Mailbox::start();
    let app = app_mailing_to(app.backend, &mailbox, |_| {}).await;
    let user = app.create_user_and_login().await;
    let nobody = unique_email();

    let known = ask_for_a_reset(&app, &user.email).await;
    let unknown = ask_for_a_reset(&app, &nobody).await;
    assert_eq!(known.status(), unknown.status());
    for name in [
        "content-type",
        "content-length",
        "retry-after",
        "ratelimit-policy",
    ] {
        assert_eq!(header(&known, name), header(&unknown, name), "{name}");
    }
    // What is left for each address is the same; the client has asked once more.
    let (known_limits, unknown_limits) = (shown_limits(&known), shown_limits(&unknown));
    assert_eq!(
        known_limits[0].1.r, unknown_limits[0].1.r,
        "{known_limits:?}"
    );
    assert_eq!(
        known_limits[1].1.r,
        unknown_limits[1].1.r + 1,
        "{known_limits:?}"
    );
    assert_eq!(
        known.text().await.unwrap(),
        unknown.text().await.unwrap(),
        "the same body"
    );
    reset_tokens(&mailbox, &user.email, 1).await;
    // The known address's mail came; the unknown one's would have come with it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        mailbox.mails_to(&nobody).is_empty(),
        "no mail to an address without an account"
    );
}

async fn a_newer_reset_voids_the_older_and_a_token_expires(app: TestApp) {
    let mailbox = Mailbox::start();
    let app = app_mailing_to(app.backend, &mailbox, |settings| {
        settings.password_reset_token_minutes = 0.05;
    })
    .await;
    let user = app.create_user_and_login().await;
    for count in 1..=2 {
        let answer = ask_for_a_reset(&app, &user.email).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        // An unsent mail is replaced by a newer one: each is waited for before the next.
        reset_tokens(&mailbox, &user.email, count).await;
    }
    let tokens = reset_tokens(&mailbox, &user.email, 2).await;
    expect_invalid(
        reset(&app, &tokens[0], "a brand new password").await,
        "token",
        "the older token",
    )
    .await;
    // Three seconds after its mail, the newer one has expired.
    tokio::time::sleep(Duration::from_secs(3)).await;
    expect_invalid(
        reset(&app, &tokens[1], "a brand new password").await,
        "token",
        "an expired token",
    )
    .await;
    app.login(&user.email, &user.password).await;
}

async fn requests_are_limited_per_address_and_per_client(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |settings| {
        settings.password_reset_max_per_email = 2;
        settings.password_reset_max_per_address = 5;
    })
    .await;
    let user = app.create_user_and_login().await;
    let window = 15 * 60;
    let mut from_client = 0;
    for email in [user.email.clone(), unique_email()] {
        for n in 1..=2 {
            let answer = ask_for_a_reset(&app, &email).await;
            from_client += 1;
            assert_left(
                &answer,
                &[
                    ("resets-email", 2, 2 - n),
                    ("resets-client", 5, 5 - from_client),
                ],
                "each answer shows both limits",
            );
            assert_eq!(answer.status(), StatusCode::ACCEPTED);
        }
        let refused = ask_for_a_reset(&app, &email).await;
        let retry = header(&refused, "retry-after").expect("a Retry-After");
        let limits = shown_limits(&refused);
        assert_left(
            &refused,
            &[
                ("resets-email", 2, 0),
                ("resets-client", 5, 5 - from_client),
            ],
            "a request refused for its address costs its client nothing",
        );
        assert_eq!(retry, limits[0].1.t.to_string(), "the address's wait");
        assert!(
            limits.iter().all(|(_, limit)| limit.w == window),
            "{limits:?}"
        );
        expect_problem(
            refused,
            StatusCode::TOO_MANY_REQUESTS,
            "a third for one address",
        )
        .await;
    }
    // Four requests counted so far from this client: one more, then none.
    let answer = ask_for_a_reset(&app, &unique_email()).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let refused = ask_for_a_reset(&app, &unique_email()).await;
    assert_left(
        &refused,
        &[("resets-email", 2, 2), ("resets-client", 5, 0)],
        "a request refused for its client costs its address nothing",
    );
    expect_problem(
        refused,
        StatusCode::TOO_MANY_REQUESTS,
        "a sixth from one client",
    )
    .await;
}

async fn a_flood_from_one_client_fills_no_table(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |settings| {
        settings.password_reset_max_per_address = 5;
    })
    .await;
    let mut refused = 0;
    for _ in 0..40 {
        let answer = ask_for_a_reset(&app, &unique_email()).await;
        match answer.status() {
            StatusCode::ACCEPTED => {}
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(refused, 35, "all but the client's five");
    let db = app.database().await;
    // Each request accepted is counted once per limit; a refused one leaves nothing.
    assert_eq!(
        query_i64(&db, "SELECT COUNT(*) FROM limit_hits").await,
        10,
        "five requests, each by its address and its client"
    );
    assert!(query_i64(&db, "SELECT COUNT(*) FROM password_resets").await <= 5);
    assert_eq!(
        query_i64(&db, "SELECT COUNT(*) FROM mails").await,
        0,
        "no mail to an address without an account"
    );
}

/// Checks the limits a response shows: each one's name, quota and what is left.
#[track_caller]
fn assert_left(response: &api_tests::Response, expected: &[(&str, u64, u64)], context: &str) {
    let shown: Vec<(String, u64, u64)> = shown_limits(response)
        .into_iter()
        .map(|(name, limit)| (name, limit.q, limit.r))
        .collect();
    let expected: Vec<(String, u64, u64)> = expected
        .iter()
        .map(|&(name, q, r)| (name.to_owned(), q, r))
        .collect();
    assert_eq!(shown, expected, "{context}");
}

async fn verification_and_address_change_mails_are_limited_per_account_and_per_client(
    app: TestApp,
) {
    let mailbox = Mailbox::start();
    let app = app_mailing_to(app.backend, &mailbox, |settings| {
        settings.mail_requests_max_per_address = 3;
        settings.verification_resend_seconds = 2.0;
    })
    .await;
    let ask = |token: String| {
        let app = &app;
        async move {
            app.post("/users/me/verification", Some(&token), &json!({}))
                .await
        }
    };
    let mover = app.create_user_and_login().await;

    // One address change an account per interval; a refusal costs the client nothing.
    let moved = change_email(&app, &mover.token, &unique_email(), &mover.password).await;
    assert_left(
        &moved,
        &[("mails-client", 3, 2), ("email-change", 1, 0)],
        "an address change",
    );
    expect_empty(moved, StatusCode::ACCEPTED, "an address change").await;
    let again = change_email(&app, &mover.token, &unique_email(), &mover.password).await;
    assert_left(
        &again,
        &[("mails-client", 3, 2), ("email-change", 1, 0)],
        "a second at once",
    );
    let limits = shown_limits(&again);
    assert_eq!(limits[1].1.w, 2, "the interval");
    assert_eq!(
        header(&again, "retry-after"),
        Some(limits[1].1.t.to_string())
    );
    expect_problem(again, StatusCode::TOO_MANY_REQUESTS, "a second at once").await;

    // The mail registering sent counts as the account's verification mail of the interval.
    let newcomer = app.create_user_and_login().await;
    let early = ask(newcomer.token.clone()).await;
    assert_left(
        &early,
        &[("mails-client", 3, 2), ("verification", 1, 0)],
        "right after registering",
    );
    expect_problem(
        early,
        StatusCode::TOO_MANY_REQUESTS,
        "right after registering",
    )
    .await;

    // Past the interval, each account may ask; the client's mails run out all the same.
    let others = [
        app.create_user_and_login().await,
        app.create_user_and_login().await,
    ];
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for (n, user) in [&newcomer, &others[0]].into_iter().enumerate() {
        let asked = ask(user.token.clone()).await;
        assert_left(
            &asked,
            &[("mails-client", 3, 1 - n as u64), ("verification", 1, 0)],
            "a new verification mail",
        );
        expect_empty(asked, StatusCode::ACCEPTED, "a new verification mail").await;
    }
    let refused = ask(others[1].token.clone()).await;
    assert_left(
        &refused,
        &[("mails-client", 3, 0)],
        "a fourth from one client",
    );
    assert!(header(&refused, "retry-after").is_some());
    expect_problem(
        refused,
        StatusCode::TOO_MANY_REQUESTS,
        "a fourth from one client",
    )
    .await;
    let refused = change_email(&app, &mover.token, &unique_email(), &mover.password).await;
    expect_problem(
        refused,
        StatusCode::TOO_MANY_REQUESTS,
        "an address change from the same client",
    )
    .await;
    mailbox
        .wait_for_mails_to(&newcomer.email, 2, MAIL_WAIT)
        .await;
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

async fn the_answer_takes_the_same_time_whether_or_not_the_address_has_an_account(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |settings| {
        settings.password_reset_max_per_email = 0;
        settings.password_reset_max_per_address = 0;
    })
    .await;
    let known = app.create_user_and_login().await.email;
    let unknown = unique_email();
    let ask = |email: String| {
        let app = &app;
        async move {
            let started = Instant::now();
            let response = ask_for_a_reset(app, &email).await;
            let elapsed = started.elapsed();
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            elapsed
        }
    };
    ask(known.clone()).await;
    ask(unknown.clone()).await;
    // Interleaved (ABBA), as the login's timing test: a busy machine may spoil a round, a
    // real difference shows in every one.
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let (mut with_account, mut without) = (Vec::new(), Vec::new());
        for n in 0..30 {
            if n % 2 == 0 {
                with_account.push(ask(known.clone()).await);
                without.push(ask(unknown.clone()).await);
            } else {
                without.push(ask(unknown.clone()).await);
                with_account.push(ask(known.clone()).await);
            }
        }
        let (a, b) = (median(&mut with_account), median(&mut without));
        let ratio = a.as_secs_f64().max(b.as_secs_f64()) / a.as_secs_f64().min(b.as_secs_f64());
        rounds.push(format!(
            "with an account {a:?}, without {b:?} (ratio {ratio:.3})"
        ));
        if ratio <= 1.15 {
            eprintln!("password reset timing: {}", rounds.join("; "));
            return;
        }
    }
    panic!(
        "the medians differ by more than 15% in every round: {}",
        rounds.join("; ")
    );
}

async fn change_email(
    app: &TestApp,
    token: &str,
    new_email: &str,
    current_password: &str,
) -> api_tests::Response {
    app.put(
        "/users/me/email",
        Some(token),
        &json!({ "new_email": new_email, "current_password": current_password }),
    )
    .await
}

/// The token of the address change's confirmation mail to `email`, once it came.
async fn confirmation_token(mailbox: &Mailbox, email: &str) -> String {
    let mails = mailbox.wait_for_mails_to(email, 1, MAIL_WAIT).await;
    assert!(mails[0].subject().contains("Confirm"), "{}", mails[0].raw);
    mails[0].token(PUBLIC_URL)
}

async fn an_address_change_takes_the_link_mailed_to_the_new_address(app: TestApp) {
    let mailbox = Mailbox::start();
    let app = app_mailing_to(app.backend, &mailbox, |_| {}).await;
    let user = app.create_user_and_login().await;
    let new_email = unique_email();

    let answer = change_email(&app, &user.token, &new_email.to_uppercase(), &user.password).await;
    expect_empty(answer, StatusCode::ACCEPTED, "asking to change the address").await;
    let token = confirmation_token(&mailbox, &new_email).await;
    let notices = mailbox.wait_for_mails_to(&user.email, 2, MAIL_WAIT).await;
    let notice = notices
        .iter()
        .find(|mail| mail.subject().contains("change"))
        .expect("a notice to the old address");
    assert!(
        notice.decoded_body().contains("change your password"),
        "it says how to secure the account: {}",
        notice.raw
    );
    let me = expect_json(
        app.get("/users/me", Some(&user.token)).await,
        StatusCode::OK,
        "before",
    )
    .await;
    assert_eq!(
        me["email"], user.email,
        "nothing changes before the link is opened"
    );

    let verified = app
        .post("/users/verify", None, &json!({ "token": token }))
        .await;
    expect_empty(verified, StatusCode::NO_CONTENT, "opening the link").await;
    let me = expect_json(
        app.get("/users/me", Some(&user.token)).await,
        StatusCode::OK,
        "after",
    )
    .await;
    assert_eq!(me["email"], new_email);
    assert_eq!(me["email_verified"], true);
    app.login(&new_email, &user.password).await;
    expect_problem(
        app.login_json(&user.email, &user.password).await,
        StatusCode::UNAUTHORIZED,
        "the old address no longer logs in",
    )
    .await;
    let again = app
        .post("/users/verify", None, &json!({ "token": token }))
        .await;
    expect_invalid(again, "token", "the link used twice").await;
}

async fn an_address_change_needs_the_password_and_a_free_address(app: TestApp) {
    let mailbox = Mailbox::start();
    let app = app_mailing_to(app.backend, &mailbox, |settings| {
        settings.login_max_failures = 2;
    })
    .await;
    let user = app.create_user_and_login().await;
    let other = app.create_user_and_login().await;

    let taken = change_email(&app, &user.token, &other.email, &user.password).await;
    expect_problem(taken, StatusCode::CONFLICT, "another account's address").await;
    let invalid = change_email(&app, &user.token, "ann", "").await;
    check_invalid_fields(invalid, &["current_password", "new_email"], "both broken")
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    for _ in 0..2 {
        let wrong = change_email(&app, &user.token, &unique_email(), "not the password").await;
        expect_problem(wrong, StatusCode::FORBIDDEN, "a wrong current password").await;
    }
    // Each wrong password was a failed login: the account is locked now.
    let locked = app.login_json(&user.email, &user.password).await;
    expect_problem(
        locked,
        StatusCode::TOO_MANY_REQUESTS,
        "locked by failed logins",
    )
    .await;
    expect_problem(
        change_email(&app, &user.token, &unique_email(), &user.password).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the right password while locked",
    )
    .await;

    // Taken meanwhile: someone registers the new address before the link is opened.
    let third = app.create_user_and_login().await;
    let wanted = unique_email();
    let answer = change_email(&app, &third.token, &wanted, &third.password).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let token = confirmation_token(&mailbox, &wanted).await;
    app.create_user(&wanted, "someone else's password").await;
    let late = app
        .post("/users/verify", None, &json!({ "token": token }))
        .await;
    expect_problem(
        late,
        StatusCode::CONFLICT,
        "the address was taken meanwhile",
    )
    .await;
    let me = expect_json(
        app.get("/users/me", Some(&third.token)).await,
        StatusCode::OK,
        "unchanged",
    )
    .await;
    assert_eq!(me["email"], third.email);
}

on_both_backends!(
    a_reset_link_sets_the_password_once_and_ends_every_session,
    an_unknown_address_gets_the_same_answer_and_no_mail,
    a_newer_reset_voids_the_older_and_a_token_expires,
    requests_are_limited_per_address_and_per_client,
    verification_and_address_change_mails_are_limited_per_account_and_per_client,
    a_flood_from_one_client_fills_no_table,
    the_answer_takes_the_same_time_whether_or_not_the_address_has_an_account,
    an_address_change_takes_the_link_mailed_to_the_new_address,
    an_address_change_needs_the_password_and_a_free_address,
);

//! `POST /users`, `GET /users/me`, `GET /users/{id}`, `DELETE /users/me`.

use api_tests::{
    Failures, Method, StatusCode, TestApp, Value, assert_account, assert_profile, check_invalid,
    check_invalid_fields, check_json, check_problem, expect_empty, expect_json, expect_problem,
    header, id_of, ids, json, on_both_backends, query_i64, query_strings, unique_email,
};

async fn registering_returns_201_with_the_user_and_its_location(app: TestApp) {
    let email = unique_email();
    let response = app.register(&email, "correct horse battery").await;
    let location = header(&response, "location");
    let user = expect_json(response, StatusCode::CREATED, "registering").await;

    let id = id_of(&user);
    assert_account(&user, id, &email, "the registered user");
    assert_eq!(
        location.as_deref(),
        Some(format!("/users/{id}").as_str()),
        "POST /users answers with the new user's URL in Location"
    );
}

async fn the_email_is_stored_trimmed_and_lower_cased(app: TestApp) {
    let response = app
        .register("  Ann.Lee@Example.IO ", "correct horse battery")
        .await;
    let user = expect_json(response, StatusCode::CREATED, "registering").await;
    assert_eq!(user["email"], "ann.lee@example.io");

    let token = app
        .login("ann.lee@example.io", "correct horse battery")
        .await;
    let me = expect_json(
        app.get("/users/me", Some(&token)).await,
        StatusCode::OK,
        "GET /users/me",
    )
    .await;
    assert_eq!(me["email"], "ann.lee@example.io");
}

async fn an_email_registered_twice_is_409(app: TestApp) {
    let email = unique_email();
    let first = app.register(&email, "correct horse battery").await;
    assert_eq!(first.status(), StatusCode::CREATED);

    let second = app.register(&email, "another password").await;
    expect_problem(
        second,
        StatusCode::CONFLICT,
        "registering the same email again",
    )
    .await;
}

async fn a_case_variant_of_a_registered_email_is_409(app: TestApp) {
    let first = app
        .register("ann@example.io", "correct horse battery")
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);

    let mut failures = Failures::new();
    for variant in ["Ann@Example.IO", "ANN@EXAMPLE.IO", " ann@example.io "] {
        let response = app.register(variant, "another password").await;
        let context = format!("registering {variant:?}");
        failures.check(check_problem(response, StatusCode::CONFLICT, &context).await);
    }
    failures.assert_none();
}

/// Registers `first`, then each of `others`, expecting a 201 and then 409s.
async fn check_look_alikes_conflict(app: &TestApp, first: &str, others: &[&str]) {
    let response = app.register(first, "correct horse battery").await;
    expect_json(response, StatusCode::CREATED, first).await;
    let mut failures = Failures::new();
    for other in others {
        let response = app.register(other, "another password").await;
        let context = format!("registering {other:?} beside {first:?}");
        failures.check(check_problem(response, StatusCode::CONFLICT, &context).await);
    }
    failures.assert_none();
    let db = app.database().await;
    let stored = query_strings(&db, "SELECT email FROM users").await;
    assert_eq!(stored.len(), 1, "one account: {stored:?}");
}

async fn addresses_that_look_like_a_registered_one_are_409(app: TestApp) {
    check_look_alikes_conflict(
        &app,
        "victim@example.org",
        // Fullwidth `ｖ`, Cyrillic `е`, Cyrillic `і` and `с` upper-cased.
        &[
            "\u{ff56}ictim@example.org",
            "victim@\u{435}xample.org",
            "V\u{406}\u{421}TIM@EXAMPLE.ORG",
        ],
    )
    .await;
}

async fn an_account_a_bulk_load_inserted_gets_its_look_alike_key_as_the_service_starts(
    app: TestApp,
) {
    use sea_orm::ConnectionTrait;
    let db = app.database().await;
    let template = app.create_user_and_login().await;
    // As a bulk load writes an account: knowing nothing of the look-alike key.
    db.execute_unprepared(&format!(
        "INSERT INTO users (email, password_hash, created_at, credentials_version) \
         SELECT 'loaded@example.org', password_hash, created_at, 0 FROM users WHERE id = {}",
        template.id
    ))
    .await
    .expect("the account is loaded");
    let started = app.spawn_sibling().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let key = "SELECT email_skeleton FROM users WHERE email = 'loaded@example.org'";
    while query_strings(&db, key).await == [String::new()] {
        assert!(
            std::time::Instant::now() < deadline,
            "the loaded account has a look-alike key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let look_alike = started
        // A Cyrillic `о`, which NFKC leaves as it is.
        .register("l\u{43e}aded@example.org", "correct horse")
        .await;
    expect_problem(
        look_alike,
        StatusCode::CONFLICT,
        "a look-alike of the loaded account",
    )
    .await;
}

async fn a_plain_address_is_409_beside_its_registered_look_alike(app: TestApp) {
    // Addresses that look alike are one account, whichever came first.
    check_look_alikes_conflict(
        &app,
        "victim@\u{435}xample.org",
        &["victim@example.org", "\u{ff56}ictim@example.org"],
    )
    .await;
}

async fn plain_ascii_addresses_that_look_alike_are_two_people(app: TestApp) {
    for email in ["bob1@example.org", "bobl@example.org"] {
        let response = app.register(email, "correct horse battery").await;
        expect_json(response, StatusCode::CREATED, email).await;
    }
}

async fn invalid_registrations_are_422_naming_the_field(app: TestApp) {
    let long_email = format!(
        "{}@{}.{}.{}.com",
        "a".repeat(64),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(58)
    );
    assert_eq!(long_email.len(), 255);
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({ "password": "correct horse battery" }),
            "email",
            "a missing email",
        ),
        (
            json!({ "email": unique_email() }),
            "password",
            "a missing password",
        ),
        (
            json!({ "email": "not-an-email", "password": "correct horse battery" }),
            "email",
            "an email without @",
        ),
        (
            json!({ "email": "ann@", "password": "correct horse battery" }),
            "email",
            "an email without a domain",
        ),
        (
            json!({ "email": "", "password": "correct horse battery" }),
            "email",
            "an empty email",
        ),
        (
            json!({ "email": long_email, "password": "correct horse battery" }),
            "email",
            "an email of 255 characters",
        ),
        (
            json!({ "email": 5, "password": "correct horse battery" }),
            "email",
            "a number as the email",
        ),
        (
            json!({ "email": null, "password": "correct horse battery" }),
            "email",
            "a null email",
        ),
        (
            json!({ "email": unique_email(), "password": "seven77" }),
            "password",
            "a password of 7 characters",
        ),
        (
            json!({ "email": unique_email(), "password": "" }),
            "password",
            "an empty password",
        ),
        (
            json!({ "email": unique_email(), "password": "é".repeat(7) }),
            "password",
            "a password of 7 characters in 14 bytes",
        ),
        (
            json!({ "email": unique_email(), "password": "a".repeat(129) }),
            "password",
            "a password of 129 characters",
        ),
        (
            json!({ "email": unique_email(), "password": 12345678 }),
            "password",
            "a number as the password",
        ),
        (
            json!({ "email": unique_email(), "password": true }),
            "password",
            "a boolean as the password",
        ),
    ];
    let mut failures = app
        .check_invalid_bodies(Method::POST, "/users", None, cases)
        .await;

    let response = app
        .post("/users", None, &json!(["not", "an", "object"]))
        .await;
    failures.check(
        check_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "an array as the body",
        )
        .await,
    );
    failures.assert_none();
}

async fn password_length_is_counted_in_characters_and_every_one_counts(app: TestApp) {
    let cases = [
        ("é".repeat(128), "128 two-byte characters"),
        ("a".repeat(128), "128 ASCII characters"),
        ("🦀".repeat(8), "8 four-byte characters"),
        ("12345678".to_owned(), "8 ASCII characters"),
        ("pass\0word".to_owned(), "a NUL character"),
    ];
    let mut failures = Failures::new();
    for (password, case) in cases {
        let email = unique_email();
        let response = app.register(&email, &password).await;
        let context = format!("registering with {case}");
        let registered = check_json(response, StatusCode::CREATED, &context).await;
        if registered.is_ok() {
            let response = app.login_json(&email, &password).await;
            failures.check(
                check_json(response, StatusCode::OK, &format!("logging in with {case}")).await,
            );
            // bcrypt reads 72 bytes: a password that differs only after them is another.
            let mut other: Vec<char> = password.chars().collect();
            if let Some(last) = other.last_mut() {
                *last = if *last == 'x' { 'y' } else { 'x' };
            }
            let other: String = other.into_iter().collect();
            let response = app.login_json(&email, &other).await;
            failures.check(
                check_problem(
                    response,
                    StatusCode::UNAUTHORIZED,
                    &format!("{case}, changed"),
                )
                .await,
            );
        }
        failures.check(registered);
    }
    failures.assert_none();
}

async fn a_display_name_or_a_dotless_domain_is_not_an_email(app: TestApp) {
    let mut failures = Failures::new();
    for email in [
        "ceo@example.org <me@evil.io>",
        "CEO <ceo@example.org>",
        "<ceo@example.org>",
        "ann@localhost",
        "ann(comment)@example.org",
        "ann@[127.0.0.1]",
    ] {
        let response = app.register(email, "correct horse battery").await;
        failures.check(check_invalid(response, "email", email).await);
    }
    failures.assert_none();
}

async fn every_broken_field_of_a_registration_is_named(app: TestApp) {
    let cases: [(Value, &[&str], &str); 3] = [
        (json!({}), &["email", "password"], "an empty object"),
        (
            json!({ "email": "ann", "password": "short" }),
            &["email", "password"],
            "a bad email and a short password",
        ),
        (
            json!({ "email": 7, "password": null }),
            &["email", "password"],
            "wrong types",
        ),
    ];
    let mut failures = Failures::new();
    for (body, fields, case) in cases {
        let response = app.post("/users", None, &body).await;
        failures.check(check_invalid_fields(response, fields, case).await);
    }
    failures.assert_none();
}

async fn an_email_of_254_characters_is_accepted(app: TestApp) {
    let email = format!(
        "{}@{}.{}.{}.com",
        "a".repeat(64),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(57)
    );
    assert_eq!(email.len(), 254);
    let response = app.register(&email, "correct horse battery").await;
    let user = expect_json(
        response,
        StatusCode::CREATED,
        "registering a 254-character email",
    )
    .await;
    assert_eq!(user["email"].as_str(), Some(email.as_str()));
}

async fn unknown_fields_in_a_registration_are_ignored(app: TestApp) {
    let email = unique_email();
    let body = json!({
        "email": email,
        "password": "correct horse battery",
        "is_admin": true,
        "password_hash": "x",
        "nickname": "ann",
    });
    let response = app.post("/users", None, &body).await;
    let user = expect_json(
        response,
        StatusCode::CREATED,
        "registering with extra fields",
    )
    .await;
    assert_account(&user, id_of(&user), &email, "the registered user");
}

async fn getting_me_returns_the_caller(app: TestApp) {
    let user = app.create_user_and_login().await;
    let _other = app.create_user_and_login().await;
    let response = app.get("/users/me", Some(&user.token)).await;
    let me = expect_json(response, StatusCode::OK, "GET /users/me").await;
    assert_account(&me, user.id, &user.email, "GET /users/me");
    assert_eq!(me["email_verified"], false, "not verified yet: {me}");
}

async fn getting_me_without_a_token_is_401(app: TestApp) {
    let response = app.get("/users/me", None).await;
    expect_problem(
        response,
        StatusCode::UNAUTHORIZED,
        "GET /users/me without a token",
    )
    .await;
}

async fn getting_a_user_by_id_returns_their_profile_without_the_email(app: TestApp) {
    let caller = app.create_user_and_login().await;
    let other = app.create_user_and_login().await;
    let response = app
        .get(&format!("/users/{}", other.id), Some(&caller.token))
        .await;
    let user = expect_json(response, StatusCode::OK, "GET /users/{id}").await;
    assert_profile(&user, other.id, "GET /users/{id}");
    let own = app
        .get(&format!("/users/{}", caller.id), Some(&caller.token))
        .await;
    let own = expect_json(own, StatusCode::OK, "GET /users/{id} of the caller").await;
    assert_profile(
        &own,
        caller.id,
        "GET /users/{id} of the caller: a profile too",
    );
}

async fn getting_an_unknown_user_is_404(app: TestApp) {
    let caller = app.create_user_and_login().await;
    let response = app.get("/users/999999", Some(&caller.token)).await;
    expect_problem(response, StatusCode::NOT_FOUND, "GET /users/999999").await;
}

async fn getting_a_user_by_id_without_a_token_is_401(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app.get(&format!("/users/{}", user.id), None).await;
    expect_problem(
        response,
        StatusCode::UNAUTHORIZED,
        "GET /users/{id} without a token",
    )
    .await;
}

async fn a_user_id_that_is_not_an_integer_is_a_client_error(app: TestApp) {
    let caller = app.create_user_and_login().await;
    let mut failures = Failures::new();
    for path in ["/users/abc", "/users/1.5", "/users/99999999999999999999999"] {
        let response = app.get(path, Some(&caller.token)).await;
        let status = response.status();
        let client_errors = [
            StatusCode::BAD_REQUEST,
            StatusCode::NOT_FOUND,
            StatusCode::UNPROCESSABLE_ENTITY,
        ];
        if client_errors.contains(&status) {
            failures.check(check_problem(response, status, &format!("GET {path}")).await);
        } else {
            failures.check::<()>(Err(format!(
                "GET {path}: expected 400, 404 or 422, got {status}"
            )));
        }
    }
    failures.assert_none();
}

async fn deleting_the_account_is_204_with_an_empty_body(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app.delete("/users/me", Some(&user.token)).await;
    expect_empty(response, StatusCode::NO_CONTENT, "DELETE /users/me").await;
}

async fn deleting_the_account_without_a_token_is_401(app: TestApp) {
    let response = app.delete("/users/me", None).await;
    expect_problem(
        response,
        StatusCode::UNAUTHORIZED,
        "DELETE /users/me without a token",
    )
    .await;
}

async fn deleting_the_account_removes_its_posts_and_votes(app: TestApp) {
    let leaver = app.create_user_and_login().await;
    let stayer = app.create_user_and_login().await;
    let leavers_post = app.new_post(&leaver, "Leaving soon", true).await;
    let leavers_draft = app.new_post(&leaver, "Never finished", false).await;
    let stayers_post = app.new_post(&stayer, "Staying", true).await;

    assert_eq!(
        app.vote(&leaver.token, id_of(&stayers_post), 1)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.vote(&stayer.token, id_of(&stayers_post), 1)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.vote(&stayer.token, id_of(&leavers_post), 1)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.fetch_post(&stayer.token, id_of(&stayers_post)).await["votes"],
        2
    );

    let response = app.delete("/users/me", Some(&leaver.token)).await;
    expect_empty(response, StatusCode::NO_CONTENT, "DELETE /users/me").await;

    let post = app.fetch_post(&stayer.token, id_of(&stayers_post)).await;
    assert_eq!(post["votes"], 1, "the deleted user's vote is gone: {post}");
    for gone in [&leavers_post, &leavers_draft] {
        let response = app
            .get(&format!("/posts/{}", id_of(gone)), Some(&stayer.token))
            .await;
        expect_problem(
            response,
            StatusCode::NOT_FOUND,
            "a post of the deleted user",
        )
        .await;
    }
    let listed = app.list_posts(&stayer.token, &[("limit", "100")]).await;
    assert_eq!(
        ids(&listed),
        vec![id_of(&stayers_post)],
        "only the remaining post is listed"
    );
    let response = app
        .get(&format!("/users/{}", leaver.id), Some(&stayer.token))
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "the deleted user").await;
}

async fn deleting_the_account_forgets_its_failed_logins(app: TestApp) {
    let leaver = app.create_user_and_login().await;
    let stayer = app.create_user_and_login().await;
    for user in [&leaver, &stayer] {
        let response = app.login_json(&user.email, "a wrong password").await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{}",
            user.email
        );
    }
    let db = app.database().await;
    let failures_of =
        |email: &str| format!("SELECT COUNT(*) FROM login_failures WHERE email = '{email}'");
    assert_eq!(query_i64(&db, &failures_of(&leaver.email)).await, 1);

    let response = app.delete("/users/me", Some(&leaver.token)).await;
    expect_empty(response, StatusCode::NO_CONTENT, "DELETE /users/me").await;
    assert_eq!(
        query_i64(&db, &failures_of(&leaver.email)).await,
        0,
        "the deleted account's failed logins are forgotten"
    );
    assert_eq!(
        query_i64(&db, &failures_of(&stayer.email)).await,
        1,
        "another account's stay"
    );
}

async fn the_token_of_a_deleted_account_is_401(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app.delete("/users/me", Some(&user.token)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let response = app.get("/users/me", Some(&user.token)).await;
    expect_problem(
        response,
        StatusCode::UNAUTHORIZED,
        "GET /users/me with a deleted user's token",
    )
    .await;
    let response = app.delete("/users/me", Some(&user.token)).await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "DELETE /users/me twice").await;
    let response = app
        .create_post(&user.token, &json!({ "title": "ghost", "content": "boo" }))
        .await;
    expect_problem(
        response,
        StatusCode::UNAUTHORIZED,
        "POST /posts with a deleted user's token",
    )
    .await;
    // Listing and reading fold the account check into their own statement.
    let other = app.create_user_and_login().await;
    let post = app
        .create_post(
            &other.token,
            &json!({ "title": "still here", "content": "x" }),
        )
        .await;
    let post: Value = post.json().await.unwrap();
    for path in ["/posts".to_owned(), format!("/posts/{}", post["id"])] {
        let response = app.get(&path, Some(&user.token)).await;
        expect_problem(
            response,
            StatusCode::UNAUTHORIZED,
            &format!("GET {path} with a deleted user's token"),
        )
        .await;
    }
}

async fn a_deleted_accounts_email_can_register_again(app: TestApp) {
    let user = app.create_user_and_login().await;
    assert_eq!(
        app.delete("/users/me", Some(&user.token)).await.status(),
        StatusCode::NO_CONTENT
    );

    let response = app.register(&user.email, "a brand new password").await;
    let again = expect_json(response, StatusCode::CREATED, "registering the email again").await;
    assert_ne!(id_of(&again), user.id, "the new account is a new user");
    app.login(&user.email, "a brand new password").await;
    let response = app.login_json(&user.email, &user.password).await;
    expect_problem(
        response,
        StatusCode::UNAUTHORIZED,
        "logging in with the old password",
    )
    .await;
}

on_both_backends!(
    registering_returns_201_with_the_user_and_its_location,
    the_email_is_stored_trimmed_and_lower_cased,
    an_email_registered_twice_is_409,
    a_case_variant_of_a_registered_email_is_409,
    addresses_that_look_like_a_registered_one_are_409,
    an_account_a_bulk_load_inserted_gets_its_look_alike_key_as_the_service_starts,
    a_plain_address_is_409_beside_its_registered_look_alike,
    plain_ascii_addresses_that_look_alike_are_two_people,
    invalid_registrations_are_422_naming_the_field,
    password_length_is_counted_in_characters_and_every_one_counts,
    a_display_name_or_a_dotless_domain_is_not_an_email,
    every_broken_field_of_a_registration_is_named,
    an_email_of_254_characters_is_accepted,
    unknown_fields_in_a_registration_are_ignored,
    getting_me_returns_the_caller,
    getting_me_without_a_token_is_401,
    getting_a_user_by_id_returns_their_profile_without_the_email,
    getting_an_unknown_user_is_404,
    getting_a_user_by_id_without_a_token_is_401,
    a_user_id_that_is_not_an_integer_is_a_client_error,
    deleting_the_account_is_204_with_an_empty_body,
    deleting_the_account_without_a_token_is_401,
    deleting_the_account_removes_its_posts_and_votes,
    deleting_the_account_forgets_its_failed_logins,
    the_token_of_a_deleted_account_is_401,
    a_deleted_accounts_email_can_register_again,
);

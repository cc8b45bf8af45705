//! `POST /login`, the bearer tokens it hands out, and the failed-login limit.

use std::time::{Duration, Instant};

use api_tests::{
    Failures, Method, StatusCode, TestApp, TestUser, Value, base64url, check_invalid,
    check_invalid_fields, check_problem, expect_json, expect_problem, header, json, now_seconds,
    on_both_backends, query_i64, query_strings, sign, sign_with_header, unique_email,
};
use jsonwebtoken::Algorithm;
use sea_orm::ConnectionTrait;

const PASSWORD: &str = "correct horse battery";

/// The claims of a token the application issued, checked with its secret.
async fn assert_token_accepted(app: &TestApp, token: &str, case: &str) {
    let response = app.get("/users/me", Some(token)).await;
    expect_json(response, StatusCode::OK, case).await;
}

async fn fail_login(app: &TestApp, email: &str, attempt: usize) {
    let response = app.login_json(email, "a wrong password").await;
    expect_problem(
        response,
        StatusCode::UNAUTHORIZED,
        &format!("failed login attempt {attempt}"),
    )
    .await;
}

async fn registered(app: &TestApp) -> String {
    let email = unique_email();
    app.create_user(&email, PASSWORD).await;
    email
}

async fn logging_in_with_json_returns_a_bearer_token(app: TestApp) {
    let email = registered(&app).await;
    let response = app.login_json(&email, PASSWORD).await;
    let token = expect_json(response, StatusCode::OK, "logging in with JSON").await;

    assert_eq!(token["token_type"], "bearer", "{token}");
    assert_eq!(token["expires_in"], 1800, "30 minutes by default: {token}");
    let access_token = token["access_token"].as_str().expect("an access_token");
    assert_token_accepted(&app, access_token, "the issued token").await;
}

async fn logging_in_with_the_oauth2_password_form_returns_a_token(app: TestApp) {
    let email = registered(&app).await;
    let response = app
        .login_form(&[("username", &email), ("password", PASSWORD)])
        .await;
    let token = expect_json(response, StatusCode::OK, "logging in with the form").await;
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["expires_in"], 1800);
    assert_token_accepted(
        &app,
        token["access_token"].as_str().unwrap(),
        "the form's token",
    )
    .await;
}

async fn the_form_swagger_ui_sends_with_grant_type_and_scope_is_accepted(app: TestApp) {
    let email = registered(&app).await;
    let response = app
        .login_form(&[
            ("grant_type", "password"),
            ("username", &email),
            ("password", PASSWORD),
            ("scope", ""),
            ("client_id", ""),
            ("client_secret", ""),
        ])
        .await;
    let token = expect_json(response, StatusCode::OK, "logging in as Swagger UI does").await;
    assert_token_accepted(
        &app,
        token["access_token"].as_str().unwrap(),
        "Swagger UI's token",
    )
    .await;
}

async fn logging_in_with_a_case_variant_of_the_email_works(app: TestApp) {
    app.create_user("ann@example.io", PASSWORD).await;
    for variant in ["Ann@Example.IO", " ANN@EXAMPLE.IO "] {
        let response = app.login_json(variant, PASSWORD).await;
        expect_json(
            response,
            StatusCode::OK,
            &format!("logging in as {variant:?}"),
        )
        .await;
    }
    let response = app
        .login_form(&[("username", "ANN@example.io"), ("password", PASSWORD)])
        .await;
    expect_json(
        response,
        StatusCode::OK,
        "logging in with the form as a variant",
    )
    .await;
}

async fn a_wrong_password_and_an_unknown_email_get_the_same_401(app: TestApp) {
    let email = registered(&app).await;
    let wrong_password = app.login_json(&email, "not the password").await;
    let mut wrong_password =
        expect_problem(wrong_password, StatusCode::UNAUTHORIZED, "a wrong password").await;
    let unknown_email = app.login_json(&unique_email(), "not the password").await;
    let mut unknown_email =
        expect_problem(unknown_email, StatusCode::UNAUTHORIZED, "an unknown email").await;
    // `instance` names each request; everything else must be the same.
    for problem in [&mut wrong_password, &mut unknown_email] {
        problem.as_object_mut().unwrap().remove("instance");
    }
    assert_eq!(
        wrong_password, unknown_email,
        "the two failures must be indistinguishable"
    );

    let form = app
        .login_form(&[("username", &email), ("password", "not the password")])
        .await;
    expect_problem(
        form,
        StatusCode::UNAUTHORIZED,
        "a wrong password through the form",
    )
    .await;
}

async fn login_without_a_field_is_422_naming_it(app: TestApp) {
    let email = registered(&app).await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({ "password": PASSWORD }),
            "email",
            "JSON without an email",
        ),
        (
            json!({ "email": email }),
            "password",
            "JSON without a password",
        ),
        (
            json!({ "email": email, "password": 12345678 }),
            "password",
            "JSON with a number as the password",
        ),
        (
            json!({ "email": null, "password": PASSWORD }),
            "email",
            "JSON with a null email",
        ),
    ];
    let mut failures = app
        .check_invalid_bodies(Method::POST, "/login", None, cases)
        .await;

    let response = app.login_form(&[("password", PASSWORD)]).await;
    failures.check(check_invalid(response, "username", "a form without a username").await);
    let response = app.login_form(&[("username", &email)]).await;
    failures.check(check_invalid(response, "password", "a form without a password").await);
    failures.assert_none();
}

async fn the_token_carries_sub_iat_and_exp_for_the_configured_lifetime(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |settings| {
        settings.access_token_expire_minutes = 5;
    })
    .await;
    let email = registered(&app).await;
    let response = app.login_json(&email, PASSWORD).await;
    let token = expect_json(response, StatusCode::OK, "logging in").await;
    assert_eq!(token["expires_in"], 300, "5 minutes: {token}");

    let me = expect_json(
        app.get("/users/me", Some(token["access_token"].as_str().unwrap()))
            .await,
        StatusCode::OK,
        "GET /users/me",
    )
    .await;
    let claims = app.claims_of(token["access_token"].as_str().unwrap());
    let sub = match &claims["sub"] {
        Value::String(sub) => sub.clone(),
        Value::Number(sub) => sub.to_string(),
        other => panic!("`sub` is neither a string nor a number: {other}"),
    };
    assert_eq!(
        sub,
        me["id"].to_string(),
        "`sub` is the user's id: {claims}"
    );
    let iat = claims["iat"].as_i64().expect("an integer `iat`");
    let exp = claims["exp"].as_i64().expect("an integer `exp`");
    assert!((iat - now_seconds()).abs() <= 60, "`iat` is now: {claims}");
    assert!(
        (299..=301).contains(&(exp - iat)),
        "`exp` is 5 minutes after `iat`: {claims}"
    );
}

async fn requests_without_a_usable_token_are_401(app: TestApp) {
    let user = app.create_user_and_login().await;
    let other = app.create_user_and_login().await;
    let claims = app.claims_of(&user.token);
    let now = now_seconds();

    // A token forged the way the checks below forge theirs, but correct: it must pass,
    // so each rejection below is down to the one thing that case changes.
    let mut fresh = claims.clone();
    fresh["iat"] = json!(now);
    fresh["exp"] = json!(now + 600);
    assert_token_accepted(
        &app,
        &sign(Algorithm::HS256, &fresh, &app.secret),
        "a re-signed token",
    )
    .await;

    let mut expired = claims.clone();
    expired["iat"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);

    let mut without_exp = fresh.clone();
    without_exp.as_object_mut().unwrap().remove("exp");

    let mut unknown_user = fresh.clone();
    unknown_user["sub"] = match &claims["sub"] {
        Value::String(_) => json!("999999"),
        _ => json!(999_999),
    };

    let mut not_a_number = fresh.clone();
    not_a_number["sub"] = json!("ann");

    let unsigned = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(fresh.to_string().as_bytes())
    );

    // Someone else's id in the payload, with the caller's genuine signature.
    let mut signature_parts = user.token.split('.');
    let (header, _payload, signature) = (
        signature_parts.next().unwrap(),
        signature_parts.next().unwrap(),
        signature_parts.next().unwrap(),
    );
    let mut stolen = claims.clone();
    stolen["sub"] = app.claims_of(&other.token)["sub"].clone();
    let tampered = format!(
        "{header}.{}.{signature}",
        base64url(stolen.to_string().as_bytes())
    );

    // A header that names another algorithm over a payload HMAC-signed with the right
    // secret: the algorithm-confusion attack. Only HS256 may be accepted.
    let with_header = |header_json: &str, claims: &Value| {
        format!(
            "Bearer {}",
            sign_with_header(header_json, claims, &app.secret)
        )
    };
    let hs256 = with_header(r#"{"alg":"HS256","typ":"JWT"}"#, &fresh);
    assert_token_accepted(
        &app,
        hs256.trim_start_matches("Bearer "),
        "a token signed by hand",
    )
    .await;
    let mut not_yet_valid = fresh.clone();
    not_yet_valid["nbf"] = json!(now + 3600);
    let mut issued_in_the_future = fresh.clone();
    issued_in_the_future["iat"] = json!(now + 3600);
    issued_in_the_future["exp"] = json!(now + 7200);
    let mut without_sub = fresh.clone();
    without_sub.as_object_mut().unwrap().remove("sub");
    let mut sub_beyond_64_bits = fresh.clone();
    sub_beyond_64_bits["sub"] = json!("18446744073709551616");
    let mut negative_sub = fresh.clone();
    negative_sub["sub"] = json!("-1");
    let mut without_sid = fresh.clone();
    without_sid.as_object_mut().unwrap().remove("sid");
    // The caller's id with another person's live session.
    let mut foreign_sid = fresh.clone();
    foreign_sid["sid"] = app.claims_of(&other.token)["sid"].clone();
    let deleted = app.create_user_and_login().await;
    let response = app.delete("/users/me", Some(&deleted.token)).await;
    assert_eq!(
        response.status(),
        StatusCode::NO_CONTENT,
        "deleting an account"
    );

    let cases: Vec<(Option<String>, &str)> = vec![
        (
            Some(with_header(r#"{"alg":"RS256","typ":"JWT"}"#, &fresh)),
            "an RS256 header over an HMAC signature",
        ),
        (
            Some(with_header(r#"{"alg":"ES256","typ":"JWT"}"#, &fresh)),
            "an ES256 header over an HMAC signature",
        ),
        (
            Some(with_header(r#"{"alg":"none","typ":"JWT"}"#, &fresh)),
            "alg none with a signature",
        ),
        (
            Some(format!(
                "Bearer {}.{}.",
                base64url(br#"{"alg":"NONE","typ":"JWT"}"#),
                base64url(fresh.to_string().as_bytes())
            )),
            "alg NONE in capitals",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS256, &not_yet_valid, &app.secret)
            )),
            "a token not yet valid (nbf in an hour)",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS256, &issued_in_the_future, &app.secret)
            )),
            "a token issued in an hour",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS256, &without_sub, &app.secret)
            )),
            "a token without sub",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS256, &sub_beyond_64_bits, &app.secret)
            )),
            "a sub beyond 64 bits",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS256, &negative_sub, &app.secret)
            )),
            "a negative sub",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS256, &without_sid, &app.secret)
            )),
            "a token without sid",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS256, &foreign_sid, &app.secret)
            )),
            "a token naming another person's session",
        ),
        (
            Some(format!("Bearer {}", deleted.token)),
            "the token of a deleted account",
        ),
        (
            Some(format!("Bearer {} extra", user.token)),
            "a token followed by more words",
        ),
        (None, "no Authorization header"),
        (Some("Bearer".to_owned()), "the scheme without a token"),
        (Some("Bearer ".to_owned()), "an empty token"),
        (Some("Bearer not-a-jwt".to_owned()), "garbage"),
        (Some("Bearer a.b.c".to_owned()), "three garbage segments"),
        (
            Some(format!("Basic {}", base64url(b"ann@example.io:password"))),
            "the Basic scheme",
        ),
        (Some(user.token.clone()), "the token without a scheme"),
        (
            Some(format!(
                "Bearer {}",
                sign(
                    Algorithm::HS256,
                    &fresh,
                    "another secret of at least 32 bytes!!"
                )
            )),
            "another secret",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS256, &expired, &app.secret)
            )),
            "an expired token",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS256, &without_exp, &app.secret)
            )),
            "a token without exp",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS512, &fresh, &app.secret)
            )),
            "HS512",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS384, &fresh, &app.secret)
            )),
            "HS384",
        ),
        (Some(format!("Bearer {unsigned}")), "alg none"),
        (Some(format!("Bearer {tampered}")), "a tampered payload"),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS256, &unknown_user, &app.secret)
            )),
            "a user that does not exist",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(Algorithm::HS256, &not_a_number, &app.secret)
            )),
            "a sub that is not an id",
        ),
    ];
    let mut failures = Failures::new();
    for (authorization, case) in cases {
        for (method, path) in [("GET", "/users/me"), ("GET", "/posts"), ("POST", "/posts")] {
            let mut request = app.client.request(method.parse().unwrap(), app.url(path));
            if let Some(authorization) = &authorization {
                request = request.header("authorization", authorization);
            }
            if method == "POST" {
                request = request.json(&json!({ "title": "t", "content": "c" }));
            }
            let response = request.send().await.expect("the request completes");
            let context = format!("{method} {path} with {case}");
            failures.check(check_problem(response, StatusCode::UNAUTHORIZED, &context).await);
        }
    }
    failures.assert_none();
}

async fn five_failed_logins_make_the_sixth_429_even_with_the_right_password(app: TestApp) {
    let email = registered(&app).await;
    for attempt in 1..=5 {
        fail_login(&app, &email, attempt).await;
    }
    let response = app.login_json(&email, PASSWORD).await;
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let problem = expect_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "the right password after 5 failures",
    )
    .await;
    assert_eq!(
        problem["detail"],
        format!("Too many failed logins for this account; retry in {retry_after} seconds."),
        "the detail names the account's lock: {problem}"
    );
    assert!(
        retry_after <= 15 * 60,
        "Retry-After is within the 15-minute window: {retry_after}"
    );

    let response = app.login_json(&email, "a wrong password").await;
    expect_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "a wrong password after 5 failures",
    )
    .await;
    let response = app
        .login_form(&[("username", &email), ("password", PASSWORD)])
        .await;
    expect_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "the form after 5 failures",
    )
    .await;
}

async fn four_failed_logins_still_allow_the_right_password(app: TestApp) {
    let email = registered(&app).await;
    for attempt in 1..=4 {
        fail_login(&app, &email, attempt).await;
    }
    app.login(&email, PASSWORD).await;
}

async fn a_successful_login_resets_the_failure_count(app: TestApp) {
    let email = registered(&app).await;
    for attempt in 1..=4 {
        fail_login(&app, &email, attempt).await;
    }
    app.login(&email, PASSWORD).await;
    for attempt in 1..=4 {
        fail_login(&app, &email, attempt).await;
    }
    app.login(&email, PASSWORD).await;
}

async fn the_failure_limit_is_per_email(app: TestApp) {
    let locked = registered(&app).await;
    let other = registered(&app).await;
    for attempt in 1..=5 {
        fail_login(&app, &locked, attempt).await;
    }
    let response = app.login_json(&locked, PASSWORD).await;
    expect_problem(response, StatusCode::TOO_MANY_REQUESTS, "the locked email").await;
    app.login(&other, PASSWORD).await;
}

async fn failures_under_case_variants_of_an_email_count_together(app: TestApp) {
    app.create_user("bob@example.io", PASSWORD).await;
    for (attempt, variant) in [
        "bob@example.io",
        "Bob@Example.io",
        "BOB@EXAMPLE.IO",
        " bob@example.io",
        "bOb@example.io",
    ]
    .iter()
    .enumerate()
    {
        fail_login(&app, variant, attempt + 1).await;
    }
    let response = app.login_json("bob@example.io", PASSWORD).await;
    expect_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "after 5 failures under variants",
    )
    .await;
}

async fn failures_under_a_fullwidth_spelling_count_toward_the_account(app: TestApp) {
    app.create_user("victim@example.org", PASSWORD).await;
    for attempt in 1..=5 {
        // `ｖictim@…` is `victim@…` once NFKC-normalised: the same account.
        let spelled = ["\u{ff56}ictim@example.org", "\u{ff36}ICTIM@example.org"][attempt % 2];
        fail_login(&app, spelled, attempt).await;
    }
    let response = app.login_json("victim@example.org", PASSWORD).await;
    expect_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "after 5 failures under fullwidth spellings",
    )
    .await;
}

async fn unknown_emails_are_limited_like_known_ones(app: TestApp) {
    let email = unique_email();
    for attempt in 1..=5 {
        fail_login(&app, &email, attempt).await;
    }
    let response = app.login_json(&email, PASSWORD).await;
    expect_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "an unknown email after 5 failures",
    )
    .await;
}

async fn failed_logins_count_across_instances_sharing_a_database(app: TestApp) {
    let sibling = app.spawn_sibling().await;
    let email = registered(&app).await;
    for attempt in 1..=3 {
        fail_login(&app, &email, attempt).await;
    }
    for attempt in 4..=5 {
        fail_login(&sibling, &email, attempt).await;
    }
    let response = app.login_json(&email, PASSWORD).await;
    expect_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "the first instance",
    )
    .await;
    let response = sibling.login_json(&email, PASSWORD).await;
    expect_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "the second instance",
    )
    .await;
}

async fn the_failure_limit_is_a_setting(app: TestApp) {
    let app = TestApp::spawn_with(app.backend, |settings| settings.login_max_failures = 2).await;
    let email = registered(&app).await;
    for attempt in 1..=2 {
        fail_login(&app, &email, attempt).await;
    }
    let response = app.login_json(&email, PASSWORD).await;
    expect_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "after 2 failures with a limit of 2",
    )
    .await;
}

/// Behind a trusted proxy, each client address may fail `limit` times across any emails and
/// instances; other addresses are not affected.
async fn one_address_guessing_across_emails_is_limited_across_instances(app: TestApp) {
    let limit = 4;
    let behind_proxy = |settings: &mut api::Settings| {
        settings.trusted_proxies = vec!["127.0.0.1".into()];
        settings.login_max_failures_per_address = limit;
    };
    let app = TestApp::spawn_with(app.backend, behind_proxy).await;
    let sibling = app.spawn_sibling_with(behind_proxy).await;
    let (attacker, neighbour) = ("203.0.113.7", "198.51.100.23");
    let email = registered(&app).await;
    for attempt in 0..limit {
        // A different email each time, so that only the address can be counted.
        let instance = if attempt % 2 == 0 { &app } else { &sibling };
        let response = instance
            .login_json_forwarded_for(attacker, &unique_email(), "a guess")
            .await;
        expect_problem(
            response,
            StatusCode::UNAUTHORIZED,
            &format!("guess {attempt} from one address"),
        )
        .await;
    }
    for (name, instance) in [("the first", &app), ("the second", &sibling)] {
        let response = instance
            .login_json_forwarded_for(attacker, &email, PASSWORD)
            .await;
        let problem = expect_problem(
            response,
            StatusCode::TOO_MANY_REQUESTS,
            &format!("the right password from the guessing address on {name} instance"),
        )
        .await;
        assert_eq!(problem["status"], 429, "{problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with("Too many failed logins from this address;"),
            "the detail names the address's lock, not the account's: {detail}"
        );
    }
    let response = sibling
        .login_json_forwarded_for(neighbour, &email, PASSWORD)
        .await;
    expect_json(
        response,
        StatusCode::OK,
        "the same account from another address",
    )
    .await;
    let response = app.login_json(&email, PASSWORD).await;
    expect_json(response, StatusCode::OK, "the proxy's own address").await;
}

/// A peer that is not a trusted proxy cannot escape the limit by claiming other addresses.
async fn an_untrusted_peer_cannot_forge_its_address(app: TestApp) {
    let limit = 3;
    let app = TestApp::spawn_with(app.backend, |settings| {
        settings.login_max_failures_per_address = limit;
    })
    .await;
    let email = registered(&app).await;
    for attempt in 0..limit {
        let forged = format!("192.0.2.{attempt}");
        let response = app
            .login_json_forwarded_for(&forged, &unique_email(), "a guess")
            .await;
        expect_problem(
            response,
            StatusCode::UNAUTHORIZED,
            &format!("guess {attempt} claiming {forged}"),
        )
        .await;
    }
    let response = app
        .login_json_forwarded_for("192.0.2.200", &email, PASSWORD)
        .await;
    expect_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "a fresh forged address from the same peer",
    )
    .await;
}

async fn a_token_keeps_working_on_a_sibling_instance(app: TestApp) {
    let sibling = app.spawn_sibling().await;
    let TestUser { token, .. } = app.create_user_and_login().await;
    assert_token_accepted(&sibling, &token, "the first instance's token on the second").await;
}

async fn every_missing_or_invalid_login_field_is_named(app: TestApp) {
    let mut failures = Failures::new();
    let response = app.login_form(&[]).await;
    failures
        .check(check_invalid_fields(response, &["username", "password"], "an empty form").await);
    let response = app
        .login_form(&[("grant_type", "client_credentials")])
        .await;
    let fields = ["username", "password", "grant_type"];
    failures.check(check_invalid_fields(response, &fields, "a form of another grant").await);
    let response = app.post("/login", None, &json!({})).await;
    failures.check(check_invalid_fields(response, &["email", "password"], "an empty object").await);
    let body = json!({ "email": " ", "password": "x".repeat(129) });
    let response = app.post("/login", None, &body).await;
    let fields = ["email", "password"];
    failures.check(check_invalid_fields(response, &fields, "a blank email, a long password").await);
    failures.assert_none();
}

async fn a_login_email_longer_than_any_account_is_422_and_stores_nothing(app: TestApp) {
    let long = "x".repeat(2_000);
    let mut failures = Failures::new();
    let response = app
        .login_form(&[("username", &long), ("password", "y")])
        .await;
    failures.check(check_invalid(response, "username", "a 2,000-character username").await);
    let response = app
        .login_json(&format!("{}@example.org", "a".repeat(243)), "y")
        .await;
    failures.check(check_invalid(response, "email", "a 255-character email").await);
    failures.assert_none();
    let db = app.database().await;
    let stored = query_i64(&db, "SELECT COUNT(*) FROM login_failures").await;
    assert_eq!(stored, 0, "nothing reaches the failure table");
}

async fn a_token_response_is_never_cached(app: TestApp) {
    let email = registered(&app).await;
    let response = app.login_json(&email, PASSWORD).await;
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    assert_eq!(header(&response, "pragma").as_deref(), Some("no-cache"));
    expect_json(response, StatusCode::OK, "logging in").await;
}

async fn an_account_hashed_the_older_way_logs_in_and_is_hashed_anew(app: TestApp) {
    let email = registered(&app).await;
    let db = app.database().await;
    // The form hashes had before passwords were pre-hashed: bcrypt of the password itself.
    let legacy = bcrypt::hash(PASSWORD, 4).unwrap();
    let sql = format!("UPDATE users SET password_hash = '{legacy}' WHERE email = '{email}'");
    db.execute_unprepared(&sql).await.unwrap();
    let response = app.login_json(&email, "correct horse batterx").await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "a wrong password").await;

    let response = app.login_json(&email, PASSWORD).await;
    expect_json(response, StatusCode::OK, "logging in with an older hash").await;
    let hashes = query_strings(
        &db,
        &format!("SELECT password_hash FROM users WHERE email = '{email}'"),
    )
    .await;
    assert!(
        hashes[0].starts_with("$bcrypt-sha256$"),
        "hashed anew: {}",
        hashes[0]
    );
    let response = app.login_json(&email, PASSWORD).await;
    expect_json(response, StatusCode::OK, "logging in with the new hash").await;
}

async fn a_login_refused_because_hashing_is_busy_is_no_failed_login(app: TestApp) {
    let email = registered(&app).await;
    // One hashing slot, hardly any wait for it, and registrations that hash slowly: each
    // holds the slot for about a second or more. Two failures lock the email.
    let limit = 2;
    let busy = app
        .spawn_sibling_with(|settings| {
            settings.bcrypt_cost = 14;
            settings.bcrypt_max_concurrency = 1;
            settings.bcrypt_max_wait_milliseconds = 1;
            settings.login_max_failures = limit;
        })
        .await;
    // Once the start-up's own hashing is done, a registration holds the only slot a while.
    while busy.register(&unique_email(), PASSWORD).await.status() != StatusCode::CREATED {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let holder = {
        let api = (*busy).clone();
        tokio::spawn(async move { api.register(&unique_email(), PASSWORD).await.status() })
    };
    // Logins get through until the registration holds the slot; from the first 503 on, it
    // is taken for a while. More refusals than the limit: had they counted, the email
    // would be locked.
    let mut refused = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while refused < limit + 1 {
        assert!(
            Instant::now() < deadline,
            "no login met a busy hashing slot"
        );
        let response = busy.login_json(&email, PASSWORD).await;
        let status = response.status();
        if status != StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                refused == 0,
                "{status} after {refused} refusals: they counted as failures, or the slot was \
                 freed too soon"
            );
            expect_json(response, StatusCode::OK, "a login before the slot is taken").await;
            continue;
        }
        assert!(
            header(&response, "retry-after").is_some(),
            "a 503 says when to retry"
        );
        expect_problem(response, StatusCode::SERVICE_UNAVAILABLE, "a busy login").await;
        refused += 1;
    }
    assert!(
        !holder.is_finished(),
        "every refusal came while the registration held the slot"
    );
    assert_eq!(holder.await.unwrap(), StatusCode::CREATED);
    let response = busy.login_json(&email, PASSWORD).await;
    expect_json(
        response,
        StatusCode::OK,
        "the right password once hashing is free: a login refused as busy is no failure",
    )
    .await;
}

on_both_backends!(
    logging_in_with_json_returns_a_bearer_token,
    logging_in_with_the_oauth2_password_form_returns_a_token,
    the_form_swagger_ui_sends_with_grant_type_and_scope_is_accepted,
    logging_in_with_a_case_variant_of_the_email_works,
    a_wrong_password_and_an_unknown_email_get_the_same_401,
    login_without_a_field_is_422_naming_it,
    the_token_carries_sub_iat_and_exp_for_the_configured_lifetime,
    requests_without_a_usable_token_are_401,
    five_failed_logins_make_the_sixth_429_even_with_the_right_password,
    four_failed_logins_still_allow_the_right_password,
    a_successful_login_resets_the_failure_count,
    the_failure_limit_is_per_email,
    failures_under_case_variants_of_an_email_count_together,
    failures_under_a_fullwidth_spelling_count_toward_the_account,
    unknown_emails_are_limited_like_known_ones,
    failed_logins_count_across_instances_sharing_a_database,
    the_failure_limit_is_a_setting,
    one_address_guessing_across_emails_is_limited_across_instances,
    an_untrusted_peer_cannot_forge_its_address,
    a_token_keeps_working_on_a_sibling_instance,
    every_missing_or_invalid_login_field_is_named,
    a_login_email_longer_than_any_account_is_422_and_stores_nothing,
    a_token_response_is_never_cached,
    an_account_hashed_the_older_way_logs_in_and_is_hashed_anew,
    a_login_refused_because_hashing_is_busy_is_no_failed_login,
);

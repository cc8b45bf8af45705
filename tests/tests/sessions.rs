//! Sessions: `POST /login/refresh`, `POST /logout`, `GET /users/me/sessions`,
//! `DELETE /users/me/sessions[/{id}]`, `PUT /users/me/password`, and what ending a session
//! does to its tokens.

use api_tests::{
    Backend, Method, SessionTokens, StatusCode, TestApp, TestUser, Value, check_invalid_fields,
    expect_empty, expect_json, expect_problem, header, id_of, json, on_both_backends, query_i64,
    random_string, send_all_at_once,
};
use sea_orm::ConnectionTrait;

/// A moment every stored timestamp is after: rows set to expire then have expired.
const LONG_AGO: &str = "2000-01-01T00:00:00+00:00";

/// Every operation a bearer token opens, each as a request that would succeed for the owner
/// of `post` while their session lives (the writes leave the post as it is).
fn every_authenticated_request(
    token: &str,
    post: i64,
) -> Vec<(String, Method, String, Option<Value>)> {
    let change = json!({ "title": "unchanged", "content": "unchanged" });
    let cases = [
        (Method::GET, "/users/me".to_owned(), None),
        (Method::GET, "/users/1".to_owned(), None),
        (Method::GET, "/posts".to_owned(), None),
        (Method::GET, "/posts?search=unchanged".to_owned(), None),
        (Method::GET, format!("/posts/{post}"), None),
        (Method::POST, "/posts".to_owned(), Some(change.clone())),
        (Method::PUT, format!("/posts/{post}"), Some(change.clone())),
        (Method::PATCH, format!("/posts/{post}"), Some(change)),
        (
            Method::POST,
            "/vote".to_owned(),
            Some(json!({ "post_id": post, "dir": 1 })),
        ),
        (Method::GET, "/users/me/sessions".to_owned(), None),
        (Method::DELETE, "/users/me/sessions".to_owned(), None),
        (Method::DELETE, "/users/me/sessions/1".to_owned(), None),
        (
            Method::PUT,
            "/users/me/password".to_owned(),
            Some(json!({ "current_password": "wrong password", "new_password": "a new password" })),
        ),
        (Method::POST, "/events/ticket".to_owned(), None),
        (Method::GET, "/events".to_owned(), None),
        (Method::POST, "/logout".to_owned(), None),
        (Method::DELETE, format!("/posts/{post}"), None),
        (Method::DELETE, "/users/me".to_owned(), None),
    ];
    cases
        .into_iter()
        .map(|(method, path, body)| (token.to_owned(), method, path, body))
        .collect()
}

/// Asserts that the access token is refused with a 401 on every operation, and that nothing
/// it asked for happened.
async fn assert_refused_everywhere(app: &TestApp, token: &str, post: i64, context: &str) {
    let baseline = app.baseline().await;
    for (token, method, path, body) in every_authenticated_request(token, post) {
        let mut request = app.request(method.clone(), &path, Some(&token));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the request is answered");
        let what = format!("{method} {path} {context}");
        assert_eq!(
            header(&response, "www-authenticate").as_deref(),
            Some("Bearer"),
            "{what}"
        );
        expect_problem(response, StatusCode::UNAUTHORIZED, &what).await;
    }
    baseline
        .assert_unchanged(&format!("the requests {context} changed nothing"))
        .await;
}

/// Asserts that the session of these tokens has ended: its access token is refused on every
/// operation and its refresh token refreshes nothing.
async fn assert_session_ended(app: &TestApp, session: &SessionTokens, post: i64, context: &str) {
    assert_refused_everywhere(app, &session.access_token, post, context).await;
    expect_problem(
        app.refresh(&session.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        &format!("the refresh token {context}"),
    )
    .await;
}

async fn tokens_of(app: &TestApp, user: &TestUser) -> SessionTokens {
    app.start_session(&user.email, &user.password).await
}

async fn sessions_of(app: &TestApp, token: &str) -> Vec<Value> {
    let body = expect_json(
        app.get("/users/me/sessions", Some(token)).await,
        StatusCode::OK,
        "GET /users/me/sessions",
    )
    .await;
    body.as_array()
        .unwrap_or_else(|| panic!("an array of sessions: {body}"))
        .clone()
}

async fn a_login_starts_a_session_with_a_refresh_token(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app
        .request(Method::POST, "/login", None)
        .header("user-agent", "Tests/1.0 (sessions)")
        .json(&json!({ "email": user.email, "password": user.password }))
        .send()
        .await
        .expect("the login is answered");
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    let token = expect_json(response, StatusCode::OK, "logging in").await;
    let refresh_token = token["refresh_token"].as_str().expect("a refresh_token");
    assert!(
        refresh_token.len() >= 43,
        "at least 256 bits in base64url: {token}"
    );
    assert_eq!(token["refresh_expires_in"], 30 * 86_400, "30 days: {token}");
    let access_token = token["access_token"].as_str().unwrap();
    let sid = app.claims_of(access_token)["sid"]
        .as_i64()
        .expect("an integer sid");

    let sessions = sessions_of(&app, access_token).await;
    assert_eq!(sessions.len(), 2, "two logins, two sessions: {sessions:?}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "one is current: {sessions:?}");
    let current = current[0];
    assert_eq!(current["id"], sid, "the current one is the token's sid");
    assert_eq!(current["user_agent"], "Tests/1.0 (sessions)");
    assert_eq!(current["client_address"], "127.0.0.1");
    assert_eq!(current["created_at"], current["last_used_at"]);
    api_tests::assert_fields(
        current,
        &[
            "client_address",
            "created_at",
            "current",
            "id",
            "last_used_at",
            "user_agent",
        ],
        "a Session",
    );
    let other_sid = app.claims_of(&user.token)["sid"].as_i64().unwrap();
    assert_ne!(other_sid, sid, "each login is a session of its own");
    // Another person sees only their own.
    let stranger = app.create_user_and_login().await;
    let theirs = sessions_of(&app, &stranger.token).await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_ne!(theirs[0]["id"], sid);
}

async fn a_refresh_token_rotates_and_works_once(app: TestApp) {
    let user = app.create_user_and_login().await;
    let first = tokens_of(&app, &user).await;
    let sid = app.claims_of(&first.access_token)["sid"].clone();

    let response = app.refresh(&first.refresh_token).await;
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("no-store")
    );
    let second =
        SessionTokens::from_body(&expect_json(response, StatusCode::OK, "refreshing").await);
    assert_ne!(
        second.refresh_token, first.refresh_token,
        "a new refresh token"
    );
    assert_eq!(
        app.claims_of(&second.access_token)["sid"],
        sid,
        "the same session"
    );
    expect_json(
        app.get("/users/me", Some(&second.access_token)).await,
        StatusCode::OK,
        "the refreshed access token",
    )
    .await;

    // The OAuth2 form, as Swagger UI and OAuth2 libraries send it.
    let form = app
        .request(Method::POST, "/login/refresh", None)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &second.refresh_token),
        ])
        .send()
        .await
        .expect("the refresh is answered");
    let third =
        SessionTokens::from_body(&expect_json(form, StatusCode::OK, "refreshing by form").await);
    assert_eq!(app.claims_of(&third.access_token)["sid"], sid);

    // Only hashes are stored, one a session: what a dump of the table holds refreshes nothing.
    let db = app.database().await;
    let stored = api_tests::query_strings(&db, "SELECT refresh_hash FROM sessions").await;
    assert_eq!(stored.len(), 2, "two logins: {stored:?}");
    for token in [
        &first.refresh_token,
        &second.refresh_token,
        &third.refresh_token,
    ] {
        assert!(
            !stored.iter().any(|hash| hash.contains(token.as_str())),
            "{token} is stored"
        );
    }
    for hash in &stored {
        expect_problem(
            app.refresh(hash).await,
            StatusCode::UNAUTHORIZED,
            "a stored hash",
        )
        .await;
    }
    expect_json(
        app.refresh(&third.refresh_token).await,
        StatusCode::OK,
        "the newest token",
    )
    .await;

    // The session's last use moved on with the refresh.
    let sessions = sessions_of(&app, &third.access_token).await;
    let session = sessions
        .iter()
        .find(|s| s["id"] == sid)
        .expect("the session is listed");
    assert_ne!(session["last_used_at"], session["created_at"], "{session}");
}

async fn a_spent_refresh_token_replayed_after_the_grace_ends_the_session(app: TestApp) {
    // No grace at all: any second use is a replay.
    let app = app
        .spawn_sibling_with(|settings| settings.refresh_token_reuse_grace_seconds = 0)
        .await;
    let user = app.create_user_and_login().await;
    let post = id_of(&app.new_post(&user, "kept", true).await);
    let stolen = tokens_of(&app, &user).await;
    let rotated = SessionTokens::from_body(
        &expect_json(
            app.refresh(&stolen.refresh_token).await,
            StatusCode::OK,
            "refreshing",
        )
        .await,
    );

    let replay = app.refresh(&stolen.refresh_token).await;
    let problem = expect_problem(
        replay,
        StatusCode::UNAUTHORIZED,
        "replaying a spent refresh token",
    )
    .await;
    let unknown = expect_problem(
        app.refresh(&api_tests::base64url(&[7u8; 32])).await,
        StatusCode::UNAUTHORIZED,
        "an unknown refresh token",
    )
    .await;
    assert_eq!(
        problem["detail"], unknown["detail"],
        "a replay says no more than any 401"
    );

    // The whole session ended: the newest refresh token and every access token of it.
    assert_session_ended(&app, &rotated, post, "after the replay").await;
    assert_refused_everywhere(&app, &stolen.access_token, post, "after the replay").await;
    // Other sessions of the person go on.
    expect_json(
        app.get("/users/me", Some(&user.token)).await,
        StatusCode::OK,
        "another session",
    )
    .await;
}

async fn refreshes_racing_with_one_token_within_the_grace_get_one_successor(app: TestApp) {
    let user = app.create_user_and_login().await;
    let tokens = tokens_of(&app, &user).await;
    let sid = app.claims_of(&tokens.access_token)["sid"].clone();
    let body = json!({ "refresh_token": tokens.refresh_token });
    // Two clients, through two instances of the service.
    let sibling = app.spawn_sibling().await;
    let outcomes = send_all_at_once((0..6).map(|i| {
        let instance = if i % 2 == 0 { &app } else { &sibling };
        instance
            .request(Method::POST, "/login/refresh", None)
            .json(&body)
    }))
    .await;
    let mut refreshed = Vec::new();
    for (status, text) in &outcomes {
        assert_eq!(
            *status,
            StatusCode::OK,
            "every racing refresh succeeds: {text}"
        );
        refreshed.push(SessionTokens::from_body(
            &serde_json::from_str(text).unwrap(),
        ));
    }
    // All got the same refresh token: the session did not branch. Each access token works.
    let distinct: std::collections::BTreeSet<&str> =
        refreshed.iter().map(|t| t.refresh_token.as_str()).collect();
    assert_eq!(distinct.len(), 1, "one successor: {distinct:?}");
    for pair in &refreshed {
        assert_eq!(app.claims_of(&pair.access_token)["sid"], sid);
        expect_json(
            app.get("/posts", Some(&pair.access_token)).await,
            StatusCode::OK,
            "an access token of the race",
        )
        .await;
    }
    expect_json(
        app.refresh(&refreshed[0].refresh_token).await,
        StatusCode::OK,
        "the successor",
    )
    .await;
}

async fn fifty_reuses_within_the_grace_get_the_first_uses_successor(app: TestApp) {
    let user = app.create_user_and_login().await;
    let tokens = tokens_of(&app, &user).await;
    let first = SessionTokens::from_body(
        &expect_json(
            app.refresh(&tokens.refresh_token).await,
            StatusCode::OK,
            "the first use",
        )
        .await,
    );
    for reuse in 1..=50 {
        let again = SessionTokens::from_body(
            &expect_json(
                app.refresh(&tokens.refresh_token).await,
                StatusCode::OK,
                &format!("reuse {reuse} within the grace"),
            )
            .await,
        );
        assert_eq!(
            again.refresh_token, first.refresh_token,
            "reuse {reuse} gets the first use's successor"
        );
        expect_json(
            app.get("/users/me", Some(&again.access_token)).await,
            StatusCode::OK,
            "the reuse's access token",
        )
        .await;
    }
    let next = expect_json(
        app.refresh(&first.refresh_token).await,
        StatusCode::OK,
        "the successor, used once",
    )
    .await;
    assert_ne!(next["refresh_token"], first.refresh_token.as_str());
}

/// How many rows each table of the application's database holds.
async fn rows_by_table(app: &TestApp) -> Vec<(String, i64)> {
    let db = app.database().await;
    let tables = match app.backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
             ORDER BY tablename"
        }
    };
    let mut rows = Vec::new();
    for table in api_tests::query_strings(&db, tables).await {
        let count = query_i64(&db, &format!("SELECT COUNT(*) FROM {table}")).await;
        rows.push((table, count));
    }
    rows
}

async fn a_session_keeps_what_it_stores_however_often_it_refreshes(app: TestApp) {
    let user = app.create_user_and_login().await;
    let mut tokens = tokens_of(&app, &user).await;
    let before = rows_by_table(&app).await;
    for refresh in 1..=100 {
        tokens = SessionTokens::from_body(
            &expect_json(
                app.refresh(&tokens.refresh_token).await,
                StatusCode::OK,
                &format!("refresh {refresh}"),
            )
            .await,
        );
    }
    assert_eq!(
        rows_by_table(&app).await,
        before,
        "100 refreshes stored no row"
    );
}

async fn a_token_two_refreshes_old_replayed_after_the_grace_ends_the_session(app: TestApp) {
    let user = app.create_user_and_login().await;
    let post = id_of(&app.new_post(&user, "kept", true).await);
    let stolen = tokens_of(&app, &user).await;
    let mut live = stolen.clone();
    for _ in 0..2 {
        live = SessionTokens::from_body(
            &expect_json(
                app.refresh(&live.refresh_token).await,
                StatusCode::OK,
                "refreshing",
            )
            .await,
        );
    }
    let db = app.database().await;
    db.execute_unprepared(&format!("UPDATE sessions SET refreshed_at = '{LONG_AGO}'"))
        .await
        .expect("the grace is over");
    expect_problem(
        app.refresh(&stolen.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "a token two refreshes old",
    )
    .await;
    assert_session_ended(&app, &live, post, "after the replay of an older token").await;
    expect_json(
        app.get("/users/me", Some(&user.token)).await,
        StatusCode::OK,
        "another session",
    )
    .await;
}

async fn an_expired_refresh_token_is_refused(app: TestApp) {
    let user = app.create_user_and_login().await;
    let tokens = tokens_of(&app, &user).await;
    let db = app.database().await;
    db.execute_unprepared(&format!("UPDATE sessions SET expires_at = '{LONG_AGO}'"))
        .await
        .expect("the sessions are aged");
    expect_problem(
        app.refresh(&tokens.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "an expired refresh token",
    )
    .await;
    let left = query_i64(&db, "SELECT COUNT(*) FROM sessions").await;
    assert_eq!(left, 0, "expired sessions are deleted on the next refresh");
}

async fn hostile_refresh_tokens_are_401_or_422_and_change_nothing(app: TestApp) {
    let user = app.create_user_and_login().await;
    let tokens = tokens_of(&app, &user).await;
    let elsewhere = TestApp::spawn(Backend::Sqlite).await;
    let foreign = elsewhere.create_user_and_login().await;
    let foreign_tokens = tokens_of(&elsewhere, &foreign).await;
    let stored = "SELECT refresh_hash FROM sessions ORDER BY id";
    let refreshes = api_tests::query_strings(&app.database().await, stored).await;

    let unauthorized = [
        (String::new(), "an empty token"),
        (random_string(43), "43 random characters"),
        (format!("{}=", tokens.refresh_token), "the token padded"),
        (api_tests::base64url(&[0u8; 32]), "256 zero bits"),
        (tokens.refresh_token[..42].to_owned(), "the token cut short"),
        (tokens.refresh_token.to_uppercase(), "the token upper-cased"),
        (tokens.access_token.clone(), "an access token"),
        (
            foreign_tokens.refresh_token.clone(),
            "another deployment's refresh token",
        ),
        ("\u{0}".repeat(43), "NUL characters"),
        ("é".repeat(43), "non-ASCII text"),
    ];
    for (token, case) in &unauthorized {
        expect_problem(app.refresh(token).await, StatusCode::UNAUTHORIZED, case).await;
    }
    let failures = app
        .check_invalid_bodies(
            Method::POST,
            "/login/refresh",
            None,
            vec![
                (json!({}), "refresh_token", "no refresh_token"),
                (
                    json!({ "refresh_token": null }),
                    "refresh_token",
                    "a null refresh_token",
                ),
                (json!({ "refresh_token": 42 }), "refresh_token", "a number"),
                (
                    json!({ "refresh_token": [tokens.refresh_token] }),
                    "refresh_token",
                    "an array",
                ),
                (
                    json!({ "refresh_token": "x".repeat(10 * 1024) }),
                    "refresh_token",
                    "10 KB of text, longer than any refresh token",
                ),
            ],
        )
        .await;
    failures.assert_none();
    for (fields, field, case) in [
        (
            vec![("refresh_token", tokens.refresh_token.as_str())],
            "grant_type",
            "no grant_type",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("refresh_token", tokens.refresh_token.as_str()),
            ],
            "grant_type",
            "the password grant",
        ),
        (
            vec![("grant_type", "refresh_token")],
            "refresh_token",
            "no refresh_token",
        ),
    ] {
        let response = app
            .request(Method::POST, "/login/refresh", None)
            .form(&fields)
            .send()
            .await
            .expect("the refresh is answered");
        check_invalid_fields(response, &[field], case)
            .await
            .unwrap();
    }
    // A refresh token is no bearer token.
    expect_problem(
        app.get("/users/me", Some(&tokens.refresh_token)).await,
        StatusCode::UNAUTHORIZED,
        "a refresh token as the bearer token",
    )
    .await;
    assert_eq!(
        api_tests::query_strings(&app.database().await, stored).await,
        refreshes,
        "no refresh token was spent or issued"
    );
    // The genuine token still works after all that.
    expect_json(
        app.refresh(&tokens.refresh_token).await,
        StatusCode::OK,
        "the genuine token",
    )
    .await;
}

async fn logging_out_ends_the_session_everywhere_at_once(app: TestApp) {
    let user = app.create_user_and_login().await;
    let post = id_of(&app.new_post(&user, "kept", true).await);
    let tokens = tokens_of(&app, &user).await;
    let sibling = app.spawn_sibling().await;
    expect_json(
        sibling.get("/users/me", Some(&tokens.access_token)).await,
        StatusCode::OK,
        "before",
    )
    .await;

    expect_empty(
        app.request(Method::POST, "/logout", Some(&tokens.access_token))
            .send()
            .await
            .unwrap(),
        StatusCode::NO_CONTENT,
        "logging out",
    )
    .await;
    assert_session_ended(&app, &tokens, post, "after logging out").await;
    assert_session_ended(
        &sibling,
        &tokens,
        post,
        "on another instance after logging out",
    )
    .await;
    // The person's other session goes on.
    let sessions = sessions_of(&app, &user.token).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
}

async fn a_session_can_be_ended_from_another(app: TestApp) {
    let user = app.create_user_and_login().await;
    let post = id_of(&app.new_post(&user, "kept", true).await);
    let laptop = tokens_of(&app, &user).await;
    let laptop_sid = app.claims_of(&laptop.access_token)["sid"].as_i64().unwrap();
    let stranger = app.create_user_and_login().await;
    let stranger_sid = app.claims_of(&stranger.token)["sid"].as_i64().unwrap();

    for (id, case) in [
        (stranger_sid, "another person's session"),
        (i64::MAX, "no session"),
    ] {
        expect_problem(
            app.delete(&format!("/users/me/sessions/{id}"), Some(&user.token))
                .await,
            StatusCode::NOT_FOUND,
            case,
        )
        .await;
    }
    expect_json(
        app.get("/users/me", Some(&stranger.token)).await,
        StatusCode::OK,
        "the stranger's session goes on",
    )
    .await;
    for (id, case) in [("0", "zero"), ("-1", "a negative id"), ("one", "a word")] {
        check_invalid_fields(
            app.delete(&format!("/users/me/sessions/{id}"), Some(&user.token))
                .await,
            &["id"],
            case,
        )
        .await
        .unwrap();
    }

    expect_empty(
        app.delete(
            &format!("/users/me/sessions/{laptop_sid}"),
            Some(&user.token),
        )
        .await,
        StatusCode::NO_CONTENT,
        "ending the laptop's session",
    )
    .await;
    assert_session_ended(&app, &laptop, post, "after it was ended").await;
    let left = sessions_of(&app, &user.token).await;
    assert_eq!(left.len(), 1, "{left:?}");

    // Ending one's own session is logging out.
    let own = app.claims_of(&user.token)["sid"].as_i64().unwrap();
    expect_empty(
        app.delete(&format!("/users/me/sessions/{own}"), Some(&user.token))
            .await,
        StatusCode::NO_CONTENT,
        "ending one's own session",
    )
    .await;
    expect_problem(
        app.get("/users/me", Some(&user.token)).await,
        StatusCode::UNAUTHORIZED,
        "after ending one's own",
    )
    .await;
}

async fn every_other_session_can_be_ended_at_once(app: TestApp) {
    let user = app.create_user_and_login().await;
    let post = id_of(&app.new_post(&user, "kept", true).await);
    let others = [tokens_of(&app, &user).await, tokens_of(&app, &user).await];
    let stranger = app.create_user_and_login().await;
    assert_eq!(sessions_of(&app, &user.token).await.len(), 3);

    expect_empty(
        app.delete("/users/me/sessions", Some(&user.token)).await,
        StatusCode::NO_CONTENT,
        "ending the other sessions",
    )
    .await;
    for other in &others {
        assert_session_ended(&app, other, post, "after the others were ended").await;
    }
    let left = sessions_of(&app, &user.token).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["current"], true);
    expect_json(
        app.get("/users/me", Some(&stranger.token)).await,
        StatusCode::OK,
        "another person's session",
    )
    .await;
}

async fn changing_the_password_ends_every_other_session(app: TestApp) {
    let user = app.create_user_and_login().await;
    let post = id_of(&app.new_post(&user, "kept", true).await);
    let other = tokens_of(&app, &user).await;
    let new_password = format!("new-{}", random_string(12));

    let wrong = app
        .put(
            "/users/me/password",
            Some(&user.token),
            &json!({ "current_password": "not the password", "new_password": new_password }),
        )
        .await;
    expect_problem(wrong, StatusCode::FORBIDDEN, "a wrong current password").await;
    let failures = app
        .check_invalid_bodies(
            Method::PUT,
            "/users/me/password",
            Some(&user.token),
            vec![
                (
                    json!({ "current_password": user.password, "new_password": "short" }),
                    "new_password",
                    "a short new password",
                ),
                (
                    json!({ "new_password": new_password }),
                    "current_password",
                    "no current password",
                ),
                (
                    json!({ "current_password": user.password }),
                    "new_password",
                    "no new password",
                ),
                (
                    json!({ "current_password": user.password, "new_password": "x".repeat(129) }),
                    "new_password",
                    "a new password over 128 characters",
                ),
            ],
        )
        .await;
    failures.assert_none();
    expect_json(
        app.get("/users/me", Some(&other.access_token)).await,
        StatusCode::OK,
        "nothing changed yet",
    )
    .await;

    expect_empty(
        app.put(
            "/users/me/password",
            Some(&user.token),
            &json!({ "current_password": user.password, "new_password": new_password }),
        )
        .await,
        StatusCode::NO_CONTENT,
        "changing the password",
    )
    .await;
    assert_session_ended(&app, &other, post, "after a password change").await;
    expect_json(
        app.get("/users/me", Some(&user.token)).await,
        StatusCode::OK,
        "the caller's own session goes on",
    )
    .await;
    expect_problem(
        app.login_json(&user.email, &user.password).await,
        StatusCode::UNAUTHORIZED,
        "the old password",
    )
    .await;
    app.login(&user.email, &new_password).await;
}

async fn wrong_current_passwords_count_as_failed_logins(app: TestApp) {
    let user = app.create_user_and_login().await;
    let change =
        |current: &str| json!({ "current_password": current, "new_password": "a new password" });
    for attempt in 1..=5 {
        expect_problem(
            app.put(
                "/users/me/password",
                Some(&user.token),
                &change("wrong password"),
            )
            .await,
            StatusCode::FORBIDDEN,
            &format!("wrong current password {attempt}"),
        )
        .await;
    }
    let locked = app
        .put(
            "/users/me/password",
            Some(&user.token),
            &change(&user.password),
        )
        .await;
    assert!(
        header(&locked, "retry-after").is_some(),
        "429 says when to retry"
    );
    expect_problem(
        locked,
        StatusCode::TOO_MANY_REQUESTS,
        "the right password past the limit",
    )
    .await;
    expect_problem(
        app.login_json(&user.email, &user.password).await,
        StatusCode::TOO_MANY_REQUESTS,
        "logging in is locked as well",
    )
    .await;
}

async fn deleting_the_account_ends_all_its_sessions(app: TestApp) {
    let user = app.create_user_and_login().await;
    let other = tokens_of(&app, &user).await;
    let db = app.database().await;
    expect_empty(
        app.delete("/users/me", Some(&user.token)).await,
        StatusCode::NO_CONTENT,
        "deleting the account",
    )
    .await;
    for token in [&user.token, &other.access_token] {
        expect_problem(
            app.get("/posts", Some(token)).await,
            StatusCode::UNAUTHORIZED,
            "a token of the deleted account",
        )
        .await;
    }
    expect_problem(
        app.refresh(&other.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "a refresh token of the deleted account",
    )
    .await;
    let rows = query_i64(
        &db,
        &format!("SELECT COUNT(*) FROM sessions WHERE user_id = {}", user.id),
    )
    .await;
    assert_eq!(rows, 0, "the account's sessions are gone");
}

async fn a_week_of_logins_leaves_the_session_tables_bounded(app: TestApp) {
    let app = app
        .spawn_sibling_with(|settings| settings.refresh_token_expire_days = 1)
        .await;
    let user = app.create_user_and_login().await;
    let db = app.database().await;
    let count = |table: &'static str| {
        let db = &db;
        async move { query_i64(db, &format!("SELECT COUNT(*) FROM {table}")).await }
    };
    const LOGINS_A_DAY: i64 = 4;
    for _day in 0..7 {
        for _ in 0..LOGINS_A_DAY {
            let tokens = tokens_of(&app, &user).await;
            expect_json(
                app.refresh(&tokens.refresh_token).await,
                StatusCode::OK,
                "a refresh",
            )
            .await;
        }
        // A day passes: everything issued today, with a lifetime of one day, has expired.
        db.execute_unprepared(&format!("UPDATE sessions SET expires_at = '{LONG_AGO}'"))
            .await
            .expect("the rows are aged");
    }
    // Each day's logins deleted the day before: a week holds no more than its last day.
    assert_eq!(
        count("sessions").await,
        LOGINS_A_DAY,
        "after a week of {} logins and refreshes",
        7 * LOGINS_A_DAY
    );
    tokens_of(&app, &user).await;
    assert_eq!(
        count("sessions").await,
        1,
        "a login deletes the expired sessions"
    );
}

async fn no_login_checking_the_old_password_outlives_a_password_change(app: TestApp) {
    let db = app.database().await;
    // The logins go to an instance without the failed-login locks: however many of them fail
    // with the old password before they stop, each is a plain 401, never a 429.
    let unthrottled = app
        .spawn_sibling_with(|settings| {
            settings.login_max_failures = 0;
            settings.login_max_failures_per_address = 0;
        })
        .await;
    for round in 1..=30 {
        let user = app.create_user_and_login().await;
        let changer = app.claims_of(&user.token)["sid"].as_i64().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Logins with the old password keep coming while the owner changes it.
        let logins: Vec<_> = (0..3)
            .map(|_| {
                let (api, email, password) = (
                    (*unthrottled).clone(),
                    user.email.clone(),
                    user.password.clone(),
                );
                let stop = std::sync::Arc::clone(&stop);
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let status = api.login_json(&email, &password).await.status();
                        assert!(
                            [StatusCode::OK, StatusCode::UNAUTHORIZED].contains(&status),
                            "a login beside a password change: {status}"
                        );
                    }
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        expect_empty(
            app.put(
                "/users/me/password",
                Some(&user.token),
                &json!({ "current_password": user.password, "new_password": "a new password" }),
            )
            .await,
            StatusCode::NO_CONTENT,
            "changing the password",
        )
        .await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for login in logins {
            login.await.unwrap();
        }
        let sessions = api_tests::query_i64s(
            &db,
            &format!("SELECT id FROM sessions WHERE user_id = {}", user.id),
        )
        .await;
        assert_eq!(
            sessions,
            [changer],
            "round {round}: only the changer's session is left after the change"
        );
    }
}

async fn logging_out_while_refreshing_always_ends_the_session(app: TestApp) {
    let user = app.create_user_and_login().await;
    const AT_ONCE: usize = 4;
    for round in 1..=60 {
        let mut sessions = Vec::new();
        for _ in 0..AT_ONCE {
            sessions.push(tokens_of(&app, &user).await);
        }
        // Each session logged out and refreshed at the same moment, several sessions at once.
        let outcomes = send_all_at_once(sessions.iter().flat_map(|tokens| {
            [
                app.request(Method::POST, "/logout", Some(&tokens.access_token)),
                app.request(Method::POST, "/login/refresh", None)
                    .json(&json!({ "refresh_token": tokens.refresh_token })),
            ]
        }))
        .await;
        for (tokens, race) in sessions.iter().zip(outcomes.chunks(2)) {
            let (logout, refresh) = (&race[0], &race[1]);
            assert_eq!(
                logout.0,
                StatusCode::NO_CONTENT,
                "round {round}: logging out beside a refresh: {}",
                logout.1
            );
            let mut ended = vec![tokens.access_token.clone()];
            match refresh.0 {
                StatusCode::OK => {
                    let pair = SessionTokens::from_body(&serde_json::from_str(&refresh.1).unwrap());
                    expect_problem(
                        app.refresh(&pair.refresh_token).await,
                        StatusCode::UNAUTHORIZED,
                        &format!("round {round}: the refreshed token after logging out"),
                    )
                    .await;
                    ended.push(pair.access_token);
                }
                StatusCode::UNAUTHORIZED => {}
                status => panic!(
                    "round {round}: the refresh beside a logout: {status} {}",
                    refresh.1
                ),
            }
            for token in &ended {
                expect_problem(
                    app.get("/users/me", Some(token)).await,
                    StatusCode::UNAUTHORIZED,
                    &format!("round {round}: an access token of the session logged out"),
                )
                .await;
            }
        }
    }
    assert_eq!(sessions_of(&app, &user.token).await.len(), 1);
}

on_both_backends!(
    a_login_starts_a_session_with_a_refresh_token,
    a_refresh_token_rotates_and_works_once,
    a_spent_refresh_token_replayed_after_the_grace_ends_the_session,
    refreshes_racing_with_one_token_within_the_grace_get_one_successor,
    fifty_reuses_within_the_grace_get_the_first_uses_successor,
    a_session_keeps_what_it_stores_however_often_it_refreshes,
    a_token_two_refreshes_old_replayed_after_the_grace_ends_the_session,
    an_expired_refresh_token_is_refused,
    hostile_refresh_tokens_are_401_or_422_and_change_nothing,
    logging_out_ends_the_session_everywhere_at_once,
    a_session_can_be_ended_from_another,
    every_other_session_can_be_ended_at_once,
    changing_the_password_ends_every_other_session,
    wrong_current_passwords_count_as_failed_logins,
    deleting_the_account_ends_all_its_sessions,
    a_week_of_logins_leaves_the_session_tables_bounded,
    no_login_checking_the_old_password_outlives_a_password_change,
    logging_out_while_refreshing_always_ends_the_session,
);

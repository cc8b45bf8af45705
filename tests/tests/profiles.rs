//! Handles, display names and privacy: `POST /users` with a handle, `PATCH /users/me`,
//! `GET /profiles/{handle}`, and no one's email in what anyone else is sent.

use std::time::Duration;

use api_tests::{
    SseStream, StatusCode, TestApp, TestUser, assert_profile, check_invalid_fields, expect_json,
    expect_problem, header, id_of, json, on_both_backends, random_string, unique_email,
};

const ARRIVAL: Duration = Duration::from_secs(2);
const QUIET: Duration = Duration::from_millis(700);

async fn register_with(app: &TestApp, handle: &str) -> reqwest::Response {
    let body = json!({
        "email": unique_email(),
        "password": "correct horse battery",
        "handle": handle,
    });
    app.post("/users", None, &body).await
}

/// A handle no other test holds: `prefix` and random letters and digits, lower-cased.
fn unique_handle(prefix: &str) -> String {
    format!("{prefix}{}", random_string(16).to_lowercase())
}

async fn read_me(app: &TestApp, user: &TestUser) -> serde_json::Value {
    expect_json(
        app.get("/users/me", Some(&user.token)).await,
        StatusCode::OK,
        "GET /users/me",
    )
    .await
}

async fn a_chosen_handle_is_kept_in_lower_case_and_taken_without_regard_to_case(app: TestApp) {
    let handle = unique_handle("Ann_");
    let created = expect_json(
        register_with(&app, &handle).await,
        StatusCode::CREATED,
        "registering with a handle",
    )
    .await;
    assert_eq!(created["handle"], handle.to_lowercase());

    for taken in [handle.clone(), handle.to_uppercase(), handle.to_lowercase()] {
        expect_problem(
            register_with(&app, &taken).await,
            StatusCode::CONFLICT,
            &format!("registering with the taken handle {taken}"),
        )
        .await;
    }
}

async fn a_handle_nobody_chose_is_random_and_tells_nothing_of_the_email(app: TestApp) {
    let mut handles = Vec::new();
    for local in ["ann.lee", "annlee", "bob"] {
        let email = format!("{local}{}", unique_email());
        let user = expect_json(
            app.register(&email, "correct horse battery").await,
            StatusCode::CREATED,
            "registering without a handle",
        )
        .await;
        let handle = user["handle"].as_str().expect("a handle").to_owned();
        let random = handle
            .strip_prefix("user_")
            .unwrap_or_else(|| panic!("a made handle begins with user_: {handle}"));
        assert!(random.len() >= 10, "{handle}");
        assert!(
            !handle.contains("ann") && !handle.contains("bob") && !handle.contains("lee"),
            "{handle} tells nothing of {email}"
        );
        handles.push(handle);
    }
    handles.dedup();
    assert_eq!(handles.len(), 3, "each is its own: {handles:?}");
}

async fn handles_and_display_names_break_their_rules_with_a_422_naming_the_field(app: TestApp) {
    let user = app.create_user_and_login().await;
    for (body, fields) in [
        (
            json!({"email": unique_email(), "password": "correct horse battery", "handle": "ab"}),
            vec!["handle"],
        ),
        (
            json!({"email": "nope", "password": "short", "handle": "ann-lee"}),
            vec!["email", "handle", "password"],
        ),
        (
            json!({"email": unique_email(), "password": "correct horse battery", "handle": null}),
            vec!["handle"],
        ),
    ] {
        let response = app.post("/users", None, &body).await;
        check_invalid_fields(response, &fields, &format!("registering with {body}"))
            .await
            .unwrap_or_else(|failure| panic!("{failure}"));
    }
    let too_long = "é".repeat(51);
    for (body, fields) in [
        (json!({"handle": "a".repeat(31)}), vec!["handle"]),
        (json!({"handle": null}), vec!["handle"]),
        (json!({"display_name": "   "}), vec!["display_name"]),
        (json!({"display_name": too_long}), vec!["display_name"]),
        (json!({"display_name": "Ann\u{7}"}), vec!["display_name"]),
        (
            json!({"display_name": 5, "handle": "ü_ann"}),
            vec!["display_name", "handle"],
        ),
    ] {
        let response = app.patch("/users/me", Some(&user.token), &body).await;
        check_invalid_fields(
            response,
            &fields,
            &format!("changing the profile to {body}"),
        )
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    }
    let me = read_me(&app, &user).await;
    assert!(me["display_name"].is_null(), "nothing was changed: {me}");
}

async fn patching_me_changes_only_what_it_names(app: TestApp) {
    let user = app.create_user_and_login().await;
    let other = app.create_user_and_login().await;
    let handle = unique_handle("lee_");

    let changed = app
        .patch(
            "/users/me",
            Some(&user.token),
            &json!({"handle": handle.to_uppercase(), "display_name": "  Ann Lee  "}),
        )
        .await;
    let changed = expect_json(changed, StatusCode::OK, "changing the profile").await;
    assert_eq!(changed["handle"], handle);
    assert_eq!(changed["display_name"], "Ann Lee");
    assert_eq!(changed["email"], user.email, "the owner's own account");
    assert_eq!(read_me(&app, &user).await, changed);

    let renamed = app
        .patch(
            "/users/me",
            Some(&user.token),
            &json!({"display_name": "Ann"}),
        )
        .await;
    let renamed = expect_json(renamed, StatusCode::OK, "renaming").await;
    assert_eq!(renamed["handle"], handle, "the handle left out stays");
    assert_eq!(renamed["display_name"], "Ann");

    let unchanged = app.patch("/users/me", Some(&user.token), &json!({})).await;
    assert_eq!(
        expect_json(unchanged, StatusCode::OK, "an empty change").await,
        renamed
    );
    let same = app
        .patch("/users/me", Some(&user.token), &json!({"handle": handle}))
        .await;
    expect_json(same, StatusCode::OK, "one's own handle again").await;

    let cleared = app
        .patch(
            "/users/me",
            Some(&user.token),
            &json!({"display_name": null}),
        )
        .await;
    let cleared = expect_json(cleared, StatusCode::OK, "taking the name away").await;
    assert!(cleared["display_name"].is_null(), "{cleared}");

    let taken = app
        .patch("/users/me", Some(&other.token), &json!({"handle": handle}))
        .await;
    expect_problem(taken, StatusCode::CONFLICT, "someone else's handle").await;
    expect_problem(
        app.patch("/users/me", None, &json!({"display_name": "X"}))
            .await,
        StatusCode::UNAUTHORIZED,
        "without a token",
    )
    .await;
}

async fn a_profile_is_found_by_its_handle_without_regard_to_case(app: TestApp) {
    let caller = app.create_user_and_login().await;
    let handle = unique_handle("bee_");
    let person = expect_json(
        register_with(&app, &handle).await,
        StatusCode::CREATED,
        "registering",
    )
    .await;
    let id = id_of(&person);
    for asked in [handle.clone(), handle.to_uppercase()] {
        let found = app
            .get(&format!("/profiles/{asked}"), Some(&caller.token))
            .await;
        let found = expect_json(found, StatusCode::OK, "GET /profiles/{handle}").await;
        assert_profile(&found, id, "GET /profiles/{handle}");
        assert_eq!(found["handle"], handle);
    }
    let own = app
        .get(
            &format!("/profiles/{}", caller_handle(&app, &caller).await),
            Some(&caller.token),
        )
        .await;
    assert_profile(
        &expect_json(own, StatusCode::OK, "one's own profile").await,
        caller.id,
        "one's own profile",
    );
    expect_problem(
        app.get("/profiles/nobody_has_this", Some(&caller.token))
            .await,
        StatusCode::NOT_FOUND,
        "a handle no one has",
    )
    .await;
    expect_problem(
        app.get("/profiles/a-b", Some(&caller.token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no handle at all",
    )
    .await;
    expect_problem(
        app.get(&format!("/profiles/{handle}"), None).await,
        StatusCode::UNAUTHORIZED,
        "without a token",
    )
    .await;
}

async fn caller_handle(app: &TestApp, user: &TestUser) -> String {
    read_me(app, user).await["handle"]
        .as_str()
        .expect("a handle")
        .to_owned()
}

/// Everything a reader can be sent about another person's post and account, as text.
async fn what_a_reader_sees(
    app: &TestApp,
    reader: &TestUser,
    owner: &TestUser,
    post: i64,
) -> String {
    let mut seen = String::new();
    for path in [
        "/posts".to_owned(),
        "/posts?search=Private".to_owned(),
        format!("/posts/{post}"),
        format!("/users/{}", owner.id),
        format!("/profiles/{}", caller_handle(app, owner).await),
    ] {
        let response = app.get(&path, Some(&reader.token)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        seen.push_str(&response.text().await.expect("a body"));
    }
    seen
}

async fn no_response_or_event_carries_another_persons_email(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let reader = app.create_user_and_login().await;
    let mut events = SseStream::open(&app, "/events", Some(&reader.token), None).await;

    let post = id_of(&app.new_post(&owner, "Private matters", true).await);
    let edited = app
        .patch(
            &format!("/posts/{post}"),
            Some(&owner.token),
            &json!({"title": "Private, edited"}),
        )
        .await;
    assert_eq!(edited.status(), StatusCode::OK);
    let renamed = app
        .patch(
            "/users/me",
            Some(&owner.token),
            &json!({"display_name": "Owner"}),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);

    let mut seen = what_a_reader_sees(&app, &reader, &owner, post).await;
    let delivered = events.drain(QUIET).await;
    assert_eq!(
        delivered.len(),
        3,
        "created, updated, profile: {delivered:?}"
    );
    for event in &delivered {
        seen.push_str(&event.data);
    }
    assert!(seen.contains("Private"), "the reader saw the post: {seen}");
    assert!(
        !seen.contains(&owner.email) && !seen.contains('@'),
        "no email reaches another person: {seen}"
    );
}

async fn a_changed_profile_changes_the_tags_of_its_posts_and_is_told_once(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let reader = app.create_user_and_login().await;
    let mut events = SseStream::open(&app, "/events", Some(&reader.token), None).await;
    let posts = [
        id_of(&app.new_post(&owner, "First", true).await),
        id_of(&app.new_post(&owner, "Second", true).await),
    ];
    let mut tags = Vec::new();
    for id in posts {
        let response = app.get(&format!("/posts/{id}"), Some(&reader.token)).await;
        tags.push(header(&response, "etag").expect("an ETag"));
    }
    let created = events.drain(QUIET).await;
    assert_eq!(created.len(), 2, "the posts' creations: {created:?}");

    let changed = app
        .patch(
            "/users/me",
            Some(&owner.token),
            &json!({"display_name": "Ann Lee"}),
        )
        .await;
    let changed = expect_json(changed, StatusCode::OK, "changing the display name").await;

    let told = events.expect_event(ARRIVAL, "the profile's change").await;
    assert_eq!(told.event, "profile.updated");
    let data = told.payload();
    assert_eq!(data["id"], owner.id);
    assert_eq!(data["handle"], changed["handle"]);
    assert_eq!(data["display_name"], "Ann Lee");
    assert!(data.get("email").is_none(), "{data}");
    assert!(
        events.drain(QUIET).await.is_empty(),
        "one event, not one per post"
    );

    for (id, old_tag) in posts.into_iter().zip(tags) {
        let response = app
            .request(
                reqwest::Method::GET,
                &format!("/posts/{id}"),
                Some(&reader.token),
            )
            .header("if-none-match", &old_tag)
            .send()
            .await
            .expect("an answer");
        assert_ne!(
            header(&response, "etag"),
            Some(old_tag),
            "post {id}: a new tag"
        );
        let post = expect_json(response, StatusCode::OK, "the old tag no longer matches").await;
        assert_eq!(post["owner"]["display_name"], "Ann Lee");
    }

    let again = app
        .patch(
            "/users/me",
            Some(&owner.token),
            &json!({"display_name": "Ann Lee"}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(events.drain(QUIET).await.is_empty(), "no change, no event");
}

on_both_backends!(
    a_chosen_handle_is_kept_in_lower_case_and_taken_without_regard_to_case,
    a_handle_nobody_chose_is_random_and_tells_nothing_of_the_email,
    handles_and_display_names_break_their_rules_with_a_422_naming_the_field,
    patching_me_changes_only_what_it_names,
    a_profile_is_found_by_its_handle_without_regard_to_case,
    no_response_or_event_carries_another_persons_email,
    a_changed_profile_changes_the_tags_of_its_posts_and_is_told_once,
);

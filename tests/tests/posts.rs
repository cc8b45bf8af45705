//! `/posts`: creating, reading, replacing, patching and deleting posts, and the listing with
//! its paging, search and draft visibility.

use api_tests::{
    Failures, Method, StatusCode, TestApp, TestUser, Value, assert_fields, assert_profile,
    assert_recent_utc_timestamp, check_invalid, check_invalid_fields, check_json, check_problem,
    expect_empty, expect_json, expect_problem, header, id_of, ids, json, on_both_backends,
    shown_limits,
};
use sea_orm::ConnectionTrait;

/// Asserts the full shape of a `PostOut`.
fn assert_post_out(
    post: &Value,
    owner: &TestUser,
    title: &str,
    content: &str,
    published: bool,
    votes: i64,
) {
    let fields = [
        "content",
        "created_at",
        "hidden",
        "hidden_reason",
        "id",
        "owner",
        "owner_id",
        "published",
        "title",
        "votes",
    ];
    assert_fields(post, &fields, "a PostOut");
    assert_eq!(
        (post["hidden"].clone(), post["hidden_reason"].clone()),
        (json!(false), Value::Null),
        "not hidden: {post}"
    );
    assert!(post["id"].is_i64(), "an integer id: {post}");
    assert_eq!(post["title"].as_str(), Some(title), "title: {post}");
    assert_eq!(post["content"].as_str(), Some(content), "content: {post}");
    assert_eq!(
        post["published"].as_bool(),
        Some(published),
        "published: {post}"
    );
    assert_eq!(
        post["owner_id"].as_i64(),
        Some(owner.id),
        "owner_id: {post}"
    );
    assert_eq!(post["votes"].as_i64(), Some(votes), "votes: {post}");
    assert_recent_utc_timestamp(&post["created_at"], "the post's created_at");
    assert_profile(&post["owner"], owner.id, "the post's owner");
}

fn post_path(post: &Value) -> String {
    format!("/posts/{}", id_of(post))
}

async fn creating_a_post_returns_201_with_the_post_and_its_location(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app
        .create_post(
            &user.token,
            &json!({ "title": "Hello", "content": "First post." }),
        )
        .await;
    let location = header(&response, "location");
    let post = expect_json(response, StatusCode::CREATED, "POST /posts").await;

    assert_post_out(&post, &user, "Hello", "First post.", true, 0);
    assert_eq!(
        location,
        Some(post_path(&post)),
        "Location names the new post"
    );
    let fetched = app.fetch_post(&user.token, id_of(&post)).await;
    assert_eq!(fetched, post, "GET returns what POST returned");
}

async fn creating_a_draft_keeps_it_unpublished(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app
        .create_post(
            &user.token,
            &json!({ "title": "Draft", "content": "Not yet.", "published": false }),
        )
        .await;
    let post = expect_json(response, StatusCode::CREATED, "POST /posts").await;
    assert_post_out(&post, &user, "Draft", "Not yet.", false, 0);
}

async fn creating_a_post_without_a_token_is_401(app: TestApp) {
    let response = app
        .post(
            "/posts",
            None,
            &json!({ "title": "Hello", "content": "First post." }),
        )
        .await;
    expect_problem(
        response,
        StatusCode::UNAUTHORIZED,
        "POST /posts without a token",
    )
    .await;
}

async fn the_title_is_stored_trimmed(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app
        .create_post(
            &user.token,
            &json!({ "title": "  \tSpaced out \n", "content": "x" }),
        )
        .await;
    let post = expect_json(response, StatusCode::CREATED, "POST /posts").await;
    assert_eq!(post["title"], "Spaced out");
    assert_eq!(
        app.fetch_post(&user.token, id_of(&post)).await["title"],
        "Spaced out"
    );
}

async fn titles_and_contents_at_their_limits_are_accepted(app: TestApp) {
    let user = app.create_user_and_login().await;
    let cases = [
        (
            "a".repeat(200),
            "a".repeat(200),
            "x".to_owned(),
            "a title of 200 characters",
        ),
        (
            "é".repeat(200),
            "é".repeat(200),
            "x".to_owned(),
            "a title of 200 two-byte characters",
        ),
        (
            format!("  {}  ", "b".repeat(200)),
            "b".repeat(200),
            "x".to_owned(),
            "200 characters once trimmed",
        ),
        (
            "t".to_owned(),
            "t".to_owned(),
            "c".repeat(20_000),
            "a content of 20000 characters",
        ),
        (
            "t".to_owned(),
            "t".to_owned(),
            "ü".repeat(20_000),
            "a content of 20000 two-byte characters",
        ),
        (
            "t".to_owned(),
            "t".to_owned(),
            "c".to_owned(),
            "a content of 1 character",
        ),
    ];
    let mut failures = Failures::new();
    for (title, stored_title, content, case) in cases {
        let response = app
            .create_post(&user.token, &json!({ "title": title, "content": content }))
            .await;
        let outcome = check_json(response, StatusCode::CREATED, case)
            .await
            .and_then(|post| {
                if post["title"].as_str() != Some(stored_title.as_str()) {
                    Err(format!("{case}: the title is stored as {}", post["title"]))
                } else if post["content"].as_str() != Some(content.as_str()) {
                    Err(format!("{case}: the content is not stored as sent"))
                } else {
                    Ok(())
                }
            });
        failures.check(outcome);
    }
    failures.assert_none();
}

/// Bodies `POST /posts` and `PUT /posts/{id}` must both refuse, with the field to name.
fn invalid_post_bodies() -> Vec<(Value, &'static str, &'static str)> {
    vec![
        (json!({ "content": "x" }), "title", "a missing title"),
        (json!({ "title": "x" }), "content", "a missing content"),
        (
            json!({ "title": "", "content": "x" }),
            "title",
            "an empty title",
        ),
        (
            json!({ "title": "   \t ", "content": "x" }),
            "title",
            "a whitespace-only title",
        ),
        (
            json!({ "title": "a".repeat(201), "content": "x" }),
            "title",
            "a title of 201 characters",
        ),
        (
            json!({ "title": "é".repeat(201), "content": "x" }),
            "title",
            "a title of 201 two-byte characters",
        ),
        (
            json!({ "title": "x", "content": "" }),
            "content",
            "an empty content",
        ),
        (
            json!({ "title": "x", "content": "c".repeat(20_001) }),
            "content",
            "a content of 20001 characters",
        ),
        (
            json!({ "title": 5, "content": "x" }),
            "title",
            "a number as the title",
        ),
        (
            json!({ "title": true, "content": "x" }),
            "title",
            "a boolean as the title",
        ),
        (
            json!({ "title": null, "content": "x" }),
            "title",
            "a null title",
        ),
        (
            json!({ "title": "x", "content": 42 }),
            "content",
            "a number as the content",
        ),
        (
            json!({ "title": "x", "content": ["a"] }),
            "content",
            "an array as the content",
        ),
        (
            json!({ "title": "x", "content": "y", "published": "yes" }),
            "published",
            "a string as published",
        ),
        (
            json!({ "title": "x", "content": "y", "published": 1 }),
            "published",
            "a number as published",
        ),
    ]
}

async fn invalid_new_posts_are_422_naming_the_field(app: TestApp) {
    let user = app.create_user_and_login().await;
    let mut failures = app
        .check_invalid_bodies(
            Method::POST,
            "/posts",
            Some(&user.token),
            invalid_post_bodies(),
        )
        .await;
    let response = app.create_post(&user.token, &json!("just a string")).await;
    failures.check(
        check_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a string as the body",
        )
        .await,
    );
    let stored = app.list_posts(&user.token, &[("limit", "100")]).await;
    if !stored.is_empty() {
        failures.check::<()>(Err(format!("invalid posts were stored: {stored:?}")));
    }
    failures.assert_none();
}

async fn unknown_and_server_owned_fields_of_a_new_post_are_ignored(app: TestApp) {
    let user = app.create_user_and_login().await;
    let other = app.create_user_and_login().await;
    let body = json!({
        "title": "Mine",
        "content": "x",
        "id": 4242,
        "owner_id": other.id,
        "votes": 99,
        "created_at": "2001-01-01T00:00:00Z",
        "colour": "blue",
    });
    let response = app.create_post(&user.token, &body).await;
    let post = expect_json(
        response,
        StatusCode::CREATED,
        "POST /posts with extra fields",
    )
    .await;
    assert_post_out(&post, &user, "Mine", "x", true, 0);
}

async fn getting_a_post_returns_it(app: TestApp) {
    let author = app.create_user_and_login().await;
    let reader = app.create_user_and_login().await;
    let post = app.new_post(&author, "Readable", true).await;
    let fetched = app.fetch_post(&reader.token, id_of(&post)).await;
    assert_post_out(
        &fetched,
        &author,
        "Readable",
        "Some words about Readable.",
        true,
        0,
    );
}

async fn getting_an_unknown_post_is_404(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app.get("/posts/999999", Some(&user.token)).await;
    let problem = expect_problem(response, StatusCode::NOT_FOUND, "GET /posts/999999").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("999999"),
        "the detail names the post: {problem}"
    );
}

async fn getting_a_post_without_a_token_is_401(app: TestApp) {
    let user = app.create_user_and_login().await;
    let post = app.new_post(&user, "Hidden from strangers", true).await;
    let response = app.get(&post_path(&post), None).await;
    expect_problem(
        response,
        StatusCode::UNAUTHORIZED,
        "GET /posts/{id} without a token",
    )
    .await;
}

async fn a_draft_is_visible_to_its_owner_only(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let stranger = app.create_user_and_login().await;
    let draft = app.new_post(&owner, "Secret plans", false).await;

    let mine = app.fetch_post(&owner.token, id_of(&draft)).await;
    assert_eq!(mine["published"], false);

    let path = post_path(&draft);
    let change = json!({ "title": "Mine now", "content": "x" });
    expect_problem(
        app.get(&path, Some(&stranger.token)).await,
        StatusCode::NOT_FOUND,
        "GET another's draft",
    )
    .await;
    expect_problem(
        app.put(&path, Some(&stranger.token), &change).await,
        StatusCode::NOT_FOUND,
        "PUT another's draft",
    )
    .await;
    expect_problem(
        app.patch(&path, Some(&stranger.token), &change).await,
        StatusCode::NOT_FOUND,
        "PATCH another's draft",
    )
    .await;
    expect_problem(
        app.delete(&path, Some(&stranger.token)).await,
        StatusCode::NOT_FOUND,
        "DELETE another's draft",
    )
    .await;

    let unchanged = app.fetch_post(&owner.token, id_of(&draft)).await;
    assert_eq!(unchanged, mine, "the stranger changed nothing");
}

async fn putting_a_post_replaces_it(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let fan = app.create_user_and_login().await;
    let post = app.new_post(&owner, "Before", false).await;
    assert_eq!(
        app.vote(&owner.token, id_of(&post), 1).await.status(),
        StatusCode::CREATED
    );

    let response = app
        .put(
            &post_path(&post),
            Some(&owner.token),
            &json!({ "title": "  After ", "content": "New words." }),
        )
        .await;
    let replaced = expect_json(response, StatusCode::OK, "PUT /posts/{id}").await;
    assert_post_out(&replaced, &owner, "After", "New words.", true, 1);
    assert_eq!(replaced["id"], post["id"]);
    assert_eq!(
        replaced["created_at"], post["created_at"],
        "created_at does not change"
    );
    assert_eq!(
        app.fetch_post(&fan.token, id_of(&post)).await,
        replaced,
        "GET sees the replacement"
    );

    let response = app
        .put(
            &post_path(&post),
            Some(&owner.token),
            &json!({ "title": "Hidden", "content": "Again.", "published": false }),
        )
        .await;
    let hidden = expect_json(response, StatusCode::OK, "PUT with published false").await;
    assert_post_out(&hidden, &owner, "Hidden", "Again.", false, 1);
}

async fn putting_someone_elses_post_is_403(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let stranger = app.create_user_and_login().await;
    let post = app.new_post(&owner, "Mine", true).await;
    let response = app
        .put(
            &post_path(&post),
            Some(&stranger.token),
            &json!({ "title": "Yours", "content": "x" }),
        )
        .await;
    expect_problem(response, StatusCode::FORBIDDEN, "PUT another's post").await;
    assert_eq!(
        app.fetch_post(&owner.token, id_of(&post)).await,
        post,
        "the post is unchanged"
    );
}

async fn putting_an_unknown_post_is_404(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app
        .put(
            "/posts/999999",
            Some(&user.token),
            &json!({ "title": "x", "content": "y" }),
        )
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "PUT /posts/999999").await;
}

async fn putting_without_a_token_is_401(app: TestApp) {
    let user = app.create_user_and_login().await;
    let post = app.new_post(&user, "Mine", true).await;
    let response = app
        .put(
            &post_path(&post),
            None,
            &json!({ "title": "x", "content": "y" }),
        )
        .await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "PUT without a token").await;
}

async fn invalid_replacements_are_422_naming_the_field(app: TestApp) {
    let user = app.create_user_and_login().await;
    let post = app.new_post(&user, "Original", true).await;
    let path = post_path(&post);
    app.check_invalid_bodies(Method::PUT, &path, Some(&user.token), invalid_post_bodies())
        .await
        .assert_none();
    assert_eq!(
        app.fetch_post(&user.token, id_of(&post)).await,
        post,
        "the post is unchanged"
    );
}

async fn patching_changes_only_the_fields_given(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let post = app.new_post(&owner, "Original", true).await;
    let path = post_path(&post);
    let content = "Some words about Original.";

    let response = app
        .patch(&path, Some(&owner.token), &json!({ "published": false }))
        .await;
    let patched = expect_json(response, StatusCode::OK, "PATCH published").await;
    assert_post_out(&patched, &owner, "Original", content, false, 0);

    let response = app
        .patch(&path, Some(&owner.token), &json!({ "title": " Renamed  " }))
        .await;
    let patched = expect_json(response, StatusCode::OK, "PATCH title").await;
    assert_post_out(&patched, &owner, "Renamed", content, false, 0);

    let response = app
        .patch(
            &path,
            Some(&owner.token),
            &json!({ "content": "Rewritten." }),
        )
        .await;
    let patched = expect_json(response, StatusCode::OK, "PATCH content").await;
    assert_post_out(&patched, &owner, "Renamed", "Rewritten.", false, 0);

    let response = app
        .patch(
            &path,
            Some(&owner.token),
            &json!({ "title": "All", "content": "Three.", "published": true }),
        )
        .await;
    let patched = expect_json(response, StatusCode::OK, "PATCH everything").await;
    assert_post_out(&patched, &owner, "All", "Three.", true, 0);
    assert_eq!(
        patched["created_at"], post["created_at"],
        "created_at does not change"
    );

    let response = app.patch(&path, Some(&owner.token), &json!({})).await;
    let patched_nothing = expect_json(response, StatusCode::OK, "an empty PATCH").await;
    assert_eq!(patched_nothing, patched, "an empty PATCH changes nothing");
    assert_eq!(app.fetch_post(&owner.token, id_of(&post)).await, patched);
}

async fn invalid_patches_are_422_naming_the_field(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let post = app.new_post(&owner, "Original", true).await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({ "title": null }), "title", "a null title"),
        (json!({ "content": null }), "content", "a null content"),
        (
            json!({ "published": null }),
            "published",
            "a null published",
        ),
        (json!({ "title": "" }), "title", "an empty title"),
        (json!({ "title": "  " }), "title", "a whitespace-only title"),
        (
            json!({ "title": "a".repeat(201) }),
            "title",
            "a title of 201 characters",
        ),
        (json!({ "content": "" }), "content", "an empty content"),
        (
            json!({ "content": "c".repeat(20_001) }),
            "content",
            "a content of 20001 characters",
        ),
        (json!({ "title": 5 }), "title", "a number as the title"),
        (
            json!({ "content": false }),
            "content",
            "a boolean as the content",
        ),
        (
            json!({ "published": "no" }),
            "published",
            "a string as published",
        ),
    ];
    let path = post_path(&post);
    app.check_invalid_bodies(Method::PATCH, &path, Some(&owner.token), cases)
        .await
        .assert_none();
    assert_eq!(
        app.fetch_post(&owner.token, id_of(&post)).await,
        post,
        "the post is unchanged"
    );
}

async fn patching_someone_elses_post_is_403(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let stranger = app.create_user_and_login().await;
    let post = app.new_post(&owner, "Mine", true).await;
    let response = app
        .patch(
            &post_path(&post),
            Some(&stranger.token),
            &json!({ "title": "Yours" }),
        )
        .await;
    expect_problem(response, StatusCode::FORBIDDEN, "PATCH another's post").await;
    assert_eq!(
        app.fetch_post(&owner.token, id_of(&post)).await,
        post,
        "the post is unchanged"
    );
}

async fn patching_an_unknown_post_is_404(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app
        .patch("/posts/999999", Some(&user.token), &json!({ "title": "x" }))
        .await;
    expect_problem(response, StatusCode::NOT_FOUND, "PATCH /posts/999999").await;
}

async fn patching_without_a_token_is_401(app: TestApp) {
    let user = app.create_user_and_login().await;
    let post = app.new_post(&user, "Mine", true).await;
    let response = app
        .patch(&post_path(&post), None, &json!({ "title": "x" }))
        .await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "PATCH without a token").await;
}

async fn deleting_a_post_is_204_and_it_is_gone(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let fan = app.create_user_and_login().await;
    let post = app.new_post(&owner, "Short-lived", true).await;
    let kept = app.new_post(&owner, "Kept", true).await;
    assert_eq!(
        app.vote(&fan.token, id_of(&post), 1).await.status(),
        StatusCode::CREATED
    );

    let response = app.delete(&post_path(&post), Some(&owner.token)).await;
    expect_empty(response, StatusCode::NO_CONTENT, "DELETE /posts/{id}").await;

    let response = app.get(&post_path(&post), Some(&owner.token)).await;
    expect_problem(response, StatusCode::NOT_FOUND, "GET a deleted post").await;
    let response = app.delete(&post_path(&post), Some(&owner.token)).await;
    expect_problem(response, StatusCode::NOT_FOUND, "DELETE a deleted post").await;
    let response = app.vote(&fan.token, id_of(&post), 0).await;
    expect_problem(
        response,
        StatusCode::NOT_FOUND,
        "removing a vote from a deleted post",
    )
    .await;
    assert_eq!(
        ids(&app.list_posts(&fan.token, &[]).await),
        vec![id_of(&kept)]
    );
}

async fn deleting_someone_elses_post_is_403(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let stranger = app.create_user_and_login().await;
    let post = app.new_post(&owner, "Mine", true).await;
    let response = app.delete(&post_path(&post), Some(&stranger.token)).await;
    expect_problem(response, StatusCode::FORBIDDEN, "DELETE another's post").await;
    assert_eq!(
        app.fetch_post(&owner.token, id_of(&post)).await,
        post,
        "the post is still there"
    );
}

async fn deleting_an_unknown_post_is_404(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = app.delete("/posts/999999", Some(&user.token)).await;
    expect_problem(response, StatusCode::NOT_FOUND, "DELETE /posts/999999").await;
}

async fn deleting_without_a_token_is_401(app: TestApp) {
    let user = app.create_user_and_login().await;
    let post = app.new_post(&user, "Mine", true).await;
    let response = app.delete(&post_path(&post), None).await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "DELETE without a token").await;
    app.fetch_post(&user.token, id_of(&post)).await;
}

async fn listing_shows_the_newest_first(app: TestApp) {
    let alice = app.create_user_and_login().await;
    let bob = app.create_user_and_login().await;
    let mut created = Vec::new();
    for (i, author) in [&alice, &bob, &alice, &bob, &alice].into_iter().enumerate() {
        created.push(id_of(
            &app.new_post(author, &format!("Post {i}"), true).await,
        ));
    }
    created.reverse();
    let listed = app.list_posts(&bob.token, &[]).await;
    assert_eq!(ids(&listed), created, "newest first");
    let first = &listed[0];
    assert_post_out(first, &alice, "Post 4", "Some words about Post 4.", true, 0);
}

async fn listing_pages_with_limit_and_skip(app: TestApp) {
    let user = app.create_user_and_login().await;
    let mut all = Vec::new();
    for i in 0..13 {
        all.push(id_of(
            &app.new_post(&user, &format!("Post {i}"), true).await,
        ));
    }
    all.reverse();

    assert_eq!(
        ids(&app.list_posts(&user.token, &[]).await),
        all[..10],
        "10 by default"
    );
    assert_eq!(
        ids(&app.list_posts(&user.token, &[("skip", "10")]).await),
        all[10..],
        "the rest"
    );
    assert_eq!(
        ids(&app
            .list_posts(&user.token, &[("limit", "4"), ("skip", "0")])
            .await),
        all[..4]
    );
    assert_eq!(
        ids(&app
            .list_posts(&user.token, &[("limit", "4"), ("skip", "4")])
            .await),
        all[4..8]
    );
    assert_eq!(
        ids(&app.list_posts(&user.token, &[("limit", "1")]).await),
        all[..1],
        "limit 1"
    );
    assert_eq!(
        ids(&app.list_posts(&user.token, &[("limit", "100")]).await),
        all,
        "limit 100"
    );
    assert!(
        app.list_posts(&user.token, &[("skip", "13")])
            .await
            .is_empty(),
        "past the end"
    );
    assert!(
        app.list_posts(&user.token, &[("skip", "1000000")])
            .await
            .is_empty(),
        "far past the end"
    );
}

async fn listing_with_an_out_of_range_limit_or_skip_is_422(app: TestApp) {
    let user = app.create_user_and_login().await;
    let cases = [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "-1"),
        ("limit", "abc"),
        ("limit", "1.5"),
        ("limit", "99999999999999999999"),
        ("skip", "-1"),
        ("skip", "abc"),
    ];
    let mut failures = Failures::new();
    for (name, value) in cases {
        let response = app
            .request(reqwest::Method::GET, "/posts", Some(&user.token))
            .query(&[(name, value)])
            .send()
            .await
            .expect("the request completes");
        failures.check(check_invalid(response, name, &format!("GET /posts?{name}={value}")).await);
    }
    failures.assert_none();
}

async fn every_broken_field_of_a_post_request_is_named(app: TestApp) {
    let user = app.create_user_and_login().await;
    let post = app.new_post(&user, "Mine", true).await;
    let path = format!("/posts/{}", id_of(&post));
    let token = Some(user.token.as_str());
    let mut failures = Failures::new();
    let both = ["title", "content"];
    let response = app.post("/posts", token, &json!({})).await;
    failures.check(check_invalid_fields(response, &both, "POST {}").await);
    let body = json!({ "title": " ", "content": 5, "published": null });
    let response = app.post("/posts", token, &body).await;
    let all = ["title", "content", "published"];
    failures.check(check_invalid_fields(response, &all, "POST with three bad fields").await);
    let response = app
        .put(&path, token, &json!({ "title": "", "content": "" }))
        .await;
    failures.check(check_invalid_fields(response, &both, "PUT with two bad fields").await);
    let body = json!({ "title": "", "content": 5 });
    let response = app.put("/posts/0", token, &body).await;
    let all = ["id", "title", "content"];
    failures.check(check_invalid_fields(response, &all, "PUT /posts/0 with two bad fields").await);
    let body = json!({ "title": null, "content": "", "published": "yes" });
    let response = app.patch(&path, token, &body).await;
    let all = ["title", "content", "published"];
    failures.check(check_invalid_fields(response, &all, "PATCH with three bad fields").await);
    let response = app.get("/posts?limit=0&skip=-1", token).await;
    let query = ["limit", "skip"];
    failures.check(check_invalid_fields(response, &query, "GET /posts?limit=0&skip=-1").await);
    let response = app.get("/posts/abc", token).await;
    failures.check(check_invalid_fields(response, &["id"], "GET /posts/abc").await);
    let response = app
        .post("/vote", token, &json!({ "post_id": "1", "dir": 2 }))
        .await;
    let vote = ["post_id", "dir"];
    failures.check(check_invalid_fields(response, &vote, "POST /vote with two bad fields").await);
    failures.assert_none();
}

async fn listing_without_a_token_is_401(app: TestApp) {
    let response = app.get("/posts", None).await;
    expect_problem(
        response,
        StatusCode::UNAUTHORIZED,
        "GET /posts without a token",
    )
    .await;
}

async fn search_matches_a_case_insensitive_substring_of_the_title(app: TestApp) {
    let user = app.create_user_and_login().await;
    let rust = app.new_post(&user, "Rust is great", true).await;
    let shout = app.new_post(&user, "I LOVE RUST", true).await;
    let trust = app.new_post(&user, "Trusty tools", true).await;
    let other = json!({ "title": "Python", "content": "Nothing about rust here." });
    expect_json(
        app.create_post(&user.token, &other).await,
        StatusCode::CREATED,
        "POST",
    )
    .await;

    for search in ["rust", "RUST", "rUsT"] {
        let found = app.list_posts(&user.token, &[("search", search)]).await;
        assert_eq!(
            ids(&found),
            vec![id_of(&trust), id_of(&shout), id_of(&rust)],
            "search {search:?} matches titles only, newest first"
        );
    }
    let found = app.list_posts(&user.token, &[("search", "is gr")]).await;
    assert_eq!(ids(&found), vec![id_of(&rust)], "a substring with a space");
    let found = app.list_posts(&user.token, &[("search", "golang")]).await;
    assert!(found.is_empty(), "no match: {found:?}");
    let found = app.list_posts(&user.token, &[("search", "")]).await;
    assert_eq!(found.len(), 4, "an empty search matches everything");
    let found = app
        .list_posts(
            &user.token,
            &[("search", "rust"), ("limit", "1"), ("skip", "1")],
        )
        .await;
    assert_eq!(
        ids(&found),
        vec![id_of(&shout)],
        "search pages like the listing"
    );
}

/// A search looks through the newest posts first (200 per row it needs); a match older than
/// those must still be found, in its place in the order.
async fn search_finds_matches_older_than_the_newest_posts(app: TestApp) {
    let user = app.create_user_and_login().await;
    let stranger = app.create_user_and_login().await;
    let old = app.new_post(&user, "An old needle", true).await;
    app.new_post(&stranger, "A hidden needle", false).await;
    for n in 0..200 {
        app.new_post(&user, &format!("Hay {n}"), true).await;
    }
    let found = app
        .list_posts(&user.token, &[("search", "NEEDLE"), ("limit", "1")])
        .await;
    assert_eq!(ids(&found), vec![id_of(&old)], "behind 201 newer posts");

    let new = app.new_post(&user, "A new needle", true).await;
    for (skip, expected) in [("0", vec![id_of(&new)]), ("1", vec![id_of(&old)])] {
        let found = app
            .list_posts(
                &user.token,
                &[("search", "needle"), ("limit", "1"), ("skip", skip)],
            )
            .await;
        assert_eq!(ids(&found), expected, "skip {skip}");
    }
    let found = app
        .list_posts(&user.token, &[("search", "needle"), ("limit", "5")])
        .await;
    assert_eq!(ids(&found), vec![id_of(&new), id_of(&old)], "a short page");
}

async fn search_takes_wildcards_and_backslashes_literally(app: TestApp) {
    let user = app.create_user_and_login().await;
    let percent = app.new_post(&user, "100% sure", true).await;
    app.new_post(&user, "100 percent sure", true).await;
    let underscore = app.new_post(&user, "snake_case", true).await;
    app.new_post(&user, "snakeXcase", true).await;
    let backslash = app.new_post(&user, r"C:\Windows", true).await;
    app.new_post(&user, "C:Windows", true).await;

    let cases = [
        ("%", vec![id_of(&percent)]),
        ("0%", vec![id_of(&percent)]),
        ("_", vec![id_of(&underscore)]),
        ("e_c", vec![id_of(&underscore)]),
        (r"\", vec![id_of(&backslash)]),
        (r":\W", vec![id_of(&backslash)]),
        (r"\%", vec![]),
    ];
    let mut failures = Failures::new();
    // A page of one is filled from the newest posts on PostgreSQL, a page of ten by the
    // search over every post: both must read the term literally.
    for (search, expected) in cases {
        for limit in ["1", "10"] {
            let found = ids(&app
                .list_posts(&user.token, &[("search", search), ("limit", limit)])
                .await);
            if found != expected {
                failures.check::<()>(Err(format!(
                    "search {search:?}, limit {limit}: expected {expected:?}, got {found:?}"
                )));
            }
        }
    }
    failures.assert_none();
}

async fn others_drafts_never_appear_in_the_listing_and_own_drafts_do(app: TestApp) {
    let alice = app.create_user_and_login().await;
    let bob = app.create_user_and_login().await;
    let alices_post = app.new_post(&alice, "Alice public", true).await;
    let alices_draft = app.new_post(&alice, "Alice draft", false).await;
    let bobs_post = app.new_post(&bob, "Bob public", true).await;
    let bobs_draft = app.new_post(&bob, "Bob draft", false).await;

    let seen_by_alice = app.list_posts(&alice.token, &[]).await;
    assert_eq!(
        ids(&seen_by_alice),
        vec![id_of(&bobs_post), id_of(&alices_draft), id_of(&alices_post)]
    );
    let seen_by_bob = app.list_posts(&bob.token, &[]).await;
    assert_eq!(
        ids(&seen_by_bob),
        vec![id_of(&bobs_draft), id_of(&bobs_post), id_of(&alices_post)]
    );
    let found = app.list_posts(&bob.token, &[("search", "draft")]).await;
    assert_eq!(
        ids(&found),
        vec![id_of(&bobs_draft)],
        "search hides others' drafts too"
    );

    let carol = app.create_user_and_login().await;
    let mut paged = Vec::new();
    for skip in ["0", "1", "2"] {
        paged.extend(ids(&app
            .list_posts(&carol.token, &[("skip", skip), ("limit", "1")])
            .await));
    }
    assert_eq!(
        paged,
        vec![id_of(&bobs_post), id_of(&alices_post)],
        "paging skips drafts"
    );
}

async fn listing_and_getting_count_the_votes(app: TestApp) {
    let alice = app.create_user_and_login().await;
    let bob = app.create_user_and_login().await;
    let carol = app.create_user_and_login().await;
    let two = app.new_post(&alice, "Two votes", true).await;
    let one = app.new_post(&bob, "One vote", true).await;
    let none = app.new_post(&bob, "No votes", true).await;
    for voter in [&alice, &carol] {
        assert_eq!(
            app.vote(&voter.token, id_of(&two), 1).await.status(),
            StatusCode::CREATED
        );
    }
    assert_eq!(
        app.vote(&carol.token, id_of(&one), 1).await.status(),
        StatusCode::CREATED
    );

    let listed = app.list_posts(&carol.token, &[]).await;
    let votes: Vec<(i64, i64)> = listed
        .iter()
        .map(|p| (id_of(p), p["votes"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        votes,
        vec![(id_of(&none), 0), (id_of(&one), 1), (id_of(&two), 2)]
    );
    assert_eq!(app.fetch_post(&bob.token, id_of(&two)).await["votes"], 2);
    assert_eq!(app.fetch_post(&bob.token, id_of(&one)).await["votes"], 1);
    assert_eq!(app.fetch_post(&bob.token, id_of(&none)).await["votes"], 0);
    let found = app.list_posts(&carol.token, &[("search", "two")]).await;
    assert_eq!(found[0]["votes"], 2, "search results carry votes too");
}

/// A title of the longest length allowed whose lower case is longer still (ICU lower-cases
/// `İ` to `i̇`, two characters) is stored and found by a search.
async fn a_title_longer_in_lower_case_is_stored_and_found(app: TestApp) {
    let user = app.create_user_and_login().await;
    let title = "İ".repeat(200);
    let body = json!({ "title": title, "content": "Dotted capitals." });
    let created = expect_json(
        app.create_post(&user.token, &body).await,
        StatusCode::CREATED,
        "POST /posts with 200 × İ",
    )
    .await;
    assert_eq!(created["title"], title);
    let found = app.list_posts(&user.token, &[("search", "İİİ")]).await;
    assert_eq!(ids(&found), vec![id_of(&created)], "the search finds it");
}

/// PostgreSQL databases whose collation is ICU's, where `LOWER` may lengthen a string.
mod icu {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_title_longer_in_lower_case_is_stored_and_found() {
        let Some(database) = api_tests::TestDatabase::create_icu_or_skip("en-US").await else {
            return;
        };
        let app = api_tests::TestApp::spawn_on(database).await;
        super::a_title_longer_in_lower_case_is_stored_and_found(app).await;
    }
}

/// The write limit's headers of a response: `RateLimit-Policy` and `RateLimit`.
fn budget(response: &api_tests::Response) -> (Option<String>, Option<String>) {
    (
        header(response, "ratelimit-policy"),
        header(response, "ratelimit"),
    )
}

/// What is left of the budget (`r`) and the seconds until the window ends (`t`), as
/// `RateLimit` says, checked to name the policy `RateLimit-Policy` declares.
fn remaining(response: &api_tests::Response, context: &str) -> (u32, u32) {
    let limits = shown_limits(response);
    let [(name, limit)] = limits.as_slice() else {
        panic!("{context}: one limit, not {limits:?}");
    };
    assert_eq!(name, "writes", "{context}");
    assert_eq!((limit.q, limit.w), (60, 60), "{context}: the policy");
    assert!(
        (1..=60).contains(&limit.t),
        "{context}: t in 1..=60: {limit:?}"
    );
    let number = |n: u64| u32::try_from(n).expect("a small number");
    (number(limit.r), number(limit.t))
}

async fn writes_are_limited_per_account_across_instances(app: TestApp) {
    let limit = api::Settings::default().writes_per_minute;
    assert_eq!(limit, 60, "the default");
    let first = TestApp::spawn_with(app.backend, |settings| {
        settings.writes_per_minute = limit;
    })
    .await;
    let second = first
        .spawn_sibling_with(|settings| settings.writes_per_minute = limit)
        .await;
    let user = first.create_user_and_login().await;
    let post = json!({ "title": "Counted", "content": "words" });

    // Every answer of a limited operation counts and says so, counting down across instances.
    let created = first.create_post(&user.token, &post).await;
    assert_eq!(remaining(&created, "the first write").0, 59);
    let id = id_of(&expect_json(created, StatusCode::CREATED, "the first write").await);
    let path = format!("/posts/{id}");
    let invalid = second
        .create_post(&user.token, &json!({ "title": "" }))
        .await;
    assert_eq!(remaining(&invalid, "a 422").0, 58);
    expect_problem(invalid, StatusCode::UNPROCESSABLE_ENTITY, "a 422").await;
    let stale = second
        .request(Method::PATCH, &path, Some(&user.token))
        .header("if-match", "\"stale\"")
        .json(&json!({ "content": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(remaining(&stale, "a 412").0, 57);
    expect_problem(stale, StatusCode::PRECONDITION_FAILED, "a 412").await;
    let missing = first.vote(&user.token, 999_999, 1).await;
    assert_eq!(remaining(&missing, "a vote's 404").0, 56);
    expect_problem(missing, StatusCode::NOT_FOUND, "a vote's 404").await;
    let profile = second
        .patch(
            "/users/me",
            Some(&user.token),
            &json!({ "display_name": "Counted" }),
        )
        .await;
    assert_eq!(remaining(&profile, "a profile's change").0, 55);
    expect_json(profile, StatusCode::OK, "a profile's change").await;
    // No account, no count; a read is not a write.
    let anonymous = first.create_post("not-a-token", &post).await;
    assert_eq!(budget(&anonymous), (None, None), "a 401");
    let read = first.get(&path, Some(&user.token)).await;
    assert_eq!(budget(&read), (None, None), "a read");

    for n in 6..=limit {
        let app = if n % 2 == 0 { &first } else { &second };
        let response = app
            .patch(
                &path,
                Some(&user.token),
                &json!({ "content": format!("edit {n}") }),
            )
            .await;
        assert_eq!(remaining(&response, "a write").0, limit - n, "write {n}");
        expect_json(response, StatusCode::OK, "a write within the limit").await;
    }
    let baseline = first.baseline().await;
    for (app, method) in [(&first, Method::DELETE), (&second, Method::PUT)] {
        let refused = app
            .request(method.clone(), &path, Some(&user.token))
            .json(&post)
            .send()
            .await
            .unwrap();
        let (r, t) = remaining(&refused, "past the limit");
        assert_eq!(r, 0, "{method} past the limit");
        assert_eq!(
            header(&refused, "retry-after").and_then(|s| s.parse().ok()),
            Some(t),
            "Retry-After is when the window ends"
        );
        expect_problem(refused, StatusCode::TOO_MANY_REQUESTS, "past the limit").await;
    }
    baseline
        .assert_unchanged("a refused write changes nothing")
        .await;

    // Another account has its own budget.
    let other = second.create_user_and_login().await;
    let voted = second.vote(&other.token, id, 1).await;
    assert_eq!(remaining(&voted, "another account").0, 59);
    expect_json(voted, StatusCode::CREATED, "another account's vote").await;

    // When the window has passed, the budget is whole again.
    let db = first.database().await;
    db.execute_unprepared("UPDATE write_counts SET window_start = window_start - 60")
        .await
        .unwrap();
    let deleted = second.delete(&path, Some(&user.token)).await;
    assert_eq!(remaining(&deleted, "a new window").0, 59);
    expect_empty(deleted, StatusCode::NO_CONTENT, "a new window").await;
}

async fn with_the_write_limit_off_writes_carry_no_budget(app: TestApp) {
    let user = app.create_user_and_login().await;
    let created = app
        .create_post(&user.token, &json!({ "title": "Free", "content": "x" }))
        .await;
    assert_eq!(budget(&created), (None, None));
    expect_json(created, StatusCode::CREATED, "a write with no limit").await;
}

on_both_backends!(
    writes_are_limited_per_account_across_instances,
    with_the_write_limit_off_writes_carry_no_budget,
    creating_a_post_returns_201_with_the_post_and_its_location,
    a_title_longer_in_lower_case_is_stored_and_found,
    creating_a_draft_keeps_it_unpublished,
    creating_a_post_without_a_token_is_401,
    the_title_is_stored_trimmed,
    titles_and_contents_at_their_limits_are_accepted,
    invalid_new_posts_are_422_naming_the_field,
    unknown_and_server_owned_fields_of_a_new_post_are_ignored,
    getting_a_post_returns_it,
    getting_an_unknown_post_is_404,
    getting_a_post_without_a_token_is_401,
    a_draft_is_visible_to_its_owner_only,
    putting_a_post_replaces_it,
    putting_someone_elses_post_is_403,
    putting_an_unknown_post_is_404,
    putting_without_a_token_is_401,
    invalid_replacements_are_422_naming_the_field,
    patching_changes_only_the_fields_given,
    invalid_patches_are_422_naming_the_field,
    patching_someone_elses_post_is_403,
    patching_an_unknown_post_is_404,
    patching_without_a_token_is_401,
    deleting_a_post_is_204_and_it_is_gone,
    deleting_someone_elses_post_is_403,
    deleting_an_unknown_post_is_404,
    deleting_without_a_token_is_401,
    listing_shows_the_newest_first,
    listing_pages_with_limit_and_skip,
    listing_with_an_out_of_range_limit_or_skip_is_422,
    listing_without_a_token_is_401,
    every_broken_field_of_a_post_request_is_named,
    search_matches_a_case_insensitive_substring_of_the_title,
    search_takes_wildcards_and_backslashes_literally,
    search_finds_matches_older_than_the_newest_posts,
    others_drafts_never_appear_in_the_listing_and_own_drafts_do,
    listing_and_getting_count_the_votes,
);

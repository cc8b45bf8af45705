//! Conditional requests on posts: `ETag`, `If-None-Match` on reads, `If-Match` on writes.

use api_tests::{
    Method, Response, StatusCode, TestApp, TestUser, Value, describe, expect_empty, expect_json,
    expect_problem, header, id_of, json, on_both_backends, send_all_at_once, tally,
};

/// The `ETag` of a response, checked to be a strong entity-tag.
fn etag_of(response: &Response) -> String {
    let tag = header(response, "etag").expect("the response carries an ETag");
    assert!(
        tag.starts_with('"') && tag.ends_with('"') && tag.len() > 2,
        "a strong entity-tag: {tag}"
    );
    tag
}

/// Sends `method path` as `user`, with `If-Match: tag` when given, and `body` as JSON.
async fn send_if_match(
    app: &TestApp,
    user: &TestUser,
    method: Method,
    path: &str,
    tag: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut request = app.request(method, path, Some(&user.token));
    if let Some(tag) = tag {
        request = request.header("if-match", tag);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("the request is answered")
}

/// A new user's new published post: the user, its id, its path and its `ETag`.
async fn tagged_post(app: &TestApp, title: &str) -> (TestUser, i64, String, String) {
    let user = app.create_user_and_login().await;
    let id = id_of(&app.new_post(&user, title, true).await);
    let tag = current_etag(app, &user, id).await;
    (user, id, format!("/posts/{id}"), tag)
}

async fn current_etag(app: &TestApp, user: &TestUser, id: i64) -> String {
    let response = app.get(&format!("/posts/{id}"), Some(&user.token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    etag_of(&response)
}

async fn every_post_response_carries_an_etag_that_follows_the_post(app: TestApp) {
    let user = app.create_user_and_login().await;
    let created = app
        .create_post(
            &user.token,
            &json!({ "title": "Tagged", "content": "words" }),
        )
        .await;
    let created_tag = etag_of(&created);
    let id = id_of(&expect_json(created, StatusCode::CREATED, "creating a post").await);
    let path = format!("/posts/{id}");

    assert_eq!(
        current_etag(&app, &user, id).await,
        created_tag,
        "reading it again"
    );
    let patched = send_if_match(
        &app,
        &user,
        Method::PATCH,
        &path,
        None,
        Some(&json!({ "content": "more" })),
    )
    .await;
    let patched_tag = etag_of(&patched);
    expect_json(patched, StatusCode::OK, "patching").await;
    assert_ne!(patched_tag, created_tag, "a change makes a new tag");
    assert_eq!(current_etag(&app, &user, id).await, patched_tag);

    let put = send_if_match(
        &app,
        &user,
        Method::PUT,
        &path,
        None,
        Some(&json!({ "title": "Tagged", "content": "more", "published": false })),
    )
    .await;
    let put_tag = etag_of(&put);
    expect_json(put, StatusCode::OK, "replacing").await;
    assert_ne!(put_tag, patched_tag, "publishing state is part of the post");

    // A vote changes the representation (`votes`), so it changes the tag.
    let other = app.create_user_and_login().await;
    let published = id_of(&app.new_post(&user, "Voted", true).await);
    let before = current_etag(&app, &user, published).await;
    assert_eq!(
        app.vote(&other.token, published, 1).await.status(),
        StatusCode::CREATED
    );
    let after = current_etag(&app, &user, published).await;
    assert_ne!(after, before, "a vote makes a new tag");
    let refused = send_if_match(
        &app,
        &user,
        Method::PATCH,
        &format!("/posts/{published}"),
        Some(&before),
        Some(&json!({ "title": "Changed" })),
    )
    .await;
    assert_eq!(header(&refused, "etag").as_deref(), Some(after.as_str()));
    expect_problem(
        refused,
        StatusCode::PRECONDITION_FAILED,
        "the tag from before the vote",
    )
    .await;
}

async fn if_none_match_answers_304_while_the_post_is_unchanged(app: TestApp) {
    let (user, _, path, tag) = tagged_post(&app, "Cached").await;
    let read = |value: String| {
        app.request(Method::GET, &path, Some(&user.token))
            .header("if-none-match", value)
            .send()
    };
    for matching in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"nope\", {tag}"),
        "*".to_owned(),
    ] {
        let response = read(matching.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{matching}");
        assert_eq!(
            header(&response, "etag").as_deref(),
            Some(tag.as_str()),
            "{matching}"
        );
        assert_eq!(
            response.bytes().await.unwrap().len(),
            0,
            "no body for {matching}"
        );
    }
    for other in [
        "\"nope\"".to_owned(),
        tag.trim_matches('"').to_owned(),
        String::new(),
    ] {
        let response = read(other.clone()).await.unwrap();
        assert_eq!(etag_of(&response), tag, "{other}");
        expect_json(response, StatusCode::OK, &format!("If-None-Match: {other}")).await;
    }
    let patched = send_if_match(
        &app,
        &user,
        Method::PATCH,
        &path,
        None,
        Some(&json!({ "title": "New" })),
    )
    .await;
    expect_json(patched, StatusCode::OK, "patching").await;
    let response = read(tag.clone()).await.unwrap();
    assert_ne!(etag_of(&response), tag);
    expect_json(response, StatusCode::OK, "the old tag after a change").await;
}

async fn a_stale_if_match_is_412_and_changes_nothing(app: TestApp) {
    let (user, id, path, stale) = tagged_post(&app, "Guarded").await;
    let patched = send_if_match(
        &app,
        &user,
        Method::PATCH,
        &path,
        Some(&stale),
        Some(&json!({ "content": "first" })),
    )
    .await;
    let current = etag_of(&patched);
    expect_json(patched, StatusCode::OK, "a write with the current tag").await;

    let baseline = app.baseline().await;
    let replace = json!({ "title": "Lost update", "content": "x" });
    let patch = json!({ "title": "Lost update" });
    let writes: [(Method, Option<&Value>); 3] = [
        (Method::PUT, Some(&replace)),
        (Method::PATCH, Some(&patch)),
        (Method::DELETE, None),
    ];
    let refused_tags = [
        stale.clone(),
        format!("W/{current}"),
        "\"garbage\"".to_owned(),
        current.trim_matches('"').to_owned(),
        format!("{stale}, \"also-wrong\""),
    ];
    for (method, body) in &writes {
        for tag in &refused_tags {
            let response =
                send_if_match(&app, &user, method.clone(), &path, Some(tag), *body).await;
            let context = format!("{method} with If-Match: {tag}");
            assert_eq!(
                header(&response, "etag").as_deref(),
                Some(current.as_str()),
                "{context}"
            );
            expect_problem(response, StatusCode::PRECONDITION_FAILED, &context).await;
        }
    }
    baseline
        .assert_unchanged("refused writes change nothing")
        .await;

    // Another person's post is 403 and a missing one 404, whatever the tag says.
    let other = app.create_user_and_login().await;
    let theirs = send_if_match(
        &app,
        &other,
        Method::PATCH,
        &path,
        Some(&current),
        Some(&patch),
    )
    .await;
    expect_problem(theirs, StatusCode::FORBIDDEN, "another person's post").await;
    let missing = send_if_match(
        &app,
        &user,
        Method::DELETE,
        "/posts/999999",
        Some(&current),
        None,
    )
    .await;
    expect_problem(missing, StatusCode::NOT_FOUND, "no such post").await;

    // A list holding the current tag, and `*`, match.
    let listed = format!("\"0.0\", {current}");
    let response = send_if_match(
        &app,
        &user,
        Method::PUT,
        &path,
        Some(&listed),
        Some(&replace),
    )
    .await;
    let replaced = etag_of(&response);
    expect_json(response, StatusCode::OK, "If-Match with a list").await;
    let response = send_if_match(
        &app,
        &user,
        Method::PATCH,
        &path,
        Some("*"),
        Some(&json!({ "title": "Changed again" })),
    )
    .await;
    expect_json(response, StatusCode::OK, "If-Match: *").await;
    let current = current_etag(&app, &user, id).await;
    assert_ne!(current, replaced, "the tag moved on");
    expect_empty(
        send_if_match(&app, &user, Method::DELETE, &path, Some(&current), None).await,
        StatusCode::NO_CONTENT,
        "deleting with the current tag",
    )
    .await;
}

async fn of_fifty_patches_with_one_if_match_exactly_one_succeeds(app: TestApp) {
    let (user, id, path, tag) = tagged_post(&app, "Contested").await;
    let outcomes = send_all_at_once((0..50).map(|n| {
        app.request(Method::PATCH, &path, Some(&user.token))
            .header("if-match", &tag)
            .json(&json!({ "content": format!("writer {n}") }))
    }))
    .await;
    let statuses: Vec<StatusCode> = outcomes.iter().map(|(status, _)| *status).collect();
    assert_eq!(
        tally(&statuses),
        std::collections::BTreeMap::from([(200, 1), (412, 49)]),
        "{}",
        describe(&outcomes)
    );
    // The one that succeeded is what is stored.
    let (_, body) = outcomes
        .iter()
        .find(|(status, _)| *status == StatusCode::OK)
        .unwrap();
    let winner: Value = serde_json::from_str(body).unwrap();
    let stored = app.fetch_post(&user.token, id).await;
    assert_eq!(stored["content"], winner["content"]);
}

async fn etags_are_opaque(app: TestApp) {
    let user = app.create_user_and_login().await;
    let mut tags = std::collections::BTreeSet::new();
    for n in 0..3 {
        let id = id_of(&app.new_post(&user, &format!("Fresh {n}"), true).await);
        tags.insert(current_etag(&app, &user, id).await);
    }
    let (user, id, path, _) = tagged_post(&app, "Edited").await;
    for n in 0..3 {
        let body = json!({ "content": format!("edit {n}") });
        let response = send_if_match(&app, &user, Method::PATCH, &path, None, Some(&body)).await;
        expect_json(response, StatusCode::OK, "an edit").await;
    }
    tags.insert(current_etag(&app, &user, id).await);
    assert_eq!(
        tags.len(),
        4,
        "posts in the same state have tags of their own: {tags:?}"
    );
    for tag in &tags {
        let opaque = tag.trim_matches('"');
        assert!(
            opaque.len() >= 16
                && opaque
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "an opaque tag, not a count of edits: {tag}"
        );
    }
}

/// `If-Match` listing `count` tags the service never gave (shaped as its tags once were,
/// `"{version}.{votes}"`), and then the current one when `current` is given.
fn long_if_match(count: usize, current: Option<&str>) -> String {
    (0..count)
        .map(|n| format!("\"{n}.999\""))
        .chain(current.map(str::to_owned))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn a_long_if_match_is_decided_without_the_database_working_per_tag(app: TestApp) {
    let (user, id, path, tag) = tagged_post(&app, "Many tags").await;
    for count in [1_100, 22_000] {
        let started = std::time::Instant::now();
        let refused = send_if_match(
            &app,
            &user,
            Method::PATCH,
            &path,
            Some(&long_if_match(count, None)),
            Some(&json!({ "content": "refused" })),
        )
        .await;
        assert_eq!(header(&refused, "etag").as_deref(), Some(tag.as_str()));
        expect_problem(
            refused,
            StatusCode::PRECONDITION_FAILED,
            &format!("{count} tags, none current"),
        )
        .await;
        let elapsed = started.elapsed();
        assert!(elapsed.as_secs() < 5, "{count} tags took {elapsed:?}");
    }
    let patched = send_if_match(
        &app,
        &user,
        Method::PATCH,
        &path,
        Some(&long_if_match(22_000, Some(&tag))),
        Some(&json!({ "content": "accepted" })),
    )
    .await;
    let tag = etag_of(&patched);
    expect_json(patched, StatusCode::OK, "22,000 tags, the current one last").await;
    expect_empty(
        send_if_match(
            &app,
            &user,
            Method::DELETE,
            &path,
            Some(&long_if_match(1_100, Some(&tag))),
            None,
        )
        .await,
        StatusCode::NO_CONTENT,
        "deleting with 1,100 tags, the current one last",
    )
    .await;
    let gone = app.get(&format!("/posts/{id}"), Some(&user.token)).await;
    expect_problem(gone, StatusCode::NOT_FOUND, "deleted").await;
}

async fn a_write_that_changes_nothing_keeps_the_tag_and_records_no_event(app: TestApp) {
    let (user, id, path, tag) = tagged_post(&app, "Steady").await;
    let stored = app.fetch_post(&user.token, id).await;
    let db = app.database().await;
    let events = || api_tests::query_i64(&db, "SELECT COUNT(*) FROM events");
    let recorded = events().await;
    let baseline = app.baseline().await;
    let same = json!({
        "title": stored["title"],
        "content": stored["content"],
        "published": true,
    });
    let no_ops: [(Method, Value, Option<&str>); 5] = [
        (Method::PATCH, json!({ "published": true }), None),
        (Method::PATCH, same.clone(), None),
        (
            Method::PATCH,
            json!({ "title": stored["title"] }),
            Some(&tag),
        ),
        (Method::PUT, same.clone(), None),
        (Method::PUT, same, Some(&tag)),
    ];
    for (method, body, if_match) in &no_ops {
        let context = format!("{method} {body} with If-Match {if_match:?}");
        let response =
            send_if_match(&app, &user, method.clone(), &path, *if_match, Some(body)).await;
        assert_eq!(etag_of(&response), tag, "{context}");
        let post = expect_json(response, StatusCode::OK, &context).await;
        assert_eq!(post, stored, "{context}");
    }
    baseline
        .assert_unchanged("a write that changes nothing writes nothing")
        .await;
    assert_eq!(events().await, recorded, "and records no event");
    // A change is still one.
    let changed = send_if_match(
        &app,
        &user,
        Method::PATCH,
        &path,
        Some(&tag),
        Some(&json!({ "published": false })),
    )
    .await;
    assert_ne!(etag_of(&changed), tag);
    expect_json(changed, StatusCode::OK, "unpublishing").await;
    assert!(events().await > recorded, "a change records its event");
}

on_both_backends!(
    etags_are_opaque,
    a_long_if_match_is_decided_without_the_database_working_per_tag,
    a_write_that_changes_nothing_keeps_the_tag_and_records_no_event,
    every_post_response_carries_an_etag_that_follows_the_post,
    if_none_match_answers_304_while_the_post_is_unchanged,
    a_stale_if_match_is_412_and_changes_nothing,
    of_fifty_patches_with_one_if_match_exactly_one_succeeds,
);

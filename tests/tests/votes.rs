//! `POST /vote`: adding and removing the caller's vote on a post.

use api_tests::{
    Method, StatusCode, TestApp, TestUser, Value, expect_json, expect_problem, id_of, json,
    on_both_backends,
};

/// A post by one person, and another person who has voted for it.
async fn voted_post(app: &TestApp) -> (TestUser, TestUser, Value) {
    let author = app.create_user_and_login().await;
    let voter = app.create_user_and_login().await;
    let post = app.new_post(&author, "Vote for me", true).await;
    let response = app.vote(&voter.token, id_of(&post), 1).await;
    expect_json(response, StatusCode::CREATED, "voting").await;
    (author, voter, post)
}

async fn voting_is_201_with_a_message_and_counts(app: TestApp) {
    let author = app.create_user_and_login().await;
    let voter = app.create_user_and_login().await;
    let post = app.new_post(&author, "Vote for me", true).await;

    let response = app.vote(&voter.token, id_of(&post), 1).await;
    let result = expect_json(response, StatusCode::CREATED, "voting").await;
    assert!(
        result["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a VoteResult has a message: {result}"
    );
    assert_eq!(
        app.fetch_post(&author.token, id_of(&post)).await["votes"],
        1
    );
}

async fn voting_twice_is_409(app: TestApp) {
    let (author, voter, post) = voted_post(&app).await;

    let response = app.vote(&voter.token, id_of(&post), 1).await;
    expect_problem(response, StatusCode::CONFLICT, "voting a second time").await;
    assert_eq!(
        app.fetch_post(&author.token, id_of(&post)).await["votes"],
        1
    );
}

async fn removing_a_vote_is_200_with_a_message(app: TestApp) {
    let (author, voter, post) = voted_post(&app).await;

    let response = app.vote(&voter.token, id_of(&post), 0).await;
    let result = expect_json(response, StatusCode::OK, "removing the vote").await;
    assert!(
        result["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a VoteResult has a message: {result}"
    );
    assert_eq!(
        app.fetch_post(&author.token, id_of(&post)).await["votes"],
        0
    );

    let response = app.vote(&voter.token, id_of(&post), 1).await;
    expect_json(response, StatusCode::CREATED, "voting again after removing").await;
    assert_eq!(
        app.fetch_post(&author.token, id_of(&post)).await["votes"],
        1
    );
}

async fn removing_a_vote_that_does_not_exist_is_404(app: TestApp) {
    let author = app.create_user_and_login().await;
    let voter = app.create_user_and_login().await;
    let post = app.new_post(&author, "Vote for me", true).await;
    assert_eq!(
        app.vote(&author.token, id_of(&post), 1).await.status(),
        StatusCode::CREATED
    );

    let response = app.vote(&voter.token, id_of(&post), 0).await;
    expect_problem(
        response,
        StatusCode::NOT_FOUND,
        "removing a vote never cast",
    )
    .await;
    assert_eq!(
        app.fetch_post(&author.token, id_of(&post)).await["votes"],
        1,
        "someone else's vote stays"
    );

    assert_eq!(
        app.vote(&voter.token, id_of(&post), 1).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.vote(&voter.token, id_of(&post), 0).await.status(),
        StatusCode::OK
    );
    let response = app.vote(&voter.token, id_of(&post), 0).await;
    expect_problem(response, StatusCode::NOT_FOUND, "removing a vote twice").await;
}

async fn voting_on_an_unknown_post_is_404(app: TestApp) {
    let voter = app.create_user_and_login().await;
    let response = app.vote(&voter.token, 999_999, 1).await;
    expect_problem(response, StatusCode::NOT_FOUND, "voting on post 999999").await;
    let response = app.vote(&voter.token, 999_999, 0).await;
    expect_problem(
        response,
        StatusCode::NOT_FOUND,
        "removing a vote on post 999999",
    )
    .await;
}

async fn voting_on_someone_elses_draft_is_404(app: TestApp) {
    let author = app.create_user_and_login().await;
    let voter = app.create_user_and_login().await;
    let draft = app.new_post(&author, "Not yet", false).await;

    let response = app.vote(&voter.token, id_of(&draft), 1).await;
    expect_problem(response, StatusCode::NOT_FOUND, "voting on another's draft").await;
    let response = app.vote(&voter.token, id_of(&draft), 0).await;
    expect_problem(
        response,
        StatusCode::NOT_FOUND,
        "removing a vote on another's draft",
    )
    .await;
    assert_eq!(
        app.fetch_post(&author.token, id_of(&draft)).await["votes"],
        0
    );
}

async fn people_may_vote_on_their_own_posts_and_drafts(app: TestApp) {
    let author = app.create_user_and_login().await;
    let post = app.new_post(&author, "Mine", true).await;
    let draft = app.new_post(&author, "My draft", false).await;
    for (target, case) in [(&post, "own post"), (&draft, "own draft")] {
        let response = app.vote(&author.token, id_of(target), 1).await;
        expect_json(response, StatusCode::CREATED, case).await;
        assert_eq!(
            app.fetch_post(&author.token, id_of(target)).await["votes"],
            1,
            "{case}"
        );
    }
}

async fn every_voter_counts_once(app: TestApp) {
    let author = app.create_user_and_login().await;
    let post = app.new_post(&author, "Popular", true).await;
    for expected in 1..=4 {
        let voter = app.create_user_and_login().await;
        assert_eq!(
            app.vote(&voter.token, id_of(&post), 1).await.status(),
            StatusCode::CREATED
        );
        assert_eq!(
            app.fetch_post(&author.token, id_of(&post)).await["votes"],
            expected
        );
    }
}

async fn invalid_votes_are_422_naming_the_field(app: TestApp) {
    let author = app.create_user_and_login().await;
    let voter = app.create_user_and_login().await;
    let post = app.new_post(&author, "Vote for me", true).await;
    let id = id_of(&post);
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({ "post_id": id, "dir": 2 }), "dir", "dir 2"),
        (json!({ "post_id": id, "dir": -1 }), "dir", "dir -1"),
        (
            json!({ "post_id": id, "dir": "1" }),
            "dir",
            "dir as a string",
        ),
        (
            json!({ "post_id": id, "dir": 1.5 }),
            "dir",
            "a fractional dir",
        ),
        (
            json!({ "post_id": id, "dir": true }),
            "dir",
            "a boolean dir",
        ),
        (json!({ "post_id": id, "dir": null }), "dir", "a null dir"),
        (json!({ "post_id": id }), "dir", "a missing dir"),
        (json!({ "dir": 1 }), "post_id", "a missing post_id"),
        (
            json!({ "post_id": "abc", "dir": 1 }),
            "post_id",
            "a string as post_id",
        ),
        (
            json!({ "post_id": id.to_string(), "dir": 1 }),
            "post_id",
            "a numeric string as post_id",
        ),
    ];
    app.check_invalid_bodies(Method::POST, "/vote", Some(&voter.token), cases)
        .await
        .assert_none();
    assert_eq!(
        app.fetch_post(&author.token, id).await["votes"],
        0,
        "no vote was counted"
    );
}

async fn voting_without_a_token_is_401(app: TestApp) {
    let author = app.create_user_and_login().await;
    let post = app.new_post(&author, "Vote for me", true).await;
    let response = app
        .post("/vote", None, &json!({ "post_id": id_of(&post), "dir": 1 }))
        .await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "voting without a token").await;
    assert_eq!(
        app.fetch_post(&author.token, id_of(&post)).await["votes"],
        0
    );
}

on_both_backends!(
    voting_is_201_with_a_message_and_counts,
    voting_twice_is_409,
    removing_a_vote_is_200_with_a_message,
    removing_a_vote_that_does_not_exist_is_404,
    voting_on_an_unknown_post_is_404,
    voting_on_someone_elses_draft_is_404,
    people_may_vote_on_their_own_posts_and_drafts,
    every_voter_counts_once,
    invalid_votes_are_422_naming_the_field,
    voting_without_a_token_is_401,
);

//! Live events (`GET /events`): who sees what, tickets, resuming, and the end of a stream.

use std::time::Duration;

use api_tests::{
    SseEvent, SseRead, SseStream, StatusCode, TestApp, TestUser, expect_invalid, expect_json,
    expect_problem, id_of, json, now_seconds, on_both_backends, sign,
};

/// How long an event may take to arrive on the instance that wrote it.
const ARRIVAL: Duration = Duration::from_secs(2);

/// How long to wait to be sure that nothing more comes.
const QUIET: Duration = Duration::from_millis(700);

async fn follow(app: &TestApp, user: &TestUser) -> SseStream {
    SseStream::open(app, "/events", Some(&user.token), None).await
}

/// The events' names and the post ids they name, in order.
fn summary(events: &[SseEvent]) -> Vec<(String, i64)> {
    events
        .iter()
        .map(|event| {
            let data = event.payload();
            let post = data
                .get("post_id")
                .or_else(|| data.get("id"))
                .and_then(|id| id.as_i64())
                .unwrap_or(-1);
            (event.event.clone(), post)
        })
        .collect()
}

fn assert_ids_grow(events: &[SseEvent]) {
    let ids: Vec<i64> = events.iter().map(SseEvent::number).collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "event ids grow: {ids:?}"
    );
}

async fn each_subscriber_sees_only_what_it_may_see(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let reader = app.create_user_and_login().await;
    let mut owners = follow(&app, &owner).await;
    let mut readers = follow(&app, &reader).await;

    let draft = app.new_post(&owner, "Draft first", false).await;
    let id = id_of(&draft);
    let path = format!("/posts/{id}");
    let created = owners.expect_event(ARRIVAL, "the owner's draft").await;
    assert_eq!(created.event, "post.created");
    assert_eq!(created.payload(), draft, "the data is the post as created");

    let published = app
        .patch(&path, Some(&owner.token), &json!({ "published": true }))
        .await;
    let published = expect_json(published, StatusCode::OK, "publishing").await;
    let seen = readers.expect_event(ARRIVAL, "a publication").await;
    assert_eq!(
        seen.event, "post.created",
        "a draft published is new to others"
    );
    assert_eq!(seen.payload(), published);

    let edited = app
        .patch(&path, Some(&owner.token), &json!({ "title": "Edited" }))
        .await;
    let edited = expect_json(edited, StatusCode::OK, "editing").await;
    let seen = readers.expect_event(ARRIVAL, "an edit").await;
    assert_eq!(seen.event, "post.updated");
    assert_eq!(seen.payload(), edited);

    assert_eq!(
        app.vote(&reader.token, id, 1).await.status(),
        StatusCode::CREATED
    );
    let seen = readers.expect_event(ARRIVAL, "a vote").await;
    assert_eq!(seen.event, "vote");
    assert_eq!(seen.payload(), json!({ "post_id": id, "votes": 1 }));

    let hidden = app
        .patch(&path, Some(&owner.token), &json!({ "published": false }))
        .await;
    assert_eq!(hidden.status(), StatusCode::OK);
    let seen = readers.expect_event(ARRIVAL, "a return to draft").await;
    assert_eq!(
        seen.event, "post.deleted",
        "a post made a draft leaves others' view"
    );
    assert_eq!(seen.payload(), json!({ "id": id }));

    // Changes of another person's draft, and its deletion, never show.
    let edited_draft = app
        .patch(&path, Some(&owner.token), &json!({ "content": "private" }))
        .await;
    assert_eq!(edited_draft.status(), StatusCode::OK);
    assert_eq!(
        app.delete(&path, Some(&owner.token)).await.status(),
        StatusCode::NO_CONTENT
    );
    let mut readers_events = vec![];
    readers_events.extend(readers.drain(QUIET).await);
    assert_eq!(summary(&readers_events), vec![], "nothing of a draft");

    let mut owners_events = vec![created];
    owners_events.extend(owners.drain(QUIET).await);
    assert_eq!(
        summary(&owners_events),
        [
            ("post.created", id),
            ("post.updated", id),
            ("post.updated", id),
            ("vote", id),
            ("post.updated", id),
            ("post.updated", id),
            ("post.deleted", id),
        ]
        .map(|(name, id)| (name.to_owned(), id)),
        "the owner sees every change of their post"
    );
    assert_ids_grow(&owners_events);
}

async fn a_ticket_opens_one_stream_once(app: TestApp) {
    let user = app.create_user_and_login().await;
    let issued = app
        .post("/events/ticket", Some(&user.token), &json!({}))
        .await;
    let issued = expect_json(issued, StatusCode::CREATED, "a ticket").await;
    assert_eq!(issued["expires_in"], 30);
    let ticket = issued["ticket"].as_str().expect("a ticket").to_owned();
    let path = format!("/events?ticket={ticket}");

    let mut stream = SseStream::open(&app, &path, None, None).await;
    let post = app.new_post(&user, "Through a ticket", true).await;
    let seen = stream.expect_event(ARRIVAL, "an event by ticket").await;
    assert_eq!(seen.payload(), post);

    let again = SseStream::request(&app, &path, None, None).await;
    expect_problem(again, StatusCode::UNAUTHORIZED, "a spent ticket").await;
    for forged in ["", "not-a-ticket", &"A".repeat(43), &ticket[..20]] {
        let response =
            SseStream::request(&app, &format!("/events?ticket={forged}"), None, None).await;
        expect_problem(response, StatusCode::UNAUTHORIZED, "a forged ticket").await;
    }

    // A ticket of a session that ended opens nothing.
    let issued = app
        .post("/events/ticket", Some(&user.token), &json!({}))
        .await;
    let issued = expect_json(issued, StatusCode::CREATED, "a second ticket").await;
    let logout = app.post("/logout", Some(&user.token), &json!({})).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let response = SseStream::request(
        &app,
        &format!("/events?ticket={}", issued["ticket"].as_str().unwrap()),
        None,
        None,
    )
    .await;
    expect_problem(
        response,
        StatusCode::UNAUTHORIZED,
        "a ticket of an ended session",
    )
    .await;
    let ticket = app
        .post("/events/ticket", Some(&user.token), &json!({}))
        .await;
    expect_problem(
        ticket,
        StatusCode::UNAUTHORIZED,
        "a ticket for an ended session",
    )
    .await;
}

async fn bad_credentials_and_event_ids_are_refused_clearly(app: TestApp) {
    let user = app.create_user_and_login().await;
    let response = SseStream::request(&app, "/events", None, None).await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "no credentials").await;
    let claims = app.claims_of(&user.token);
    let expired = sign(
        jsonwebtoken::Algorithm::HS256,
        &json!({
            "sub": claims["sub"],
            "sid": claims["sid"],
            "iat": now_seconds() - 7200,
            "exp": now_seconds() - 3600,
        }),
        &app.secret,
    );
    let response = SseStream::request(&app, "/events", Some(&expired), None).await;
    expect_problem(response, StatusCode::UNAUTHORIZED, "an expired token").await;

    for garbage in ["abc", "-1", "1.5", "99999999999999999999", " "] {
        let response = SseStream::request(&app, "/events", Some(&user.token), Some(garbage)).await;
        expect_invalid(response, "Last-Event-ID", garbage).await;
        let response = SseStream::request(
            &app,
            &format!("/events?last_event_id={garbage}"),
            Some(&user.token),
            None,
        )
        .await;
        expect_invalid(response, "last_event_id", garbage).await;
    }

    // An id no event has had yet: the client's view is of another history.
    let mut stream = SseStream::open(&app, "/events", Some(&user.token), Some("999999")).await;
    let reset = stream.expect_event(ARRIVAL, "a future id").await;
    assert_eq!(reset.event, "reset");
    assert!(reset.payload()["detail"].is_string());
    let post = app.new_post(&user, "After a reset", true).await;
    let next = stream.expect_event(ARRIVAL, "live after a reset").await;
    assert_eq!(next.payload(), post);
    assert!(next.number() > reset.number());
}

async fn resuming_sends_what_was_missed_then_goes_on_live(app: TestApp) {
    let user = app.create_user_and_login().await;
    let mut stream = follow(&app, &user).await;
    let first = app.new_post(&user, "Seen live", true).await;
    let seen = stream.expect_event(ARRIVAL, "the first post").await;
    assert_eq!(seen.payload(), first);
    drop(stream);

    let mut missed = vec![];
    for title in ["Missed one", "Missed two", "Missed three"] {
        missed.push(id_of(&app.new_post(&user, title, true).await));
    }
    let mut resumed = SseStream::open(&app, "/events", Some(&user.token), seen.id.as_deref()).await;
    let replayed = [
        resumed.expect_event(ARRIVAL, "replay 1").await,
        resumed.expect_event(ARRIVAL, "replay 2").await,
        resumed.expect_event(ARRIVAL, "replay 3").await,
    ];
    assert_eq!(
        summary(&replayed),
        missed
            .iter()
            .map(|&id| ("post.created".to_owned(), id))
            .collect::<Vec<_>>()
    );
    assert!(replayed[0].number() > seen.number());
    let live = app.new_post(&user, "Live again", true).await;
    let next = resumed.expect_event(ARRIVAL, "live after the replay").await;
    assert_eq!(next.payload(), live);
    assert_eq!(resumed.drain(QUIET).await, vec![], "nothing twice");

    // The query parameter resumes the same way, for a new EventSource.
    let mut by_param = SseStream::open(
        &app,
        &format!("/events?last_event_id={}", seen.number()),
        Some(&user.token),
        None,
    )
    .await;
    let first_again = by_param.expect_event(ARRIVAL, "replay by parameter").await;
    assert_eq!(first_again.number(), replayed[0].number());
}

async fn a_stream_ends_within_a_second_of_its_session(app: TestApp) {
    let user = app.create_user_and_login().await;
    let other = app.create_user_and_login().await;
    let mut ending = follow(&app, &user).await;
    let mut staying = follow(&app, &other).await;
    let logout = app.post("/logout", Some(&user.token), &json!({})).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        ending.next(Duration::from_secs(1)).await,
        SseRead::Ended,
        "the logged-out session's stream ends"
    );
    let post = app.new_post(&other, "Still here", true).await;
    let seen = staying
        .expect_event(ARRIVAL, "another session's stream")
        .await;
    assert_eq!(seen.payload(), post);

    // Ended from another session, on a sibling instance, it ends too.
    let email = &other.email;
    let second = app.start_session(email, &other.password).await;
    let sibling = app.spawn_sibling().await;
    let mut on_sibling =
        SseStream::open(&sibling, "/events", Some(&second.access_token), None).await;
    let ended = app.delete("/users/me/sessions", Some(&other.token)).await;
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let read = on_sibling.next(Duration::from_secs(2)).await;
    assert_eq!(read, SseRead::Ended, "a session ended elsewhere");
    assert_eq!(
        staying.drain(QUIET).await,
        vec![],
        "the session that ended the others keeps its stream"
    );
}

async fn an_idle_stream_sends_a_comment_every_fifteen_seconds(app: TestApp) {
    let user = app.create_user_and_login().await;
    let mut stream = follow(&app, &user).await;
    assert_eq!(
        stream.next(Duration::from_secs(16)).await,
        SseRead::TimedOut
    );
    assert!(stream.comments >= 1, "a keep-alive comment came");
}

async fn a_replay_from_zero_leaves_out_what_happened_before_the_account_existed(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let gone = app
        .new_post(&owner, "Deleted before the reader came", true)
        .await;
    let path = format!("/posts/{}", id_of(&gone));
    let deleted = app.delete(&path, Some(&owner.token)).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    // At once: events are stamped in whole seconds, and the reader's account most often
    // comes in the same second as the deletion.
    let reader = app.create_user_and_login().await;

    let mut from_zero = SseStream::open(&app, "/events", Some(&reader.token), Some("0")).await;
    assert_eq!(
        summary(&from_zero.drain(QUIET).await),
        vec![],
        "nothing of a post deleted before the reader's account existed"
    );
    let post = app.new_post(&owner, "After the reader came", true).await;
    let seen = from_zero
        .expect_event(ARRIVAL, "live after the replay")
        .await;
    assert_eq!(seen.payload(), post);

    // The owner, whose account is older, is replayed all of it.
    let mut owners = SseStream::open(&app, "/events", Some(&owner.token), Some("0")).await;
    assert_eq!(
        summary(&owners.drain(QUIET).await),
        [
            ("post.created", id_of(&gone)),
            ("post.deleted", id_of(&gone)),
            ("post.created", id_of(&post)),
        ]
        .map(|(name, id)| (name.to_owned(), id)),
    );
}

/// How many streams an account may have open at once (`EVENT_STREAMS_PER_ACCOUNT`).
const STREAMS_PER_ACCOUNT: usize = 5;

async fn an_account_may_have_five_streams_open_and_a_closed_one_frees_its_place_at_once(
    app: TestApp,
) {
    let user = app.create_user_and_login().await;
    let mut open = Vec::new();
    for _ in 0..STREAMS_PER_ACCOUNT {
        open.push(follow(&app, &user).await);
    }
    let sixth = SseStream::request(&app, "/events", Some(&user.token), None).await;
    assert!(
        api_tests::header(&sixth, "retry-after").is_some(),
        "Retry-After"
    );
    expect_problem(sixth, StatusCode::TOO_MANY_REQUESTS, "a sixth stream").await;
    // Another account is not held back by this one's streams.
    let other = app.create_user_and_login().await;
    follow(&app, &other).await;

    // A client that closes a stream and opens another, again and again, never meets a 429.
    for round in 0..20 {
        drop(open.pop());
        let response = SseStream::request(&app, "/events", Some(&user.token), None).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "round {round}: a stream opened after one was closed"
        );
        open.push(SseStream::new(response));
    }
    let post = app.new_post(&user, "To every open stream", true).await;
    for stream in &mut open {
        assert_eq!(
            stream
                .expect_event(ARRIVAL, "an open stream")
                .await
                .payload(),
            post
        );
    }
}

async fn the_cap_on_an_accounts_streams_holds_across_instances(app: TestApp) {
    let sibling = app.spawn_sibling().await;
    // Twelve streams asked for at once, six through each instance: five get through.
    let racer = app.create_user_and_login().await;
    let answers = api_tests::all_at_once((0..12).map(|k| {
        let instance = if k % 2 == 0 { &app } else { &sibling };
        let client = api_tests::ApiClient::new(instance.address.clone(), ARRIVAL);
        let token = racer.token.clone();
        async move { SseStream::request(&client, "/events", Some(&token), None).await }
    }))
    .await;
    let opened = answers
        .iter()
        .filter(|response| response.status() == StatusCode::OK)
        .count();
    let refused = answers
        .iter()
        .filter(|response| response.status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        (opened, refused),
        (STREAMS_PER_ACCOUNT, 12 - STREAMS_PER_ACCOUNT),
        "streams opened and refused of twelve asked for at once"
    );
    drop(answers);

    let user = app.create_user_and_login().await;
    let mut here = Vec::new();
    for _ in 0..3 {
        here.push(follow(&app, &user).await);
    }
    let mut there = Vec::new();
    for _ in 0..STREAMS_PER_ACCOUNT - 3 {
        there.push(follow(&sibling, &user).await);
    }
    for (instance, name) in [(&app, "the first instance"), (&sibling, "the second")] {
        let sixth = SseStream::request(instance, "/events", Some(&user.token), None).await;
        expect_problem(
            sixth,
            StatusCode::TOO_MANY_REQUESTS,
            &format!("a sixth stream through {name}"),
        )
        .await;
    }
    // A stream closed on one instance frees its place for the other at once.
    for round in 0..5 {
        drop(here.pop());
        let response = SseStream::request(&sibling, "/events", Some(&user.token), None).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "round {round}: a stream through the second instance after one closed on the first"
        );
        there.push(SseStream::new(response));
        drop(there.pop());
        here.push(follow(&app, &user).await);
    }
}

async fn the_places_of_an_instance_that_vanished_free_themselves(app: TestApp) {
    use sea_orm::ConnectionTrait;
    let user = app.create_user_and_login().await;
    // What an instance that died with four streams open left: two leases it renewed last a
    // minute ago, expired, and two it renewed just now.
    let now = now_seconds();
    app.database()
        .await
        .execute_unprepared(&format!(
            "INSERT INTO event_streams (user_id, slot, instance, expires_at) VALUES \
             ({id}, 0, 'gone', {expired}), ({id}, 1, 'gone', {live}), \
             ({id}, 2, 'gone', {expired}), ({id}, 4, 'gone', {live})",
            id = user.id,
            expired = now - 30,
            live = now + 30,
        ))
        .await
        .expect("the leases are recorded");
    let mut open = Vec::new();
    for _ in 0..STREAMS_PER_ACCOUNT - 2 {
        open.push(follow(&app, &user).await);
    }
    let more = SseStream::request(&app, "/events", Some(&user.token), None).await;
    expect_problem(
        more,
        StatusCode::TOO_MANY_REQUESTS,
        "a stream past the leases still live",
    )
    .await;
}

async fn streams_past_half_the_connections_are_503_and_other_requests_still_get_through(
    app: TestApp,
) {
    const MAX_CONNECTIONS: usize = 12;
    let app = TestApp::spawn_with(app.backend, |settings| {
        settings.http_max_connections = MAX_CONNECTIONS;
        settings.event_streams_per_account = MAX_CONNECTIONS;
    })
    .await;
    let user = app.create_user_and_login().await;
    let mut open = Vec::new();
    for _ in 0..MAX_CONNECTIONS / 2 {
        open.push(follow(&app, &user).await);
    }
    let more = SseStream::request(&app, "/events", Some(&user.token), None).await;
    assert!(
        api_tests::header(&more, "retry-after").is_some(),
        "Retry-After"
    );
    expect_problem(
        more,
        StatusCode::SERVICE_UNAVAILABLE,
        "a stream past half the cap",
    )
    .await;
    let health = api_tests::ApiClient::new(app.address.clone(), Duration::from_secs(2))
        .get("/health", None)
        .await;
    assert_eq!(health.status(), StatusCode::OK, "a new client's /health");
    drop(open.pop());
    follow(&app, &user).await;
}

on_both_backends!(
    a_replay_from_zero_leaves_out_what_happened_before_the_account_existed,
    an_account_may_have_five_streams_open_and_a_closed_one_frees_its_place_at_once,
    the_cap_on_an_accounts_streams_holds_across_instances,
    the_places_of_an_instance_that_vanished_free_themselves,
    streams_past_half_the_connections_are_503_and_other_requests_still_get_through,
    each_subscriber_sees_only_what_it_may_see,
    a_ticket_opens_one_stream_once,
    bad_credentials_and_event_ids_are_refused_clearly,
    resuming_sends_what_was_missed_then_goes_on_live,
    a_stream_ends_within_a_second_of_its_session,
    an_idle_stream_sends_a_comment_every_fifteen_seconds,
);

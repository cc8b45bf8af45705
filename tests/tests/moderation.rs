//! Roles and moderation: an administrator gives roles (the first one from the command line);
//! moderators hide posts and suspend accounts; every step is on the record, at once and on
//! every instance; two steps at once give one change and one clear answer.

use std::time::{Duration, Instant};

use api_tests::{
    Method, SseRead, SseStream, StatusCode, TestApp, TestUser, Value, expect_empty, expect_invalid,
    expect_json, expect_problem, header, id_of, json, on_both_backends, query_i64,
    send_all_at_once, tally,
};
use sea_orm::ConnectionTrait;

/// An administrator, a moderator (made by the administrator) and a member.
struct Cast {
    admin: TestUser,
    moderator: TestUser,
    member: TestUser,
}

async fn cast(app: &TestApp) -> Cast {
    let admin = app.create_user_and_login().await;
    let printed = app.grant(&admin.email, "admin").await;
    assert!(printed.contains("member → admin"), "{printed}");
    let moderator = app.create_user_and_login().await;
    let given = set_role(app, &admin.token, moderator.id, "moderator").await;
    expect_json(given, StatusCode::OK, "making a moderator").await;
    let member = app.create_user_and_login().await;
    Cast {
        admin,
        moderator,
        member,
    }
}

async fn set_role(app: &TestApp, token: &str, id: i64, role: &str) -> api_tests::Response {
    app.put(
        &format!("/users/{id}/role"),
        Some(token),
        &json!({ "role": role }),
    )
    .await
}

async fn hide(app: &TestApp, token: &str, post: i64) -> api_tests::Response {
    app.post(
        &format!("/posts/{post}/hide"),
        Some(token),
        &json!({ "reason": "  advertising  " }),
    )
    .await
}

async fn restore(app: &TestApp, token: &str, post: i64) -> api_tests::Response {
    app.delete(&format!("/posts/{post}/hide"), Some(token))
        .await
}

async fn suspend(app: &TestApp, token: &str, id: i64, until: Value) -> api_tests::Response {
    app.post(
        &format!("/users/{id}/suspend"),
        Some(token),
        &json!({ "reason": "abuse", "until": until }),
    )
    .await
}

async fn log(app: &TestApp, token: &str, query: &str) -> api_tests::Response {
    app.get(&format!("/moderation/log{query}"), Some(token))
        .await
}

async fn roles_are_given_by_an_administrator_and_count_from_the_next_request(app: TestApp) {
    let Cast {
        admin,
        moderator,
        member,
    } = cast(&app).await;
    let other = app.spawn_sibling().await;

    for (who, token, context) in [
        (&member, &member.token, "a member"),
        (&moderator, &moderator.token, "a moderator"),
    ] {
        let refused = set_role(&app, token, admin.id, "member").await;
        expect_problem(refused, StatusCode::FORBIDDEN, context).await;
        let me = expect_json(
            app.get("/users/me", Some(&who.token)).await,
            StatusCode::OK,
            context,
        )
        .await;
        assert_ne!(me["role"], "admin", "{context}");
    }
    expect_problem(
        set_role(&app, &admin.token, admin.id, "member").await,
        StatusCode::FORBIDDEN,
        "an administrator's own role",
    )
    .await;
    expect_problem(
        set_role(&app, &admin.token, 999_999, "member").await,
        StatusCode::NOT_FOUND,
        "nobody",
    )
    .await;
    expect_invalid(
        set_role(&app, &admin.token, member.id, "owner").await,
        "role",
        "no such role",
    )
    .await;

    // Given through one instance, it counts on the other at the next request.
    expect_problem(
        other.get("/moderation/log", Some(&member.token)).await,
        StatusCode::FORBIDDEN,
        "a member reads no log",
    )
    .await;
    let given = expect_json(
        set_role(&app, &admin.token, member.id, "moderator").await,
        StatusCode::OK,
        "giving a role",
    )
    .await;
    assert_eq!(given["role"], "moderator");
    assert_eq!(
        given["email"], member.email,
        "an administrator sees the account"
    );
    expect_json(
        other.get("/moderation/log", Some(&member.token)).await,
        StatusCode::OK,
        "a new moderator reads the log at once",
    )
    .await;
    // The same role again changes nothing and records nothing.
    expect_json(
        set_role(&app, &admin.token, member.id, "moderator").await,
        StatusCode::OK,
        "the same role",
    )
    .await;
    expect_json(
        set_role(&app, &admin.token, member.id, "member").await,
        StatusCode::OK,
        "taking it back",
    )
    .await;
    expect_problem(
        other.get("/moderation/log", Some(&member.token)).await,
        StatusCode::FORBIDDEN,
        "taken back at once",
    )
    .await;

    let entries = expect_json(log(&app, &admin.token, "").await, StatusCode::OK, "the log").await;
    let roles: Vec<(&str, &str)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["role"].as_str().unwrap_or_default(),
                entry["actor_handle"].as_str().unwrap_or("(command line)"),
            )
        })
        .collect();
    let admin_handle = expect_json(
        app.get("/users/me", Some(&admin.token)).await,
        StatusCode::OK,
        "me",
    )
    .await["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        roles,
        [
            ("member", admin_handle.as_str()),
            ("moderator", admin_handle.as_str()),
            ("moderator", admin_handle.as_str()),
            ("admin", "(command line)"),
        ],
        "newest first, one entry a change"
    );
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] == "role_changed")
    );
}

async fn a_hidden_post_is_gone_for_everyone_but_its_owner_on_every_read_path(app: TestApp) {
    let Cast {
        moderator, member, ..
    } = cast(&app).await;
    let reader = app.create_user_and_login().await;
    app.new_post(&member, "Older watches", true).await;
    let post = id_of(&app.new_post(&member, "Buy cheap watches", true).await);
    app.new_post(&member, "Newer watches", true).await;
    let path = format!("/posts/{post}");
    let before = app.get(&path, Some(&member.token)).await;
    let tag_before = header(&before, "etag").expect("an ETag");
    // Opened once the feed has passed the post's creation, so that it starts after it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut stream = SseStream::open(&app, "/events", Some(&reader.token), None).await;

    expect_empty(
        hide(&app, &moderator.token, post).await,
        StatusCode::NO_CONTENT,
        "hiding",
    )
    .await;

    // Another person: gone from every read.
    expect_problem(
        app.get(&path, Some(&reader.token)).await,
        StatusCode::NOT_FOUND,
        "by id",
    )
    .await;
    let conditional = app
        .request(Method::GET, &path, Some(&reader.token))
        .header("if-none-match", &tag_before)
        .send()
        .await
        .unwrap();
    assert_eq!(
        conditional.status(),
        StatusCode::NOT_FOUND,
        "a 304 would tell it exists"
    );
    for query in [&[][..], &[("search", "watches")][..], &[("limit", "1")][..]] {
        let listed = app.list_posts(&reader.token, query).await;
        assert!(
            listed.iter().all(|p| p["id"] != post),
            "{query:?}: {listed:?}"
        );
    }
    // Page by page, by cursor: the two others, and not the hidden one between them.
    let mut next = Some("/posts?limit=1&search=watches".to_owned());
    let mut seen = Vec::new();
    while let Some(page) = next.take() {
        let response = app.get(&page, Some(&reader.token)).await;
        next = header(&response, "link")
            .and_then(|link| Some(link.strip_prefix('<')?.split('>').next()?.to_owned()));
        let posts = expect_json(response, StatusCode::OK, "a page").await;
        seen.extend(posts.as_array().unwrap().iter().map(|p| p["title"].clone()));
        assert!(seen.len() <= 3, "{seen:?}");
    }
    assert_eq!(seen, [json!("Newer watches"), json!("Older watches")]);
    expect_problem(
        app.vote(&reader.token, post, 1).await,
        StatusCode::NOT_FOUND,
        "a vote",
    )
    .await;
    let event = stream
        .expect_event(Duration::from_secs(5), "the hide")
        .await;
    assert_eq!(event.event, "post.deleted", "{event:?}");
    assert_eq!(event.payload()["id"], post);

    // A moderator's own reads are a reader's: the hidden posts have a listing of their own.
    expect_problem(
        app.get(&path, Some(&moderator.token)).await,
        StatusCode::NOT_FOUND,
        "a moderator by id",
    )
    .await;
    let hidden = expect_json(
        app.get("/moderation/hidden", Some(&moderator.token)).await,
        StatusCode::OK,
        "the hidden posts",
    )
    .await;
    assert_eq!(hidden[0]["id"], post);
    assert_eq!(hidden[0]["hidden"], true);
    assert_eq!(hidden[0]["hidden_reason"], "advertising");
    expect_problem(
        app.get("/moderation/hidden", Some(&reader.token)).await,
        StatusCode::FORBIDDEN,
        "a member's listing",
    )
    .await;

    // The owner sees it, marked, with a new tag; nothing they do shows it again.
    let owned = app.get(&path, Some(&member.token)).await;
    assert_ne!(header(&owned, "etag"), Some(tag_before), "a new version");
    let owned = expect_json(owned, StatusCode::OK, "the owner's read").await;
    assert_eq!(
        (owned["hidden"].clone(), owned["hidden_reason"].clone()),
        (json!(true), json!("advertising"))
    );
    let mine = app.list_posts(&member.token, &[]).await;
    assert!(
        mine.iter().any(|p| p["id"] == post && p["hidden"] == true),
        "{mine:?}"
    );
    for change in [
        json!({ "published": false }),
        json!({ "published": true, "title": "Watches" }),
    ] {
        expect_json(
            app.patch(&path, Some(&member.token), &change).await,
            StatusCode::OK,
            "the owner edits",
        )
        .await;
        expect_problem(
            app.get(&path, Some(&reader.token)).await,
            StatusCode::NOT_FOUND,
            "still hidden",
        )
        .await;
    }
    let quiet = stream.drain(Duration::from_millis(500)).await;
    assert!(
        quiet.is_empty(),
        "nothing of a hidden post reaches others: {quiet:?}"
    );
    expect_problem(
        hide(&app, &moderator.token, post).await,
        StatusCode::CONFLICT,
        "hidden already",
    )
    .await;

    // Restored, it is as its owner left it, for everyone.
    expect_empty(
        restore(&app, &moderator.token, post).await,
        StatusCode::NO_CONTENT,
        "restoring",
    )
    .await;
    let seen = expect_json(
        app.get(&path, Some(&reader.token)).await,
        StatusCode::OK,
        "restored",
    )
    .await;
    assert_eq!(
        (seen["title"].clone(), seen["hidden"].clone()),
        (json!("Watches"), json!(false))
    );
    let event = stream
        .expect_event(Duration::from_secs(5), "the restore")
        .await;
    assert_eq!(event.event, "post.created", "{event:?}");
    expect_problem(
        restore(&app, &moderator.token, post).await,
        StatusCode::CONFLICT,
        "not hidden",
    )
    .await;
    expect_problem(
        hide(&app, &moderator.token, 999_999).await,
        StatusCode::NOT_FOUND,
        "no post",
    )
    .await;
    expect_problem(
        hide(&app, &reader.token, post).await,
        StatusCode::FORBIDDEN,
        "a member hides nothing",
    )
    .await;
}

async fn moderators_act_on_members_only_and_nobody_on_themselves(app: TestApp) {
    let Cast {
        admin,
        moderator,
        member,
    } = cast(&app).await;
    let admins_post = id_of(&app.new_post(&admin, "The rules", true).await);
    let moderators_post = id_of(&app.new_post(&moderator, "Welcome", true).await);
    for (token, post, context) in [
        (
            &moderator.token,
            admins_post,
            "a moderator on an administrator's post",
        ),
        (
            &moderator.token,
            moderators_post,
            "a moderator on their own post",
        ),
        (
            &admin.token,
            admins_post,
            "an administrator on their own post",
        ),
    ] {
        expect_problem(
            hide(&app, token, post).await,
            StatusCode::FORBIDDEN,
            context,
        )
        .await;
    }
    for (token, id, context) in [
        (
            &moderator.token,
            admin.id,
            "a moderator suspending an administrator",
        ),
        (
            &moderator.token,
            moderator.id,
            "a moderator suspending themselves",
        ),
        (
            &admin.token,
            admin.id,
            "an administrator suspending themselves",
        ),
        (&member.token, moderator.id, "a member"),
    ] {
        expect_problem(
            suspend(&app, token, id, Value::Null).await,
            StatusCode::FORBIDDEN,
            context,
        )
        .await;
    }
    expect_empty(
        hide(&app, &admin.token, moderators_post).await,
        StatusCode::NO_CONTENT,
        "an administrator on a moderator's post",
    )
    .await;
    let entries = expect_json(
        log(&app, &moderator.token, "").await,
        StatusCode::OK,
        "the log",
    )
    .await;
    assert_eq!(
        entries[0]["action"], "post_hidden",
        "only the steps taken: {entries}"
    );
}

async fn a_suspension_ends_every_session_and_refuses_the_right_password(app: TestApp) {
    let Cast {
        moderator, member, ..
    } = cast(&app).await;
    let post = id_of(&app.new_post(&member, "Still here", true).await);
    // An end already past signs the person out everywhere, and refuses no login.
    let past = json!("2020-01-01T00:00:00Z");
    expect_empty(
        suspend(&app, &moderator.token, member.id, past).await,
        StatusCode::NO_CONTENT,
        "a past end",
    )
    .await;
    expect_problem(
        app.get("/users/me", Some(&member.token)).await,
        StatusCode::UNAUTHORIZED,
        "signed out",
    )
    .await;
    let member = TestUser {
        token: app.login(&member.email, &member.password).await,
        ..member
    };
    let second = app.start_session(&member.email, &member.password).await;
    let until = "2031-01-15T09:30:00Z";

    expect_invalid(
        suspend(&app, &moderator.token, member.id, json!("tomorrow")).await,
        "until",
        "no date",
    )
    .await;
    expect_empty(
        suspend(&app, &moderator.token, member.id, json!(until)).await,
        StatusCode::NO_CONTENT,
        "suspending",
    )
    .await;

    for token in [&member.token, &second.access_token] {
        expect_problem(
            app.get("/users/me", Some(token)).await,
            StatusCode::UNAUTHORIZED,
            "a token of the account",
        )
        .await;
    }
    expect_problem(
        app.refresh(&second.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "its refresh token",
    )
    .await;
    let refused = expect_problem(
        app.login_json(&member.email, &member.password).await,
        StatusCode::FORBIDDEN,
        "the right password",
    )
    .await;
    let detail = refused["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("abuse") && detail.contains("2031-01-15"),
        "{detail}"
    );
    expect_problem(
        app.login_json(&member.email, "a wrong password").await,
        StatusCode::UNAUTHORIZED,
        "a wrong password reveals nothing",
    )
    .await;
    expect_problem(
        suspend(&app, &moderator.token, member.id, Value::Null).await,
        StatusCode::CONFLICT,
        "suspended already",
    )
    .await;
    let reader = app.create_user_and_login().await;
    expect_json(
        app.get(&format!("/posts/{post}"), Some(&reader.token))
            .await,
        StatusCode::OK,
        "the posts stay",
    )
    .await;

    let lift = app
        .delete(
            &format!("/users/{}/suspend", member.id),
            Some(&moderator.token),
        )
        .await;
    expect_empty(lift, StatusCode::NO_CONTENT, "lifting").await;
    app.login(&member.email, &member.password).await;
    let again = app
        .delete(
            &format!("/users/{}/suspend", member.id),
            Some(&moderator.token),
        )
        .await;
    expect_problem(again, StatusCode::CONFLICT, "not suspended").await;
    let missing = app
        .delete("/users/999999/suspend", Some(&moderator.token))
        .await;
    expect_problem(missing, StatusCode::NOT_FOUND, "nobody").await;
}

async fn a_suspension_through_one_instance_ends_a_stream_on_the_other_within_a_second(
    app: TestApp,
) {
    let Cast {
        moderator, member, ..
    } = cast(&app).await;
    let other = app.spawn_sibling().await;
    let mut stream = SseStream::open(&other, "/events", Some(&member.token), None).await;
    assert_eq!(
        stream.next(Duration::from_millis(200)).await,
        SseRead::TimedOut,
        "open and quiet"
    );

    let suspended = Instant::now();
    expect_empty(
        suspend(&app, &moderator.token, member.id, Value::Null).await,
        StatusCode::NO_CONTENT,
        "suspending",
    )
    .await;
    let deadline = suspended + Duration::from_secs(1);
    loop {
        match stream
            .next(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            SseRead::Ended => break,
            SseRead::Event(_) => continue,
            SseRead::TimedOut => {
                panic!("the stream on the other instance is still open after a second")
            }
        }
    }
    let refused = other.get("/users/me", Some(&member.token)).await;
    assert!(
        suspended.elapsed() < Duration::from_secs(2),
        "{:?}",
        suspended.elapsed()
    );
    expect_problem(
        refused,
        StatusCode::UNAUTHORIZED,
        "a request on the other instance",
    )
    .await;
}

async fn the_log_pages_newest_first_and_outlives_what_it_names(app: TestApp) {
    let Cast {
        admin,
        moderator,
        member,
    } = cast(&app).await;
    let post = id_of(&app.new_post(&member, "Soon gone", true).await);
    expect_empty(
        hide(&app, &moderator.token, post).await,
        StatusCode::NO_CONTENT,
        "hiding",
    )
    .await;
    expect_empty(
        restore(&app, &moderator.token, post).await,
        StatusCode::NO_CONTENT,
        "restoring",
    )
    .await;
    expect_empty(
        suspend(&app, &moderator.token, member.id, Value::Null).await,
        StatusCode::NO_CONTENT,
        "suspending",
    )
    .await;
    let db = app.database().await;
    db.execute_unprepared(&format!("DELETE FROM users WHERE id = {}", member.id))
        .await
        .expect("the account goes");

    // Five entries: the two role changes of the cast, hide, restore, suspend.
    let first = log(&app, &admin.token, "?limit=3").await;
    let link = header(&first, "link").expect("a full page links the next");
    let first = expect_json(first, StatusCode::OK, "the first page").await;
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    assert!(next.starts_with("/moderation/log?"), "{next}");
    let second = expect_json(
        app.get(&next, Some(&admin.token)).await,
        StatusCode::OK,
        "the second page",
    )
    .await;
    let actions: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        .chain(second.as_array().unwrap())
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "suspended",
            "post_restored",
            "post_hidden",
            "role_changed",
            "role_changed"
        ]
    );
    assert_eq!(
        first[0]["user_id"], member.id,
        "the deleted account is still named"
    );
    assert_eq!(first[2]["post_title"], "Soon gone");
    assert_eq!(first[2]["reason"], "advertising");

    // Nothing changes or deletes an entry, not even SQL.
    for sql in [
        "UPDATE moderation_log SET reason = 'nothing'",
        "DELETE FROM moderation_log",
    ] {
        assert!(
            db.execute_unprepared(sql).await.is_err(),
            "{sql} is refused"
        );
    }
    assert_eq!(
        query_i64(&db, "SELECT COUNT(*) FROM moderation_log").await,
        5
    );
    expect_invalid(
        log(&app, &admin.token, "?cursor=made-up").await,
        "cursor",
        "a cursor of no page",
    )
    .await;
}

async fn two_steps_at_once_give_one_change_and_one_conflict(app: TestApp) {
    let Cast {
        admin,
        moderator,
        member,
    } = cast(&app).await;
    let post = id_of(&app.new_post(&member, "Contested", true).await);
    let requests = [&admin.token, &moderator.token].map(|token| {
        app.request(Method::POST, &format!("/posts/{post}/hide"), Some(token))
            .json(&json!({ "reason": "twice" }))
    });
    let outcomes = send_all_at_once(requests).await;
    let statuses: Vec<StatusCode> = outcomes.iter().map(|(status, _)| *status).collect();
    assert_eq!(
        tally(&statuses),
        [(204, 1), (409, 1)].into(),
        "{outcomes:?}"
    );
    let requests = [&admin.token, &moderator.token].map(|token| {
        app.request(
            Method::POST,
            &format!("/users/{}/suspend", member.id),
            Some(token),
        )
        .json(&json!({ "reason": "twice" }))
    });
    let outcomes = send_all_at_once(requests).await;
    let statuses: Vec<StatusCode> = outcomes.iter().map(|(status, _)| *status).collect();
    assert_eq!(
        tally(&statuses),
        [(204, 1), (409, 1)].into(),
        "{outcomes:?}"
    );
    let db = app.database().await;
    assert_eq!(
        query_i64(
            &db,
            "SELECT COUNT(*) FROM moderation_log WHERE action <> 'role_changed'"
        )
        .await,
        2,
        "one entry a change"
    );
}

async fn a_suspension_racing_logins_leaves_no_live_session(app: TestApp) {
    let Cast {
        moderator, member, ..
    } = cast(&app).await;
    let login = || {
        app.request(Method::POST, "/login", None)
            .json(&json!({ "email": member.email, "password": member.password }))
    };
    // Fewer than the failed logins that lock an account: each is counted until it succeeds.
    let mut requests: Vec<_> = (0..4).map(|_| login()).collect();
    requests.insert(
        2,
        app.request(
            Method::POST,
            &format!("/users/{}/suspend", member.id),
            Some(&moderator.token),
        )
        .json(&json!({ "reason": "race" })),
    );
    let mut outcomes = send_all_at_once(requests).await;
    let (suspended, _) = outcomes.remove(2);
    assert_eq!(suspended, StatusCode::NO_CONTENT, "{outcomes:?}");
    assert_no_session_outlives(&app, member.id, &outcomes, &[200, 401, 403], "a login").await;
}

async fn the_hidden_posts_page_newest_first_by_cursor(app: TestApp) {
    let Cast {
        moderator, member, ..
    } = cast(&app).await;
    let mut hidden = Vec::new();
    for n in 0..3 {
        let post = id_of(&app.new_post(&member, &format!("Spam {n}"), n != 1).await);
        let response = hide(&app, &moderator.token, post).await;
        expect_empty(response, StatusCode::NO_CONTENT, "hiding").await;
        hidden.push(post);
    }
    app.new_post(&member, "Not spam", true).await;
    let first = app
        .get("/moderation/hidden?limit=2", Some(&moderator.token))
        .await;
    let link = header(&first, "link").expect("a full page links the next");
    let next = link
        .strip_prefix('<')
        .and_then(|link| link.split('>').next())
        .expect("a link target")
        .to_owned();
    assert!(next.starts_with("/moderation/hidden?"), "{next}");
    let first = expect_json(first, StatusCode::OK, "the first page").await;
    let second = app.get(&next, Some(&moderator.token)).await;
    assert_eq!(header(&second, "link"), None, "the last page");
    let second = expect_json(second, StatusCode::OK, "the second page").await;
    let ids: Vec<i64> = first
        .as_array()
        .unwrap()
        .iter()
        .chain(second.as_array().unwrap())
        .map(|post| post["id"].as_i64().unwrap())
        .collect();
    hidden.reverse();
    assert_eq!(ids, hidden, "every hidden post (a draft too), newest first");
}

async fn a_suspension_racing_refreshes_leaves_no_live_session(app: TestApp) {
    let Cast {
        moderator, member, ..
    } = cast(&app).await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(app.start_session(&member.email, &member.password).await);
    }
    let mut requests: Vec<_> = sessions
        .iter()
        .map(|session| {
            app.request(Method::POST, "/login/refresh", None)
                .json(&json!({ "refresh_token": session.refresh_token }))
        })
        .collect();
    requests.insert(
        1,
        app.request(
            Method::POST,
            &format!("/users/{}/suspend", member.id),
            Some(&moderator.token),
        )
        .json(&json!({ "reason": "race" })),
    );
    let mut outcomes = send_all_at_once(requests).await;
    let (suspended, _) = outcomes.remove(1);
    assert_eq!(suspended, StatusCode::NO_CONTENT, "{outcomes:?}");
    assert_no_session_outlives(&app, member.id, &outcomes, &[200, 401], "a refresh").await;
}

/// Checks what requests racing a suspension of account `user_id` got: each answer is one of
/// `allowed`, the tokens of any that issued some are refused, and the account has no session.
async fn assert_no_session_outlives(
    app: &TestApp,
    user_id: i64,
    outcomes: &[(StatusCode, String)],
    allowed: &[u16],
    racing: &str,
) {
    for (status, body) in outcomes {
        assert!(
            allowed.contains(&status.as_u16()),
            "{racing} racing the suspension: {status} {body}"
        );
        let body: Value = serde_json::from_str(body).unwrap_or_default();
        if let Some(token) = body["access_token"].as_str() {
            let me = app.get("/users/me", Some(token)).await;
            assert_eq!(
                me.status(),
                StatusCode::UNAUTHORIZED,
                "{racing}'s access token"
            );
        }
        if let Some(token) = body["refresh_token"].as_str() {
            let again = app.refresh(token).await;
            assert_eq!(
                again.status(),
                StatusCode::UNAUTHORIZED,
                "{racing}'s refresh token"
            );
        }
    }
    let db = app.database().await;
    let sessions = format!("SELECT COUNT(*) FROM sessions WHERE user_id = {user_id}");
    assert_eq!(query_i64(&db, &sessions).await, 0, "no live session");
}

async fn a_hide_racing_a_publish_never_leaves_the_post_visible(app: TestApp) {
    let Cast {
        moderator, member, ..
    } = cast(&app).await;
    let reader = app.create_user_and_login().await;
    for round in 0..5 {
        let post = id_of(
            &app.new_post(&member, &format!("Draft {round}"), false)
                .await,
        );
        let path = format!("/posts/{post}");
        let requests = [
            app.request(Method::PATCH, &path, Some(&member.token))
                .json(&json!({ "published": true })),
            app.request(
                Method::POST,
                &format!("{path}/hide"),
                Some(&moderator.token),
            )
            .json(&json!({ "reason": "race" })),
        ];
        let outcomes = send_all_at_once(requests).await;
        assert_eq!(outcomes[0].0, StatusCode::OK, "{outcomes:?}");
        assert_eq!(outcomes[1].0, StatusCode::NO_CONTENT, "{outcomes:?}");
        let seen = app.get(&path, Some(&reader.token)).await;
        assert_eq!(
            seen.status(),
            StatusCode::NOT_FOUND,
            "round {round}: hidden, whatever came first"
        );
    }
}

on_both_backends!(
    roles_are_given_by_an_administrator_and_count_from_the_next_request,
    a_hidden_post_is_gone_for_everyone_but_its_owner_on_every_read_path,
    moderators_act_on_members_only_and_nobody_on_themselves,
    a_suspension_ends_every_session_and_refuses_the_right_password,
    a_suspension_through_one_instance_ends_a_stream_on_the_other_within_a_second,
    the_log_pages_newest_first_and_outlives_what_it_names,
    two_steps_at_once_give_one_change_and_one_conflict,
    a_suspension_racing_logins_leaves_no_live_session,
    a_suspension_racing_refreshes_leaves_no_live_session,
    the_hidden_posts_page_newest_first_by_cursor,
    a_hide_racing_a_publish_never_leaves_the_post_visible,
);

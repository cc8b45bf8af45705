//! Deep pages: `Link: <…>; rel="next"` on every full page of `GET /posts`, and paging by
//! `cursor`.

use std::collections::BTreeSet;

use api_tests::{
    ApiClient, Backend, Method, Response, StatusCode, TestApp, TestUser, Value,
    check_invalid_fields, expect_json, header, id_of, ids, json, on_both_backends,
};

/// The URL (relative to the service) of a response's `rel="next"` link, if any.
fn next_link(response: &Response) -> Option<String> {
    let link = header(response, "link")?;
    let (target, params) = link.split_once(';').expect("`<url>; rel=...`");
    assert_eq!(params.trim(), "rel=\"next\"", "{link}");
    let url = target
        .trim()
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'));
    Some(
        url.unwrap_or_else(|| panic!("a URL in angle brackets: {link}"))
            .to_owned(),
    )
}

/// One page at `path_and_query`, and the link to the next one.
async fn page(
    app: &TestApp,
    user: &TestUser,
    path_and_query: &str,
) -> (Vec<Value>, Option<String>) {
    let response = app.get(path_and_query, Some(&user.token)).await;
    let next = next_link(&response);
    let body = expect_json(response, StatusCode::OK, path_and_query).await;
    (body.as_array().expect("an array").clone(), next)
}

/// Every page from `first`, following the links: the ids in the order seen, and the links.
async fn walk(app: &TestApp, user: &TestUser, first: &str) -> (Vec<i64>, Vec<String>) {
    let (mut seen, mut links) = (Vec::new(), Vec::new());
    let mut next = Some(first.to_owned());
    while let Some(url) = next {
        let (posts, link) = page(app, user, &url).await;
        seen.extend(ids(&posts));
        links.extend(link.clone());
        next = link;
        assert!(links.len() < 1_000, "the links never end");
    }
    (seen, links)
}

/// The query parameters of a link, decoded.
fn params_of(link: &str) -> Vec<(String, String)> {
    let query = link.split_once('?').map_or("", |(_, query)| query);
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn full_pages_link_to_the_next_and_the_cursor_walks_every_post_once(app: TestApp) {
    let user = app.create_user_and_login().await;
    for n in 0..23 {
        app.new_post(&user, &format!("Post {n} abc"), true).await;
    }
    let everything: Vec<i64> = ids(&app.list_posts(&user.token, &[("limit", "100")]).await);
    assert_eq!(everything.len(), 23);

    let (seen, links) = walk(&app, &user, "/posts?limit=5").await;
    assert_eq!(seen, everything, "the cursor pages, in order, once each");
    assert_eq!(
        links.len(),
        4,
        "pages of 5, 5, 5, 5 link on; the last (3) does not"
    );
    for link in &links {
        assert!(link.starts_with("/posts?"), "{link}");
        let params = params_of(link);
        assert!(params.contains(&("limit".into(), "5".into())), "{link}");
        assert!(params.iter().any(|(k, _)| k == "cursor"), "{link}");
    }

    // A page asked for by skip links on too; a page exactly at the end says nothing more.
    let (posts, next) = page(&app, &user, "/posts?limit=5&skip=5").await;
    assert_eq!(ids(&posts), everything[5..10]);
    let (rest, _) = walk(&app, &user, &next.expect("a full page by skip links on")).await;
    assert_eq!(rest, everything[10..]);
    let (posts, next) = page(&app, &user, "/posts?limit=3&skip=20").await;
    assert_eq!(ids(&posts), everything[20..]);
    let (after, none) = walk(&app, &user, &next.expect("full")).await;
    assert!(
        after.is_empty() && none.is_empty(),
        "an empty last page, no link"
    );

    // A search's pages repeat the search.
    let (found, links) = walk(&app, &user, "/posts?limit=4&search=ABC").await;
    assert_eq!(found, everything);
    for link in &links {
        assert!(
            params_of(link).contains(&("search".into(), "ABC".into())),
            "{link}"
        );
    }
    let (ones, _) = walk(&app, &user, "/posts?limit=2&search=post%201").await;
    let expected: Vec<i64> = app
        .list_posts(&user.token, &[("limit", "100"), ("search", "post 1")])
        .await
        .iter()
        .map(api_tests::id_of)
        .collect();
    assert_eq!(ones, expected, "Post 1 and Post 10 to 19");

    // Drafts: the owner's pages hold them, another person's do not.
    let draft = id_of(&app.new_post(&user, "Draft abc", false).await);
    let other = app.create_user_and_login().await;
    let (theirs, _) = walk(&app, &other, "/posts?limit=5").await;
    assert!(!theirs.contains(&draft));
    let (mine, _) = walk(&app, &user, "/posts?limit=5").await;
    assert_eq!(mine[0], draft);
}

async fn malformed_altered_and_foreign_cursors_are_422_naming_cursor(app: TestApp) {
    let user = app.create_user_and_login().await;
    for n in 0..4 {
        app.new_post(&user, &format!("Post {n}"), true).await;
    }
    let (_, next) = page(&app, &user, "/posts?limit=2&search=post").await;
    let next = next.expect("a full page");
    let cursor = params_of(&next)
        .into_iter()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v)
        .unwrap();
    let elsewhere = TestApp::spawn(Backend::Sqlite).await;
    let stranger = elsewhere.create_user_and_login().await;
    for n in 0..2 {
        elsewhere
            .new_post(&stranger, &format!("Post {n}"), true)
            .await;
    }
    let (_, foreign) = page(&elsewhere, &stranger, "/posts?limit=2&search=post").await;
    let foreign = params_of(&foreign.unwrap())
        .into_iter()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v)
        .unwrap();
    let flipped = {
        let mut bytes = cursor.clone().into_bytes();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    let cases = [
        ("garbage".to_owned(), "garbage"),
        (flipped, "one character altered"),
        (format!("{cursor}x"), "one character added"),
        (cursor[..cursor.len() - 1].to_owned(), "one character cut"),
        (foreign, "another deployment's cursor"),
        ("x".repeat(10_000), "10,000 characters"),
    ];
    for (value, case) in cases {
        let response = app
            .request(Method::GET, "/posts", Some(&user.token))
            .query(&[("cursor", value.as_str())])
            .send()
            .await
            .unwrap();
        check_invalid_fields(response, &["cursor"], case)
            .await
            .unwrap();
    }
    let with = |extra: &[(&str, &str)]| {
        let mut query = vec![("cursor", cursor.as_str())];
        query.extend_from_slice(extra);
        app.request(Method::GET, "/posts", Some(&user.token))
            .query(&query)
            .send()
    };
    check_invalid_fields(
        with(&[("skip", "1")]).await.unwrap(),
        &["cursor"],
        "with skip",
    )
    .await
    .unwrap();
}

async fn a_cursor_is_a_position_beside_which_limit_and_search_are_used(app: TestApp) {
    let user = app.create_user_and_login().await;
    for n in 0..8 {
        let kind = if n % 2 == 0 { "even" } else { "odd" };
        app.new_post(&user, &format!("Post {n} {kind}"), true).await;
    }
    let everything: Vec<i64> = ids(&app.list_posts(&user.token, &[("limit", "100")]).await);
    let odd: Vec<i64> = ids(&app.list_posts(&user.token, &[("search", "odd")]).await);
    let (first, next) = page(&app, &user, "/posts?limit=2&search=post").await;
    assert_eq!(ids(&first), everything[..2]);
    let cursor = params_of(&next.expect("a full page"))
        .into_iter()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v)
        .unwrap();
    let at = |extra: &[(&str, &str)]| {
        let mut query = vec![("cursor", cursor.as_str())];
        query.extend_from_slice(extra);
        let url = reqwest::Url::parse_with_params("http://x/posts", &query).unwrap();
        let path = format!("/posts?{}", url.query().unwrap_or_default());
        let (app, user) = (&app, &user);
        async move { page(app, user, &path).await }
    };
    let (alone, _) = at(&[]).await;
    assert_eq!(
        ids(&alone),
        everything[2..4],
        "the cursor's own limit and search"
    );
    let (bigger, link) = at(&[("limit", "5")]).await;
    assert_eq!(ids(&bigger), everything[2..7], "another page size");
    assert!(
        params_of(&link.expect("a full page")).contains(&("limit".into(), "5".into())),
        "the next link keeps the new size"
    );
    let (searched, _) = at(&[("search", "odd"), ("limit", "100")]).await;
    let after: Vec<i64> = odd
        .iter()
        .copied()
        .filter(|id| !everything[..2].contains(id))
        .collect();
    assert_eq!(ids(&searched), after, "another search, from the same place");
    for empty in [
        "/posts?cursor=&limit=2",
        "/posts?cursor=&limit=2&search=post",
    ] {
        let (from_start, _) = page(&app, &user, empty).await;
        assert_eq!(
            ids(&from_start),
            everything[..2],
            "an empty cursor is none: {empty}"
        );
    }
}

async fn paging_by_cursor_while_others_write_shows_every_surviving_post_once_in_order(
    app: TestApp,
) {
    let user = app.create_user_and_login().await;
    for n in 0..60 {
        app.new_post(&user, &format!("Old {n}"), true).await;
    }
    let start: Vec<i64> = ids(&app.list_posts(&user.token, &[("limit", "100")]).await);
    assert_eq!(start.len(), 60);
    // Every third of the old posts goes while the pages are read, and new ones arrive.
    let doomed: BTreeSet<i64> = start.iter().copied().skip(1).step_by(3).collect();
    let writer = {
        let (app, user, doomed) = (ApiClient::clone(&app), user.clone(), doomed.clone());
        tokio::spawn(async move {
            for (n, id) in doomed.iter().enumerate() {
                let deleted = app.delete(&format!("/posts/{id}"), Some(&user.token)).await;
                assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
                let body = json!({ "title": format!("New {n}"), "content": "x" });
                assert_eq!(
                    app.create_post(&user.token, &body).await.status(),
                    StatusCode::CREATED
                );
            }
        })
    };
    let (mut seen, mut next) = (Vec::new(), Some("/posts?limit=4".to_owned()));
    while let Some(url) = next {
        let (posts, link) = page(&app, &user, &url).await;
        seen.extend(ids(&posts));
        next = link;
        tokio::task::yield_now().await;
    }
    writer.await.expect("the writer finished");
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no post twice: {seen:?}");
    let survivors: Vec<i64> = start
        .iter()
        .copied()
        .filter(|id| !doomed.contains(id))
        .collect();
    let seen_old: Vec<i64> = seen
        .iter()
        .copied()
        .filter(|id| start.contains(id))
        .collect();
    let missed: Vec<&i64> = survivors.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missed.is_empty(),
        "every surviving post is seen: missed {missed:?}"
    );
    assert_eq!(
        seen_old
            .iter()
            .filter(|id| !doomed.contains(id))
            .copied()
            .collect::<Vec<_>>(),
        survivors,
        "in order"
    );
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first throughout");
}

on_both_backends!(
    full_pages_link_to_the_next_and_the_cursor_walks_every_post_once,
    malformed_altered_and_foreign_cursors_are_422_naming_cursor,
    a_cursor_is_a_position_beside_which_limit_and_search_are_used,
    paging_by_cursor_while_others_write_shows_every_surviving_post_once_in_order,
);

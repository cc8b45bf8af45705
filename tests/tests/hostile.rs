//! Hostile input: forged tokens, other people's things, malformed and oversized bodies,
//! SQL metacharacters, password guessing, timing, and what response headers give away.
//! Each attack gets a clear 4xx problem document and changes nothing that is stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_tests::{
    Failures, MAX_BODY_BYTES, Method, StatusCode, TestApp, Value, all_at_once, base64url,
    check_problem, expect_json, expect_problem, header, id_of, ids, json, now_seconds,
    on_both_backends, random_string, sign, sign_with_header, tally, unique_email,
};
use futures_util::StreamExt;
use jsonwebtoken::Algorithm;

/// Checks that `response` is a problem document with one of `allowed` statuses.
async fn check_one_of(
    response: api_tests::Response,
    allowed: &[u16],
    context: &str,
) -> Result<Value, String> {
    let status = response.status();
    if allowed.contains(&status.as_u16()) {
        check_problem(response, status, context).await
    } else {
        let body = response.text().await.unwrap_or_default();
        Err(format!(
            "{context}: expected one of {allowed:?}, got {status} with body {body}"
        ))
    }
}

/// Every operation on the post `id`: reading, replacing (with `change`), patching and deleting
/// it, voting on it and taking the vote back.
fn every_operation_on(id: i64, change: &Value) -> Vec<(Method, String, Option<Value>)> {
    let vote = |dir| Some(json!({ "post_id": id, "dir": dir }));
    vec![
        (Method::GET, format!("/posts/{id}"), None),
        (Method::PUT, format!("/posts/{id}"), Some(change.clone())),
        (Method::PATCH, format!("/posts/{id}"), Some(change.clone())),
        (Method::DELETE, format!("/posts/{id}"), None),
        (Method::POST, "/vote".into(), vote(1)),
        (Method::POST, "/vote".into(), vote(0)),
    ]
}

async fn forged_tokens_claiming_the_owner_change_nothing_on_any_operation(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let other = app.create_user_and_login().await;
    let published = id_of(&app.new_post(&owner, "Published", true).await);
    let draft = id_of(&app.new_post(&owner, "Draft", false).await);
    assert_eq!(
        app.vote(&owner.token, published, 1).await.status(),
        StatusCode::CREATED
    );
    let baseline = app.baseline().await;

    let now = now_seconds();
    let sid = app.claims_of(&owner.token)["sid"].clone();
    let claims = json!({ "sub": owner.id.to_string(), "sid": sid, "iat": now, "exp": now + 600 });
    // The forgery works when it is done right: so each case below fails for its one flaw.
    let genuine = sign(Algorithm::HS256, &claims, &app.secret);
    expect_json(
        app.get("/users/me", Some(&genuine)).await,
        StatusCode::OK,
        "a correctly signed token",
    )
    .await;

    let mut expired = claims.clone();
    expired["iat"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    let mut not_yet_valid = claims.clone();
    not_yet_valid["nbf"] = json!(now + 3600);
    // The other user's genuine token with its payload rewritten to name the owner.
    let mut parts = other.token.split('.');
    let (head, _, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let tampered = format!(
        "{head}.{}.{signature}",
        base64url(claims.to_string().as_bytes())
    );
    let tokens: Vec<(String, &str)> = vec![
        (
            format!(
                "Bearer {}.{}.",
                base64url(br#"{"alg":"none","typ":"JWT"}"#),
                base64url(claims.to_string().as_bytes())
            ),
            "alg none",
        ),
        (
            format!(
                "Bearer {}",
                sign_with_header(r#"{"alg":"RS256","typ":"JWT"}"#, &claims, &app.secret)
            ),
            "an RS256 header",
        ),
        (
            format!("Bearer {}", sign(Algorithm::HS512, &claims, &app.secret)),
            "HS512",
        ),
        (
            format!(
                "Bearer {}",
                sign(
                    Algorithm::HS256,
                    &claims,
                    "another secret that is at least 32 bytes"
                )
            ),
            "another secret",
        ),
        (
            format!("Bearer {}", sign(Algorithm::HS256, &expired, &app.secret)),
            "an expired token",
        ),
        (
            format!(
                "Bearer {}",
                sign(Algorithm::HS256, &not_yet_valid, &app.secret)
            ),
            "a token not yet valid",
        ),
        (format!("Bearer {tampered}"), "a tampered payload"),
        (genuine.clone(), "the token without its scheme"),
        (format!("Basic {genuine}"), "the Basic scheme"),
        (format!("Token {genuine}"), "an unknown scheme"),
        ("Bearer ".to_owned(), "an empty token"),
        ("Bearer !!!.garbage.###".to_owned(), "garbage"),
    ];
    let change = json!({ "title": "Taken over", "content": "pwned" });
    let mut operations: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/users/me".into(), None),
        (Method::GET, format!("/users/{}", owner.id), None),
        (Method::GET, "/posts".into(), None),
        (Method::POST, "/posts".into(), Some(change.clone())),
    ];
    operations.extend(every_operation_on(draft, &change));
    operations.extend(every_operation_on(published, &change));
    operations.push((Method::DELETE, "/users/me".into(), None));
    let mut failures = Failures::new();
    for (authorization, case) in &tokens {
        for (method, path, body) in &operations {
            let mut request = app
                .client
                .request(method.clone(), app.url(path))
                .header("authorization", authorization);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.expect("the request completes");
            let context = format!("{method} {path} with {case}");
            failures.check(check_problem(response, StatusCode::UNAUTHORIZED, &context).await);
        }
    }
    failures.assert_none();
    baseline
        .assert_unchanged("no forged token changed anything")
        .await;
}

async fn no_response_reveals_another_users_draft_or_any_password_hash(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let stranger = app.create_user_and_login().await;
    let marker = random_string(20);
    let draft_title = format!("draft title {marker}");
    let draft_content = format!("draft content {marker}");
    let response = app
        .create_post(
            &owner.token,
            &json!({ "title": draft_title, "content": draft_content, "published": false }),
        )
        .await;
    let draft = id_of(&expect_json(response, StatusCode::CREATED, "creating the draft").await);
    let published = id_of(&app.new_post(&owner, "Out in the open", true).await);
    for n in 0..3 {
        app.new_post(&stranger, &format!("stranger's {n}"), true)
            .await;
    }

    let edit = json!({ "title": "x", "content": "y" });
    let mut tour: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/posts?limit=100".into(), None),
        (Method::GET, "/posts?limit=1&skip=0".into(), None),
        (Method::GET, "/posts?limit=1&skip=1".into(), None),
        (Method::GET, "/posts?limit=1&skip=2".into(), None),
        (Method::GET, "/posts?limit=1&skip=3".into(), None),
        (Method::GET, "/posts?limit=1&skip=4".into(), None),
        (Method::GET, format!("/posts?search={marker}"), None),
        (Method::GET, "/posts?search=draft".into(), None),
    ];
    tour.extend(every_operation_on(draft, &edit));
    tour.extend(every_operation_on(published, &edit));
    tour.extend([
        (Method::GET, format!("/users/{}", owner.id), None),
        (Method::GET, "/users/me".into(), None),
        (Method::GET, "/metrics".into(), None),
    ]);
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut record = |context: String, response_headers: String, body: String| {
        seen.push((context, format!("{response_headers}\n{body}")));
    };
    let collect = |response: api_tests::Response| async move {
        let headers = format!("{:?}", response.headers());
        let status = response.status();
        (status, headers, response.text().await.unwrap_or_default())
    };
    for (method, path, body) in &tour {
        let mut request = app.request(method.clone(), path, Some(&stranger.token));
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, headers, text) =
            collect(request.send().await.expect("the request completes")).await;
        assert!(
            !status.is_server_error(),
            "{method} {path}: {status} {text}"
        );
        record(
            format!("stranger: {method} {path} ({status})"),
            headers,
            text,
        );
    }
    // Registration, login and the caller's own account, for both people.
    for (who, user) in [("owner", &owner), ("stranger", &stranger)] {
        let (_, headers, text) = collect(app.login_json(&user.email, &user.password).await).await;
        record(format!("{who}: a login"), headers, text);
        let (_, headers, text) = collect(app.login_json(&user.email, "wrong password").await).await;
        record(format!("{who}: a failed login"), headers, text);
        let (_, headers, text) = collect(app.register(&user.email, &user.password).await).await;
        record(format!("{who}: registering again"), headers, text);
        let (_, headers, text) = collect(app.get("/users/me", Some(&user.token)).await).await;
        record(format!("{who}: GET /users/me"), headers, text);
    }
    let fresh = unique_email();
    let (_, headers, text) = collect(app.register(&fresh, "a fresh password").await).await;
    record("a registration".into(), headers, text);
    let (_, headers, text) = collect(app.get("/openapi.json", None).await).await;
    record("the spec".into(), headers, text);

    let forbidden = [
        draft_title.as_str(),
        draft_content.as_str(),
        marker.as_str(),
        "$2a$",
        "$2b$",
        "$2y$",
        "password_hash",
        owner.password.as_str(),
        stranger.password.as_str(),
    ];
    let mut failures = Failures::new();
    for (context, text) in &seen {
        for needle in forbidden {
            if text.contains(needle) {
                failures.check::<()>(Err(format!("{context} contains {needle:?}: {text}")));
            }
        }
    }
    failures.assert_none();
    // The owner still sees the draft: the markers were real.
    assert_eq!(
        app.fetch_post(&owner.token, draft).await["title"],
        draft_title
    );
}

/// `depth` nested JSON arrays.
fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// `depth` nested JSON objects, `{"a":{"a":...}}`.
fn nested_objects(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

async fn hostile_bodies_are_4xx_problems_and_change_nothing(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let post = id_of(&app.new_post(&owner, "Target", true).await);
    let baseline = app.baseline().await;
    let token = Some(owner.token.as_str());
    const JSON: Option<&str> = Some("application/json");
    const BAD: &[u16] = &[400, 422];
    let deep_arrays = nested_arrays(10_000);
    let deep_objects = nested_objects(10_000);

    type Case<'a> = (
        &'a str,
        Method,
        String,
        Option<&'a str>,
        Option<&'a str>,
        Vec<u8>,
        &'a [u16],
    );
    let post_path = format!("/posts/{post}");
    let mut cases: Vec<Case> = vec![
        (
            "10,000 nested arrays",
            Method::POST,
            "/posts".into(),
            token,
            JSON,
            deep_arrays.clone().into_bytes(),
            BAD,
        ),
        (
            "a title of 10,000 nested arrays",
            Method::POST,
            "/posts".into(),
            token,
            JSON,
            format!(r#"{{"title":{deep_arrays},"content":"c"}}"#).into_bytes(),
            BAD,
        ),
        (
            "an unknown field of 10,000 nested objects",
            Method::POST,
            "/posts".into(),
            token,
            JSON,
            format!(r#"{{"title":"t","content":"c","extra":{deep_objects}}}"#).into_bytes(),
            BAD,
        ),
        (
            "10,000 nested objects as a login",
            Method::POST,
            "/login".into(),
            None,
            JSON,
            deep_objects.clone().into_bytes(),
            BAD,
        ),
        (
            "10,000 nested arrays as a registration",
            Method::POST,
            "/users".into(),
            None,
            JSON,
            deep_arrays.clone().into_bytes(),
            BAD,
        ),
        (
            "published as 1e400",
            Method::POST,
            "/posts".into(),
            token,
            JSON,
            br#"{"title":"t","content":"c","published":1e400}"#.to_vec(),
            BAD,
        ),
        (
            "a title of 1e400",
            Method::PATCH,
            post_path.clone(),
            token,
            JSON,
            br#"{"title":1e400}"#.to_vec(),
            BAD,
        ),
        (
            "a NUL character in a title",
            Method::POST,
            "/posts".into(),
            token,
            JSON,
            br#"{"title":"a\u0000b","content":"c"}"#.to_vec(),
            &[422],
        ),
        (
            "a NUL character in a content",
            Method::POST,
            "/posts".into(),
            token,
            JSON,
            br#"{"title":"t","content":"a\u0000b"}"#.to_vec(),
            &[422],
        ),
        (
            "a NUL character in a patched content",
            Method::PATCH,
            post_path.clone(),
            token,
            JSON,
            br#"{"content":"\u0000"}"#.to_vec(),
            &[422],
        ),
        (
            "a raw NUL byte inside a JSON string",
            Method::POST,
            "/posts".into(),
            token,
            JSON,
            b"{\"title\":\"a\x00b\",\"content\":\"c\"}".to_vec(),
            BAD,
        ),
        (
            "a NUL character in an email",
            Method::POST,
            "/users".into(),
            None,
            JSON,
            br#"{"email":"nul\u0000@example.io","password":"correct horse"}"#.to_vec(),
            &[422],
        ),
        (
            "a NUL character in a login email",
            Method::POST,
            "/login".into(),
            None,
            JSON,
            br#"{"email":"a\u0000@example.io","password":"correct horse"}"#.to_vec(),
            &[401, 422],
        ),
        (
            "invalid UTF-8 in a title",
            Method::POST,
            "/posts".into(),
            token,
            JSON,
            b"{\"title\":\"\xff\xfe\",\"content\":\"c\"}".to_vec(),
            BAD,
        ),
        (
            "an overlong UTF-8 slash in a content",
            Method::PUT,
            post_path.clone(),
            token,
            JSON,
            b"{\"title\":\"t\",\"content\":\"\xc0\xaf\"}".to_vec(),
            BAD,
        ),
        (
            "invalid UTF-8 in an email",
            Method::POST,
            "/users".into(),
            None,
            JSON,
            b"{\"email\":\"\xed\xa0\x80@example.io\",\"password\":\"correct horse\"}".to_vec(),
            BAD,
        ),
        (
            "a lone surrogate escape in a title",
            Method::POST,
            "/posts".into(),
            token,
            JSON,
            br#"{"title":"\ud800","content":"c"}"#.to_vec(),
            BAD,
        ),
        (
            "invalid UTF-8 in a login form",
            Method::POST,
            "/login".into(),
            None,
            Some("application/x-www-form-urlencoded"),
            b"username=%FF%FE&password=correct+horse".to_vec(),
            &[400, 401, 422],
        ),
        (
            "a JSON array as a post",
            Method::POST,
            "/posts".into(),
            token,
            JSON,
            b"[]".to_vec(),
            BAD,
        ),
        (
            "a JSON string as a vote",
            Method::POST,
            "/vote".into(),
            token,
            JSON,
            br#""vote""#.to_vec(),
            BAD,
        ),
        (
            "JSON null as a registration",
            Method::POST,
            "/users".into(),
            None,
            JSON,
            b"null".to_vec(),
            BAD,
        ),
        (
            "a post with no content type",
            Method::POST,
            "/posts".into(),
            token,
            None,
            br#"{"title":"t","content":"c"}"#.to_vec(),
            &[400, 415],
        ),
        (
            "a post as XML",
            Method::POST,
            "/posts".into(),
            token,
            Some("application/xml"),
            b"<post><title>t</title><content>c</content></post>".to_vec(),
            &[415],
        ),
        (
            "a post as a form",
            Method::POST,
            "/posts".into(),
            token,
            Some("application/x-www-form-urlencoded"),
            b"title=t&content=c".to_vec(),
            &[415],
        ),
        (
            "a vote as multipart",
            Method::POST,
            "/vote".into(),
            token,
            Some("multipart/form-data; boundary=x"),
            format!(
                "--x\r\nContent-Disposition: form-data; name=\"post_id\"\r\n\r\n{post}\r\n--x--\r\n"
            )
            .into_bytes(),
            &[415],
        ),
        (
            "a registration as a form",
            Method::POST,
            "/users".into(),
            None,
            Some("application/x-www-form-urlencoded"),
            b"email=form%40example.io&password=correct+horse".to_vec(),
            &[415],
        ),
    ];
    for (label, post_id) in [
        ("beyond 64 bits", "18446744073709551616"),
        ("beyond i64", "9223372036854775808"),
        ("below i64", "-9223372036854775809"),
        ("1e400", "1e400"),
        ("a fraction", "1.5"),
        ("negative", "-1"),
        ("zero", "0"),
        ("a string", r#""1""#),
    ] {
        cases.push((
            label,
            Method::POST,
            "/vote".into(),
            token,
            JSON,
            format!(r#"{{"post_id":{post_id},"dir":1}}"#).into_bytes(),
            &[400, 404, 422],
        ));
    }
    for dir in ["18446744073709551616", "1e400", "-1", "2", "0.5", "true"] {
        cases.push((
            "an odd dir",
            Method::POST,
            "/vote".into(),
            token,
            JSON,
            format!(r#"{{"post_id":{post},"dir":{dir}}}"#).into_bytes(),
            BAD,
        ));
    }

    let mut failures = Failures::new();
    for (label, method, path, token, content_type, body, allowed) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        let response = app
            .send_body(method.clone(), &path, token, content_type, body)
            .await;
        let context = format!("{method} {path} with {label} ({shown:?})");
        failures.check(check_one_of(response, allowed, &context).await);
    }
    failures.assert_none();
    baseline
        .assert_unchanged("no hostile body changed anything")
        .await;
}

async fn hostile_ids_and_queries_are_4xx_problems_and_change_nothing(app: TestApp) {
    let owner = app.create_user_and_login().await;
    app.new_post(&owner, "Target", true).await;
    let baseline = app.baseline().await;
    let edit = json!({ "title": "t", "content": "c" });
    let mut failures = Failures::new();
    for id in [
        "18446744073709551616",
        "9223372036854775808",
        "-9223372036854775809",
        "-1",
        "0",
        "1e3",
        "0x1",
        "1.0",
        "%00",
        "1%00",
        "%FF",
        "1;DROP%20TABLE%20posts",
        "1%20OR%201=1",
    ] {
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            let mut request =
                app.request(method.clone(), &format!("/posts/{id}"), Some(&owner.token));
            if method == Method::PUT || method == Method::PATCH {
                request = request.json(&edit);
            }
            let response = request.send().await.expect("the request completes");
            let context = format!("{method} /posts/{id}");
            failures.check(check_one_of(response, &[400, 404, 422], &context).await);
        }
        let response = app.get(&format!("/users/{id}"), Some(&owner.token)).await;
        let context = format!("GET /users/{id}");
        failures.check(check_one_of(response, &[400, 404, 422], &context).await);
    }
    for query in [
        "limit=99999999999999999999",
        "limit=-1",
        "limit=1e3",
        "limit=%00",
        "skip=99999999999999999999",
        "skip=-9223372036854775808",
        "skip=1.5",
    ] {
        let response = app
            .get(&format!("/posts?{query}"), Some(&owner.token))
            .await;
        let context = format!("GET /posts?{query}");
        failures.check(check_one_of(response, &[400, 422], &context).await);
    }
    // Extreme but valid queries: an empty page, or a 422 for a search the service will not
    // run; never a server error.
    for query in [
        "skip=9223372036854775807".to_owned(),
        "search=%00".to_owned(),
        "search=a%00b".to_owned(),
        // Invalid UTF-8 in a query may be refused or read with replacement characters.
        "search=%FF".to_owned(),
        "search=a%C0%AF".to_owned(),
        // Each wildcard is escaped for LIKE, doubling the pattern past SQLite's 50,000 bytes.
        format!("search={}", "%25".repeat(20_000)),
        format!("search={}", "_".repeat(60_000)),
    ] {
        let shown = &query[..query.len().min(40)];
        let context = format!("GET /posts?{shown}… ({} bytes)", query.len());
        let response = app
            .request(Method::GET, &format!("/posts?{query}"), Some(&owner.token))
            .send()
            .await
            .unwrap_or_else(|err| panic!("{context} did not complete: {}", err.without_url()));
        let status = response.status();
        if status == StatusCode::OK {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if body != json!([]) {
                failures.check::<()>(Err(format!("{context}: expected [], got {body}")));
            }
        } else {
            failures.check(check_one_of(response, &[400, 414, 422, 431], &context).await);
        }
    }
    failures.assert_none();
    baseline
        .assert_unchanged("no hostile id or query changed anything")
        .await;
}

async fn a_body_declared_over_one_mebibyte_is_refused_before_it_is_sent(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let baseline = app.baseline().await;
    let mut failures = Failures::new();
    for (path, authorization) in [
        (
            "/posts",
            format!("authorization: Bearer {}\r\n", owner.token),
        ),
        ("/users", String::new()),
        ("/login", String::new()),
    ] {
        // Only the first kibibyte is ever sent: an answer proves the rest was not awaited.
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             {authorization}content-length: {}\r\n\r\n",
            app.socket_address(),
            MAX_BODY_BYTES + 1
        );
        let start = b"{\"title\":\"t\",\"content\":\"";
        let mut body = start.to_vec();
        body.resize(1024, b'x');
        let response = tokio::time::timeout(Duration::from_secs(15), app.raw_request(&head, &body))
            .await
            .unwrap_or_else(|_| {
                panic!("POST {path}: no answer within 15 s; the server waited for the body")
            });
        failures.check(response.check_problem(413, &format!("POST {path} declaring 1 MiB + 1")));
    }
    failures.assert_none();
    baseline.assert_unchanged("nothing was stored").await;
}

async fn a_chunked_body_is_cut_off_one_byte_past_one_mebibyte(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let baseline = app.baseline().await;
    let head = format!(
        "POST /posts HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         authorization: Bearer {}\r\ntransfer-encoding: chunked\r\n\r\n",
        app.socket_address(),
        owner.token
    );
    // 1 MiB + 1 byte of a JSON document that never ends, in 64 KiB chunks, with no final
    // chunk: the server must answer once it has one byte too many, not wait for the end.
    let mut data = br#"{"title":"t","content":""#.to_vec();
    data.resize(MAX_BODY_BYTES + 1, b'x');
    let mut body = Vec::new();
    for chunk in data.chunks(64 * 1024) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    let response = tokio::time::timeout(Duration::from_secs(15), app.raw_request(&head, &body))
        .await
        .expect("an answer within 15 s: the server waited for the end of the body");
    response
        .check_problem(413, "a chunked body of 1 MiB + 1 byte")
        .unwrap_or_else(|failure| panic!("{failure}"));
    baseline.assert_unchanged("nothing was stored").await;
}

async fn an_http2_body_without_a_length_is_cut_off_one_byte_past_one_mebibyte(app: TestApp) {
    let baseline = app.baseline().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("an HTTP/2 client");
    // 100 MB of a JSON document that never ends, from a stream, so that no length is sent;
    // `sent` counts what the server has taken so far.
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = sent.clone();
    let chunk = vec![b'x'; 64 * 1024];
    let head = br#"{"email":"a@example.org","password":""#.to_vec();
    let chunks = std::iter::once(head).chain(std::iter::repeat_n(chunk, 1600));
    let body = futures_util::stream::iter(chunks).map(move |chunk| {
        counted.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
        Ok::<_, std::io::Error>(chunk)
    });
    let response = tokio::time::timeout(
        Duration::from_secs(15),
        client
            .post(app.url("/login"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    )
    .await
    .expect("an answer within 15 s: the server read on past the limit")
    .expect("an HTTP/2 response");
    let taken = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    check_problem(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "100 MB over HTTP/2",
    )
    .await
    .unwrap_or_else(|failure| panic!("{failure}"));
    // The limit, plus what HTTP/2's flow-control windows let the client send ahead.
    assert!(
        taken < 8 * MAX_BODY_BYTES,
        "the server took {taken} bytes of the body before answering"
    );
    baseline.assert_unchanged("nothing was stored").await;
}

async fn a_body_of_exactly_one_mebibyte_is_accepted_and_one_byte_more_is_413(app: TestApp) {
    let owner = app.create_user_and_login().await;
    let post_padded = |size: usize| {
        let mut body = br#"{"title":"Exactly the limit","content":"c"}"#.to_vec();
        body.resize(size, b' ');
        let json = Some("application/json");
        app.send_body(Method::POST, "/posts", Some(&owner.token), json, body)
    };
    let response = post_padded(MAX_BODY_BYTES).await;
    expect_json(response, StatusCode::CREATED, "a body of exactly 1 MiB").await;
    let response = post_padded(MAX_BODY_BYTES + 1).await;
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "1 MiB + 1 byte").await;
    assert_eq!(
        app.list_posts(&owner.token, &[]).await.len(),
        1,
        "only the first was stored"
    );
}

async fn search_with_sql_metacharacters_matches_titles_literally(app: TestApp) {
    let user = app.create_user_and_login().await;
    let titles = [
        "' OR 1=1 --",
        "it's mine",
        "O'Brien's 100% proof",
        "a_b and c",
        r"back\slash",
        "semi; colon",
        "say \"cheese\"",
        "/* comment */",
        "1=1 is true",
        "plain words",
        "percent %% twice",
        r"\%_ all three",
    ];
    let mut posts = Vec::new();
    for title in titles {
        posts.push((id_of(&app.new_post(&user, title, true).await), title));
    }
    let searches = [
        "' OR 1=1 --",
        "' OR '1'='1",
        "'",
        "''",
        "1=1",
        "--",
        "%",
        "%%",
        "_",
        r"\",
        r"\%",
        r"\%_",
        "\"",
        ";",
        "/*",
        "'; DROP TABLE posts; --",
        "%' OR '1'='1",
        "O'BRIEN",
    ];
    let mut failures = Failures::new();
    for search in searches {
        let needle = search.to_lowercase();
        // Newest first: the reverse of creation.
        let expected: Vec<i64> = posts
            .iter()
            .rev()
            .filter(|(_, title)| title.to_lowercase().contains(&needle))
            .map(|(id, _)| *id)
            .collect();
        let found = ids(&app
            .list_posts(&user.token, &[("search", search), ("limit", "100")])
            .await);
        if found != expected {
            failures.check::<()>(Err(format!(
                "search {search:?}: expected {expected:?}, got {found:?}"
            )));
        }
    }
    failures.assert_none();
    assert_eq!(
        app.list_posts(&user.token, &[("limit", "100")]).await.len(),
        titles.len(),
        "every post is still there"
    );
}

async fn concurrent_guesses_through_two_instances_check_at_most_the_limit(app: TestApp) {
    let app = Arc::new(app);
    let sibling = Arc::new(app.spawn_sibling().await);
    let email = unique_email();
    app.create_user(&email, "the right password").await;

    let guesses = (0..20).map(|n| {
        let instance = if n % 2 == 0 {
            Arc::clone(&app)
        } else {
            Arc::clone(&sibling)
        };
        let email = email.clone();
        async move {
            instance
                .login_json(&email, &format!("guess number {n}"))
                .await
                .status()
        }
    });
    let mut statuses = all_at_once(guesses).await;
    // Then one at a time, alternating instances, until the account is locked.
    for n in 0..10 {
        let instance = if n % 2 == 0 { &app } else { &sibling };
        let status = instance
            .login_json(&email, &format!("late guess {n}"))
            .await
            .status();
        statuses.push(status);
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    let counts = tally(&statuses);
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(s)),
        "only 401 and 429: {counts:?}"
    );
    assert_eq!(
        counts.get(&401).copied().unwrap_or(0),
        5,
        "exactly five guesses were checked across both instances: {counts:?}"
    );
    for (name, instance) in [("the first", &app), ("the second", &sibling)] {
        let response = instance.login_json(&email, "the right password").await;
        expect_problem(
            response,
            StatusCode::TOO_MANY_REQUESTS,
            &format!("the right password on {name} instance"),
        )
        .await;
    }
}

/// The median of `samples`.
fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    let mid = samples.len() / 2;
    if samples.len().is_multiple_of(2) {
        (samples[mid - 1] + samples[mid]) / 2
    } else {
        samples[mid]
    }
}

async fn unknown_emails_and_wrong_passwords_take_the_same_time(app: TestApp) {
    // A cost at which bcrypt, not the machine's noise, is most of a login.
    let app = TestApp::spawn_with(app.backend, |settings| {
        settings.bcrypt_cost = 9;
        // Up to 122 failures from one address: neither limit may interfere.
        settings.login_max_failures = 0;
        settings.login_max_failures_per_address = 0;
    })
    .await;
    let known = unique_email();
    app.create_user(&known, "the right password").await;
    let unknown = unique_email();
    let attempt = |email: String| {
        let app = &app;
        async move {
            let started = Instant::now();
            let response = app.login_json(&email, "a wrong password").await;
            let elapsed = started.elapsed();
            expect_problem(response, StatusCode::UNAUTHORIZED, "a failed login").await;
            elapsed
        }
    };
    // Warm up both paths once (connections, caches) before measuring.
    attempt(known.clone()).await;
    attempt(unknown.clone()).await;

    // Interleaved (ABBA) so that drifts in the machine's load hit both kinds alike. A busy
    // machine may spoil one round; a real difference shows in every round.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let (mut wrong_password, mut unknown_email) = (Vec::new(), Vec::new());
        for n in 0..20 {
            if n % 2 == 0 {
                wrong_password.push(attempt(known.clone()).await);
                unknown_email.push(attempt(unknown.clone()).await);
            } else {
                unknown_email.push(attempt(unknown.clone()).await);
                wrong_password.push(attempt(known.clone()).await);
            }
        }
        let (a, b) = (median(&mut wrong_password), median(&mut unknown_email));
        let ratio = a.as_secs_f64().max(b.as_secs_f64()) / a.as_secs_f64().min(b.as_secs_f64());
        rounds.push(format!(
            "wrong password {a:?}, unknown email {b:?} (ratio {ratio:.3})"
        ));
        if ratio <= 1.10 {
            eprintln!("login timing: {}", rounds.join("; "));
            return;
        }
    }
    panic!(
        "the medians differ by more than 10% in every round: {}",
        rounds.join("; ")
    );
}

async fn every_response_says_nosniff_and_names_no_framework_or_version(app: TestApp) {
    let user = app.create_user_and_login().await;
    let post = id_of(&app.new_post(&user, "Headers", true).await);
    let other = app.create_user_and_login().await;
    let mut responses: Vec<(String, api_tests::Response)> = Vec::new();
    responses.push(("GET /".into(), app.get("/", None).await));
    responses.push(("GET /health".into(), app.get("/health", None).await));
    responses.push(("GET /docs".into(), app.get("/docs", None).await));
    responses.push((
        "GET /openapi.json".into(),
        app.get("/openapi.json", None).await,
    ));
    responses.push((
        "POST /users".into(),
        app.register(&unique_email(), "correct horse").await,
    ));
    responses.push((
        "POST /login".into(),
        app.login_json(&user.email, &user.password).await,
    ));
    responses.push((
        "GET /posts".into(),
        app.get("/posts", Some(&user.token)).await,
    ));
    responses.push((
        "PUT someone else's post (403)".into(),
        app.put(
            &format!("/posts/{post}"),
            Some(&other.token),
            &json!({ "title": "x", "content": "y" }),
        )
        .await,
    ));
    responses.push((
        "DELETE /posts/{id} (204)".into(),
        app.delete(&format!("/posts/{post}"), Some(&user.token))
            .await,
    ));
    responses.push(("401".into(), app.get("/users/me", None).await));
    responses.push(("404 route".into(), app.get("/nowhere", None).await));
    responses.push((
        "405".into(),
        app.request(Method::DELETE, "/health", None)
            .send()
            .await
            .expect("the request completes"),
    ));
    responses.push((
        "409".into(),
        app.register(&user.email, "correct horse").await,
    ));
    responses.push((
        "415".into(),
        app.send_body(
            Method::POST,
            "/users",
            None,
            Some("text/plain"),
            b"hello".to_vec(),
        )
        .await,
    ));
    responses.push((
        "422".into(),
        app.post("/users", None, &json!({ "email": 1 })).await,
    ));
    responses.push((
        "413".into(),
        app.send_body(
            Method::POST,
            "/users",
            None,
            Some("application/json"),
            vec![b' '; MAX_BODY_BYTES + 1],
        )
        .await,
    ));
    responses.push((
        "a CORS preflight".into(),
        app.request(Method::OPTIONS, "/posts", None)
            .header("origin", "https://frontend.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .expect("the preflight completes"),
    ));

    let mut failures = Failures::new();
    for (context, response) in responses {
        let nosniff = header(&response, "x-content-type-options");
        if nosniff.as_deref() != Some("nosniff") {
            failures.check::<()>(Err(format!(
                "{context}: X-Content-Type-Options is {nosniff:?}"
            )));
        }
        for banner in ["server", "x-powered-by", "x-runtime", "x-version", "via"] {
            if let Some(value) = header(&response, banner) {
                failures.check::<()>(Err(format!("{context}: a {banner} header: {value:?}")));
            }
        }
        let is_page = context.contains("/docs") || context.contains("openapi");
        let body = response.text().await.unwrap_or_default().to_lowercase();
        for framework in [
            "poem", "hyper", "sea-orm", "sea_orm", "sqlx", "tokio", "rustc",
        ] {
            if !is_page && body.contains(framework) {
                failures.check::<()>(Err(format!(
                    "{context}: the body names {framework}: {body}"
                )));
            }
        }
    }
    failures.assert_none();
}

async fn in_production_only_configured_origins_may_read_responses(app: TestApp) {
    let mut failures = Failures::new();
    for (configured, allowed) in [
        (None, None),
        (
            Some(vec!["https://allowed.example".to_owned()]),
            Some("https://allowed.example"),
        ),
    ] {
        let app = TestApp::spawn_with(app.backend, |settings| {
            api_tests::production(settings);
            settings.cors_allowed_origins = configured.clone();
        })
        .await;
        let user = app.create_user_and_login().await;
        let origins = [
            "https://evil.example",
            "null",
            "https://allowed.example.evil.example",
        ]
        .into_iter()
        .chain(allowed);
        for origin in origins {
            let response = app
                .request(Method::GET, "/posts", Some(&user.token))
                .header("origin", origin)
                .send()
                .await
                .expect("the request completes");
            let allow_origin = header(&response, "access-control-allow-origin");
            let credentials = header(&response, "access-control-allow-credentials");
            let context = format!("production with {configured:?}: GET from {origin}");
            let expected = (Some(origin) == allowed).then(|| origin.to_owned());
            if allow_origin != expected {
                failures.check::<()>(Err(format!(
                    "{context}: Access-Control-Allow-Origin is {allow_origin:?}, expected {expected:?}"
                )));
            }
            if expected.is_none() && credentials.is_some() {
                failures.check::<()>(Err(format!(
                    "{context}: Access-Control-Allow-Credentials is {credentials:?}"
                )));
            }
            let preflight = app
                .request(Method::OPTIONS, "/posts", None)
                .header("origin", origin)
                .header("access-control-request-method", "DELETE")
                .send()
                .await
                .expect("the preflight completes");
            let allow_origin = header(&preflight, "access-control-allow-origin");
            if allow_origin != expected {
                failures.check::<()>(Err(format!(
                    "{context} (preflight): Access-Control-Allow-Origin is {allow_origin:?}"
                )));
            }
        }
    }
    failures.assert_none();
}

on_both_backends!(
    forged_tokens_claiming_the_owner_change_nothing_on_any_operation,
    no_response_reveals_another_users_draft_or_any_password_hash,
    hostile_bodies_are_4xx_problems_and_change_nothing,
    hostile_ids_and_queries_are_4xx_problems_and_change_nothing,
    a_body_declared_over_one_mebibyte_is_refused_before_it_is_sent,
    a_chunked_body_is_cut_off_one_byte_past_one_mebibyte,
    an_http2_body_without_a_length_is_cut_off_one_byte_past_one_mebibyte,
    a_body_of_exactly_one_mebibyte_is_accepted_and_one_byte_more_is_413,
    search_with_sql_metacharacters_matches_titles_literally,
    concurrent_guesses_through_two_instances_check_at_most_the_limit,
    unknown_emails_and_wrong_passwords_take_the_same_time,
    every_response_says_nosniff_and_names_no_framework_or_version,
    in_production_only_configured_origins_may_read_responses,
);

//! CORS as browsers meet it: a same-origin request (Swagger UI's "Try it out" on `/docs`,
//! which sends `Origin` on a POST) is never refused; a request from another origin meets the
//! configured list; behind a trusted proxy, the service's own origin is the one the proxy
//! was asked for; every response says `Vary: Origin`.

use std::net::IpAddr;

use api_tests::*;

/// The origin production allows in these tests (a front end's dev server).
const LISTED: &str = "http://localhost:5173";

async fn production(app: &TestApp, trusted_proxies: &[&str]) -> TestApp {
    let proxies: Vec<String> = trusted_proxies.iter().map(|p| (*p).to_owned()).collect();
    TestApp::spawn_with(app.backend, |settings| {
        api_tests::production(settings);
        settings.cors_allowed_origins = Some(vec![LISTED.to_owned()]);
        settings.trusted_proxies = proxies;
    })
    .await
}

/// `POST /users` for a new account, with the given extra headers, through `client`.
async fn register_with(
    app: &TestApp,
    client: &reqwest::Client,
    headers: &[(&str, &str)],
) -> (Response, String) {
    let email = unique_email();
    let mut request = client.post(app.url("/users")).json(&json!({
        "email": email,
        "password": "correct horse battery",
    }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    (request.send().await.expect("the request completes"), email)
}

/// Whether `email` was registered: its owner can log in.
async fn registered(app: &TestApp, email: &str) -> bool {
    app.login_json(email, "correct horse battery")
        .await
        .status()
        == StatusCode::OK
}

fn says_vary_origin(response: &Response) -> bool {
    response
        .headers()
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|name| name.trim().eq_ignore_ascii_case("origin"))
}

/// A client connecting from another loopback address than 127.0.0.1.
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<IpAddr>().expect("an address"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client builds")
}

async fn in_production_a_same_origin_post_reaches_the_endpoint(app: TestApp) {
    let app = production(&app, &[]).await;
    let own = app.address.clone();
    let (response, email) = register_with(&app, &app.client, &[("origin", &own)]).await;
    expect_json(
        response,
        StatusCode::CREATED,
        "POST /users from the own origin",
    )
    .await;
    assert!(registered(&app, &email).await);

    // Its errors are the endpoint's own problem documents, not a CORS refusal.
    let response = app
        .client
        .post(app.url("/users"))
        .header("origin", &own)
        .json(&json!({ "email": "not an email", "password": "correct horse battery" }))
        .send()
        .await
        .expect("the request completes");
    expect_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an invalid POST /users from the own origin",
    )
    .await;
}

async fn in_production_a_listed_origin_gets_its_allow_origin(app: TestApp) {
    let app = production(&app, &[]).await;
    let (response, email) = register_with(&app, &app.client, &[("origin", LISTED)]).await;
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some(LISTED)
    );
    expect_json(
        response,
        StatusCode::CREATED,
        "POST /users from the listed origin",
    )
    .await;
    assert!(registered(&app, &email).await);

    let preflight = app
        .request(Method::OPTIONS, "/users", None)
        .header("origin", LISTED)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("the preflight completes");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        header(&preflight, "access-control-allow-origin").as_deref(),
        Some(LISTED)
    );
}

async fn in_production_an_unlisted_origin_is_refused(app: TestApp) {
    let app = production(&app, &[]).await;
    let port = app.address.rsplit(':').next().expect("a port").to_owned();
    let other_port = if port == "8000" { "8001" } else { "8000" };
    let foreign = [
        "https://evil.example".to_owned(),
        "null".to_owned(),
        // The same host, another port or scheme: another origin.
        format!("http://127.0.0.1:{other_port}"),
        format!("https://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}/users"),
    ];
    for origin in &foreign {
        let (response, email) = register_with(&app, &app.client, &[("origin", origin)]).await;
        assert_eq!(header(&response, "access-control-allow-origin"), None);
        expect_problem(
            response,
            StatusCode::FORBIDDEN,
            &format!("POST from {origin}"),
        )
        .await;
        assert!(
            !registered(&app, &email).await,
            "{origin} created an account"
        );

        let preflight = app
            .request(Method::OPTIONS, "/users", None)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .expect("the preflight completes");
        assert_eq!(
            header(&preflight, "access-control-allow-origin"),
            None,
            "the preflight from {origin}"
        );
        expect_problem(
            preflight,
            StatusCode::FORBIDDEN,
            &format!("preflight from {origin}"),
        )
        .await;
    }
    // A same-origin request never sends a preflight; one that claims to is answered by the
    // list like any other.
    let preflight = app
        .request(Method::OPTIONS, "/users", None)
        .header("origin", &app.address)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("the preflight completes");
    assert_eq!(preflight.status(), StatusCode::FORBIDDEN);
}

async fn behind_a_trusted_proxy_the_forwarded_origin_is_the_own_origin(app: TestApp) {
    let app = production(&app, &["127.0.0.1"]).await;
    let proxied = [
        ("origin", "https://api.example.org"),
        ("host", "api.example.org"),
        ("x-forwarded-proto", "https"),
    ];
    let (response, email) = register_with(&app, &app.client, &proxied).await;
    expect_json(
        response,
        StatusCode::CREATED,
        "POST through the trusted proxy",
    )
    .await;
    assert!(registered(&app, &email).await);

    // The same headers from a peer that is not a trusted proxy: X-Forwarded-Proto is not
    // believed, so the own origin is http://api.example.org.
    let (response, email) = register_with(&app, &client_from("127.0.0.2"), &proxied).await;
    expect_problem(
        response,
        StatusCode::FORBIDDEN,
        "POST from an untrusted peer claiming https",
    )
    .await;
    assert!(!registered(&app, &email).await);

    // From the trusted proxy, an Origin other than what it forwards is foreign.
    for headers in [
        [
            ("origin", "https://evil.example"),
            ("host", "api.example.org"),
            ("x-forwarded-proto", "https"),
        ],
        [
            ("origin", "https://api.example.org"),
            ("host", "api.example.org"),
            ("x-forwarded-proto", "http"),
        ],
        [
            ("origin", "https://api.example.org"),
            ("host", "api.example.org:8443"),
            ("x-forwarded-proto", "https"),
        ],
    ] {
        let (response, _) = register_with(&app, &app.client, &headers).await;
        expect_problem(
            response,
            StatusCode::FORBIDDEN,
            &format!("through the trusted proxy: {headers:?}"),
        )
        .await;
    }
}

async fn in_development_any_origin_may_call_as_before(app: TestApp) {
    for origin in ["https://frontend.example", LISTED, app.address.as_str()] {
        let (response, email) = register_with(&app, &app.client, &[("origin", origin)]).await;
        if origin != app.address {
            assert_eq!(
                header(&response, "access-control-allow-origin").as_deref(),
                Some(origin)
            );
        }
        expect_json(
            response,
            StatusCode::CREATED,
            &format!("POST from {origin}"),
        )
        .await;
        assert!(registered(&app, &email).await);
    }
}

/// Whether a response is refused, and which origin it allows, depends on `Origin`: a cache
/// must not serve one origin's answer to another.
async fn every_response_says_vary_origin(app: TestApp) {
    let app = production(&app, &[]).await;
    let own = app.address.clone();
    for (path, origin) in [
        ("/posts", None),
        ("/posts", Some(LISTED)),
        ("/posts", Some(own.as_str())),
        ("/no-such-thing", Some(LISTED)),
        ("/no-such-thing", Some(own.as_str())),
        ("/posts", Some("https://evil.example")),
        ("/docs", None),
        ("/docs", Some(own.as_str())),
    ] {
        let mut request = app.request(Method::GET, path, None);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.expect("the request completes");
        assert!(
            says_vary_origin(&response),
            "GET {path} from {origin:?}: {} {:?}",
            response.status(),
            response.headers()
        );
    }
}

/// A cross-origin client reads errors as problem documents too, the ones poem's routing
/// and parsing raise included.
async fn a_listed_origin_gets_problem_documents(app: TestApp) {
    let app = production(&app, &[]).await;
    let not_found = app
        .request(Method::GET, "/no-such-thing", None)
        .header("origin", LISTED)
        .send()
        .await
        .expect("the request completes");
    assert_eq!(
        header(&not_found, "access-control-allow-origin").as_deref(),
        Some(LISTED)
    );
    expect_problem(not_found, StatusCode::NOT_FOUND, "GET /no-such-thing").await;

    let invalid = app
        .request(Method::POST, "/users", None)
        .header("origin", LISTED)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("the request completes");
    assert_eq!(
        header(&invalid, "access-control-allow-origin").as_deref(),
        Some(LISTED)
    );
    let status = invalid.status();
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY);
    expect_problem(invalid, status, "POST /users with malformed JSON").await;
}

async fn a_listed_origin_may_send_preconditions_and_read_etag_and_link(app: TestApp) {
    let app = production(&app, &[]).await;
    let preflight = app
        .request(Method::OPTIONS, "/posts/1", None)
        .header("origin", LISTED)
        .header("access-control-request-method", "PATCH")
        .header(
            "access-control-request-headers",
            "authorization, content-type, if-match, if-none-match",
        )
        .send()
        .await
        .expect("the preflight completes");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = header(&preflight, "access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for name in ["authorization", "content-type", "if-match", "if-none-match"] {
        assert!(allowed.contains(name), "{name} is allowed: {allowed}");
    }

    let user = app.create_user_and_login().await;
    app.new_post(&user, "first", true).await;
    app.new_post(&user, "second", true).await;
    let page = app
        .request(Method::GET, "/posts?limit=1", Some(&user.token))
        .header("origin", LISTED)
        .send()
        .await
        .expect("the listing completes");
    let exposed = header(&page, "access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for name in [
        "etag",
        "link",
        "location",
        "retry-after",
        "www-authenticate",
        "ratelimit",
        "ratelimit-policy",
    ] {
        assert!(exposed.contains(name), "{name} is exposed: {exposed}");
    }
    assert!(header(&page, "link").is_some(), "a full page links on");
}

on_both_backends!(
    in_production_a_same_origin_post_reaches_the_endpoint,
    a_listed_origin_may_send_preconditions_and_read_etag_and_link,
    in_production_a_listed_origin_gets_its_allow_origin,
    in_production_an_unlisted_origin_is_refused,
    behind_a_trusted_proxy_the_forwarded_origin_is_the_own_origin,
    in_development_any_origin_may_call_as_before,
    every_response_says_vary_origin,
    a_listed_origin_gets_problem_documents,
);

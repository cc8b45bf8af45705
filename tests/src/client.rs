//! A client of a running instance of the service, with a helper for each operation.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use crate::assertions::{Failures, check_invalid, expect_json};
use crate::random::{random_string, unique_email};

/// The request body size the service must accept; one byte more is a 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A client of one running instance of the service, with a helper for each operation.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub address: String,
    /// A client that does not follow redirects, so a redirect is seen as what it is.
    pub client: reqwest::Client,
}

impl ApiClient {
    /// A client of the service at `address` (`http://host:port`) whose requests give up
    /// after `timeout`.
    pub fn new(address: String, timeout: Duration) -> ApiClient {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .expect("the HTTP client builds");
        ApiClient { address, client }
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request to `path`, with `Authorization: Bearer <token>` when a token is given.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        send(self.request(Method::GET, path, token)).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        send(self.request(Method::POST, path, token).json(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        send(self.request(Method::PUT, path, token).json(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        send(self.request(Method::PATCH, path, token).json(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        send(self.request(Method::DELETE, path, token)).await
    }

    /// `method path` with `body` as it is, labelled `content_type` when one is given.
    pub async fn send_body(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let mut request = self.request(method, path, token).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        send(request).await
    }

    /// Sends each `(body, field, case)` as JSON to `method path` and checks for a 422 that
    /// names `field`; returns the failures, for the caller to add to and assert.
    pub async fn check_invalid_bodies(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        cases: Vec<(Value, &str, &str)>,
    ) -> Failures {
        let mut failures = Failures::new();
        for (body, field, case) in cases {
            let response = send(self.request(method.clone(), path, token).json(&body)).await;
            let context = format!("{method} {path} with {case}");
            failures.check(check_invalid(response, field, &context).await);
        }
        failures
    }

    /// `POST /users`.
    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post("/users", None, &credentials(email, password))
            .await
    }

    /// `POST /login` with a JSON body.
    pub async fn login_json(&self, email: &str, password: &str) -> Response {
        self.post("/login", None, &credentials(email, password))
            .await
    }

    /// `POST /login` with a JSON body, as relayed by a proxy that says it came from `client`.
    pub async fn login_json_forwarded_for(
        &self,
        client: &str,
        email: &str,
        password: &str,
    ) -> Response {
        let request = self
            .request(Method::POST, "/login", None)
            .header("x-forwarded-for", client)
            .json(&credentials(email, password));
        send(request).await
    }

    /// `POST /login` with an `application/x-www-form-urlencoded` body.
    pub async fn login_form(&self, fields: &[(&str, &str)]) -> Response {
        send(self.request(Method::POST, "/login", None).form(fields)).await
    }

    /// Logs in with JSON and returns the access token; panics unless that is a 200.
    pub async fn login(&self, email: &str, password: &str) -> String {
        self.start_session(email, password).await.access_token
    }

    /// Logs in with JSON and returns the new session's tokens; panics unless that is a 200.
    pub async fn start_session(&self, email: &str, password: &str) -> SessionTokens {
        let response = self.login_json(email, password).await;
        SessionTokens::from_body(&expect_json(response, StatusCode::OK, "logging in").await)
    }

    /// `POST /login/refresh` with a JSON body.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/login/refresh",
            None,
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    /// Registers a user with a unique email and returns its id; panics unless that is a 201.
    pub async fn create_user(&self, email: &str, password: &str) -> i64 {
        let response = self.register(email, password).await;
        let body = expect_json(response, StatusCode::CREATED, "registering a user").await;
        body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("the new user has no integer id: {body}"))
    }

    /// Registers a user with a unique email and logs them in.
    pub async fn create_user_and_login(&self) -> TestUser {
        let email = unique_email();
        let password = format!("pw-{}", random_string(16));
        let id = self.create_user(&email, &password).await;
        let token = self.login(&email, &password).await;
        TestUser {
            id,
            email,
            password,
            token,
        }
    }

    /// `POST /posts`.
    pub async fn create_post(&self, token: &str, body: &Value) -> Response {
        self.post("/posts", Some(token), body).await
    }

    /// Creates a post owned by `user` and returns it; panics unless that is a 201.
    pub async fn new_post(&self, user: &TestUser, title: &str, published: bool) -> Value {
        let body = json!({
            "title": title,
            "content": format!("Some words about {title}."),
            "published": published,
        });
        let response = self.create_post(&user.token, &body).await;
        expect_json(response, StatusCode::CREATED, "creating a post").await
    }

    /// `POST /vote`.
    pub async fn vote(&self, token: &str, post_id: i64, dir: i64) -> Response {
        self.post(
            "/vote",
            Some(token),
            &json!({ "post_id": post_id, "dir": dir }),
        )
        .await
    }

    /// `GET /posts` with the given query parameters; panics unless that is a 200 array.
    pub async fn list_posts(&self, token: &str, query: &[(&str, &str)]) -> Vec<Value> {
        let response = send(
            self.request(Method::GET, "/posts", Some(token))
                .query(query),
        )
        .await;
        let body = expect_json(response, StatusCode::OK, "listing posts").await;
        match body {
            Value::Array(posts) => posts,
            other => panic!("GET /posts did not return an array: {other}"),
        }
    }

    /// `GET /posts/{id}`; panics unless that is a 200.
    pub async fn fetch_post(&self, token: &str, id: i64) -> Value {
        let response = self.get(&format!("/posts/{id}"), Some(token)).await;
        expect_json(response, StatusCode::OK, "getting a post").await
    }
}

/// The tokens of a `Token` response: a session's access token and refresh token.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    pub access_token: String,
    pub refresh_token: String,
}

impl SessionTokens {
    /// Reads them from a `Token` body; panics when either is missing.
    pub fn from_body(body: &Value) -> SessionTokens {
        let field = |name: &str| {
            body[name]
                .as_str()
                .unwrap_or_else(|| panic!("the token response has no {name}: {body}"))
                .to_owned()
        };
        SessionTokens {
            access_token: field("access_token"),
            refresh_token: field("refresh_token"),
        }
    }
}

/// A registered user together with a fresh access token.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub email: String,
    pub password: String,
    pub token: String,
}

/// The body of a registration or a JSON login.
fn credentials(email: &str, password: &str) -> Value {
    json!({ "email": email, "password": password })
}

/// Sends the request; panics when no response comes (refused, reset, timed out).
pub(crate) async fn send(builder: RequestBuilder) -> Response {
    builder
        .send()
        .await
        .unwrap_or_else(|err| panic!("the request did not complete: {err}"))
}

//! Helpers for the black-box suites in `tests/tests/`, and for the process tests in
//! `api/tests/binary/` (a client of a running service, a database made for one test).
//!
//! Every test gets the application on port 0 against a database of its own: a temporary
//! SQLite file, or a PostgreSQL database created for it and dropped afterwards. The tests
//! talk to it only through HTTP, like any other client would, so they hold whatever the
//! service is built from.
//!
//! A test is written once as `async fn sentence_like_name(app: TestApp)` and listed in
//! [`on_both_backends!`] at the bottom of its file, which runs it on SQLite and on
//! PostgreSQL. Every file is a module of one test binary, declared in `tests/tests/main.rs`.
//!
//! PostgreSQL is found through `TEST_DATABASE_URL` (an administrative connection that may
//! create and drop databases; default [`DEFAULT_ADMIN_URL`]). When it cannot be reached,
//! PostgreSQL tests print a line and pass, unless `TEST_REQUIRE_POSTGRES=1`, in which case
//! they fail.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::distr::Alphanumeric;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

pub use reqwest::{Method, RequestBuilder, Response, StatusCode};
pub use serde_json::{Value, json};

/// The administrative PostgreSQL URL used when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The request body size the service must accept; one byte more is a 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Runs each listed `async fn name(app: TestApp)` of the calling file once against SQLite
/// (`sqlite::name`) and once against PostgreSQL (`postgres::name`), each on a fresh
/// database.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::TestApp::spawn($crate::Backend::Sqlite).await;
                    super::$name(app).await;
                }
            )+
        }

        mod postgres {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::TestApp::spawn_or_skip($crate::Backend::Postgres).await
                    else {
                        return;
                    };
                    super::$name(app).await;
                }
            )+
        }
    };
}

/// Which database the application under test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A client of one running instance of the service, with a helper for each operation.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub address: String,
    /// A client that does not follow redirects, so a redirect is seen as what it is.
    pub client: reqwest::Client,
}

/// A running application on its own database, with a client to talk to it (its
/// [`ApiClient`], through `Deref`).
///
/// Dropping it stops the server; the database goes when the last application using it
/// (see [`TestApp::spawn_sibling`]) is dropped.
pub struct TestApp {
    api: ApiClient,
    pub backend: Backend,
    /// The JWT secret the application was configured with, to forge tokens in tests.
    pub secret: String,
    /// The URL the application connects to.
    pub database_url: String,
    database: Arc<TestDatabase>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
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

impl TestApp {
    /// Starts the application on a fresh database. Panics if the backend is unreachable.
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with settings changed by `customize` after the test
    /// defaults are filled in.
    pub async fn spawn_with(
        backend: Backend,
        customize: impl FnOnce(&mut api::Settings),
    ) -> TestApp {
        match TestDatabase::create(backend).await {
            Ok(database) => Self::start(Arc::new(database), random_string(48), customize).await,
            Err(reason) => panic!("{reason}"),
        }
    }

    /// Like [`TestApp::spawn`], but returns `None` (after saying so on stderr) when
    /// PostgreSQL is not reachable and `TEST_REQUIRE_POSTGRES` is not `1`.
    pub async fn spawn_or_skip(backend: Backend) -> Option<TestApp> {
        let database = TestDatabase::create_or_skip(backend).await?;
        Some(Self::spawn_on(database).await)
    }

    /// Starts the application on a database the test made (see [`TestDatabase`]).
    pub async fn spawn_on(database: TestDatabase) -> TestApp {
        Self::start(Arc::new(database), random_string(48), |_| {}).await
    }

    /// A second instance of the application on the same database and with the same
    /// secret, as when the service runs behind a load balancer.
    pub async fn spawn_sibling(&self) -> TestApp {
        self.spawn_sibling_with(|_| {}).await
    }

    /// Like [`TestApp::spawn_sibling`], with settings changed by `customize`.
    pub async fn spawn_sibling_with(&self, customize: impl FnOnce(&mut api::Settings)) -> TestApp {
        Self::start(Arc::clone(&self.database), self.secret.clone(), customize).await
    }

    async fn start(
        database: Arc<TestDatabase>,
        secret: String,
        customize: impl FnOnce(&mut api::Settings),
    ) -> TestApp {
        let database_url = database.url.clone();
        let mut settings = api::Settings {
            database_url: database_url.clone(),
            port: 0,
            bcrypt_cost: 4,
            secret_key: Some(secret.clone().into()),
            // Tests run in parallel against one PostgreSQL server: keep each pool small.
            database_max_connections: 5,
            // Suites register many accounts from one address, and write a lot from one
            // account; a test of each limit sets it.
            register_max_per_address: 0,
            writes_per_minute: 0,
            ..api::Settings::default()
        };
        customize(&mut settings);
        let app = api::Application::build(settings)
            .await
            .unwrap_or_else(|err| {
                panic!("the application did not build on {database_url}: {err:#}")
            });
        let address = format!("http://127.0.0.1:{}", app.port());
        let server = tokio::spawn(app.run_until_stopped());
        TestApp {
            api: ApiClient::new(address, Duration::from_secs(60)),
            backend: database.backend,
            secret,
            database_url,
            database,
            server,
        }
    }

    /// Drops the PostgreSQL database under the running application, so that it finds
    /// its database unreachable. Panics on SQLite, whose open files cannot be taken away.
    pub async fn make_database_unreachable(&self) {
        match &self.database.kind {
            DatabaseKind::Postgres { admin_url, name } => {
                let admin = connect_admin(admin_url)
                    .await
                    .expect("the PostgreSQL admin connection opens");
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .expect("the test database is dropped");
                let _ = admin.close().await;
            }
            DatabaseKind::Sqlite { .. } => panic!("a SQLite database cannot be made unreachable"),
        }
    }

    /// A connection of the test's own to the application's database.
    pub async fn database(&self) -> DatabaseConnection {
        open_database(&self.database_url).await
    }

    /// The claims of an access token this application issued, checked to be HS256 and
    /// signed with its secret.
    pub fn claims_of(&self, token: &str) -> Value {
        let header = jsonwebtoken::decode_header(token).expect("the token has a JWT header");
        assert_eq!(
            header.alg,
            jsonwebtoken::Algorithm::HS256,
            "tokens are signed with HS256"
        );
        jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(self.secret.as_bytes()),
            &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
        )
        .expect("the token verifies with the application's secret")
        .claims
    }
}

impl std::ops::Deref for TestApp {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
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

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

enum DatabaseKind {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { admin_url: String, name: String },
}

/// A database made for one test (a SQLite file in a directory of its own, or a PostgreSQL
/// database), removed when dropped, panics included.
pub struct TestDatabase {
    backend: Backend,
    url: String,
    kind: DatabaseKind,
}

impl TestDatabase {
    /// Creates the database, or says why PostgreSQL could not be reached.
    pub async fn create(backend: Backend) -> Result<TestDatabase, String> {
        Self::create_with(backend, "").await
    }

    /// Creates a PostgreSQL database whose collation is ICU's for `icu_locale` (such as
    /// `en-US`), where `LOWER` may make a string longer; `None` as in
    /// [`TestDatabase::create_or_skip`].
    pub async fn create_icu_or_skip(icu_locale: &str) -> Option<TestDatabase> {
        let options = format!(
            " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}' LOCALE 'C.UTF-8'"
        );
        or_skip(Self::create_with(Backend::Postgres, &options).await)
    }

    /// Creates the database; on PostgreSQL with `options` after `CREATE DATABASE name`.
    async fn create_with(backend: Backend, options: &str) -> Result<TestDatabase, String> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("api-tests-")
                    .tempdir()
                    .expect("the temporary directory is created");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
                Ok(TestDatabase {
                    backend,
                    url,
                    kind: DatabaseKind::Sqlite { _dir: dir },
                })
            }
            Backend::Postgres => {
                let admin_url = std::env::var("TEST_DATABASE_URL")
                    .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
                let admin = connect_admin(&admin_url)
                    .await
                    .map_err(|err| format!("PostgreSQL not reachable at {admin_url}: {err}"))?;
                let name = format!("apitest_{}", random_name());
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\"{options}"))
                    .await
                    .unwrap_or_else(|err| panic!("could not create database {name}: {err}"));
                let _ = admin.close().await;
                let mut url = reqwest::Url::parse(&admin_url)
                    .map_err(|err| format!("TEST_DATABASE_URL {admin_url:?}: {err}"))?;
                url.set_path(&format!("/{name}"));
                Ok(TestDatabase {
                    backend,
                    url: url.into(),
                    kind: DatabaseKind::Postgres { admin_url, name },
                })
            }
        }
    }

    /// Like [`TestDatabase::create`], but returns `None` (after saying so on stderr) when
    /// PostgreSQL is not reachable and `TEST_REQUIRE_POSTGRES` is not `1`.
    pub async fn create_or_skip(backend: Backend) -> Option<TestDatabase> {
        or_skip(Self::create(backend).await)
    }

    /// The URL the application connects to.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // A SQLite database's directory removes itself.
        if let DatabaseKind::Postgres { admin_url, name } = &self.kind {
            let admin_url = admin_url.clone();
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            // Drop cannot await, and may run inside a runtime: use a thread of our own.
            let dropper = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for dropping the test database");
                runtime.block_on(async {
                    if let Ok(admin) = connect_admin(&admin_url).await {
                        if let Err(err) = admin.execute_unprepared(&sql).await {
                            eprintln!("could not run `{sql}`: {err}");
                        }
                        let _ = admin.close().await;
                    }
                });
            });
            let _ = dropper.join();
        }
    }
}

/// The database made, or `None` (after saying so on stderr) when PostgreSQL is not reachable
/// and `TEST_REQUIRE_POSTGRES` is not `1`.
fn or_skip(created: Result<TestDatabase, String>) -> Option<TestDatabase> {
    match created {
        Ok(database) => Some(database),
        Err(reason) if std::env::var("TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("{reason} (TEST_REQUIRE_POSTGRES=1)")
        }
        Err(reason) => {
            eprintln!("skipping: {reason}");
            None
        }
    }
}

async fn connect_admin(admin_url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(admin_url.to_owned());
    options
        .max_connections(1)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    let connection = Database::connect(options).await?;
    // The pool may connect lazily: make sure the server answers now.
    connection.execute_unprepared("SELECT 1").await?;
    Ok(connection)
}

/// The body of a registration or a JSON login.
fn credentials(email: &str, password: &str) -> Value {
    json!({ "email": email, "password": password })
}

async fn send(builder: RequestBuilder) -> Response {
    builder
        .send()
        .await
        .unwrap_or_else(|err| panic!("the request did not complete: {err}"))
}

/// Lower-case letters and digits, usable as a PostgreSQL identifier part or a file name.
fn random_name() -> String {
    let mut rng = rand::rng();
    format!("{:016x}{:08x}", rng.random::<u64>(), rng.random::<u32>())
}

/// `len` random ASCII letters and digits.
pub fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// An email address no other test uses.
pub fn unique_email() -> String {
    format!("user-{}@example.com", random_name())
}

/// Seconds since the Unix epoch.
pub fn now_seconds() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(elapsed.as_secs()).expect("the time fits in i64")
}

/// Unpadded base64url, as used in JWTs.
pub fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `claims` with `algorithm` and `secret`.
pub fn sign(algorithm: jsonwebtoken::Algorithm, claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("the token encodes")
}

/// A token whose header says `header_json`, HMAC-signed with `secret` as if it said HS256:
/// the algorithm-confusion attack.
pub fn sign_with_header(header_json: &str, claims: &Value, secret: &str) -> String {
    let message = format!(
        "{}.{}",
        base64url(header_json.as_bytes()),
        base64url(claims.to_string().as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    )
    .expect("the message signs");
    format!("{message}.{signature}")
}

/// The value of header `name`, as text, if present.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// Checks the status and returns the body parsed as JSON.
pub async fn check_json(
    response: Response,
    status: StatusCode,
    context: &str,
) -> Result<Value, String> {
    let actual = response.status();
    let text = response.text().await.unwrap_or_default();
    if actual != status {
        return Err(format!(
            "{context}: expected {status}, got {actual} with body {text}"
        ));
    }
    serde_json::from_str(&text)
        .map_err(|err| format!("{context}: the body is not JSON ({err}): {text}"))
}

/// Asserts the status and returns the body parsed as JSON.
pub async fn expect_json(response: Response, status: StatusCode, context: &str) -> Value {
    check_json(response, status, context)
        .await
        .unwrap_or_else(|failure| panic!("{failure}"))
}

/// Asserts the status and an empty body.
pub async fn expect_empty(response: Response, status: StatusCode, context: &str) {
    let actual = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(
        actual, status,
        "{context}: expected {status}, got {actual} with body {text}"
    );
    assert!(
        text.is_empty(),
        "{context}: expected an empty body, got {text}"
    );
}

/// Checks for an RFC 9457 problem response with `status` and returns its body.
///
/// Beyond the body (`type`, `title`, `status`, a non-empty `detail`) and the
/// `application/problem+json` content type, it checks the headers some statuses must
/// carry: `WWW-Authenticate: Bearer` on 401, an integer `Retry-After` above zero on 429,
/// and `Allow` on 405.
pub async fn check_problem(
    response: Response,
    status: StatusCode,
    context: &str,
) -> Result<Value, String> {
    let actual = response.status();
    let content_type = header(&response, "content-type").unwrap_or_default();
    let www_authenticate = header(&response, "www-authenticate");
    let retry_after = header(&response, "retry-after");
    let allow = header(&response, "allow");
    let request_id = header(&response, "x-request-id");
    let text = response.text().await.unwrap_or_default();
    let fail = |what: String| Err(format!("{context}: {what}"));
    if actual != status {
        return fail(format!("expected {status}, got {actual} with body {text}"));
    }
    if !content_type.starts_with("application/problem+json") {
        return fail(format!(
            "a {status} must be application/problem+json, got content type {content_type:?} with body {text}"
        ));
    }
    let body: Value = match serde_json::from_str(&text) {
        Ok(body) => body,
        Err(err) => return fail(format!("the problem body is not JSON ({err}): {text}")),
    };
    if !body["type"].is_string() {
        return fail(format!("the problem has no `type`: {body}"));
    }
    if body["title"].as_str().is_none_or(str::is_empty) {
        return fail(format!("the problem has no `title`: {body}"));
    }
    if body["status"].as_u64() != Some(u64::from(status.as_u16())) {
        return fail(format!(
            "the problem's `status` differs from the HTTP status: {body}"
        ));
    }
    if body["detail"].as_str().is_none_or(|d| d.trim().is_empty()) {
        return fail(format!("the problem has no `detail`: {body}"));
    }
    let instance = request_id.map(|id| format!("urn:request:{id}"));
    if body["instance"].as_str() != instance.as_deref() {
        return fail(format!(
            "the problem's `instance` must name the request ({instance:?}): {body}"
        ));
    }
    if status == StatusCode::UNAUTHORIZED
        && !www_authenticate
            .as_deref()
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("bearer"))
    {
        return fail(format!(
            "a 401 must carry `WWW-Authenticate: Bearer`, got {www_authenticate:?}"
        ));
    }
    if status == StatusCode::TOO_MANY_REQUESTS
        && retry_after
            .as_deref()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_none_or(|seconds| seconds == 0)
    {
        return fail(format!(
            "a 429 must carry `Retry-After` in whole seconds above zero, got {retry_after:?}"
        ));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED
        && allow.as_deref().is_none_or(|a| a.trim().is_empty())
    {
        return fail(format!("a 405 must carry `Allow`, got {allow:?}"));
    }
    Ok(body)
}

/// Asserts an RFC 9457 problem response with `status` (see [`check_problem`]).
pub async fn expect_problem(response: Response, status: StatusCode, context: &str) -> Value {
    check_problem(response, status, context)
        .await
        .unwrap_or_else(|failure| panic!("{failure}"))
}

/// Checks for a 422 problem that names `field` in its `detail` and in its `errors` list,
/// with a sentence of its own.
pub async fn check_invalid(
    response: Response,
    field: &str,
    context: &str,
) -> Result<Value, String> {
    check_invalid_fields(response, &[field], context).await
}

/// Checks for a 422 problem that names exactly `fields` (in any order) in its `errors`
/// list, each with a sentence, and every one of them in its `detail`.
pub async fn check_invalid_fields(
    response: Response,
    fields: &[&str],
    context: &str,
) -> Result<Value, String> {
    let body = check_problem(response, StatusCode::UNPROCESSABLE_ENTITY, context).await?;
    let detail = body["detail"].as_str().unwrap_or_default();
    let Some(errors) = body["errors"].as_array() else {
        return Err(format!("{context}: a 422 must list `errors`: {body}"));
    };
    let mut named: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    named.sort_unstable();
    let mut wanted = fields.to_vec();
    wanted.sort_unstable();
    if named != wanted || errors.len() != fields.len() {
        return Err(format!(
            "{context}: `errors` should name {wanted:?}: {body}"
        ));
    }
    if let Some(bare) = errors
        .iter()
        .find(|e| e["detail"].as_str().is_none_or(|d| !d.ends_with('.')))
    {
        return Err(format!("{context}: each error needs a sentence: {bare}"));
    }
    match fields
        .iter()
        .find(|field| !detail.contains(&format!("{field}:")))
    {
        Some(missing) => Err(format!(
            "{context}: the 422 detail should name the field `{missing}`: {detail:?}"
        )),
        None => Ok(body),
    }
}

/// Asserts a 422 problem whose `detail` names `field`.
pub async fn expect_invalid(response: Response, field: &str, context: &str) -> Value {
    check_invalid(response, field, context)
        .await
        .unwrap_or_else(|failure| panic!("{failure}"))
}

/// Collects the failed cases of a table-driven test, so that one run reports all of them.
#[derive(Debug, Default)]
pub struct Failures(Vec<String>);

impl Failures {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the failure of one case, if it failed.
    pub fn check<T>(&mut self, outcome: Result<T, String>) {
        if let Err(failure) = outcome {
            self.0.push(failure);
        }
    }

    /// Panics listing every recorded failure, if any.
    pub fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} case(s) failed:\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

/// Asserts that `value` is an RFC 3339 timestamp in UTC within a few minutes of now.
pub fn assert_recent_utc_timestamp(value: &Value, context: &str) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{context}: the timestamp is not a string: {value}"));
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|err| panic!("{context}: {text:?} is not RFC 3339: {err}"));
    assert_eq!(
        parsed.offset().local_minus_utc(),
        0,
        "{context}: {text:?} is not in UTC"
    );
    let age = now_seconds() - parsed.timestamp();
    assert!(
        (-300..=300).contains(&age),
        "{context}: {text:?} is {age} s away from now"
    );
}

/// Asserts that `user` is a `UserOut` with exactly `id`, `email` and `created_at`.
pub fn assert_user_out(user: &Value, id: i64, email: &str, context: &str) {
    assert_fields(
        user,
        &["created_at", "email", "id"],
        &format!("{context}: a UserOut"),
    );
    assert_eq!(
        user["id"].as_i64(),
        Some(id),
        "{context}: the user's id: {user}"
    );
    assert_eq!(
        user["email"].as_str(),
        Some(email),
        "{context}: the user's email: {user}"
    );
    assert_recent_utc_timestamp(&user["created_at"], context);
}

/// Asserts that `value` is an object with exactly `fields` (in alphabetical order).
pub fn assert_fields(value: &Value, fields: &[&str], what: &str) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {value}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys, fields,
        "{what} has exactly the fields {fields:?}: {value}"
    );
}

/// The ids of `posts`, in order.
pub fn ids(posts: &[Value]) -> Vec<i64> {
    posts
        .iter()
        .map(|post| {
            post["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("a post without an integer id: {post}"))
        })
        .collect()
}

/// The integer `id` of a JSON object.
pub fn id_of(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer id in {value}"))
}

// Helpers for the concurrency, fault and hostile-input suites: looking at what the database
// holds, firing requests all at once, and speaking raw HTTP where a client library would
// refuse to send what an attacker sends.

/// Opens a small pool of the test's own on `url` (a SQLite file or a PostgreSQL database),
/// to check what the service stored without asking the service.
pub async fn open_database(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(2)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .unwrap_or_else(|err| panic!("the test cannot open {url}: {err}"))
}

/// The first column of every row `sql` returns, as integers (`COUNT`s, ids).
pub async fn query_i64s(db: &DatabaseConnection, sql: &str) -> Vec<i64> {
    first_column(db, sql, "an integer").await
}

/// The first column of every row `sql` returns, as text.
pub async fn query_strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    first_column(db, sql, "text").await
}

/// The first column of every row `sql` returns, as `T` (`what` names it for the panic).
async fn first_column<T: sea_orm::TryGetable>(
    db: &DatabaseConnection,
    sql: &str,
    what: &str,
) -> Vec<T> {
    let statement = sea_orm::Statement::from_string(db.get_database_backend(), sql.to_owned());
    let rows = db
        .query_all_raw(statement)
        .await
        .unwrap_or_else(|err| panic!("`{sql}` failed: {err}"));
    rows.iter()
        .map(|row| {
            row.try_get_by_index::<T>(0)
                .unwrap_or_else(|err| panic!("`{sql}` did not return {what}: {err:?}"))
        })
        .collect()
}

/// The single integer `sql` returns (a `COUNT(*)`).
pub async fn query_i64(db: &DatabaseConnection, sql: &str) -> i64 {
    let values = query_i64s(db, sql).await;
    match values.as_slice() {
        [value] => *value,
        other => panic!("`{sql}` returned {other:?} instead of one row"),
    }
}

/// Runs `sql` (a `COUNT(*)`) every 20 ms until it returns `wanted`, for at most two seconds;
/// returns the last value, for the caller to assert on.
pub async fn wait_for_count(db: &DatabaseConnection, sql: &str, wanted: i64) -> i64 {
    let mut count = query_i64(db, sql).await;
    for _ in 0..100 {
        if count == wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        count = query_i64(db, sql).await;
    }
    count
}

/// How many users, posts, votes and login failures a database holds, and a fingerprint of
/// every post's stored fields: equal snapshots mean nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub users: i64,
    pub posts: i64,
    pub votes: i64,
    pub posts_fingerprint: Vec<String>,
    pub users_fingerprint: Vec<String>,
}

impl Snapshot {
    pub async fn take(db: &DatabaseConnection) -> Snapshot {
        let text_rows = |sql: &'static str| query_strings(db, sql);
        Snapshot {
            users: query_i64(db, "SELECT COUNT(*) FROM users").await,
            posts: query_i64(db, "SELECT COUNT(*) FROM posts").await,
            votes: query_i64(db, "SELECT COUNT(*) FROM votes").await,
            posts_fingerprint: text_rows(
                "SELECT CAST(id AS TEXT) || '|' || title || '|' || content || '|' \
                 || CAST(published AS TEXT) || '|' || CAST(owner_id AS TEXT) || '|' \
                 || CAST(updated_at AS TEXT) FROM posts ORDER BY id",
            )
            .await,
            users_fingerprint: text_rows(
                "SELECT CAST(id AS TEXT) || '|' || email || '|' || password_hash \
                 FROM users ORDER BY id",
            )
            .await,
        }
    }
}

/// A [`Snapshot`] of a database and a connection to take another: equal ones later mean that
/// nothing was changed in between.
pub struct Baseline {
    db: DatabaseConnection,
    snapshot: Snapshot,
}

impl Baseline {
    /// Asserts that the database holds what it held when the baseline was taken.
    pub async fn assert_unchanged(&self, message: &str) {
        assert_eq!(Snapshot::take(&self.db).await, self.snapshot, "{message}");
    }
}

impl TestApp {
    /// What the application's database holds now, for [`Baseline::assert_unchanged`].
    pub async fn baseline(&self) -> Baseline {
        let db = self.database().await;
        let snapshot = Snapshot::take(&db).await;
        Baseline { db, snapshot }
    }
}

impl ApiClient {
    /// `host:port` of the application, for raw TCP connections.
    pub fn socket_address(&self) -> String {
        self.address.trim_start_matches("http://").to_owned()
    }

    /// Sends `head` (a request line and headers, ending in an empty line) and `body` on a
    /// new connection and reads the response.
    pub async fn raw_request(&self, head: &str, body: &[u8]) -> RawResponse {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(self.socket_address())
            .await
            .expect("a TCP connection to the application");
        stream
            .write_all(head.as_bytes())
            .await
            .expect("the request head is sent");
        // A server may answer (and close) before taking the whole body: that is no error.
        let _ = stream.write_all(body).await;
        read_raw_response(&mut stream)
            .await
            .unwrap_or_else(|err| panic!("no readable response to {head:?}: {err}"))
    }
}

/// Runs every future at once (each on its own task) and returns their outputs in order.
pub async fn all_at_once<T, F>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    let mut count = 0;
    for (index, future) in futures.into_iter().enumerate() {
        set.spawn(async move { (index, future.await) });
        count += 1;
    }
    let mut outputs: Vec<Option<T>> = (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (index, output) = joined.expect("a concurrent task panicked");
        outputs[index] = Some(output);
    }
    outputs.into_iter().map(Option::unwrap).collect()
}

/// Sends every request at once and returns each one's status and body, in order.
pub async fn send_all_at_once(
    requests: impl IntoIterator<Item = RequestBuilder>,
) -> Vec<(StatusCode, String)> {
    all_at_once(requests.into_iter().map(|request| async move {
        let response = send(request).await;
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }))
    .await
}

/// Asserts that of requests racing to create one thing, exactly one got 201 and every other
/// 409.
pub fn assert_one_created_and_the_rest_conflict(outcomes: &[(StatusCode, String)]) {
    let statuses: Vec<StatusCode> = outcomes.iter().map(|(status, _)| *status).collect();
    let expected = std::collections::BTreeMap::from([(201, 1), (409, outcomes.len() - 1)]);
    assert_eq!(
        tally(&statuses),
        expected,
        "one 201 and otherwise 409: {}",
        describe(outcomes)
    );
}

/// What clients saw of many requests, for messages: the count of each status and the bodies
/// of the first server errors.
pub fn describe(outcomes: &[(StatusCode, String)]) -> String {
    let statuses: Vec<StatusCode> = outcomes.iter().map(|(s, _)| *s).collect();
    let odd: Vec<&String> = outcomes
        .iter()
        .filter(|(s, _)| s.is_server_error())
        .map(|(_, body)| body)
        .take(3)
        .collect();
    format!(
        "statuses {:?}, first server errors {odd:?}",
        tally(&statuses)
    )
}

/// Counts each status in `statuses`, for messages: `{201: 150, 409: 50}`.
pub fn tally(statuses: &[StatusCode]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for status in statuses {
        *counts.entry(status.as_u16()).or_insert(0) += 1;
    }
    counts
}

/// A response read off a raw TCP connection.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Checks that this is an RFC 9457 problem with `status`, and returns its body.
    pub fn check_problem(&self, status: u16, context: &str) -> Result<Value, String> {
        let text = String::from_utf8_lossy(&self.body);
        if self.status != status {
            return Err(format!(
                "{context}: expected {status}, got {} with body {text}",
                self.status
            ));
        }
        let content_type = self.header("content-type").unwrap_or_default();
        if !content_type.starts_with("application/problem+json") {
            return Err(format!(
                "{context}: expected application/problem+json, got {content_type:?}"
            ));
        }
        let body: Value = serde_json::from_slice(&self.body)
            .map_err(|err| format!("{context}: the problem is not JSON ({err}): {text}"))?;
        if body["status"].as_u64() != Some(u64::from(status)) {
            return Err(format!("{context}: the problem's status differs: {body}"));
        }
        if body["detail"].as_str().is_none_or(|d| d.trim().is_empty()) {
            return Err(format!("{context}: the problem has no detail: {body}"));
        }
        Ok(body)
    }
}

/// Reads one HTTP/1.1 response: the head through `httparse`, then a body framed by
/// `Content-Length`, by chunks, or by the end of the connection.
pub async fn read_raw_response(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> std::io::Result<RawResponse> {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let (status, headers, head_length) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut head = httparse::Response::new(&mut slots);
        match head.parse(&buffer).map_err(invalid_data)? {
            httparse::Status::Complete(length) => {
                let headers: Vec<(String, String)> = head
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).trim().to_owned();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect();
                let status = head.code.expect("a complete head has a status");
                break (status, headers, length);
            }
            httparse::Status::Partial => read_more(stream, &mut buffer, "a full head").await?,
        }
    };
    let mut rest = buffer.split_off(head_length);
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let body = if let Some(length) = find("content-length") {
        let length: usize = length.parse().map_err(invalid_data)?;
        while rest.len() < length {
            read_more(stream, &mut rest, "the body").await?;
        }
        rest.truncate(length);
        rest
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let (start, size) = match httparse::parse_chunk_size(&rest).map_err(invalid_data)? {
                httparse::Status::Complete(sized) => sized,
                httparse::Status::Partial => {
                    read_more(stream, &mut rest, "a chunk size").await?;
                    continue;
                }
            };
            if size == 0 {
                break;
            }
            let size = usize::try_from(size).map_err(invalid_data)?;
            // The chunk's data and the line end after it.
            while rest.len() < start + size + 2 {
                read_more(stream, &mut rest, "a chunk").await?;
            }
            body.extend_from_slice(&rest[start..start + size]);
            rest.drain(..start + size + 2);
        }
        body
    } else if status == 204 || status == 304 {
        Vec::new()
    } else {
        stream.read_to_end(&mut rest).await?;
        rest
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// Appends what the stream has next to `buffer`; an error if it ends before `awaited`.
async fn read_more(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
    awaited: &str,
) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    buffer.reserve(4096);
    if stream.read_buf(buffer).await? == 0 {
        let start = &buffer[..buffer.len().min(500)];
        return Err(invalid_data(format!(
            "the connection closed before {awaited}, after {} bytes: {:?}",
            buffer.len(),
            String::from_utf8_lossy(start)
        )));
    }
    Ok(())
}

fn invalid_data(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string())
}

/// One server-sent event as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    /// The `event:` field (`message` when none was sent).
    pub event: String,
    pub data: String,
}

impl SseEvent {
    /// What the event says of its subject: its data, JSON whose `type` must be the event's
    /// name, without that `type` (so a `post.created` compares equal to the `PostOut` it
    /// carries).
    pub fn payload(&self) -> Value {
        let mut data: Value = serde_json::from_str(&self.data)
            .unwrap_or_else(|err| panic!("event data is not JSON ({err}): {:?}", self.data));
        let kind = data
            .as_object_mut()
            .and_then(|fields| fields.remove("type"));
        assert_eq!(
            kind.as_ref().and_then(Value::as_str),
            Some(self.event.as_str()),
            "the data's `type` is the event's name: {:?}",
            self.data
        );
        data
    }

    /// The id as a number.
    pub fn number(&self) -> i64 {
        self.id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("an event without a numeric id: {self:?}"))
    }
}

/// What reading the next event of a stream found.
#[derive(Debug, PartialEq, Eq)]
pub enum SseRead {
    Event(SseEvent),
    /// The server ended the stream.
    Ended,
    /// Nothing came within the time given.
    TimedOut,
}

/// A reader of an open `text/event-stream` response (RFC: WHATWG HTML, server-sent events).
pub struct SseStream {
    response: Response,
    buffer: String,
    /// Comment lines read so far (keep-alives).
    pub comments: usize,
}

impl SseStream {
    /// Opens `GET path` (its query included) as a stream; the response must be a 200.
    pub async fn open(
        app: &ApiClient,
        path: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> SseStream {
        let response = Self::request(app, path, token, last_event_id).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "GET {path} should open a stream"
        );
        let content_type = header(&response, "content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("text/event-stream"),
            "content type {content_type}"
        );
        SseStream::new(response)
    }

    /// `GET path` as a stream would ask for it, whatever the answer.
    pub async fn request(
        app: &ApiClient,
        path: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Response {
        // A client of its own: `ApiClient`'s timeout would cut a stream.
        let client = reqwest::Client::new();
        let mut builder = client
            .get(app.url(path))
            .header("accept", "text/event-stream");
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            builder = builder.header("last-event-id", id);
        }
        builder
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {path} failed: {err}"))
    }

    pub fn new(response: Response) -> SseStream {
        SseStream {
            response,
            buffer: String::new(),
            comments: 0,
        }
    }

    /// The next event, waiting at most `wait` for it.
    pub async fn next(&mut self, wait: Duration) -> SseRead {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(event) = self.take_event() {
                return SseRead::Event(event);
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return SseRead::TimedOut,
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None) | Err(_)) => return SseRead::Ended,
            }
        }
    }

    /// The next event, which must come within `wait`.
    pub async fn expect_event(&mut self, wait: Duration, context: &str) -> SseEvent {
        match self.next(wait).await {
            SseRead::Event(event) => event,
            other => panic!("{context}: expected an event, got {other:?}"),
        }
    }

    /// Every event that comes until nothing has come for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let SseRead::Event(event) = self.next(quiet).await {
            events.push(event);
        }
        events
    }

    /// Takes one whole event (up to a blank line) from the buffer, counting comments.
    fn take_event(&mut self) -> Option<SseEvent> {
        loop {
            let end = self.buffer.find("\n\n")?;
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut event = SseEvent {
                id: None,
                event: "message".into(),
                data: String::new(),
            };
            let mut has_data = false;
            for line in block.lines() {
                if line.starts_with(':') {
                    self.comments += 1;
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => event.id = Some(value.to_owned()),
                    "event" => event.event = value.to_owned(),
                    "data" => {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(value);
                        has_data = true;
                    }
                    _ => {}
                }
            }
            if has_data {
                return Some(event);
            }
        }
    }
}

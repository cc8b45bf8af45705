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

mod app;
mod assertions;
mod client;
mod concurrency;
mod databases;
mod mailbox;
mod random;
mod raw_http;
mod replica;
mod stored;
mod streams;
mod tokens;

pub use reqwest::{Method, RequestBuilder, Response, StatusCode};
pub use serde_json::{Value, json};

pub use app::{TestApp, production};
pub use assertions::{
    Failures, ShownLimit, assert_account, assert_fields, assert_profile,
    assert_recent_utc_timestamp, check_invalid, check_invalid_fields, check_json, check_problem,
    expect_empty, expect_invalid, expect_json, expect_problem, header, id_of, ids, shown_limits,
};
pub use client::{ApiClient, MAX_BODY_BYTES, SessionTokens, TestUser};
pub use concurrency::{
    all_at_once, assert_one_created_and_the_rest_conflict, describe, send_all_at_once, tally,
};
pub use databases::{Backend, DEFAULT_ADMIN_URL, TestDatabase, open_database};
pub use mailbox::{Mailbox, PUBLIC_URL, ReceivedMail, app_mailing_to};
pub use random::{random_string, unique_email};
pub use raw_http::{RawResponse, read_raw_response};
pub use replica::{Replica, wait_for_replica_states};
pub use stored::{Baseline, Snapshot, query_i64, query_i64s, query_strings, wait_for_count};
pub use streams::{SseEvent, SseRead, SseStream};
pub use tokens::{base64url, now_seconds, sign, sign_with_header};

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

//! What a response or a JSON value must be, as a check that returns the failure (for
//! table-driven tests, see [`Failures`]) or as an assertion that panics with it.

use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::tokens::now_seconds;

/// The value of header `name`, as text, if present.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// One limit a response shows: its quota `q` and window `w` from `RateLimit-Policy`, what is
/// left `r` and the seconds until it grows `t` from `RateLimit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShownLimit {
    pub q: u64,
    pub w: u64,
    pub r: u64,
    pub t: u64,
}

/// The limits a response shows, by policy name in the order listed, checked to be the same
/// policies in `RateLimit-Policy` and `RateLimit`; empty when neither header is there.
pub fn shown_limits(response: &Response) -> Vec<(String, ShownLimit)> {
    let parse = |name: &str| -> Vec<(String, Vec<(String, u64)>)> {
        header(response, name)
            .unwrap_or_default()
            .split(',')
            .filter(|item| !item.trim().is_empty())
            .map(|item| {
                let mut parts = item.trim().split(';');
                let policy = parts
                    .next()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_owned();
                let parameters = parts
                    .map(|part| {
                        let (key, value) = part
                            .split_once('=')
                            .unwrap_or_else(|| panic!("{name}: a parameter in {item}"));
                        let value = value
                            .parse()
                            .unwrap_or_else(|_| panic!("{name}: a number in {item}"));
                        (key.trim().to_owned(), value)
                    })
                    .collect();
                (policy, parameters)
            })
            .collect()
    };
    let policies = parse("ratelimit-policy");
    let left = parse("ratelimit");
    let names = |items: &[(String, Vec<(String, u64)>)]| -> Vec<String> {
        items.iter().map(|(name, _)| name.clone()).collect()
    };
    assert_eq!(names(&policies), names(&left), "the same policies in both");
    let get = |parameters: &[(String, u64)], key: &str| -> u64 {
        parameters
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| *value)
            .unwrap_or_else(|| panic!("{key} in {parameters:?}"))
    };
    policies
        .into_iter()
        .zip(left)
        .map(|((name, policy), (_, left))| {
            let limit = ShownLimit {
                q: get(&policy, "q"),
                w: get(&policy, "w"),
                r: get(&left, "r"),
                t: get(&left, "t"),
            };
            (name, limit)
        })
        .collect()
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

/// Asserts that `account` is an `Account` (the owner's own view) with exactly its fields,
/// `id` and `email`, a valid handle and the role `member`.
pub fn assert_account(account: &Value, id: i64, email: &str, context: &str) {
    assert_fields(
        account,
        &[
            "created_at",
            "display_name",
            "email",
            "email_verified",
            "handle",
            "id",
            "role",
        ],
        &format!("{context}: an Account"),
    );
    assert_eq!(
        account["email"].as_str(),
        Some(email),
        "{context}: the account's email: {account}"
    );
    assert_eq!(account["role"], "member", "{context}: {account}");
    assert!(
        account["email_verified"].is_boolean(),
        "{context}: {account}"
    );
    assert_person(account, id, context);
}

/// Asserts that `profile` is a `Profile` (everyone's view of a person: no email) with
/// exactly its fields and `id`.
pub fn assert_profile(profile: &Value, id: i64, context: &str) {
    assert_fields(
        profile,
        &["created_at", "display_name", "handle", "id"],
        &format!("{context}: a Profile"),
    );
    assert_person(profile, id, context);
}

fn assert_person(person: &Value, id: i64, context: &str) {
    assert_eq!(
        person["id"].as_i64(),
        Some(id),
        "{context}: the person's id: {person}"
    );
    let handle = person["handle"].as_str().unwrap_or_default();
    assert!(
        (3..=30).contains(&handle.len())
            && handle
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "{context}: a handle of 3 to 30 of a-z, 0-9 and _: {person}"
    );
    assert!(
        person["display_name"].is_null() || person["display_name"].is_string(),
        "{context}: {person}"
    );
    assert_recent_utc_timestamp(&person["created_at"], context);
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

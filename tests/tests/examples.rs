//! The spec's examples, which Swagger UI and ReDoc show and schemathesis sends: every part
//! of the spec has one, each is valid against its schema, and each is what the service
//! answers. The request examples, replayed in the order of the history they tell (register,
//! log in, write the post, vote, ...), get answers of the shape of the response examples;
//! the errors are provoked by changing one thing of an example request.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use api_tests::{
    Mailbox, Method, SseRead, SseStream, StatusCode, TestApp, Value, expect_json, header, id_of,
    json, on_both_backends,
};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Statuses that no request made from an example can provoke (a body over 1 MiB, a limit
/// hit, a database down): their examples are checked against their schemas only.
const UNPROVOKED: &[&str] = &["413", "429", "500", "503"];

/// An id that nothing has in the replay.
const MISSING_ID: i64 = 999_999;

/// Where mailed links point when `PUBLIC_URL` is not set (development).
const DEFAULT_PUBLIC_URL: &str = "http://localhost:3000";

fn served_spec() -> Value {
    serde_json::from_str(&api::openapi_json()).expect("the spec is JSON")
}

/// `(operation id, method, path, operation)` for every operation of the spec.
fn operations(spec: &Value) -> Vec<(String, String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("the spec has paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                let id = operation["operationId"].as_str().unwrap_or_default();
                found.push((id.into(), method.into(), path.clone(), operation.clone()));
            }
        }
    }
    found
}

fn entries(value: &Value) -> impl Iterator<Item = (&String, &Value)> {
    value.as_object().into_iter().flatten()
}

/// A part of the spec that shows an example: where it is, its schema, and its example.
struct Part {
    place: String,
    schema: Value,
    example: Option<Value>,
}

/// Every schema of the components, and every parameter, request body, response body and
/// response header of every operation.
fn parts(spec: &Value) -> Vec<Part> {
    let mut parts = Vec::new();
    for (name, schema) in entries(&spec["components"]["schemas"]) {
        parts.push(Part {
            place: format!("schema {name}"),
            schema: json!({ "$ref": format!("#/components/schemas/{name}") }),
            example: schema.get("example").cloned(),
        });
    }
    for (id, _, _, operation) in operations(spec) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            parts.push(Part {
                place: format!("{id}: parameter {}", parameter["name"]),
                schema: parameter["schema"].clone(),
                example: parameter.get("example").cloned(),
            });
        }
        for (media, object) in entries(&operation["requestBody"]["content"]) {
            parts.push(Part {
                place: format!("{id}: request body {media}"),
                schema: object["schema"].clone(),
                example: object.get("example").cloned(),
            });
        }
        for (status, response) in entries(&operation["responses"]) {
            for (media, object) in entries(&response["content"]) {
                parts.push(Part {
                    place: format!("{id}: {status} {media}"),
                    schema: object["schema"].clone(),
                    example: object.get("example").cloned(),
                });
            }
            for (name, object) in entries(&response["headers"]) {
                parts.push(Part {
                    place: format!("{id}: {status} header {name}"),
                    schema: object["schema"].clone(),
                    example: object.get("example").cloned(),
                });
            }
        }
    }
    parts
}

/// An OpenAPI 3.0 schema as JSON Schema (2020-12): `nullable` becomes a `null` type, and
/// references to the components point into `$defs`.
fn json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => {
            let mut converted: serde_json::Map<String, Value> = object
                .iter()
                .filter(|(key, _)| *key != "nullable")
                .map(|(key, value)| match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => (
                        key.clone(),
                        json!(reference.replace("#/components/schemas/", "#/$defs/")),
                    ),
                    _ => (key.clone(), json_schema(value)),
                })
                .collect();
            if object.get("nullable") == Some(&json!(true))
                && let Some(Value::String(kind)) = object.get("type")
            {
                converted.insert("type".into(), json!([kind, "null"]));
            }
            Value::Object(converted)
        }
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        other => other.clone(),
    }
}

/// What is wrong with `instance` by `schema` (a schema of the spec, which may refer to its
/// components); empty when it is valid.
fn schema_errors(spec: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let mut root = json_schema(schema);
    root["$defs"] = json_schema(&spec["components"]["schemas"]);
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|err| panic!("{schema} is a valid schema: {err}"));
    validator
        .iter_errors(instance)
        .map(|error| format!("{} at `{}`", error, error.instance_path()))
        .collect()
}

/// How `actual` differs in shape from `example`: keys and value types, recursively (ids,
/// tokens and times differ by nature). `null` passes for any type: the schema, checked
/// too, says where it may be.
fn shape_differences(example: &Value, actual: &Value, at: &str) -> Vec<String> {
    match (example, actual) {
        (Value::Null, _) | (_, Value::Null) => Vec::new(),
        (Value::Object(example), Value::Object(actual)) => {
            let expected: BTreeSet<&String> = example.keys().collect();
            let found: BTreeSet<&String> = actual.keys().collect();
            let mut differences = Vec::new();
            if expected != found {
                differences.push(format!(
                    "{at}: the example has keys {expected:?}, the answer {found:?}"
                ));
            }
            for key in expected.intersection(&found) {
                differences.extend(shape_differences(
                    &example[key.as_str()],
                    &actual[key.as_str()],
                    &format!("{at}.{key}"),
                ));
            }
            differences
        }
        // Each item has the shape of one of the example's (a log's entries differ by step).
        (Value::Array(example), Value::Array(actual)) if !example.is_empty() => actual
            .iter()
            .enumerate()
            .flat_map(|(i, found)| {
                let mut differences: Vec<Vec<String>> = example
                    .iter()
                    .map(|item| shape_differences(item, found, &format!("{at}[{i}]")))
                    .collect();
                differences.sort_by_key(Vec::len);
                differences.swap_remove(0)
            })
            .collect(),
        (Value::Array(_), Value::Array(_)) => {
            vec![format!("{at}: the example is an empty array")]
        }
        (example, actual) if kind(example) == kind(actual) => Vec::new(),
        (example, actual) => vec![format!(
            "{at}: the example is a {}, the answer a {} ({actual})",
            kind(example),
            kind(actual)
        )],
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A parameter's value as text.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[test]
fn every_schema_parameter_body_response_and_header_has_an_example() {
    let spec = served_spec();
    let parts = parts(&spec);
    let missing: Vec<&str> = parts
        .iter()
        .filter(|part| part.example.is_none())
        .map(|part| part.place.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} parts of the spec have no example:\n{}",
        missing.len(),
        parts.len(),
        missing.join("\n")
    );
}

#[test]
fn every_example_is_valid_against_its_schema() {
    let spec = served_spec();
    let mut invalid = Vec::new();
    for part in parts(&spec) {
        let Some(example) = &part.example else {
            continue;
        };
        for error in schema_errors(&spec, &part.schema, example) {
            invalid.push(format!("{}: {error}", part.place));
        }
    }
    assert!(
        invalid.is_empty(),
        "examples that break their schemas:\n{}",
        invalid.join("\n")
    );
}

/// A request made from an operation's examples, with some of it changed.
struct Call {
    operation: String,
    token: Option<String>,
    /// Parameters given other values than their examples.
    params: BTreeMap<String, String>,
    /// Body fields given other values than the example's (`None`: left out).
    fields: BTreeMap<String, Option<Value>>,
    /// The body's media type: `application/json` unless said.
    media: &'static str,
}

impl Call {
    fn token(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self
    }

    fn param(mut self, name: &str, value: impl ToString) -> Self {
        self.params.insert(name.into(), value.to_string());
        self
    }

    fn field(mut self, name: &str, value: Value) -> Self {
        self.fields.insert(name.into(), Some(value));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.fields.insert(name.into(), None);
        self
    }

    fn form(mut self) -> Self {
        self.media = "application/x-www-form-urlencoded";
        self
    }

    /// A body of a type no operation takes.
    fn plain_text(mut self) -> Self {
        self.media = "text/plain";
        self
    }
}

/// An answer, as the replay keeps it.
struct Answer {
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .unwrap_or_else(|| panic!("the answer has no {name} header"))
    }
}

/// Replays requests made from the spec's examples against the app, and checks each answer
/// against its response's schema and example.
struct Replay {
    app: TestApp,
    spec: Value,
    /// `(operation, status)` of every answer checked.
    answered: BTreeSet<(String, String)>,
    failures: Vec<String>,
}

impl Replay {
    fn new(app: TestApp) -> Self {
        Self {
            app,
            spec: served_spec(),
            answered: BTreeSet::new(),
            failures: Vec::new(),
        }
    }

    fn operation(&self, id: &str) -> (String, String, Value) {
        operations(&self.spec)
            .into_iter()
            .find(|(found, ..)| found == id)
            .map(|(_, method, path, operation)| (method, path, operation))
            .unwrap_or_else(|| panic!("the spec has no operation {id}"))
    }

    /// The example of schema `name` of the components.
    fn example_of(&self, name: &str) -> Value {
        self.spec["components"]["schemas"][name]["example"].clone()
    }

    fn call(&self, operation: &str) -> Call {
        Call {
            operation: operation.into(),
            token: None,
            params: BTreeMap::new(),
            fields: BTreeMap::new(),
            media: "application/json",
        }
    }

    /// The request `call` stands for, on a client of its own without a timeout (a stream's
    /// answer does not end).
    fn request(&self, call: &Call) -> reqwest::RequestBuilder {
        let (method, mut path, operation) = self.operation(&call.operation);
        let mut query = Vec::new();
        let mut headers = Vec::new();
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str().unwrap_or_default();
            let value = call
                .params
                .get(name)
                .cloned()
                .unwrap_or_else(|| text(&parameter["example"]));
            match parameter["in"].as_str() {
                Some("path") => path = path.replace(&format!("{{{name}}}"), &value),
                Some("query") => query.push((name.to_owned(), value)),
                _ => headers.push((name.to_owned(), value)),
            }
        }
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let mut request = reqwest::Client::new()
            .request(method, self.app.url(&path))
            .query(&query);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(token) = &call.token {
            request = request.bearer_auth(token);
        }
        let content = &operation["requestBody"]["content"];
        if call.media == "text/plain" {
            return request.header("content-type", "text/plain").body("hello");
        }
        if let Some(Value::Object(example)) = content[call.media].get("example") {
            let mut body = example.clone();
            for (name, value) in &call.fields {
                match value {
                    Some(value) => body.insert(name.clone(), value.clone()),
                    None => body.remove(name),
                };
            }
            request = match call.media {
                "application/json" => request.json(&body),
                _ => request.form(&body),
            };
        }
        request
    }

    /// Sends `call`, expects `status`, and checks the answer against the response the spec
    /// declares for it: its schema, its example's shape, its required headers.
    async fn expect(&mut self, call: Call, status: u16) -> Answer {
        let (method, path, operation) = self.operation(&call.operation);
        let context = format!(
            "{} ({} {path}) → {status}",
            call.operation,
            method.to_uppercase()
        );
        let response = self
            .request(&call)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|err| panic!("{context}: the request failed: {err}"));
        let headers = response.headers().clone();
        let actual = response.status();
        let content_type = header(&response, "content-type").unwrap_or_default();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        if actual.as_u16() != status {
            self.failures
                .push(format!("{context}: got {actual} with {text}"));
            return Answer { body, headers };
        }
        self.answered
            .insert((call.operation.clone(), status.to_string()));
        let declared = &operation["responses"][status.to_string()];
        self.check_headers(&context, declared, &headers);
        match media(&declared["content"], &content_type) {
            None if text.is_empty() => {}
            None => self.failures.push(format!(
                "{context}: an undeclared body of {content_type}: {text}"
            )),
            Some(object) => {
                let (schema, example) = (&object["schema"], &object["example"]);
                for error in schema_errors(&self.spec, schema, &body) {
                    self.failures
                        .push(format!("{context}: the answer breaks its schema: {error}"));
                }
                for difference in shape_differences(example, &body, "body") {
                    self.failures.push(format!("{context}: {difference}"));
                }
            }
        }
        Answer { body, headers }
    }

    fn check_headers(
        &mut self,
        context: &str,
        declared: &Value,
        found: &reqwest::header::HeaderMap,
    ) {
        for (name, object) in entries(&declared["headers"]) {
            if object["required"] == json!(true) && !found.contains_key(name.as_str()) {
                self.failures
                    .push(format!("{context}: the required header {name} is missing"));
            }
        }
    }

    /// Opens `streamEvents` as `call` says and checks the events it replays against the
    /// response's schema and the shapes of its example's events.
    async fn expect_events(&mut self, call: Call) {
        let context = format!("{} → 200", call.operation);
        let response = self
            .request(&call)
            .send()
            .await
            .unwrap_or_else(|err| panic!("{context}: the request failed: {err}"));
        if response.status() != StatusCode::OK {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            self.failures
                .push(format!("{context}: got {status} with {text}"));
            return;
        }
        let (_, _, operation) = self.operation(&call.operation);
        let declared = &operation["responses"]["200"];
        self.check_headers(&context, declared, response.headers());
        let object = media(&declared["content"], "text/event-stream")
            .expect("the stream's media type is declared")
            .clone();
        let examples = object["example"].as_array().cloned().unwrap_or_default();
        let mut stream = SseStream::new(response);
        let mut events = 0;
        while let SseRead::Event(event) = stream.next(Duration::from_secs(2)).await {
            events += 1;
            // Whole, `type` included: that is what the schema describes.
            let data: Value = serde_json::from_str(&event.data).expect("event data is JSON");
            let place = format!("{context}: event {} ({})", event.event, event.data);
            for error in schema_errors(&self.spec, &object["schema"], &json!([data])) {
                self.failures
                    .push(format!("{place} breaks its schema: {error}"));
            }
            if !examples
                .iter()
                .any(|example| shape_differences(example, &data, "data").is_empty())
            {
                self.failures.push(format!(
                    "{place} has the shape of none of the example's events"
                ));
            }
        }
        if events == 0 {
            self.failures
                .push(format!("{context}: no event was replayed"));
        }
        self.answered.insert((call.operation.clone(), "200".into()));
    }

    /// Fails naming every declared answer that no request provoked (but those that none
    /// can), and every failure found on the way.
    fn finish(self) {
        let mut failures = self.failures;
        for (id, _, _, operation) in operations(&self.spec) {
            for (status, _) in entries(&operation["responses"]) {
                if !UNPROVOKED.contains(&status.as_str())
                    && !self.answered.contains(&(id.clone(), status.clone()))
                {
                    failures.push(format!("{id} → {status} was not replayed"));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// The media type object of `content` for the response's `content_type`, ignoring
/// parameters such as `charset`.
fn media<'a>(content: &'a Value, content_type: &str) -> Option<&'a Value> {
    let essence = |name: &str| {
        name.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_lowercase()
    };
    entries(content)
        .find(|(name, _)| essence(name) == essence(content_type))
        .map(|(_, object)| object)
}

async fn the_request_examples_get_the_response_examples(app: TestApp) {
    // Ann's verification mails go to a real SMTP server, where the test reads her tokens;
    // writes need a verified address, so that someone else's are refused (403) for want of
    // one; she may ask for a new mail half a second after the last.
    let mailbox = Mailbox::start();
    let smtp_url = mailbox.url();
    let app = TestApp::spawn_with(app.backend, |settings| {
        settings.smtp_url = Some(smtp_url.into());
        settings.require_verified_email = true;
        settings.verification_resend_seconds = 0.5;
    })
    .await;
    let mut replay = Replay::new(app);
    let account = replay.example_of("UserCreate");
    let password_change = replay.example_of("PasswordChange");

    // Without a token, every operation that needs one is a 401.
    let secured: Vec<String> = operations(&replay.spec)
        .into_iter()
        .filter(|(.., operation)| {
            operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
        })
        .map(|(id, ..)| id)
        .collect();
    for id in &secured {
        let call = replay.call(id);
        replay.expect(call, 401).await;
    }

    for id in ["root", "liveness", "health"] {
        let call = replay.call(id);
        replay.expect(call, 200).await;
    }

    // Ann registers: user 1.
    replay.expect(replay.call("createUser"), 201).await;
    replay.expect(replay.call("createUser"), 409).await;
    replay
        .expect(replay.call("createUser").field("email", json!("ann")), 422)
        .await;
    replay
        .expect(replay.call("createUser").plain_text(), 415)
        .await;

    // She logs in twice (sessions 1 and 2), and refreshes each session's tokens.
    let first = replay.expect(replay.call("login"), 200).await.body;
    let second = replay.expect(replay.call("login").form(), 200).await.body;
    let token = second["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned();
    replay
        .expect(
            replay
                .call("login")
                .field("password", json!("not her password")),
            401,
        )
        .await;
    replay
        .expect(replay.call("login").field("password", json!("")), 422)
        .await;
    replay.expect(replay.call("login").plain_text(), 415).await;
    let refreshed = replay
        .expect(
            replay
                .call("refreshToken")
                .field("refresh_token", first["refresh_token"].clone()),
            200,
        )
        .await
        .body;
    replay
        .expect(
            replay
                .call("refreshToken")
                .form()
                .field("refresh_token", refreshed["refresh_token"].clone()),
            200,
        )
        .await;
    // The example's refresh token is none this service issued.
    replay.expect(replay.call("refreshToken"), 401).await;
    replay
        .expect(replay.call("refreshToken").without("refresh_token"), 422)
        .await;
    replay
        .expect(replay.call("refreshToken").plain_text(), 415)
        .await;

    replay
        .expect(replay.call("readMe").token(&token), 200)
        .await;
    replay
        .expect(replay.call("getUser").token(&token), 200)
        .await;
    replay
        .expect(
            replay.call("getUser").token(&token).param("id", MISSING_ID),
            404,
        )
        .await;
    replay
        .expect(replay.call("getUser").token(&token).param("id", 0), 422)
        .await;
    replay
        .expect(replay.call("listSessions").token(&token), 200)
        .await;

    // She asks for a new verification mail, and verifies her address with its token; the
    // example's token is none the service issued.
    let ann = account["email"].as_str().expect("the example's email");
    mailbox
        .wait_for_mails_to(ann, 1, Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    replay
        .expect(replay.call("requestVerification").token(&token), 202)
        .await;
    let mails = mailbox
        .wait_for_mails_to(ann, 2, Duration::from_secs(30))
        .await;
    replay.expect(replay.call("verifyEmail"), 422).await;
    replay
        .expect(replay.call("verifyEmail").plain_text(), 415)
        .await;
    replay
        .expect(
            replay
                .call("verifyEmail")
                .field("token", json!(mails[1].token(DEFAULT_PUBLIC_URL))),
            204,
        )
        .await;
    replay
        .expect(replay.call("requestVerification").token(&token), 409)
        .await;

    // Someone else, to be refused what only Ann may do, and writing before verifying.
    let other = replay.app.create_user_and_login().await;
    replay
        .expect(replay.call("createPost").token(&other.token), 403)
        .await;

    // Ann writes post 1.
    let created = replay
        .expect(replay.call("createPost").token(&token), 201)
        .await;
    let etag = created.header("etag");
    replay
        .expect(
            replay
                .call("createPost")
                .token(&token)
                .field("title", json!("  ")),
            422,
        )
        .await;
    replay
        .expect(replay.call("createPost").token(&token).plain_text(), 415)
        .await;

    replay
        .expect(replay.call("getPost").token(&token), 200)
        .await;
    replay
        .expect(
            replay
                .call("getPost")
                .token(&token)
                .param("If-None-Match", &etag),
            304,
        )
        .await;
    replay
        .expect(
            replay.call("getPost").token(&token).param("id", MISSING_ID),
            404,
        )
        .await;
    replay
        .expect(replay.call("getPost").token(&token).param("id", 0), 422)
        .await;

    replay
        .expect(replay.call("listPosts").token(&token), 200)
        .await;
    replay
        .expect(
            replay.call("listPosts").token(&token).param("limit", 0),
            422,
        )
        .await;

    // She changes it, then puts it back as it was: whatever its version, at its first
    // version (changed since), or as someone else.
    for (id, invalid) in [
        ("updatePost", ("published", Value::Null)),
        ("replacePost", ("title", json!("  "))),
    ] {
        replay.expect(replay.call(id).token(&token), 200).await;
        replay
            .expect(replay.call(id).token(&token).param("If-Match", &etag), 412)
            .await;
        replay
            .expect(replay.call(id).token(&other.token), 403)
            .await;
        replay
            .expect(replay.call(id).token(&token).param("id", MISSING_ID), 404)
            .await;
        replay
            .expect(
                replay.call(id).token(&token).field(invalid.0, invalid.1),
                422,
            )
            .await;
        replay
            .expect(replay.call(id).token(&token).plain_text(), 415)
            .await;
    }

    // She votes for it, again, and takes the vote back.
    replay
        .expect(replay.call("castVote").token(&token), 201)
        .await;
    replay
        .expect(replay.call("castVote").token(&other.token), 403)
        .await;
    replay
        .expect(replay.call("castVote").token(&token), 409)
        .await;
    replay
        .expect(
            replay.call("castVote").token(&token).field("dir", json!(0)),
            200,
        )
        .await;
    replay
        .expect(
            replay
                .call("castVote")
                .token(&token)
                .field("post_id", json!(MISSING_ID)),
            404,
        )
        .await;
    replay
        .expect(
            replay.call("castVote").token(&token).field("dir", json!(2)),
            422,
        )
        .await;
    replay
        .expect(replay.call("castVote").token(&token).plain_text(), 415)
        .await;

    // She follows the changes since the post was created.
    replay
        .expect(replay.call("issueEventTicket").token(&token), 201)
        .await;
    replay
        .expect_events(replay.call("streamEvents").token(&token))
        .await;
    replay
        .expect(
            replay
                .call("streamEvents")
                .token(&token)
                .param("Last-Event-ID", -1),
            422,
        )
        .await;

    // She deletes it.
    replay
        .expect(
            replay
                .call("deletePost")
                .token(&token)
                .param("If-Match", &etag),
            412,
        )
        .await;
    replay
        .expect(replay.call("deletePost").token(&other.token), 403)
        .await;
    replay
        .expect(
            replay
                .call("deletePost")
                .token(&token)
                .param("id", MISSING_ID),
            404,
        )
        .await;
    replay
        .expect(replay.call("deletePost").token(&token).param("id", 0), 422)
        .await;
    replay
        .expect(replay.call("deletePost").token(&token), 204)
        .await;

    // She finds her profile by her handle, gives herself a display name, and cannot take
    // someone else's handle (nor give it to them).
    replay
        .expect(replay.call("getProfile").token(&token), 200)
        .await;
    replay
        .expect(
            replay
                .call("getProfile")
                .token(&token)
                .param("handle", "nobody"),
            404,
        )
        .await;
    replay
        .expect(
            replay.call("getProfile").token(&token).param("handle", "a"),
            422,
        )
        .await;
    replay
        .expect(replay.call("updateMe").token(&token), 200)
        .await;
    let others = replay.app.get("/users/me", Some(&other.token)).await;
    let others = expect_json(others, StatusCode::OK, "the other person's account").await;
    replay
        .expect(
            replay
                .call("updateMe")
                .token(&token)
                .field("handle", others["handle"].clone()),
            409,
        )
        .await;
    // Writes need a verified address here, and the other person has not verified theirs.
    replay
        .expect(replay.call("updateMe").token(&other.token), 403)
        .await;
    replay
        .expect(
            replay
                .call("updateMe")
                .token(&token)
                .field("display_name", json!("  ")),
            422,
        )
        .await;
    replay
        .expect(replay.call("updateMe").token(&token).plain_text(), 415)
        .await;

    // She asks to move her account to another address; someone registers that address
    // before she opens the link, so the link cannot move her account there.
    replay
        .expect(replay.call("changeEmail").token(&token), 202)
        .await;
    replay
        .expect(
            replay
                .call("changeEmail")
                .token(&token)
                .field("current_password", json!("not her password")),
            403,
        )
        .await;
    replay
        .expect(
            replay
                .call("changeEmail")
                .token(&token)
                .field("new_email", json!(other.email)),
            409,
        )
        .await;
    replay
        .expect(
            replay
                .call("changeEmail")
                .token(&token)
                .field("new_email", json!("ann")),
            422,
        )
        .await;
    replay
        .expect(replay.call("changeEmail").token(&token).plain_text(), 415)
        .await;
    let new_email = replay.example_of("EmailChange")["new_email"]
        .as_str()
        .expect("the example's new address")
        .to_owned();
    let confirmation = mailbox
        .wait_for_mails_to(&new_email, 1, Duration::from_secs(30))
        .await
        .remove(0);
    replay
        .app
        .create_user(&new_email, "someone else's password")
        .await;
    replay
        .expect(
            replay
                .call("verifyEmail")
                .field("token", json!(confirmation.token(DEFAULT_PUBLIC_URL))),
            409,
        )
        .await;

    // She ends her first session, then every other one, and changes her password.
    replay
        .expect(replay.call("endSession").token(&token), 204)
        .await;
    replay
        .expect(
            replay
                .call("endSession")
                .token(&token)
                .param("id", MISSING_ID),
            404,
        )
        .await;
    replay
        .expect(replay.call("endSession").token(&token).param("id", 0), 422)
        .await;
    replay
        .expect(replay.call("endOtherSessions").token(&token), 204)
        .await;
    replay
        .expect(
            replay
                .call("changePassword")
                .token(&token)
                .field("new_password", json!("short")),
            422,
        )
        .await;
    replay
        .expect(
            replay.call("changePassword").token(&token).plain_text(),
            415,
        )
        .await;
    replay
        .expect(replay.call("changePassword").token(&token), 204)
        .await;
    // The example's current password is her old one now.
    replay
        .expect(replay.call("changePassword").token(&token), 403)
        .await;

    // Mo, an administrator made from the command line, makes Ann a moderator and a member
    // again, hides a post of hers and restores it, suspends her and lifts it, and reads the
    // log; Ann, a member, may do none of it.
    let moderation = [
        "setRole",
        "hidePost",
        "restorePost",
        "suspendUser",
        "liftSuspension",
        "listHiddenPosts",
        "readModerationLog",
    ];
    for id in moderation {
        replay.expect(replay.call(id).token(&token), 403).await;
    }
    let mo = replay.app.create_user_and_login().await;
    replay.app.grant(&mo.email, "admin").await;
    let created = replay
        .app
        .create_post(
            &token,
            &json!({ "title": "Cheap watches", "content": "Buy them here." }),
        )
        .await;
    let post = id_of(&expect_json(created, StatusCode::CREATED, "Ann's post").await);
    replay
        .expect(replay.call("setRole").token(&mo.token), 200)
        .await;
    replay
        .expect(
            replay
                .call("setRole")
                .token(&mo.token)
                .field("role", json!("member")),
            200,
        )
        .await;
    replay
        .expect(
            replay
                .call("setRole")
                .token(&mo.token)
                .param("id", MISSING_ID),
            404,
        )
        .await;
    replay
        .expect(
            replay
                .call("setRole")
                .token(&mo.token)
                .field("role", json!("owner")),
            422,
        )
        .await;
    replay
        .expect(replay.call("setRole").token(&mo.token).plain_text(), 415)
        .await;
    for (id, done) in [
        ("hidePost", 204),
        ("listHiddenPosts", 200),
        ("restorePost", 204),
    ] {
        let call = replay.call(id).token(&mo.token).param("id", post);
        replay.expect(call, done).await;
        if id != "listHiddenPosts" {
            let again = replay.call(id).token(&mo.token).param("id", post);
            replay.expect(again, 409).await;
            let missing = replay.call(id).token(&mo.token).param("id", MISSING_ID);
            replay.expect(missing, 404).await;
        }
    }
    replay
        .expect(
            replay
                .call("hidePost")
                .token(&mo.token)
                .param("id", post)
                .field("reason", json!("  ")),
            422,
        )
        .await;
    replay
        .expect(
            replay
                .call("hidePost")
                .token(&mo.token)
                .param("id", post)
                .plain_text(),
            415,
        )
        .await;
    for id in ["restorePost", "liftSuspension"] {
        replay
            .expect(replay.call(id).token(&mo.token).param("id", 0), 422)
            .await;
    }
    for id in ["listHiddenPosts", "readModerationLog"] {
        replay
            .expect(replay.call(id).token(&mo.token).param("limit", 0), 422)
            .await;
    }
    replay
        .expect(replay.call("suspendUser").token(&mo.token), 204)
        .await;
    replay
        .expect(replay.call("suspendUser").token(&mo.token), 409)
        .await;
    replay
        .expect(
            replay
                .call("suspendUser")
                .token(&mo.token)
                .param("id", MISSING_ID),
            404,
        )
        .await;
    replay
        .expect(
            replay
                .call("suspendUser")
                .token(&mo.token)
                .field("until", json!("tomorrow")),
            422,
        )
        .await;
    replay
        .expect(
            replay.call("suspendUser").token(&mo.token).plain_text(),
            415,
        )
        .await;
    replay
        .expect(replay.call("liftSuspension").token(&mo.token), 204)
        .await;
    replay
        .expect(replay.call("liftSuspension").token(&mo.token), 409)
        .await;
    replay
        .expect(
            replay
                .call("liftSuspension")
                .token(&mo.token)
                .param("id", MISSING_ID),
            404,
        )
        .await;
    replay
        .expect(replay.call("readModerationLog").token(&mo.token), 200)
        .await;
    // The suspension ended her sessions.
    let token = replay
        .app
        .login(
            account["email"].as_str().expect("the example's email"),
            password_change["new_password"]
                .as_str()
                .expect("the example's new password"),
        )
        .await;

    // She logs out, logs in with her new password, forgets it, resets it through the link
    // of a mail (which ends her session), logs in with the one she chose, and deletes her
    // account.
    replay
        .expect(replay.call("logout").token(&token), 204)
        .await;
    let email = account["email"].as_str().expect("the example's email");
    let new_password = password_change["new_password"]
        .as_str()
        .expect("the example's new password");
    let token = replay.app.login(email, new_password).await;
    replay
        .expect(replay.call("requestPasswordReset"), 202)
        .await;
    replay
        .expect(
            replay
                .call("requestPasswordReset")
                .field("email", json!("ann")),
            422,
        )
        .await;
    replay
        .expect(replay.call("requestPasswordReset").plain_text(), 415)
        .await;
    // Two verification mails, the notice of the address change, and this one.
    let mails = mailbox
        .wait_for_mails_to(email, 4, Duration::from_secs(30))
        .await;
    let reset = mails
        .iter()
        .find(|mail| mail.subject().contains("Reset"))
        .expect("the reset mail");
    replay.expect(replay.call("resetPassword"), 422).await;
    replay
        .expect(replay.call("resetPassword").plain_text(), 415)
        .await;
    replay
        .expect(
            replay
                .call("resetPassword")
                .field("token", json!(reset.token(DEFAULT_PUBLIC_URL))),
            204,
        )
        .await;
    replay
        .expect(replay.call("readMe").token(&token), 401)
        .await;
    let chosen = replay.example_of("PasswordReset")["new_password"]
        .as_str()
        .expect("the example's new password")
        .to_owned();
    let token = replay.app.login(email, &chosen).await;
    replay
        .expect(replay.call("deleteMe").token(&token), 204)
        .await;

    replay.finish();
}

on_both_backends!(the_request_examples_get_the_response_examples);

//! The contract: `openapi.yaml` at the workspace root is the spec the service serves, and
//! that spec documents what the API promises, so generated clients and Swagger UI users get
//! the real thing.

use std::collections::BTreeSet;
use std::path::PathBuf;

use api_tests::{Backend, Method, StatusCode, TestApp, Value, expect_invalid, expect_json, json};

const UPDATE_HINT: &str =
    "run `UPDATE_OPENAPI=1 cargo test -p api-tests --test suite openapi::` and review the diff";

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "options", "head", "trace",
];

/// Every operation the API promises, with the statuses it must document.
const PROMISED: &[(&str, &str, &[&str])] = &[
    ("get", "/", &["200"]),
    ("get", "/health", &["200", "503"]),
    ("get", "/health/live", &["200"]),
    ("post", "/users", &["201", "409", "422"]),
    ("get", "/users/me", &["200", "401"]),
    ("post", "/users/verify", &["204", "409", "422"]),
    (
        "put",
        "/users/me/email",
        &["202", "401", "403", "409", "422", "429"],
    ),
    ("post", "/password-reset", &["202", "422", "429"]),
    ("post", "/password-reset/confirm", &["204", "422"]),
    (
        "post",
        "/users/me/verification",
        &["202", "401", "409", "429"],
    ),
    ("delete", "/users/me", &["204", "401"]),
    ("get", "/users/{}", &["200", "401", "404"]),
    ("patch", "/users/me", &["200", "401", "409", "422", "429"]),
    ("get", "/profiles/{}", &["200", "401", "404", "422"]),
    ("post", "/login", &["200", "401", "422", "429"]),
    ("post", "/login/refresh", &["200", "401", "422"]),
    ("post", "/logout", &["204", "401"]),
    ("get", "/users/me/sessions", &["200", "401"]),
    ("delete", "/users/me/sessions", &["204", "401"]),
    ("delete", "/users/me/sessions/{}", &["204", "401", "404"]),
    (
        "put",
        "/users/me/password",
        &["204", "401", "403", "422", "429"],
    ),
    ("get", "/posts", &["200", "401", "422"]),
    ("post", "/posts", &["201", "401", "422", "429"]),
    ("get", "/posts/{}", &["200", "304", "401", "404"]),
    (
        "put",
        "/posts/{}",
        &["200", "401", "403", "404", "412", "422", "429"],
    ),
    (
        "patch",
        "/posts/{}",
        &["200", "401", "403", "404", "412", "422", "429"],
    ),
    (
        "delete",
        "/posts/{}",
        &["204", "401", "403", "404", "412", "429"],
    ),
    (
        "post",
        "/vote",
        &["200", "201", "401", "404", "409", "422", "429"],
    ),
    ("post", "/events/ticket", &["201", "401"]),
    ("get", "/events", &["200", "401", "422"]),
    (
        "put",
        "/users/{}/role",
        &["200", "401", "403", "404", "422"],
    ),
    (
        "post",
        "/posts/{}/hide",
        &["204", "401", "403", "404", "409", "422"],
    ),
    (
        "delete",
        "/posts/{}/hide",
        &["204", "401", "403", "404", "409"],
    ),
    (
        "post",
        "/users/{}/suspend",
        &["204", "401", "403", "404", "409", "422"],
    ),
    (
        "delete",
        "/users/{}/suspend",
        &["204", "401", "403", "404", "409"],
    ),
    ("get", "/moderation/hidden", &["200", "401", "403", "422"]),
    ("get", "/moderation/log", &["200", "401", "403", "422"]),
];

/// Operations anyone may call; every other promised one takes a bearer token.
const PUBLIC: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/health"),
    ("get", "/health/live"),
    ("post", "/users"),
    ("post", "/users/verify"),
    ("post", "/password-reset"),
    ("post", "/password-reset/confirm"),
    ("post", "/login"),
    ("post", "/login/refresh"),
];

/// Paths that may be in the spec beside the promised ones: the documentation itself.
const DOCUMENTATION_PATHS: &[&str] = &["/docs", "/redoc", "/openapi.json", "/openapi.yaml"];

fn committed_spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("openapi.yaml")
}

/// The spec as `/openapi.json` serves it.
async fn served_spec() -> Value {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = app.get("/openapi.json", None).await;
    expect_json(response, StatusCode::OK, "GET /openapi.json").await
}

/// `/posts/{post_id}` → `/posts/{}`, so the table does not depend on parameter names.
fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_parameter = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_parameter = true;
                out.push_str("{}");
            }
            '}' => in_parameter = false,
            _ if in_parameter => {}
            _ => out.push(c),
        }
    }
    out
}

/// `(method, normalized path, operation)` for every operation in the spec.
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let paths = spec["paths"].as_object().expect("the spec has paths");
    let mut found = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.push((method.to_owned(), normalize(path), operation.clone()));
            }
        }
    }
    found
}

fn operation<'a>(ops: &'a [(String, String, Value)], method: &str, path: &str) -> &'a Value {
    ops.iter()
        .find(|(m, p, _)| m == method && p == path)
        .map(|(_, _, op)| op)
        .unwrap_or_else(|| {
            panic!(
                "the spec does not document {} {path}",
                method.to_uppercase()
            )
        })
}

/// Follows `$ref` (and a single-element `allOf` wrapping one) to the schema itself.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("an unexpected $ref {reference}"));
        return resolve(spec, &spec["components"]["schemas"][name]);
    }
    if let Some([only]) = schema["allOf"].as_array().map(Vec::as_slice) {
        return resolve(spec, only);
    }
    schema
}

/// The property names of an object schema, checking that all of them are required.
fn required_properties(schema: &Value, what: &str) -> BTreeSet<String> {
    let properties: BTreeSet<String> = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{what} is an object schema: {schema}"))
        .keys()
        .cloned()
        .collect();
    let required: BTreeSet<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        required, properties,
        "every field of {what} is always present, so required"
    );
    properties
}

/// The media type object of `content` for `essence`, ignoring parameters such as `charset`.
fn media<'a>(content: &'a Value, essence: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    content
        .as_object()
        .and_then(|media_types| {
            media_types.iter().find_map(|(name, media)| {
                let name = name.split(';').next().unwrap_or_default().trim();
                name.eq_ignore_ascii_case(essence).then_some(media)
            })
        })
        .unwrap_or(&NULL)
}

fn json_response_schema<'a>(spec: &'a Value, op: &'a Value, status: &str, what: &str) -> &'a Value {
    let schema = &media(&op["responses"][status]["content"], "application/json")["schema"];
    assert!(
        !schema.is_null(),
        "{what}: the {status} response has an application/json schema"
    );
    resolve(spec, schema)
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_committed_openapi_yaml_is_the_served_spec() {
    let served = api::openapi_yaml();
    let path = committed_spec_path();
    let committed = std::fs::read_to_string(&path);
    if std::env::var("UPDATE_OPENAPI").as_deref() == Ok("1") {
        if committed.as_deref().ok() != Some(served.as_str()) {
            std::fs::write(&path, &served)
                .unwrap_or_else(|err| panic!("could not write {}: {err}", path.display()));
            eprintln!("rewrote {}", path.display());
        }
        return;
    }
    let committed = committed
        .unwrap_or_else(|err| panic!("{} cannot be read ({err}); {UPDATE_HINT}", path.display()));
    if committed != served {
        let line = committed
            .lines()
            .zip(served.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(served.lines().count()));
        panic!(
            "openapi.yaml differs from the spec the service serves, first at line {}:\n  committed: {:?}\n  served:    {:?}\n{UPDATE_HINT}",
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            served.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_documents_every_promised_operation_and_nothing_else() {
    let spec = served_spec().await;
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document: {}",
        spec["openapi"]
    );
    let ops = operations(&spec);
    let documented: BTreeSet<(String, String)> =
        ops.iter().map(|(m, p, _)| (m.clone(), p.clone())).collect();
    for (method, path, _) in PROMISED {
        assert!(
            documented.contains(&((*method).to_owned(), (*path).to_owned())),
            "the spec documents {} {path}",
            method.to_uppercase()
        );
    }
    for (method, path) in &documented {
        let promised = PROMISED.iter().any(|(m, p, _)| m == method && p == path);
        assert!(
            promised || DOCUMENTATION_PATHS.contains(&path.as_str()),
            "{} {path} is documented but not part of the API",
            method.to_uppercase()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_has_a_unique_camel_case_operation_id() {
    let spec = served_spec().await;
    let mut seen = BTreeSet::new();
    for (method, path, op) in operations(&spec) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{} {path} has no operationId", method.to_uppercase()));
        assert!(
            id.starts_with(|c: char| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{} {path}: operationId {id:?} is camelCase, like listPosts",
            method.to_uppercase()
        );
        assert!(
            seen.insert(id.to_owned()),
            "operationId {id:?} is used twice"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_has_a_declared_tag() {
    let spec = served_spec().await;
    let declared: BTreeSet<String> = spec["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for (method, path, op) in operations(&spec) {
        let tags = op["tags"].as_array().cloned().unwrap_or_default();
        assert!(
            !tags.is_empty(),
            "{} {path} has a tag",
            method.to_uppercase()
        );
        for tag in tags {
            let tag = tag.as_str().expect("a tag is a string");
            assert!(
                declared.contains(tag),
                "{} {path}: tag {tag:?} is declared in the spec's tags",
                method.to_uppercase()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_documents_its_statuses() {
    let spec = served_spec().await;
    let ops = operations(&spec);
    for (method, path, statuses) in PROMISED {
        let op = operation(&ops, method, path);
        let documented: BTreeSet<String> = op["responses"]
            .as_object()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        for status in *statuses {
            assert!(
                documented.contains(*status),
                "{} {path} documents {status}; it documents {documented:?}",
                method.to_uppercase()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_error_is_problem_json() {
    let spec = served_spec().await;
    for (method, path, op) in operations(&spec) {
        // The root and liveness answer whatever happens: they have no errors to document.
        if path == "/" || path == "/health/live" || DOCUMENTATION_PATHS.contains(&path.as_str()) {
            continue;
        }
        let responses = op["responses"].as_object().cloned().unwrap_or_default();
        let mut errors = 0;
        for (status, response) in &responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            errors += 1;
            assert!(
                media(&response["content"], "application/problem+json").is_object(),
                "{} {path}: the {status} response is application/problem+json: {response}",
                method.to_uppercase()
            );
        }
        assert!(
            errors > 0,
            "{} {path} documents its errors",
            method.to_uppercase()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_that_need_a_token_declare_the_security_scheme() {
    let spec = served_spec().await;
    let ops = operations(&spec);
    let global = spec["security"].as_array().is_some_and(|s| !s.is_empty());
    for (method, path, _) in PROMISED {
        let op = operation(&ops, method, path);
        let secured = match op["security"].as_array() {
            Some(requirements) => !requirements.is_empty(),
            None => global,
        };
        let public = PUBLIC.contains(&(*method, *path));
        assert_eq!(
            secured,
            !public,
            "{} {path} {} a bearer token",
            method.to_uppercase(),
            if public { "does not need" } else { "needs" }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_operations_say_so() {
    let spec = served_spec().await;
    for (method, path, op) in operations(&spec) {
        assert!(
            op["security"].is_array(),
            "{} {path} says what security it needs, `[]` for none: tools read a missing \
             `security` as not said",
            method.to_uppercase()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_string_and_integer_input_has_a_bound_said_exactly() {
    let spec = served_spec().await;
    let bounded = |schema: &Value, what: &str| {
        let schema = resolve(&spec, schema);
        if schema["type"] == "string" {
            assert!(
                schema["maxLength"].is_u64() || schema["enum"].is_array(),
                "{what} has a maxLength: {schema}"
            );
        }
        // A float cannot say every 64-bit bound: a client reading 2^63 − 1 as a float
        // takes the largest id for one past the bound.
        if schema["type"] == "integer" {
            assert!(
                (schema["maximum"].is_i64() || schema["enum"].is_array())
                    && (schema.get("minimum").is_none() || schema["minimum"].is_i64())
                    && schema.get("exclusiveMaximum").is_none()
                    && schema.get("exclusiveMinimum").is_none(),
                "{what} has a maximum, its bounds integers and inclusive: {schema}"
            );
        }
    };
    for (method, path, op) in operations(&spec) {
        let method = method.to_uppercase();
        for parameter in op["parameters"].as_array().into_iter().flatten() {
            let what = format!("{method} {path} parameter {}", parameter["name"]);
            bounded(&parameter["schema"], &what);
        }
        let bodies = op["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten();
        for (media_type, body) in bodies {
            let schema = resolve(&spec, &body["schema"]);
            bounded(schema, &format!("{method} {path} {media_type} body"));
            for (field, property) in schema["properties"].as_object().into_iter().flatten() {
                bounded(
                    property,
                    &format!("{method} {path} {media_type} field {field}"),
                );
            }
        }
    }
}

/// Every header name in the spec: response headers and header parameters.
fn header_names(spec: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for (_, _, op) in operations(spec) {
        found.extend(header_parameters(&op));
        for response in op["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, r)| r)
        {
            found.extend(
                response["headers"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, _)| name.clone()),
            );
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_header_is_spelled_one_way_as_its_specification_spells_it() {
    let spec = served_spec().await;
    let mut spellings: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for name in header_names(&spec) {
        assert_ne!(
            name,
            name.to_ascii_uppercase(),
            "{name} is spelled as its specification spells it, not in capitals"
        );
        spellings
            .entry(name.to_ascii_lowercase())
            .or_default()
            .insert(name);
    }
    for (header, spelled) in &spellings {
        assert_eq!(spelled.len(), 1, "{header} is spelled one way: {spelled:?}");
    }
    for header in [
        "etag",
        "link",
        "location",
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
    ] {
        assert!(
            spellings.contains_key(header),
            "{header} is declared: {spellings:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_says_where_the_api_is_and_under_which_license() {
    let spec = served_spec().await;
    assert_eq!(
        spec["servers"][0]["url"], "/",
        "relative: the API is wherever the document was read"
    );
    assert_eq!(spec["info"]["license"]["name"], env!("CARGO_PKG_LICENSE"));
    assert!(spec["info"]["contact"].is_object());
    let license = std::fs::read_to_string(committed_spec_path().with_file_name("LICENSE"))
        .expect("the workspace has a LICENSE file");
    assert!(
        license.starts_with(&format!("{} License", env!("CARGO_PKG_LICENSE"))),
        "LICENSE is the license the spec names"
    );
}

/// The `maxLength` the spec declares for `name`, a parameter or a field of a body of the
/// operation.
fn max_length(spec: &Value, method: &str, path: &str, name: &str) -> usize {
    let ops = operations(spec);
    let op = operation(&ops, method, path);
    let parameters = op["parameters"].as_array().into_iter().flatten();
    let mut schemas: Vec<&Value> = parameters
        .filter(|p| p["name"] == name)
        .map(|p| &p["schema"])
        .collect();
    for body in op["requestBody"]["content"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, b)| b)
    {
        schemas.extend(resolve(spec, &body["schema"])["properties"].get(name));
    }
    let schema = schemas
        .first()
        .unwrap_or_else(|| panic!("{method} {path} declares {name}"));
    let bound = resolve(spec, schema)["maxLength"]
        .as_u64()
        .unwrap_or_else(|| panic!("{method} {path}: {name} has a maxLength"));
    usize::try_from(bound).unwrap()
}

async fn every_declared_maximum_length_is_enforced(app: TestApp) {
    let spec = served_spec().await;
    let user = app.create_user_and_login().await;
    let post = app.new_post(&user, "Bounded", true).await;
    let post_path = format!("/posts/{}", post["id"]);
    let past = |method, path, name| "x".repeat(max_length(&spec, method, path, name) + 1);

    for name in ["search", "cursor"] {
        let response = app
            .request(Method::GET, "/posts", Some(&user.token))
            .query(&[(name, past("get", "/posts", name))])
            .send()
            .await
            .unwrap();
        expect_invalid(response, name, &format!("a {name} past its maxLength")).await;
    }
    let response = app
        .request(Method::GET, &post_path, Some(&user.token))
        .header("If-None-Match", past("get", "/posts/{}", "If-None-Match"))
        .send()
        .await
        .unwrap();
    expect_invalid(
        response,
        "If-None-Match",
        "an If-None-Match past its maxLength",
    )
    .await;
    let response = app
        .request(Method::PATCH, &post_path, Some(&user.token))
        .header("If-Match", past("patch", "/posts/{}", "If-Match"))
        .json(&json!({ "content": "Changed" }))
        .send()
        .await
        .unwrap();
    expect_invalid(response, "If-Match", "an If-Match past its maxLength").await;

    let padded = format!(
        "Title{}",
        " ".repeat(max_length(&spec, "post", "/posts", "title"))
    );
    let response = app
        .post(
            "/posts",
            Some(&user.token),
            &json!({ "title": padded, "content": "c" }),
        )
        .await;
    expect_invalid(response, "title", "a title past its maxLength as sent").await;

    let token = past("post", "/login/refresh", "refresh_token");
    let response = app.refresh(&token).await;
    expect_invalid(
        response,
        "refresh_token",
        "a refresh token past its maxLength",
    )
    .await;

    let scope = past("post", "/login", "scope");
    let response = app
        .login_form(&[
            ("username", "ann@example.org"),
            ("password", "secret"),
            ("scope", &scope),
        ])
        .await;
    expect_invalid(
        response,
        "scope",
        "an ignored form field past its maxLength",
    )
    .await;
}

api_tests::on_both_backends!(every_declared_maximum_length_is_enforced);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_can_log_in_through_the_password_flow() {
    let spec = served_spec().await;
    let schemes = spec["components"]["securitySchemes"]
        .as_object()
        .expect("the spec declares security schemes");
    let flow = schemes
        .values()
        .find(|s| s["type"] == "oauth2")
        .map(|s| &s["flows"]["password"])
        .expect("an OAuth2 scheme with the password flow");
    assert!(
        flow["tokenUrl"]
            .as_str()
            .is_some_and(|url| url.ends_with("/login")),
        "the password flow's tokenUrl is /login: {flow}"
    );
    assert!(
        flow["refreshUrl"]
            .as_str()
            .is_some_and(|url| url.ends_with("/login/refresh")),
        "the password flow's refreshUrl is /login/refresh: {flow}"
    );
    assert!(
        flow["scopes"].as_object().is_some_and(|s| !s.is_empty()),
        "the password flow declares a scope, or the spec does not validate: {flow}"
    );

    let ops = operations(&spec);
    let content = &operation(&ops, "post", "/login")["requestBody"]["content"];
    for media_type in ["application/json", "application/x-www-form-urlencoded"] {
        assert!(
            media(content, media_type).is_object(),
            "POST /login accepts {media_type}: {content}"
        );
    }
    let form = resolve(
        &spec,
        &media(content, "application/x-www-form-urlencoded")["schema"],
    );
    let fields: BTreeSet<String> = form["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for field in ["username", "password"] {
        assert!(fields.contains(field), "the login form has {field}: {form}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_and_limited_responses_document_their_headers() {
    let spec = served_spec().await;
    let ops = operations(&spec);
    let has_header = |op: &Value, status: &str, name: &str| {
        op["responses"][status]["headers"]
            .as_object()
            .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case(name)))
    };
    for path in ["/users", "/posts"] {
        let op = operation(&ops, "post", path);
        assert!(
            has_header(op, "201", "Location"),
            "POST {path} documents Location on 201"
        );
    }
    let login = operation(&ops, "post", "/login");
    assert!(
        has_header(login, "429", "Retry-After"),
        "POST /login documents Retry-After on 429"
    );
    // Every answer of a write says what is left of the write budget.
    for (method, path, success) in [
        ("post", "/posts", "201"),
        ("put", "/posts/{}", "200"),
        ("patch", "/posts/{}", "200"),
        ("delete", "/posts/{}", "204"),
        ("post", "/vote", "201"),
        ("post", "/vote", "200"),
    ] {
        let op = operation(&ops, method, path);
        for status in [success, "412", "422", "429"] {
            if status != success && op["responses"][status].is_null() {
                continue;
            }
            for name in ["RateLimit-Policy", "RateLimit"] {
                assert!(
                    has_header(op, status, name),
                    "{method} {path} documents {name} on {status}"
                );
            }
        }
        assert!(
            has_header(op, "429", "Retry-After"),
            "{method} {path} documents Retry-After on 429"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_schemas_have_the_promised_fields() {
    let spec = served_spec().await;
    let ops = operations(&spec);
    let account = names(&[
        "id",
        "email",
        "email_verified",
        "handle",
        "display_name",
        "role",
        "created_at",
    ]);
    let profile = names(&["id", "handle", "display_name", "created_at"]);
    let post_out = names(&[
        "id",
        "title",
        "content",
        "published",
        "hidden",
        "hidden_reason",
        "created_at",
        "owner_id",
        "owner",
        "votes",
    ]);

    for (method, path, status, fields) in [
        ("get", "/users/me", "200", &account),
        ("patch", "/users/me", "200", &account),
        ("post", "/users", "201", &account),
        ("get", "/users/{}", "200", &profile),
        ("get", "/profiles/{}", "200", &profile),
    ] {
        let schema = json_response_schema(&spec, operation(&ops, method, path), status, path);
        assert_eq!(
            &required_properties(schema, "Account or Profile"),
            fields,
            "{method} {path}"
        );
    }
    for (method, path, status) in [
        ("post", "/posts", "201"),
        ("get", "/posts/{}", "200"),
        ("put", "/posts/{}", "200"),
        ("patch", "/posts/{}", "200"),
    ] {
        let schema = json_response_schema(&spec, operation(&ops, method, path), status, path);
        assert_eq!(
            required_properties(schema, "PostOut"),
            post_out,
            "{method} {path}"
        );
        let owner = resolve(&spec, &schema["properties"]["owner"]);
        assert_eq!(
            required_properties(owner, "PostOut.owner"),
            profile,
            "the owner is a Profile: no email"
        );
    }
    let list = json_response_schema(&spec, operation(&ops, "get", "/posts"), "200", "GET /posts");
    assert_eq!(list["type"], "array", "GET /posts returns an array");
    assert_eq!(
        required_properties(resolve(&spec, &list["items"]), "PostOut"),
        post_out
    );

    let token = json_response_schema(
        &spec,
        operation(&ops, "post", "/login"),
        "200",
        "POST /login",
    );
    let token_fields = names(&[
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
    ]);
    assert_eq!(required_properties(token, "Token"), token_fields);
    let refreshed = json_response_schema(
        &spec,
        operation(&ops, "post", "/login/refresh"),
        "200",
        "POST /login/refresh",
    );
    assert_eq!(required_properties(refreshed, "Token"), token_fields);
    let sessions = json_response_schema(
        &spec,
        operation(&ops, "get", "/users/me/sessions"),
        "200",
        "GET /users/me/sessions",
    );
    assert_eq!(
        sessions["type"], "array",
        "GET /users/me/sessions returns an array"
    );
    let session = resolve(&spec, &sessions["items"]);
    assert_eq!(
        required_properties(session, "Session"),
        names(&[
            "id",
            "created_at",
            "last_used_at",
            "user_agent",
            "client_address",
            "current"
        ])
    );
    for nullable in ["user_agent", "client_address"] {
        assert_eq!(
            session["properties"][nullable]["nullable"], true,
            "Session.{nullable} is declared nullable"
        );
    }
    for status in ["200", "201"] {
        let result = json_response_schema(
            &spec,
            operation(&ops, "post", "/vote"),
            status,
            "POST /vote",
        );
        assert_eq!(
            required_properties(result, "VoteResult"),
            names(&["message"])
        );
    }
}

/// The names of the headers a response declares, lower-cased.
fn response_headers(op: &Value, status: &str) -> BTreeSet<String> {
    op["responses"][status]["headers"]
        .as_object()
        .map(|headers| {
            headers
                .keys()
                .map(|name| name.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

/// The names of the header parameters an operation declares.
fn header_parameters(op: &Value) -> BTreeSet<String> {
    op["parameters"]
        .as_array()
        .map(|parameters| {
            parameters
                .iter()
                .filter(|p| p["in"] == "header")
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_requests_and_links_are_declared() {
    let spec = served_spec().await;
    let ops = operations(&spec);
    for (method, status) in [
        ("post", "201"),
        ("get", "200"),
        ("get", "304"),
        ("put", "200"),
        ("patch", "200"),
        ("put", "412"),
        ("patch", "412"),
        ("delete", "412"),
    ] {
        let path = if method == "post" {
            "/posts"
        } else {
            "/posts/{}"
        };
        let op = operation(&ops, method, path);
        assert!(
            response_headers(op, status).contains("etag"),
            "{method} {path} {status} declares ETag"
        );
    }
    let read = operation(&ops, "get", "/posts/{}");
    assert!(header_parameters(read).contains("If-None-Match"));
    assert!(
        read["responses"]["304"]["content"].is_null(),
        "a 304 has no body"
    );
    for method in ["put", "patch", "delete"] {
        let op = operation(&ops, method, "/posts/{}");
        assert!(
            header_parameters(op).contains("If-Match"),
            "{method} declares If-Match"
        );
    }
    let list = operation(&ops, "get", "/posts");
    assert!(response_headers(list, "200").contains("link"));
    let parameters: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(parameters.contains(&"cursor"), "{parameters:?}");
    // The next page as a link, so tools (schemathesis' stateful phase) can page by
    // `Link`: to listPosts itself, its `cursor` read from the `Link` header.
    let next_page = &list["responses"]["200"]["links"]["nextPage"];
    assert_eq!(next_page["operationId"], "listPosts", "{next_page}");
    let cursor = next_page["parameters"]["cursor"]
        .as_str()
        .unwrap_or_default();
    assert!(
        cursor.starts_with("$response.header.Link#regex:"),
        "the cursor comes from the Link header: {next_page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_are_declared_as_a_typed_event_stream() {
    let spec = served_spec().await;
    let ops = operations(&spec);
    let stream = operation(&ops, "get", "/events");
    let content = &stream["responses"]["200"]["content"]["text/event-stream"]["schema"];
    assert_eq!(content["type"], "array", "{content}");
    assert_eq!(content["format"], "event-stream", "{content}");
    // One schema per event name, told apart by `type`, which every event's data carries.
    let data = resolve(&spec, &content["items"]);
    assert_eq!(data["discriminator"]["propertyName"], "type", "{data}");
    let mapping = data["discriminator"]["mapping"]
        .as_object()
        .unwrap_or_else(|| panic!("the discriminator maps each event name: {data}"));
    let members: BTreeSet<&str> = data["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("the event data is one of several schemas: {data}"))
        .iter()
        .filter_map(|schema| schema["$ref"].as_str())
        .collect();
    let mut event_names = BTreeSet::new();
    for (name, reference) in mapping {
        let reference = reference.as_str().unwrap_or_default();
        assert!(
            members.contains(reference),
            "{name} maps to a member: {data}"
        );
        let member = json!({ "$ref": reference });
        let member = resolve(&spec, &member);
        assert!(
            required_properties(member, reference).contains("type"),
            "{reference} requires `type`"
        );
        assert_eq!(
            member["properties"]["type"]["enum"],
            json!([name]),
            "{reference}'s `type` is its event name"
        );
        event_names.insert(name.clone());
    }
    assert_eq!(members.len(), mapping.len(), "one member per event name");
    assert_eq!(
        event_names,
        names(&[
            "post.created",
            "post.updated",
            "post.deleted",
            "vote",
            "profile.updated",
            "reset"
        ])
    );
    assert!(header_parameters(stream).contains("Last-Event-ID"));
    assert!(response_headers(stream, "200").contains("x-accel-buffering"));
    let schemes: Vec<&str> = stream["security"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|requirement| requirement.as_object()?.keys().next().map(String::as_str))
        .collect();
    assert!(schemes.contains(&"EventTicket"), "{schemes:?}");
    assert!(schemes.contains(&"BearerToken"), "{schemes:?}");
    let ticket = &spec["components"]["securitySchemes"]["EventTicket"];
    assert_eq!(ticket["type"], "apiKey");
    assert_eq!(ticket["in"], "query");
    assert_eq!(ticket["name"], "ticket");
    let issued = json_response_schema(
        &spec,
        operation(&ops, "post", "/events/ticket"),
        "201",
        "a ticket",
    );
    assert_eq!(
        required_properties(issued, "EventTicket"),
        names(&["ticket", "expires_in"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_schema_mentions_a_password_hash() {
    let spec = served_spec().await;
    let schemas = spec["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (name, schema) in schemas {
        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for property in properties.keys() {
            assert!(
                !property.contains("hash"),
                "schema {name} exposes {property}"
            );
        }
    }
}

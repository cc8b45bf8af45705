//! What every operation of the served document says that poem-openapi's derive cannot: that
//! an operation without security requirements is public (`security: []`; the derive leaves
//! the key out, which tools read as "not said"), how each header is spelled (the derive
//! writes a response header's name in capitals, `ETAG`), whom the servers are for, and an
//! integer's bounds as integers.

use serde_yaml::{Mapping, Value};

use crate::fields::INT64_BOUND_AS_FLOAT;

/// Every header the service declares, spelled as its specification writes it.
pub(crate) const HEADER_SPELLINGS: &[&str] = &[
    "Cache-Control",
    "ETag",
    "If-Match",
    "If-None-Match",
    "Last-Event-ID",
    "Link",
    "Location",
    "Pragma",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "WWW-Authenticate",
    "X-Accel-Buffering",
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "options", "head", "trace",
];

/// Applies the conventions to every operation of `spec`, and to its servers.
pub(crate) fn apply(spec: &mut Value) {
    let paths = spec
        .get_mut("paths")
        .and_then(Value::as_mapping_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut());
    for item in paths {
        for method in METHODS {
            if let Some(operation) = item.get_mut(method).and_then(Value::as_mapping_mut) {
                declare_public(operation);
                spell_headers(operation);
            }
        }
    }
    declare_audience(spec);
    write_integer_bounds(spec);
}

/// `security: []` on an operation that requires none.
fn declare_public(operation: &mut Mapping) {
    if !operation.contains_key("security") {
        operation.insert("security".into(), Value::Sequence(Vec::new()));
    }
}

/// Each response header and header parameter spelled as [`HEADER_SPELLINGS`] says.
fn spell_headers(operation: &mut Mapping) {
    let responses = operation
        .get_mut("responses")
        .and_then(Value::as_mapping_mut)
        .into_iter()
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        if let Some(headers) = response.get_mut("headers").and_then(Value::as_mapping_mut) {
            *headers = std::mem::take(headers)
                .into_iter()
                .map(|(name, header)| (name.as_str().map_or(name.clone(), spelled), header))
                .collect();
        }
    }
    let parameters = operation
        .get_mut("parameters")
        .and_then(Value::as_sequence_mut)
        .into_iter()
        .flatten()
        .filter(|parameter| parameter.get("in").and_then(Value::as_str) == Some("header"));
    for parameter in parameters {
        if let Some(name) = parameter.get("name").and_then(Value::as_str).map(spelled) {
            parameter["name"] = name;
        }
    }
}

fn spelled(name: &str) -> Value {
    HEADER_SPELLINGS
        .iter()
        .find(|spelling| spelling.eq_ignore_ascii_case(name))
        .map_or(name, |spelling| *spelling)
        .into()
}

/// Every server is the public API (OpenAPI's `x-internal` extension says for whom a server
/// is, which API inventories read).
fn declare_audience(spec: &mut Value) {
    let servers = spec
        .get_mut("servers")
        .and_then(Value::as_sequence_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_mapping_mut);
    for server in servers {
        server.insert("x-internal".into(), false.into());
    }
}

/// The bounds of every integer written as integers: poem-openapi writes them as floats
/// (`maximum: 100.0`), and the bound of a 64-bit integer as 2^63, exclusive, since no float
/// is 2^63 − 1. A tool that reads 2^63 − 1 as a float rounds it to 2^63 and takes the
/// largest id for one past the bound.
fn write_integer_bounds(value: &mut Value) {
    match value {
        Value::Mapping(mapping) => {
            if mapping.get("type").and_then(Value::as_str) == Some("integer") {
                if mapping.get("exclusiveMaximum") == Some(&Value::Bool(true))
                    && mapping.get("maximum").and_then(Value::as_f64) == Some(INT64_BOUND_AS_FLOAT)
                {
                    mapping.remove("exclusiveMaximum");
                    mapping.insert("maximum".into(), i64::MAX.into());
                }
                for bound in ["minimum", "maximum"] {
                    if let Some(whole) = mapping.get(bound).and_then(whole_number) {
                        mapping.insert(bound.into(), whole.into());
                    }
                }
            }
            mapping.values_mut().for_each(write_integer_bounds);
        }
        Value::Sequence(items) => items.iter_mut().for_each(write_integer_bounds),
        _ => {}
    }
}

/// A float that is a whole number a float says exactly (within ±2^53), as that integer.
fn whole_number(value: &Value) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let float = value
        .as_f64()
        .filter(|_| !value.is_i64() && !value.is_u64())?;
    #[allow(clippy::cast_possible_truncation)]
    (float.fract() == 0.0 && float.abs() <= EXACT).then_some(float as i64)
}

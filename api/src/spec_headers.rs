//! Response headers as the spec declares them, for the error sets of `problem` and the
//! success responses of `write_limit` alike.

use poem_openapi::registry::{MetaHeader, MetaSchema, MetaSchemaRef};

/// A response header of text, as the spec declares it.
pub fn text_header(name: &str, description: &str, required: bool) -> MetaHeader {
    MetaHeader {
        name: name.into(),
        description: Some(description.into()),
        required,
        deprecated: false,
        schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
    }
}

/// The write budget's headers, on every response of a write (`write_limit` sets them).
pub fn write_budget_headers() -> Vec<MetaHeader> {
    [
        (
            "RateLimit-Policy",
            "The write limit (IETF draft-ietf-httpapi-ratelimit-headers): `\"writes\";q=60;w=60`, \
             60 writes per account in a window of 60 seconds (`WRITES_PER_MINUTE`, 60 by \
             default). Absent when the limit is off.",
        ),
        (
            "RateLimit",
            "What is left of the caller's write budget: `\"writes\";r=57;t=41`, 57 more writes \
             in the 41 seconds until the window ends. Absent when the limit is off.",
        ),
    ]
    .into_iter()
    // Absent when the limit is off, so not required.
    .map(|(name, description)| text_header(name, description, false))
    .collect()
}

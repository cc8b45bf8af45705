//! Response headers as the spec declares them, for the error sets of `problem` and the
//! success responses of `rate_limit` alike.

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

/// The headers of the limits an operation is counted against, on every response of it
/// (`rate_limit` sets them); the operation's description names its limits.
pub fn limit_headers() -> Vec<MetaHeader> {
    [
        (
            "RateLimit-Policy",
            "The limits this request was counted against (IETF \
             draft-ietf-httpapi-ratelimit-headers, structured fields), each named with its \
             quota `q` and window `w` in seconds: `\"writes\";q=60;w=60` is 60 writes per \
             account in a window of 60 seconds. A limit that is off is not listed; with every \
             limit off the header is absent.",
        ),
        (
            "RateLimit",
            "What is left of each limit listed in `RateLimit-Policy`: `\"writes\";r=57;t=41` is \
             57 more writes, the budget growing again in 41 seconds. Absent when \
             `RateLimit-Policy` is.",
        ),
    ]
    .into_iter()
    // Absent when every limit is off, so not required.
    .map(|(name, description)| text_header(name, description, false))
    .collect()
}

//! Conditional requests (RFC 9110 §13): a post's `ETag`, and what `If-Match` and
//! `If-None-Match` ask of it. The tag is the service's opaque [`PostTags::tag`] in quotes;
//! `If-Match` compares strongly (a weak tag never matches), `If-None-Match` weakly. A header
//! may list any number of tags: they are compared here, as a set, never by the database.

use std::collections::HashSet;

use service::posts::{Expected, PostTags, PostView};

/// The `ETag` of the post as `view` shows it: a strong entity-tag.
pub fn etag(tags: &PostTags, view: &PostView) -> String {
    quoted(&tags.tag(view))
}

/// A service tag as an entity-tag.
pub fn quoted(tag: &str) -> String {
    format!("\"{tag}\"")
}

/// What a write's `If-Match` accepts: any state when it is absent or `*`, else the states its
/// strong tags name. A weak tag, a tag the service never gave, or a header that is no list
/// of entity-tags names no state: the write is refused as stale.
pub fn if_match(header: Option<&str>) -> Expected<'_> {
    match header.map(EntityTags::parse) {
        None | Some(Some(EntityTags::Any)) => Expected::Any,
        Some(Some(EntityTags::List(tags))) => Expected::OneOf(
            tags.into_iter()
                .filter(|tag| !tag.weak)
                .map(|tag| tag.opaque)
                .collect(),
        ),
        Some(None) => Expected::OneOf(HashSet::new()),
    }
}

/// Whether `If-None-Match` names the post's `current` tag (weak comparison): then a read
/// answers 304. A header that is no list of entity-tags names nothing.
pub fn none_match(header: Option<&str>, current: &str) -> bool {
    match header.and_then(EntityTags::parse) {
        None => false,
        Some(EntityTags::Any) => true,
        Some(EntityTags::List(tags)) => tags.iter().any(|tag| tag.opaque == current),
    }
}

/// The value of `If-Match` or `If-None-Match`.
#[derive(Debug, PartialEq, Eq)]
enum EntityTags<'a> {
    Any,
    List(Vec<EntityTag<'a>>),
}

#[derive(Debug, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    /// Between the quotes.
    opaque: &'a str,
}

impl<'a> EntityTags<'a> {
    /// `*`, or a comma-separated list of `"tag"` and `W/"tag"`; `None` for anything else.
    fn parse(header: &'a str) -> Option<Self> {
        if header.trim() == "*" {
            return Some(Self::Any);
        }
        let mut tags = Vec::new();
        for item in header
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (weak, quoted) = match item.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, item),
            };
            let opaque = quoted.strip_prefix('"')?.strip_suffix('"')?;
            // etagc: any visible character but `"`.
            if opaque.bytes().any(|b| b == b'"' || b < 0x21 || b == 0x7f) {
                return None;
            }
            tags.push(EntityTag { weak, opaque });
        }
        (!tags.is_empty()).then_some(Self::List(tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "Qx3-_a";

    fn one_of(tags: &[&'static str]) -> Expected<'static> {
        Expected::OneOf(tags.iter().copied().collect())
    }

    #[test]
    fn if_match_compares_strongly() {
        let expected = |header| if_match(Some(header));
        assert_eq!(if_match(None), Expected::Any);
        assert_eq!(expected("*"), Expected::Any);
        assert_eq!(expected(r#""Qx3-_a""#), one_of(&[TAG]));
        assert_eq!(expected(r#""9.9", "Qx3-_a""#), one_of(&["9.9", TAG]));
        assert_eq!(expected(r#"W/"9.9", "Qx3-_a""#), one_of(&[TAG]));
        for never in [
            r#"W/"Qx3-_a""#,
            "Qx3-_a",
            r#""Qx3-_a"#,
            "",
            r#""Qx3-_a" junk"#,
        ] {
            assert_eq!(expected(never), one_of(&[]), "{never}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let matches = |header| none_match(Some(header), TAG);
        assert!(matches(r#""Qx3-_a""#));
        assert!(matches(r#"W/"Qx3-_a""#));
        assert!(matches(r#""1.0", W/"Qx3-_a""#));
        assert!(matches("*"));
        for other in [r#""Qx3-_b""#, r#""Qx3-_a"#, "Qx3-_a", ""] {
            assert!(!matches(other), "{other}");
        }
        assert!(!none_match(None, TAG));
    }

    #[test]
    fn a_long_list_is_read_in_one_pass() {
        let header = (0..22_000)
            .map(|n| format!("\"{n}.0\""))
            .chain([quoted(TAG)])
            .collect::<Vec<_>>()
            .join(", ");
        let Expected::OneOf(tags) = if_match(Some(&header)) else {
            panic!("a list");
        };
        assert_eq!(tags.len(), 22_001);
        assert!(tags.contains(TAG));
    }
}

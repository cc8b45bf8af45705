//! Conditional requests (RFC 9110 §13): a post's `ETag`, and what `If-Match` and
//! `If-None-Match` ask of it. The tag is the service's [`PostState`] in quotes; `If-Match`
//! compares strongly (a weak tag never matches), `If-None-Match` weakly.

use service::posts::{Expected, PostState};

/// The `ETag` of a post in `state`: a strong entity-tag.
pub fn etag(state: PostState) -> String {
    quoted(&state.tag())
}

/// A service tag as an entity-tag.
pub fn quoted(tag: &str) -> String {
    format!("\"{tag}\"")
}

/// What a write's `If-Match` accepts: any state when it is absent or `*`, else the states its
/// strong tags name. A weak tag, a tag the service never gave, or a header that is no list
/// of entity-tags names no state: the write is refused as stale.
pub fn if_match(header: Option<&str>) -> Expected {
    match header.map(EntityTags::parse) {
        None | Some(Some(EntityTags::Any)) => Expected::Any,
        Some(Some(EntityTags::List(tags))) => Expected::OneOf(
            tags.iter()
                .filter(|tag| !tag.weak)
                .filter_map(|tag| PostState::from_tag(tag.opaque))
                .collect(),
        ),
        Some(None) => Expected::OneOf(Vec::new()),
    }
}

/// Whether `If-None-Match` names the post's current state (weak comparison): then a read
/// answers 304. A header that is no list of entity-tags names nothing.
pub fn none_match(header: Option<&str>, current: PostState) -> bool {
    let current = current.tag();
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

    const STATE: PostState = PostState {
        version: 3,
        votes: 1,
    };

    #[test]
    fn if_match_compares_strongly() {
        let expected = |header| if_match(Some(header));
        assert_eq!(if_match(None), Expected::Any);
        assert_eq!(expected("*"), Expected::Any);
        assert_eq!(expected(r#""3.1""#), Expected::OneOf(vec![STATE]));
        assert_eq!(
            expected(r#""9.9", "3.1""#),
            Expected::OneOf(vec![
                PostState {
                    version: 9,
                    votes: 9
                },
                STATE
            ])
        );
        for never in [
            r#"W/"3.1""#,
            r#""x""#,
            "3.1",
            r#""3.1"#,
            "",
            r#""3.1" junk"#,
        ] {
            assert_eq!(expected(never), Expected::OneOf(Vec::new()), "{never}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let matches = |header| none_match(Some(header), STATE);
        assert!(matches(r#""3.1""#));
        assert!(matches(r#"W/"3.1""#));
        assert!(matches(r#""1.0", W/"3.1""#));
        assert!(matches("*"));
        for other in [r#""3.2""#, r#""3.1"#, "3.1", ""] {
            assert!(!matches(other), "{other}");
        }
        assert!(!none_match(None, STATE));
    }

    #[test]
    fn the_etag_is_strong_and_reads_back_as_the_state() {
        let tag = etag(STATE);
        assert_eq!(tag, r#""3.1""#);
        assert_eq!(if_match(Some(&tag)), Expected::OneOf(vec![STATE]));
    }
}

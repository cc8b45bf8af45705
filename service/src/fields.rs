//! What every field's rule shares: the broken fields of a request; texts
//! bounded in characters; white space as the spec's patterns mean it; and the rules of the
//! fields no one resource owns (ids, bounds on what is read). Each resource's own values
//! (a title, an email, …) are made by their rules in the resource's folder.
//!
//! Lengths are counted in characters (Unicode code points), as JSON Schema's `minLength`
//! and `maxLength` count them: a rule in bytes could not be said in the spec.

pub use crate::error::{FieldError, Requirement};

/// White space as the spec's patterns mean it: ECMAScript's `\s`, which JSON Schema's regular
/// expressions follow. It differs from Unicode's White_Space (Rust's `char::is_whitespace`)
/// in two characters: it holds U+FEFF (the byte order mark) and not U+0085 (next line).
pub(crate) fn is_pattern_space(c: char) -> bool {
    c == '\u{feff}' || (c.is_whitespace() && c != '\u{85}')
}

/// A pattern, for the spec, of text that is 1 to `max` characters once trimmed of white
/// space, with no character of `forbidden` (the inside of a character class, such as `\x00`).
pub(crate) fn trimmed_text_pattern(max: usize, forbidden: &str) -> String {
    format!(
        r"^\s*[^\s{forbidden}](?:[^{forbidden}]{{0,{}}}[^\s{forbidden}])?\s*$",
        max - 2
    )
}

/// Text that is 1 to `max` characters once trimmed of white space, at most twice that as
/// sent (a bound on what is read), with no control character: the trimmed text.
///
/// # Errors
/// What the text must be ([`trimmed_text_rule`]).
pub(crate) fn trimmed_text(raw: &str, max: usize) -> Result<&str, Requirement> {
    let text = raw.trim_matches(is_pattern_space);
    if text.is_empty()
        || text.chars().count() > max
        || text.chars().any(char::is_control)
        || raw.chars().count() > 2 * max
    {
        return Err(format!(
            "must be 1 to {max} characters once trimmed of white space (at most {} as sent), \
             with no control character",
            2 * max
        )
        .into());
    }
    Ok(text)
}

/// What [`trimmed_text`] asks, as the spec says it.
pub(crate) fn trimmed_text_rule(max: usize) -> String {
    format!(
        "1 to {max} characters once trimmed of white space (at most {} as sent), with no \
         control character; stored trimmed.",
        2 * max
    )
}

/// [`trimmed_text`] as a regular expression, for the spec. Rust's control characters are
/// Unicode's `Cc`: U+0000 to U+001F and U+007F to U+009F.
pub(crate) fn trimmed_text_without_controls(max: usize) -> String {
    trimmed_text_pattern(max, r"\x00-\x1f\x7f-\x9f")
}

/// Text of at most `max` characters.
///
/// # Errors
/// What the text must be.
pub fn at_most(raw: &str, max: usize) -> Result<(), Requirement> {
    if raw.chars().nth(max).is_some() {
        return Err(format!("must be at most {max} characters long").into());
    }
    Ok(())
}

/// Longest `If-Match` or `If-None-Match`, in characters: 400 KiB, about all a request's head
/// may hold (the HTTP/1.1 server reads at most 408 KiB of one), so a client may list as many
/// entity-tags as it can send, and the service's work does not grow with their number.
pub const ENTITY_TAGS_MAX_CHARS: usize = 400 * 1024;

/// Longest refresh token read, in characters: far more than any token the service issues (a
/// refresh token has 86, an access token about 200), so that one sent in the wrong place is
/// unknown (401), as every malformed one is; only text longer than that is invalid (422).
pub const REFRESH_TOKEN_MAX_CHARS: usize = 1024;

/// Longest account token (verification) read, in characters: more than any the service
/// issues (43), so that every malformed one is refused as unknown (422 naming `token`) by
/// the same check.
pub const ACCOUNT_TOKEN_MAX_CHARS: usize = 256;

/// Longest text of a form field the service ignores (`scope`, `client_id`,
/// `client_secret`): more than any client sends there, and a bound on what is read.
pub const IGNORED_FIELD_MAX_CHARS: usize = 1024;

/// The smallest id of a user or post.
pub const ID_MIN: i64 = 1;

/// An id of a user or post: 1 or more.
///
/// # Errors
/// What an id must be.
pub fn id(value: i64) -> Result<i64, Requirement> {
    if value >= ID_MIN {
        Ok(value)
    } else {
        Err(format!("must be a whole number, {ID_MIN} or more").into())
    }
}

/// The smallest id of an event a subscriber may name: 0, before the first.
pub const EVENT_ID_MIN: i64 = 0;

/// The id of the last event a subscriber received: 0 or more.
///
/// # Errors
/// What an event id must be.
pub fn event_id(value: i64) -> Result<i64, Requirement> {
    if value >= EVENT_ID_MIN {
        Ok(value)
    } else {
        Err(format!(
            "must be a whole number, {EVENT_ID_MIN} or more: the `id` of an event received"
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_bounded_in_characters() {
        assert!(at_most("", 0).is_ok());
        assert!(at_most(&"é".repeat(3), 3).is_ok());
        assert!(at_most(&"é".repeat(4), 3).is_err());
    }

    #[test]
    fn ids_and_event_ids_keep_their_bounds() {
        assert_eq!(id(1), Ok(1));
        assert!(id(0).is_err());
        assert_eq!(event_id(0), Ok(0));
        assert!(event_id(-1).is_err());
    }
}

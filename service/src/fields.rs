//! The rule of every field a client sends, each written once. Each rule is a constant or
//! two and a function that checks a value against them. The `api` crate builds the OpenAPI
//! schema of each field from the same constants and checks requests with these functions,
//! so the spec, the 422 and the service cannot disagree.
//!
//! Lengths are counted in characters (Unicode code points), as JSON Schema's `minLength`
//! and `maxLength` count them: a rule in bytes could not be said in the spec.

use std::{borrow::Cow, sync::LazyLock};

use entity::user;

use crate::ServiceError;

/// What a rule says of a value that breaks it, as the end of a sentence that starts with the
/// field's name ("title: must not be empty").
pub type Requirement = Cow<'static, str>;

/// One broken field: its name as the client sent it, and what it must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: Cow<'static, str>,
    pub requirement: Requirement,
}

impl FieldError {
    pub fn new(field: impl Into<Cow<'static, str>>, requirement: impl Into<Requirement>) -> Self {
        Self {
            field: field.into(),
            requirement: requirement.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.requirement)
    }
}

/// Two fields checked together: both values, or every broken field of the two.
///
/// # Errors
/// [`ServiceError::Invalid`] naming each field that breaks its rule.
pub fn both<A, B>(
    (first, a): (&'static str, Result<A, Requirement>),
    (second, b): (&'static str, Result<B, Requirement>),
) -> Result<(A, B), ServiceError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => {
            let errors = [
                a.err().map(|e| FieldError::new(first, e)),
                b.err().map(|e| FieldError::new(second, e)),
            ];
            Err(ServiceError::Invalid(
                errors.into_iter().flatten().collect(),
            ))
        }
    }
}

/// Longest email address (RFC 5321's path limit less its angle brackets).
pub const EMAIL_MAX_CHARS: usize = 254;

/// An address to register: at most 254 characters, a bare `local@domain.tld` (no display
/// name, no comments, no domain literal, a dotted domain). Returns it trimmed, NFKC-normalised
/// and lower-cased ([`user::stored_email`]), the form it is stored and looked up in.
///
/// # Errors
/// What the address must be.
pub fn email(raw: &str) -> Result<String, Requirement> {
    if raw.chars().count() > EMAIL_MAX_CHARS {
        return Err(format!("must be at most {EMAIL_MAX_CHARS} characters long").into());
    }
    let email = user::stored_email(raw.trim());
    // NFKC and lower-casing can lengthen a text (`ﷺ` becomes 18 characters, `İ` two); the
    // column holds 254.
    if email.chars().count() > EMAIL_MAX_CHARS {
        return Err(format!("must be at most {EMAIL_MAX_CHARS} characters long").into());
    }
    let options = email_address::Options::default()
        .without_display_text()
        .without_domain_literal()
        .with_required_tld();
    // The crate accepts comments in the local part (`ann(x)@…`); no stored address has one.
    let bare = !email.contains(['(', ')']);
    match email_address::EmailAddress::parse_with_options(&email, options) {
        Ok(_) if bare => Ok(email),
        _ => Err("must be an email address such as ann@example.org, with nothing else".into()),
    }
}

/// What [`email`] asks, as the spec says it.
pub fn email_rule() -> &'static str {
    static RULE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "An email address such as `ann@example.org` (no display name, a dotted domain), at \
             most {EMAIL_MAX_CHARS} characters. It is stored trimmed, NFKC-normalised and \
             lower-cased, so `Ann@X.io`, `ａｎｎ@x.io` and `ann@x.io` are the same account. An \
             address with a character outside ASCII that looks like a registered one (a \
             Cyrillic `е` for a Latin `e`) is taken too."
        )
    });
    &RULE
}

/// Not blank and no NUL character, for the spec: what [`login_email`] asks of its text.
pub const LOGIN_EMAIL_PATTERN: &str = r"^[^\x00]*[^\s\x00][^\x00]*$";

/// The email a login names: not blank and at most 254 characters. Returns the key it is
/// looked up and counted by: trimmed, in the stored form ([`user::stored_email`]), and cut
/// to the 254 characters an email column holds (the stored form can be longer than the text
/// sent; no account's email is longer).
/// Whether it is well-formed does not matter: no account has a malformed one, so it fails
/// like any unknown email.
///
/// # Errors
/// What the email must be.
pub fn login_email(raw: &str) -> Result<String, Requirement> {
    if raw.chars().count() > EMAIL_MAX_CHARS {
        return Err(format!("must be at most {EMAIL_MAX_CHARS} characters long").into());
    }
    let email: String = user::stored_email(raw.trim_matches(is_pattern_space))
        .chars()
        .take(EMAIL_MAX_CHARS)
        .collect();
    if email.is_empty() {
        return Err("must not be blank".into());
    }
    // No address holds a NUL character, and PostgreSQL refuses one in text.
    if email.contains('\0') {
        return Err("must not contain a NUL character".into());
    }
    Ok(email)
}

/// What [`login_email`] asks, as the spec says it.
pub fn login_email_rule() -> &'static str {
    static RULE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "The account's email: not blank, at most {EMAIL_MAX_CHARS} characters, with no NUL character."
        )
    });
    &RULE
}

/// Shortest and longest password, in characters. Every character counts: passwords are
/// pre-hashed before bcrypt, which would read only the first 72 bytes.
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;

/// A new password: 8 to 128 characters, any characters.
///
/// # Errors
/// What the password must be.
pub fn password(raw: &str) -> Result<(), Requirement> {
    let chars = raw.chars().count();
    if (PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        Ok(())
    } else {
        Err(format!("must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters long").into())
    }
}

/// What [`password`] asks, as the spec says it.
pub fn password_rule() -> &'static str {
    static RULE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters, every one of which counts."
        )
    });
    &RULE
}

/// The password a login gives: 1 to 128 characters (no account has a longer one).
///
/// # Errors
/// What the password must be.
pub fn login_password(raw: &str) -> Result<(), Requirement> {
    match raw.chars().count() {
        0 => Err("must not be empty".into()),
        chars if chars > PASSWORD_MAX_CHARS => {
            Err(format!("must be at most {PASSWORD_MAX_CHARS} characters long").into())
        }
        _ => Ok(()),
    }
}

/// What [`login_password`] asks, as the spec says it.
pub fn login_password_rule() -> &'static str {
    static RULE: LazyLock<String> =
        LazyLock::new(|| format!("1 to {PASSWORD_MAX_CHARS} characters."));
    &RULE
}

/// White space as the spec's patterns mean it: ECMAScript's `\s`, which JSON Schema's regular
/// expressions follow. It differs from Unicode's White_Space (Rust's `char::is_whitespace`)
/// in two characters: it holds U+FEFF (the byte order mark) and not U+0085 (next line).
fn is_pattern_space(c: char) -> bool {
    c == '\u{feff}' || (c.is_whitespace() && c != '\u{85}')
}

/// Longest title, in characters, once trimmed of white space.
pub const TITLE_MAX_CHARS: usize = 200;

/// Longest title as sent, in characters, white space around it included: the longest title
/// with as much again of padding. A bound on what is read, which the pattern cannot say.
pub const TITLE_MAX_SENT_CHARS: usize = 2 * TITLE_MAX_CHARS;

/// The title as written: 1 to [`TITLE_MAX_CHARS`] characters once trimmed of white space,
/// with no NUL character (PostgreSQL refuses one in text). This regular expression says the
/// same, for the spec.
pub fn title_pattern() -> String {
    format!(
        r"^\s*[^\s\x00](?:[^\x00]{{0,{}}}[^\s\x00])?\s*$",
        TITLE_MAX_CHARS - 2
    )
}

/// A title: returns it trimmed, as it is stored.
///
/// # Errors
/// What the title must be.
pub fn title(raw: &str) -> Result<String, Requirement> {
    let title = raw.trim_matches(is_pattern_space);
    if title.is_empty()
        || title.chars().count() > TITLE_MAX_CHARS
        || title.contains('\0')
        || raw.chars().count() > TITLE_MAX_SENT_CHARS
    {
        return Err(format!(
            "must be 1 to {TITLE_MAX_CHARS} characters once trimmed of white space (at most \
             {TITLE_MAX_SENT_CHARS} as sent), with no NUL character"
        )
        .into());
    }
    Ok(title.to_owned())
}

/// What [`title`] asks, as the spec says it.
pub fn title_rule() -> &'static str {
    static RULE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "1 to {TITLE_MAX_CHARS} characters once trimmed of white space (at most \
             {TITLE_MAX_SENT_CHARS} as sent), with no NUL character; stored trimmed."
        )
    });
    &RULE
}

/// Longest content, in characters.
pub const CONTENT_MAX_CHARS: usize = 20_000;

/// No NUL character, for the spec (PostgreSQL refuses one in text).
pub const NO_NUL_PATTERN: &str = r"^[^\x00]*$";

/// A post's content: 1 to 20,000 characters, with no NUL character.
///
/// # Errors
/// What the content must be.
pub fn content(raw: &str) -> Result<(), Requirement> {
    if raw.is_empty() || raw.chars().count() > CONTENT_MAX_CHARS || raw.contains('\0') {
        return Err(format!(
            "must be 1 to {CONTENT_MAX_CHARS} characters long, with no NUL character"
        )
        .into());
    }
    Ok(())
}

/// What [`content`] asks, as the spec says it.
pub fn content_rule() -> &'static str {
    static RULE: LazyLock<String> =
        LazyLock::new(|| format!("1 to {CONTENT_MAX_CHARS} characters, with no NUL character."));
    &RULE
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

/// Longest search, in characters: a longer one is in no title.
pub const SEARCH_MAX_CHARS: usize = TITLE_MAX_CHARS;

/// Longest page cursor, in characters: the longest one the service issues.
pub const CURSOR_MAX_CHARS: usize = crate::cursors::MAX_CHARS;

/// Longest `If-Match` or `If-None-Match`, in characters: 400 KiB, about all a request's head
/// may hold (the HTTP/1.1 server reads at most 408 KiB of one), so a client may list as many
/// entity-tags as it can send, and the service's work does not grow with their number.
pub const ENTITY_TAGS_MAX_CHARS: usize = 400 * 1024;

/// Longest refresh token read, in characters: far more than any token the service issues (a
/// refresh token has 86, an access token about 200), so that one sent in the wrong place is
/// unknown (401), as every malformed one is; only text longer than that is invalid (422).
pub const REFRESH_TOKEN_MAX_CHARS: usize = 1024;

/// Longest text of a form field the service ignores (`scope`, `client_id`,
/// `client_secret`): more than any client sends there, and a bound on what is read.
pub const IGNORED_FIELD_MAX_CHARS: usize = 1024;

/// How many posts a page holds when `limit` is left out, and at most.
pub const LIMIT_DEFAULT: i64 = 10;
pub const LIMIT_MAX: i64 = 100;

/// A page size: 1 to 100.
///
/// # Errors
/// What the limit must be.
pub fn limit(value: i64) -> Result<u64, Requirement> {
    u64::try_from(value)
        .ok()
        .filter(|limit| (1..=LIMIT_MAX.unsigned_abs()).contains(limit))
        .ok_or_else(|| format!("must be a whole number from 1 to {LIMIT_MAX}").into())
}

/// How many posts to pass over: 0 or more.
///
/// # Errors
/// What `skip` must be.
pub fn skip(value: i64) -> Result<u64, Requirement> {
    u64::try_from(value).map_err(|_| "must be a whole number, 0 or more".into())
}

/// The id of the last event a subscriber received: 0 or more.
///
/// # Errors
/// What an event id must be.
pub fn event_id(value: i64) -> Result<i64, Requirement> {
    if value >= 0 {
        Ok(value)
    } else {
        Err("must be a whole number, 0 or more: the `id` of an event received".into())
    }
}

/// An id of a user or post: 1 or more.
///
/// # Errors
/// What an id must be.
pub fn id(value: i64) -> Result<i64, Requirement> {
    if value >= 1 {
        Ok(value)
    } else {
        Err("must be a whole number, 1 or more".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_nfkc_normalised_and_lower_cased() {
        assert_eq!(email("  Ann@Example.IO ").unwrap(), "ann@example.io");
        assert_eq!(
            email("\u{ff56}ictim@example.org").unwrap(),
            "victim@example.org"
        );
        assert_eq!(
            login_email(" \u{ff36}ictim@example.org").unwrap(),
            "victim@example.org"
        );
        // A Cyrillic letter stays itself: it is another address, which only looks alike.
        assert_eq!(
            email("victim@\u{435}xample.org").unwrap(),
            "victim@\u{435}xample.org"
        );
    }

    #[test]
    fn only_bare_dotted_addresses_of_at_most_254_characters_are_emails() {
        let labels = ["b".repeat(63), "c".repeat(63), "d".repeat(57), "com".into()];
        let longest = format!("{}@{}", "a".repeat(64), labels.join("."));
        assert_eq!(longest.chars().count(), EMAIL_MAX_CHARS);
        for good in ["ann@example.org", "a.b+c@x.co.uk", "0@0.com", &longest] {
            assert!(email(good).is_ok(), "{good}");
        }
        let overlong = format!("a{longest}");
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.io",
            "a b@example.io",
            "ann@localhost",
            "ceo@example.org <me@evil.io>",
            "Ann <ann@example.org>",
            "<ann@example.org>",
            "ann(comment)@example.org",
            "ann@[127.0.0.1]",
            "ann\0@example.org",
            &overlong,
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_login_email_is_not_blank_has_no_nul_and_fits_the_column() {
        assert_eq!(login_email(" Ann@X.io ").unwrap(), "ann@x.io");
        for bad in ["", "   ", "a\0b", &"x".repeat(EMAIL_MAX_CHARS + 1)] {
            assert!(login_email(bad).is_err(), "{bad:?}");
        }
        let lengthened = login_email(&"İ".repeat(EMAIL_MAX_CHARS)).unwrap();
        assert_eq!(lengthened.chars().count(), EMAIL_MAX_CHARS);
    }

    #[test]
    fn passwords_of_8_to_128_characters_are_accepted_whatever_they_hold() {
        for good in [
            "12345678",
            &"x".repeat(128),
            &"é".repeat(128),
            "\0\0\0\0\0\0\0\0",
        ] {
            assert!(password(good).is_ok(), "{good:?}");
        }
        for bad in ["", "1234567", &"é".repeat(7), &"x".repeat(129)] {
            assert!(password(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn white_space_is_what_the_spec_patterns_call_white_space() {
        // Schema-valid (U+0085 is no `\s`), so a title.
        assert_eq!(title("\u{85}").as_deref(), Ok("\u{85}"));
        // Schema-invalid (U+FEFF is `\s`), so blank.
        assert!(title("\u{feff}").is_err());
        assert_eq!(title("\u{feff} Hi \u{3000}").as_deref(), Ok("Hi"));
        assert!(login_email("\u{feff}").is_err());
    }

    #[test]
    fn titles_are_trimmed_and_1_to_200_characters() {
        assert_eq!(title("  Hello  ").unwrap(), "Hello");
        let longest = format!("  {}  ", "é".repeat(TITLE_MAX_CHARS));
        assert!(title(&longest).is_ok());
        let padding = " ".repeat(TITLE_MAX_SENT_CHARS - TITLE_MAX_CHARS);
        assert!(title(&format!("{}{padding}", "t".repeat(TITLE_MAX_CHARS))).is_ok());
        let overpadded = format!("t{}", " ".repeat(TITLE_MAX_SENT_CHARS));
        for bad in [
            "",
            " \t\n",
            "a\0b",
            &"t".repeat(TITLE_MAX_CHARS + 1),
            &overpadded,
        ] {
            assert!(title(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn contents_are_1_to_20000_characters_without_nul() {
        assert!(content("c").is_ok());
        assert!(content(&"é".repeat(CONTENT_MAX_CHARS)).is_ok());
        for bad in ["", "a\0", &"c".repeat(CONTENT_MAX_CHARS + 1)] {
            assert!(content(bad).is_err());
        }
    }

    #[test]
    fn texts_are_bounded_in_characters() {
        assert!(at_most("", 0).is_ok());
        assert!(at_most(&"é".repeat(3), 3).is_ok());
        assert!(at_most(&"é".repeat(4), 3).is_err());
    }

    #[test]
    fn limits_skips_and_ids_keep_their_bounds() {
        assert_eq!(limit(1), Ok(1));
        assert_eq!(limit(100), Ok(100));
        for bad in [0, -1, 101, i64::MIN] {
            assert!(limit(bad).is_err(), "{bad}");
        }
        assert_eq!(skip(i64::MAX), Ok(i64::MAX.unsigned_abs()));
        assert!(skip(-1).is_err());
        assert_eq!(id(1), Ok(1));
        assert!(id(0).is_err());
    }
}

//! The values an account is made and opened with: an email and a password, each made only by
//! its rule. The `api` crate builds each field's schema from the same constants and rules.
//!
//! Lengths are counted in characters (Unicode code points), as JSON Schema's `minLength` and
//! `maxLength` count them.

use std::sync::LazyLock;

use entity::user;

use crate::fields::{Requirement, is_pattern_space};

/// An address to register, in the form it is stored and looked up in: trimmed,
/// NFKC-normalised and lower-cased ([`user::stored_email`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Longest email address (RFC 5321's path limit less its angle brackets).
    pub const MAX_CHARS: usize = 254;

    /// At most 254 characters, a bare `local@domain.tld` (no display name, no comments, no
    /// domain literal, a dotted domain).
    ///
    /// # Errors
    /// What the address must be.
    pub fn parse(raw: &str) -> Result<Self, Requirement> {
        let too_long = || format!("must be at most {} characters long", Self::MAX_CHARS).into();
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(too_long());
        }
        let email = user::stored_email(raw.trim());
        // NFKC and lower-casing can lengthen a text (`ﷺ` becomes 18 characters, `İ` two); the
        // column holds 254.
        if email.chars().count() > Self::MAX_CHARS {
            return Err(too_long());
        }
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        // The crate accepts comments in the local part (`ann(x)@…`); no stored address has one.
        let bare = !email.contains(['(', ')']);
        match email_address::EmailAddress::parse_with_options(&email, options) {
            Ok(_) if bare => Ok(Self(email)),
            _ => Err("must be an email address such as ann@example.org, with nothing else".into()),
        }
    }

    /// What [`Email::parse`] asks, as the spec says it.
    pub fn rule() -> &'static str {
        static RULE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "An email address such as `ann@example.org` (no display name, a dotted domain), \
                 at most {} characters. It is stored trimmed, NFKC-normalised and lower-cased, \
                 so `Ann@X.io`, `ａｎｎ@x.io` and `ann@x.io` are the same account. An address \
                 with a character outside ASCII that looks like a registered one (a Cyrillic \
                 `е` for a Latin `e`) is taken too.",
                Email::MAX_CHARS
            )
        });
        &RULE
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The email a login names, as the key it is looked up and counted by: trimmed, in the
/// stored form ([`user::stored_email`]), and cut to the characters an email column holds
/// (the stored form can be longer than the text sent; no account's email is longer).
/// Whether it is well-formed does not matter: no account has a malformed one, so it fails
/// like any unknown email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginEmail(String);

impl LoginEmail {
    /// Not blank and no NUL character, for the spec: what [`LoginEmail::parse`] asks of its
    /// text.
    pub const PATTERN: &str = r"^[^\x00]*[^\s\x00][^\x00]*$";

    /// Not blank, at most [`Email::MAX_CHARS`] characters, no NUL character.
    ///
    /// # Errors
    /// What the email must be.
    pub fn parse(raw: &str) -> Result<Self, Requirement> {
        if raw.chars().count() > Email::MAX_CHARS {
            return Err(format!("must be at most {} characters long", Email::MAX_CHARS).into());
        }
        let email: String = user::stored_email(raw.trim_matches(is_pattern_space))
            .chars()
            .take(Email::MAX_CHARS)
            .collect();
        if email.is_empty() {
            return Err("must not be blank".into());
        }
        // No address holds a NUL character, and PostgreSQL refuses one in text.
        if email.contains('\0') {
            return Err("must not contain a NUL character".into());
        }
        Ok(Self(email))
    }

    /// What [`LoginEmail::parse`] asks, as the spec says it.
    pub fn rule() -> &'static str {
        static RULE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "The account's email: not blank, at most {} characters, with no NUL character.",
                Email::MAX_CHARS
            )
        });
        &RULE
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: any characters, every one of which counts (passwords are pre-hashed
/// before bcrypt, which would read only the first 72 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    /// # Errors
    /// What the password must be.
    pub fn parse(raw: &str) -> Result<Self, Requirement> {
        let chars = raw.chars().count();
        if (Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "must be {} to {} characters long",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            )
            .into())
        }
    }

    /// What [`Password::parse`] asks, as the spec says it.
    pub fn rule() -> &'static str {
        static RULE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "{} to {} characters, every one of which counts.",
                Password::MIN_CHARS,
                Password::MAX_CHARS
            )
        });
        &RULE
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The password a login gives: no account has a longer one than [`Password::MAX_CHARS`].
#[derive(Clone, PartialEq, Eq)]
pub struct LoginPassword(String);

impl LoginPassword {
    pub const MIN_CHARS: usize = 1;

    /// # Errors
    /// What the password must be.
    pub fn parse(raw: &str) -> Result<Self, Requirement> {
        match raw.chars().count() {
            0 => Err("must not be empty".into()),
            chars if chars > Password::MAX_CHARS => {
                Err(format!("must be at most {} characters long", Password::MAX_CHARS).into())
            }
            _ => Ok(Self(raw.to_owned())),
        }
    }

    /// What [`LoginPassword::parse`] asks, as the spec says it.
    pub fn rule() -> &'static str {
        static RULE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "{} to {} characters.",
                LoginPassword::MIN_CHARS,
                Password::MAX_CHARS
            )
        });
        &RULE
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password is never written to a log.
macro_rules! redacted_debug {
    ($($ty:ty),+) => {$(
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($ty), "(…)"))
            }
        }
    )+};
}
redacted_debug!(Password, LoginPassword);

#[cfg(test)]
mod tests {
    use super::*;

    fn email(raw: &str) -> Result<String, Requirement> {
        Email::parse(raw).map(|email| email.as_str().to_owned())
    }

    fn login_email(raw: &str) -> Result<String, Requirement> {
        LoginEmail::parse(raw).map(|email| email.as_str().to_owned())
    }

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
        assert_eq!(longest.chars().count(), Email::MAX_CHARS);
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
        for bad in ["", "   ", "a\0b", &"x".repeat(Email::MAX_CHARS + 1)] {
            assert!(login_email(bad).is_err(), "{bad:?}");
        }
        let lengthened = login_email(&"İ".repeat(Email::MAX_CHARS)).unwrap();
        assert_eq!(lengthened.chars().count(), Email::MAX_CHARS);
        assert!(login_email("\u{feff}").is_err());
    }

    #[test]
    fn passwords_of_8_to_128_characters_are_accepted_whatever_they_hold() {
        for good in [
            "12345678",
            &"x".repeat(128),
            &"é".repeat(128),
            "\0\0\0\0\0\0\0\0",
        ] {
            assert!(Password::parse(good).is_ok(), "{good:?}");
        }
        for bad in ["", "1234567", &"é".repeat(7), &"x".repeat(129)] {
            assert!(Password::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_password_is_never_shown() {
        let password = Password::parse("correct horse battery").unwrap();
        assert_eq!(format!("{password:?}"), "Password(…)");
    }
}

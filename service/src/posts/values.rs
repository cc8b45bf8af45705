//! The values a post and a listing are written with, each made only by its rule. The `api`
//! crate builds each field's schema from the same constants and rules.

use std::sync::LazyLock;

use crate::fields::{Requirement, is_pattern_space, trimmed_text_pattern};

/// A post's title, trimmed of white space as it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Longest title, in characters, once trimmed of white space.
    pub const MAX_CHARS: usize = 200;

    /// Longest title as sent, in characters, white space around it included: the longest
    /// title with as much again of padding. A bound on what is read, which the pattern
    /// cannot say.
    pub const MAX_SENT_CHARS: usize = 2 * Self::MAX_CHARS;

    /// 1 to [`Title::MAX_CHARS`] characters once trimmed of white space, with no NUL
    /// character (PostgreSQL refuses one in text).
    ///
    /// # Errors
    /// What the title must be.
    pub fn parse(raw: &str) -> Result<Self, Requirement> {
        let title = raw.trim_matches(is_pattern_space);
        if title.is_empty()
            || title.chars().count() > Self::MAX_CHARS
            || title.contains('\0')
            || raw.chars().count() > Self::MAX_SENT_CHARS
        {
            return Err(format!(
                "must be 1 to {} characters once trimmed of white space (at most {} as sent), \
                 with no NUL character",
                Self::MAX_CHARS,
                Self::MAX_SENT_CHARS
            )
            .into());
        }
        Ok(Self(title.to_owned()))
    }

    /// What [`Title::parse`] asks, as a regular expression, for the spec.
    pub fn pattern() -> String {
        trimmed_text_pattern(Self::MAX_CHARS, r"\x00")
    }

    /// What [`Title::parse`] asks, as the spec says it.
    pub fn rule() -> &'static str {
        static RULE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "1 to {} characters once trimmed of white space (at most {} as sent), with no \
                 NUL character; stored trimmed.",
                Title::MAX_CHARS,
                Title::MAX_SENT_CHARS
            )
        });
        &RULE
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Title> for String {
    fn from(title: Title) -> Self {
        title.0
    }
}

/// Longest search, in characters: a longer one is in no title.
pub const SEARCH_MAX_CHARS: usize = Title::MAX_CHARS;

/// A post's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content(String);

impl Content {
    pub const MIN_CHARS: usize = 1;
    pub const MAX_CHARS: usize = 20_000;

    /// No NUL character, for the spec (PostgreSQL refuses one in text).
    pub const PATTERN: &str = r"^[^\x00]*$";

    /// 1 to 20,000 characters, with no NUL character.
    ///
    /// # Errors
    /// What the content must be.
    pub fn parse(raw: &str) -> Result<Self, Requirement> {
        let chars = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) || raw.contains('\0') {
            return Err(format!(
                "must be {} to {} characters long, with no NUL character",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            )
            .into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// What [`Content::parse`] asks, as the spec says it.
    pub fn rule() -> &'static str {
        static RULE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "{} to {} characters, with no NUL character.",
                Content::MIN_CHARS,
                Content::MAX_CHARS
            )
        });
        &RULE
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Content> for String {
    fn from(content: Content) -> Self {
        content.0
    }
}

/// How many posts a page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize(u64);

impl PageSize {
    pub const MIN: i64 = 1;
    pub const MAX: i64 = 100;
    /// The size of a page when a listing names none.
    pub const DEFAULT: Self = Self(10);

    /// # Errors
    /// What a page size must be.
    pub fn parse(value: i64) -> Result<Self, Requirement> {
        if (Self::MIN..=Self::MAX).contains(&value) {
            Ok(Self(value.unsigned_abs()))
        } else {
            Err(format!("must be a whole number from {} to {}", Self::MIN, Self::MAX).into())
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

/// How many posts a listing passes over before its page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skip(u64);

impl Skip {
    pub const MIN: i64 = 0;

    /// # Errors
    /// What `skip` must be.
    pub fn parse(value: i64) -> Result<Self, Requirement> {
        u64::try_from(value)
            .map(Self)
            .map_err(|_| "must be a whole number, 0 or more".into())
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title(raw: &str) -> Result<String, Requirement> {
        Title::parse(raw).map(String::from)
    }

    #[test]
    fn white_space_is_what_the_spec_patterns_call_white_space() {
        // Schema-valid (U+0085 is no `\s`), so a title.
        assert_eq!(title("\u{85}").as_deref(), Ok("\u{85}"));
        // Schema-invalid (U+FEFF is `\s`), so blank.
        assert!(title("\u{feff}").is_err());
        assert_eq!(title("\u{feff} Hi \u{3000}").as_deref(), Ok("Hi"));
    }

    #[test]
    fn titles_are_trimmed_and_1_to_200_characters() {
        assert_eq!(title("  Hello  ").unwrap(), "Hello");
        let longest = format!("  {}  ", "é".repeat(Title::MAX_CHARS));
        assert!(title(&longest).is_ok());
        let padding = " ".repeat(Title::MAX_SENT_CHARS - Title::MAX_CHARS);
        assert!(title(&format!("{}{padding}", "t".repeat(Title::MAX_CHARS))).is_ok());
        let overpadded = format!("t{}", " ".repeat(Title::MAX_SENT_CHARS));
        for bad in [
            "",
            " \t\n",
            "a\0b",
            &"t".repeat(Title::MAX_CHARS + 1),
            &overpadded,
        ] {
            assert!(title(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn contents_are_1_to_20000_characters_without_nul() {
        assert!(Content::parse("c").is_ok());
        assert!(Content::parse(&"é".repeat(Content::MAX_CHARS)).is_ok());
        for bad in ["", "a\0", &"c".repeat(Content::MAX_CHARS + 1)] {
            assert!(Content::parse(bad).is_err());
        }
    }

    #[test]
    fn page_sizes_and_skips_keep_their_bounds() {
        assert_eq!(PageSize::parse(1).map(PageSize::get), Ok(1));
        assert_eq!(PageSize::parse(100).map(PageSize::get), Ok(100));
        for bad in [0, -1, 101, i64::MIN] {
            assert!(PageSize::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Skip::parse(i64::MAX).map(Skip::get),
            Ok(i64::MAX.unsigned_abs())
        );
        assert!(Skip::parse(-1).is_err());
    }
}

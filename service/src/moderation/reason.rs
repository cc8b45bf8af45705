//! Why a moderator acted, as the person acted on and the log are told.

use std::sync::LazyLock;

use crate::fields::{Requirement, trimmed_text, trimmed_text_rule, trimmed_text_without_controls};

/// A reason: trimmed of white space as it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub const MAX_CHARS: usize = 500;

    /// 1 to 500 characters once trimmed of white space, with no control character.
    ///
    /// # Errors
    /// What a reason must be.
    pub fn parse(raw: &str) -> Result<Self, Requirement> {
        trimmed_text(raw, Self::MAX_CHARS).map(|reason| Self(reason.to_owned()))
    }

    /// What [`Reason::parse`] asks, as a regular expression, for the spec.
    pub fn pattern() -> String {
        trimmed_text_without_controls(Self::MAX_CHARS)
    }

    /// What [`Reason::parse`] asks, as the spec says it.
    pub fn rule() -> &'static str {
        static RULE: LazyLock<String> = LazyLock::new(|| trimmed_text_rule(Reason::MAX_CHARS));
        &RULE
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_trimmed_and_bounded() {
        assert_eq!(Reason::parse("  spam \n").unwrap().as_str(), "spam");
        assert!(Reason::parse(&"r".repeat(Reason::MAX_CHARS)).is_ok());
        for bad in ["", "   ", "a\u{7}b", &"r".repeat(Reason::MAX_CHARS + 1)] {
            assert!(Reason::parse(bad).is_err(), "{bad:?}");
        }
    }
}

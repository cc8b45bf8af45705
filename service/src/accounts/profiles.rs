//! What everyone may see of a person (their [`Profile`]: a handle and a display name), what
//! only they see ([`Account`], their email included), and the values a profile is made of,
//! each made only by its rule.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use entity::user;
use rand::{Rng, distr::Alphanumeric};
use sea_orm::FromQueryResult;

use crate::fields::{Requirement, trimmed_text, trimmed_text_rule, trimmed_text_without_controls};

/// A person as anyone may see them: no email, no password hash.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct Profile {
    pub id: i64,
    pub handle: String,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Profile {
    /// The columns of `users` a [`Profile`] is read from.
    pub(crate) const COLUMNS: [user::Column; 4] = [
        user::Column::Id,
        user::Column::Handle,
        user::Column::DisplayName,
        user::Column::CreatedAt,
    ];
}

impl From<user::Model> for Profile {
    fn from(user: user::Model) -> Self {
        Self {
            id: user.id,
            handle: user.handle,
            display_name: user.display_name,
            created_at: user.created_at,
        }
    }
}

/// What a person may do beyond their own posts and votes; each role may do what those
/// before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Moderator,
    Admin,
}

impl Role {
    pub const ALL: [Self; 3] = [Self::Member, Self::Moderator, Self::Admin];

    /// The name `users.role` stores.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Moderator => "moderator",
            Self::Admin => "admin",
        }
    }

    /// The role a stored name stands for; a name no role has grants nothing beyond a member.
    pub fn from_name(name: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|role| role.name() == name)
            .unwrap_or(Self::Member)
    }
}

/// A person as they see themselves: their profile and their email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub email: String,
    /// Whether the owner has shown the address is theirs.
    pub email_verified: bool,
    pub handle: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl From<user::Model> for Account {
    fn from(user: user::Model) -> Self {
        Self {
            id: user.id,
            email: user.email,
            email_verified: user.email_verified,
            handle: user.handle,
            display_name: user.display_name,
            role: Role::from_name(&user.role),
            created_at: user.created_at,
        }
    }
}

/// A person's handle, in the lower-case form it is stored, compared and looked up in: `Ann`
/// and `ann` are one handle. Only ASCII letters, digits and `_`, so no two handles look
/// alike but for case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handle(String);

impl Handle {
    pub const MIN_CHARS: usize = 3;
    pub const MAX_CHARS: usize = 30;

    /// How a handle nobody chose begins.
    const MADE_PREFIX: &str = "user_";

    /// 3 to 30 ASCII letters, digits or `_`.
    ///
    /// # Errors
    /// What a handle must be.
    pub fn parse(raw: &str) -> Result<Self, Requirement> {
        let valid = (Self::MIN_CHARS..=Self::MAX_CHARS).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!(
                "must be {} to {} characters of a-z, 0-9 and _",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            )
            .into());
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    /// A handle for an account that chose none: `user_` and ten random letters and digits,
    /// which tell nothing of the person.
    pub(crate) fn made() -> Self {
        let random: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(10)
            .map(|c| char::from(c).to_ascii_lowercase())
            .collect();
        Self(format!("{}{random}", Self::MADE_PREFIX))
    }

    /// What [`Handle::parse`] asks, as a regular expression, for the spec.
    pub fn pattern() -> String {
        format!("^[A-Za-z0-9_]{{{},{}}}$", Self::MIN_CHARS, Self::MAX_CHARS)
    }

    /// What [`Handle::parse`] asks, as the spec says it.
    pub fn rule() -> &'static str {
        static RULE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "{} to {} characters of `a-z`, `0-9` and `_`, unique without regard to case: \
                 it is stored lower-cased, so `Ann` and `ann` are one handle.",
                Handle::MIN_CHARS,
                Handle::MAX_CHARS
            )
        });
        &RULE
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name a person shows beside their handle, trimmed of white space as it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 50;

    /// Longest display name as sent, white space around it included: the longest name with
    /// as much again of padding, a bound on what is read.
    pub const MAX_SENT_CHARS: usize = 2 * Self::MAX_CHARS;

    /// 1 to 50 characters once trimmed of white space, with no control character.
    ///
    /// # Errors
    /// What a display name must be.
    pub fn parse(raw: &str) -> Result<Self, Requirement> {
        trimmed_text(raw, Self::MAX_CHARS).map(|name| Self(name.to_owned()))
    }

    /// What [`DisplayName::parse`] asks, as a regular expression, for the spec.
    pub fn pattern() -> String {
        trimmed_text_without_controls(Self::MAX_CHARS)
    }

    /// What [`DisplayName::parse`] asks, as the spec says it.
    pub fn rule() -> &'static str {
        static RULE: LazyLock<String> = LazyLock::new(|| trimmed_text_rule(DisplayName::MAX_CHARS));
        &RULE
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a person changes of their profile: each field left out stays; a display name may be
/// taken away (`Some(None)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub handle: Option<Handle>,
    pub display_name: Option<Option<DisplayName>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_reads_back_from_its_name_and_no_other_name_grants_more() {
        for role in Role::ALL {
            assert_eq!(Role::from_name(role.name()), role);
        }
        assert_eq!(Role::from_name("Admin"), Role::Member);
    }

    #[test]
    fn handles_are_ascii_words_of_3_to_30_kept_in_lower_case() {
        assert_eq!(Handle::parse("Ann_99").unwrap().as_str(), "ann_99");
        assert!(Handle::parse(&"a".repeat(30)).is_ok());
        for bad in ["ab", &"a".repeat(31), "ann-b", "ann b", "ånn", "аnn", ""] {
            assert!(Handle::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_made_handle_is_a_valid_one_and_random() {
        let (one, two) = (Handle::made(), Handle::made());
        assert_ne!(one, two);
        for made in [one, two] {
            assert!(made.as_str().starts_with("user_"), "{made:?}");
            assert_eq!(Handle::parse(made.as_str()), Ok(made.clone()));
        }
    }

    #[test]
    fn display_names_are_trimmed_with_no_control_character() {
        assert_eq!(
            DisplayName::parse("  Ann Lee ").unwrap().as_str(),
            "Ann Lee"
        );
        assert!(DisplayName::parse(&"é".repeat(50)).is_ok());
        for bad in [
            "",
            "   ",
            &"é".repeat(51),
            "Ann\u{0}",
            "A\u{7}nn",
            "A\u{85}nn",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
        }
    }
}

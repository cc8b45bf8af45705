use sea_orm::entity::prelude::*;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

/// A registered person. Only they see their `email`; everyone else sees their `handle` and
/// `display_name`. `email` is stored in its [`stored_email`] form; a unique index
/// decides whether it is taken. `email_skeleton` is its [`email_skeleton`], indexed, to find
/// an address that looks like another.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub email: String,
    pub email_skeleton: String,
    pub password_hash: String,
    pub created_at: DateTimeUtc,
    /// Raised with every change of the password, in the same statement: a session starts
    /// only while the version read with the hash its login checked still holds.
    pub credentials_version: i64,
    /// The id of the last event recorded before the account was created: a replay from the
    /// start begins after it.
    pub last_event_before: i64,
    /// Unique, lower-case; what others know the person by instead of their email.
    pub handle: String,
    pub display_name: Option<String>,
    /// `member`, `moderator` or `admin`.
    pub role: String,
    /// Whether the owner has shown the address is theirs (by a mailed token).
    pub email_verified: bool,
    /// Until when the account is suspended (no end: for good), while `suspension_reason`
    /// is set; past it, the suspension is over.
    pub suspended_until: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub suspension_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::post::Entity")]
    Post,
    #[sea_orm(has_many = "super::vote::Entity")]
    Vote,
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
}

impl Related<super::post::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Post.def()
    }
}

impl Related<super::vote::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Vote.def()
    }
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// The form an email is stored, looked up and counted in: NFKC-normalised (a fullwidth `ｖ`
/// is a `v`) and lower-cased. NFKC can bring back capitals (`℡` is `TEL`), hence NFKC first;
/// lower-casing can leave a letter and its accent apart, hence NFC last. Trimming is the
/// caller's: what counts as white space differs between its callers.
pub fn stored_email(email: &str) -> String {
    let lowered = email.nfkc().collect::<String>().to_lowercase();
    lowered.nfc().collect()
}

/// What a person sees of an address, as a fixed-size key: the SHA-256 (hex) of the UTS #39
/// confusable skeleton of its [`stored_email`] form. Two addresses with the same key cannot be
/// told apart (a Cyrillic `е` for a Latin `e`). Hashed because a skeleton can be many times
/// longer than its address (up to 15 bytes for one character), past what a PostgreSQL index
/// entry holds. The confusables table is that of the pinned `unicode-security`: a new one
/// needs a migration that computes the keys anew.
pub fn email_skeleton(stored: &str) -> String {
    let skeleton: String = unicode_security::skeleton(stored).collect();
    Sha256::digest(skeleton.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_is_nfkc_and_lower_case_and_stays_so() {
        assert_eq!(stored_email("ｖictim@Example.ORG"), "victim@example.org");
        assert_eq!(stored_email("℡@x.io"), "tel@x.io");
        // Every character once more through the rule changes nothing.
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            let once = stored_email(&c.to_string());
            assert_eq!(stored_email(&once), once, "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn look_alikes_share_a_skeleton_and_different_addresses_do_not() {
        let victim = email_skeleton("victim@example.org");
        assert_eq!(email_skeleton("victim@\u{435}xample.org"), victim);
        assert_eq!(email_skeleton("bob1@x.io"), email_skeleton("bobl@x.io"));
        assert_ne!(email_skeleton("victor@example.org"), victim);
        assert_eq!(victim.len(), 64);
    }
}

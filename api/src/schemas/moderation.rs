//! The request and response objects of moderation.

use poem_openapi::{Enum, Object};
use service::{
    ServiceError,
    accounts::Role,
    moderation::{Action, Entry, Reason},
};

use super::{RoleName, Timestamp};
use crate::fields::{AllValid, Checked, Until};

/// A role to give.
#[derive(Object)]
pub struct RoleUpdate {
    pub role: Checked<Role>,
}

impl RoleUpdate {
    /// # Errors
    /// [`ServiceError::Invalid`] naming `role`.
    pub fn into_role(self) -> Result<Role, ServiceError> {
        self.role.named("role")
    }
}

/// Why a post is hidden; its owner is shown it.
#[derive(Object)]
pub struct Hiding {
    pub reason: Checked<Reason>,
}

impl Hiding {
    /// # Errors
    /// [`ServiceError::Invalid`] naming `reason`.
    pub fn into_reason(self) -> Result<Reason, ServiceError> {
        self.reason.named("reason")
    }
}

/// Why an account is suspended (its owner is shown it when they log in), and until when:
/// left out or `null`, until lifted.
#[derive(Object)]
pub struct SuspensionIn {
    pub reason: Checked<Reason>,
    pub until: Checked<Until>,
}

impl SuspensionIn {
    /// # Errors
    /// [`ServiceError::Invalid`] naming each broken field.
    pub fn into_parts(
        self,
    ) -> Result<(Reason, Option<chrono::DateTime<chrono::Utc>>), ServiceError> {
        (self.reason.named("reason"), self.until.named("until")).all_valid()
    }
}

/// What a step of moderation did.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ModerationAction {
    RoleChanged,
    PostHidden,
    PostRestored,
    Suspended,
    SuspensionLifted,
}

impl From<Action> for ModerationAction {
    fn from(action: Action) -> Self {
        match action {
            Action::RoleChanged => Self::RoleChanged,
            Action::PostHidden => Self::PostHidden,
            Action::PostRestored => Self::PostRestored,
            Action::Suspended => Self::Suspended,
            Action::SuspensionLifted => Self::SuspensionLifted,
        }
    }
}

/// One step of moderation, as the log keeps it: who, whom or what, why and when. People
/// and posts are named by id, with their handle and title as they were then; an entry stays
/// when they are deleted. A field that does not apply to the step is left out.
#[derive(Object, Clone)]
#[oai(example)]
pub struct ModerationEntry {
    pub id: i64,
    pub at: Timestamp,
    pub action: ModerationAction,
    /// Who acted; left out for the command line (`api admin`).
    #[oai(skip_serializing_if_is_none)]
    pub actor_id: Option<i64>,
    #[oai(skip_serializing_if_is_none)]
    pub actor_handle: Option<String>,
    /// The person acted on, or the owner of the post acted on.
    pub user_id: i64,
    pub user_handle: String,
    /// The post hidden or restored.
    #[oai(skip_serializing_if_is_none)]
    pub post_id: Option<i64>,
    #[oai(skip_serializing_if_is_none)]
    pub post_title: Option<String>,
    /// Why: given for a post hidden and an account suspended.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
    /// The role given, for a role change.
    #[oai(skip_serializing_if_is_none)]
    pub role: Option<RoleName>,
    /// The end of a suspension that has one.
    #[oai(skip_serializing_if_is_none)]
    pub until: Option<Timestamp>,
}

impl From<Entry> for ModerationEntry {
    fn from(entry: Entry) -> Self {
        Self {
            id: entry.id,
            at: Timestamp(entry.at),
            action: entry.action.into(),
            actor_id: entry.actor.as_ref().map(|actor| actor.id),
            actor_handle: entry.actor.map(|actor| actor.handle),
            user_id: entry.person.id,
            user_handle: entry.person.handle,
            post_id: entry.post.as_ref().map(|post| post.id),
            post_title: entry.post.map(|post| post.title),
            reason: entry.reason,
            role: entry.role.map(RoleName::from),
            until: entry.until.map(Timestamp),
        }
    }
}

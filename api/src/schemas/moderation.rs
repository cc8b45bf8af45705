//! The request and response objects of moderation.

use std::borrow::Cow;

use poem_openapi::{
    Enum, Object,
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;
use service::{
    ServiceError,
    accounts::Role,
    moderation::{Action, Entry, Reason},
};

use super::{RoleName, Timestamp};
use crate::fields::{AllValid, Checked, Until, own_raw_value};

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
/// when they are deleted.
#[derive(Object)]
#[oai(example)]
pub struct ModerationEntry {
    pub id: i64,
    pub at: Timestamp,
    pub action: ModerationAction,
    /// Who acted; `null`: the command line (`api admin`).
    pub actor_id: Nullable<i64>,
    pub actor_handle: Nullable<String>,
    /// The person acted on, or the owner of the post acted on.
    pub user_id: Nullable<i64>,
    pub user_handle: Nullable<String>,
    /// The post hidden or restored.
    pub post_id: Nullable<i64>,
    pub post_title: Nullable<String>,
    /// Why: given for a post hidden and an account suspended.
    pub reason: Nullable<String>,
    /// The role given, for a role change.
    pub role: NullableRole,
    /// The end of a suspension; `null` for one until lifted.
    pub until: Nullable<Timestamp>,
}

impl From<Entry> for ModerationEntry {
    fn from(entry: Entry) -> Self {
        Self {
            id: entry.id,
            at: Timestamp(entry.at),
            action: entry.action.into(),
            actor_id: Nullable(entry.actor.as_ref().map(|actor| actor.id)),
            actor_handle: Nullable(entry.actor.map(|actor| actor.handle)),
            user_id: Nullable(entry.person.as_ref().map(|person| person.id)),
            user_handle: Nullable(entry.person.map(|person| person.handle)),
            post_id: Nullable(entry.post.as_ref().map(|post| post.id)),
            post_title: Nullable(entry.post.map(|post| post.title)),
            reason: Nullable(entry.reason),
            role: NullableRole(entry.role.map(RoleName::from)),
            until: Nullable(entry.until.map(Timestamp)),
        }
    }
}

/// A role, or `null`: described inline, as OpenAPI 3.0 cannot make a reference nullable;
/// its `enum` lists `null` too, as 3.0.3 asks of a nullable enum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NullableRole(pub Option<RoleName>);

impl Type for NullableRole {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "RoleName_nullable".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut names: Vec<Value> = Role::ALL
            .iter()
            .map(|role| Value::String(role.name().into()))
            .collect();
        names.push(Value::Null);
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            nullable: true,
            enum_items: names,
            ..MetaSchema::new("string")
        }))
    }

    own_raw_value!();
}

impl ParseFromJSON for NullableRole {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Nullable::<RoleName>::parse_from_json(value)
            .map(|role| Self(role.0))
            .map_err(poem_openapi::types::ParseError::propagate)
    }
}

impl ToJSON for NullableRole {
    fn to_json(&self) -> Option<Value> {
        Nullable(self.0).to_json()
    }
}

/// A value described inline (a number, a text, a time) always present in a response, `null`
/// when there is none: required and nullable in the spec (an `Option` would be neither
/// required nor, by default, nullable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nullable<T>(pub Option<T>);

impl<T: Type> Type for Nullable<T> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        format!("{}_nullable", T::name()).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        match T::schema_ref() {
            MetaSchemaRef::Inline(schema) => MetaSchemaRef::Inline(Box::new(MetaSchema {
                nullable: true,
                ..*schema
            })),
            // OpenAPI 3.0 cannot make a reference nullable (see `NullableRole`).
            MetaSchemaRef::Reference(name) => {
                unreachable!("Nullable<{name}>: a referenced schema cannot be made nullable")
            }
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    own_raw_value!();
}

impl<T: ParseFromJSON> ParseFromJSON for Nullable<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::Null => Ok(Self(None)),
            value => T::parse_from_json(Some(value))
                .map(|value| Self(Some(value)))
                .map_err(poem_openapi::types::ParseError::propagate),
        }
    }
}

impl<T: ToJSON> ToJSON for Nullable<T> {
    fn to_json(&self) -> Option<Value> {
        Some(
            self.0
                .as_ref()
                .and_then(ToJSON::to_json)
                .unwrap_or(Value::Null),
        )
    }
}

//! Request and response objects: the shapes clients see, apart from the ORM's models.
//! Request fields are [`Checked`] by their rules (see `fields`); each request object turns
//! into what the service takes, naming every broken field at once. Conversions from
//! service values are `From` impls beside each object.

mod moderation;

use std::{borrow::Cow, marker::PhantomData};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::{
    Enum, Object,
    registry::{MetaDiscriminatorObject, MetaSchema, MetaSchemaRef, Registry},
    types::{MaybeUndefined, ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;
use service::{
    ServiceError,
    accounts::{
        Account as AccountView, DisplayName, Email, Handle, LoginEmail, LoginPassword, Password,
        Profile as ProfileView, ProfileChanges, Role,
    },
    database::ReplicaState,
    events::{Change, Delivery, EventKind, Ticket},
    posts::{Content, PostChanges, PostFields, PostView, Title},
    sessions::{SessionTokens, SessionView},
    votes::VoteDirection,
};

pub use moderation::{Hiding, ModerationAction, ModerationEntry, RoleUpdate, SuspensionIn};

use crate::fields::{
    AccountToken, AllValid, Checked, Flag, GrantType, Id, Ignored, IgnoredSecret, Published,
    RefreshGrantType, RefreshToken, own_raw_value, patched,
};

/// An RFC 3339 timestamp in UTC, written with a `Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp(pub DateTime<Utc>);

impl Type for Timestamp {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_date-time".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date-time")))
    }

    own_raw_value!();
}

impl ParseFromJSON for Timestamp {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(text) => DateTime::parse_from_rfc3339(&text)
                .map(|t| Self(t.with_timezone(&Utc)))
                .map_err(|_| ParseError::custom("not an RFC 3339 timestamp")),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for Timestamp {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(
            self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        ))
    }
}

/// Text always present in a response, `null` when there is none: required and nullable in
/// the spec (an `Option` would be neither required nor, by default, nullable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NullableText(pub Option<String>);

impl Type for NullableText {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_nullable".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            nullable: true,
            ..MetaSchema::new("string")
        }))
    }

    own_raw_value!();
}

impl ParseFromJSON for NullableText {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::Null => Ok(Self(None)),
            Value::String(text) => Ok(Self(Some(text))),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for NullableText {
    fn to_json(&self) -> Option<Value> {
        Some(self.0.clone().map_or(Value::Null, Value::String))
    }
}

/// A message for a person.
#[derive(Object)]
#[oai(example)]
pub struct Message {
    pub message: String,
}

impl Message {
    /// `GET /`'s: where the documentation is.
    pub fn start() -> Self {
        Self {
            message: "Social API: interactive docs at /docs and /redoc, the spec at /openapi.json \
                      and /openapi.yaml."
                .into(),
        }
    }

    /// `GET /health/live`'s.
    pub fn alive() -> Self {
        Self {
            message: "alive".into(),
        }
    }
}

/// The service's health.
#[derive(Object)]
#[oai(example)]
pub struct Health {
    /// `ok` when the service answers.
    pub status: String,
    /// `ok` when the database answers.
    pub database: String,
    /// Each read replica the service is configured with (`DATABASE_REPLICA_URL`), in the
    /// order of its configuration; empty when there is none.
    pub replicas: Vec<ReplicaHealth>,
}

impl Health {
    /// The service and its database answer.
    pub fn ok() -> Self {
        Self {
            status: "ok".into(),
            database: "ok".into(),
            replicas: Vec::new(),
        }
    }

    /// The service and its database answer; its replicas are in `states`.
    pub fn with_replicas(states: Vec<ReplicaState>) -> Self {
        Self {
            replicas: states
                .into_iter()
                .zip(1..)
                .map(|(state, replica)| ReplicaHealth {
                    replica,
                    state: ReplicaUse::from(state),
                })
                .collect(),
            ..Self::ok()
        }
    }
}

/// A read replica, and whether page reads go to it.
#[derive(Object)]
#[oai(example)]
pub struct ReplicaHealth {
    /// Its place among the configured replicas, from 1.
    pub replica: u32,
    pub state: ReplicaUse,
}

/// Whether page reads go to a replica: `in_use`; `lagging` (it answers but has not kept up
/// with the primary, so reads go to the primary until it has caught up); `unreachable`.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ReplicaUse {
    InUse,
    Lagging,
    Unreachable,
}

impl From<ReplicaState> for ReplicaUse {
    fn from(state: ReplicaState) -> Self {
        match state {
            ReplicaState::InUse => Self::InUse,
            ReplicaState::Lagging => Self::Lagging,
            ReplicaState::Unreachable => Self::Unreachable,
        }
    }
}

/// A new account. Without a `handle`, it gets `user_` and random letters and digits, which
/// tell nothing of its email.
#[derive(Object)]
pub struct UserCreate {
    pub email: Checked<Email>,
    pub password: Checked<Password>,
    pub handle: MaybeUndefined<Checked<Handle>>,
}

impl UserCreate {
    /// The email, the password and the handle chosen, if any.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming each broken field.
    pub fn into_parts(self) -> Result<(Email, Password, Option<Handle>), ServiceError> {
        (
            self.email.named("email"),
            self.password.named("password"),
            patched("handle", self.handle),
        )
            .all_valid()
    }
}

/// What a person may do beyond their own posts and votes.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum RoleName {
    Member,
    Moderator,
    Admin,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Member => Self::Member,
            Role::Moderator => Self::Moderator,
            Role::Admin => Self::Admin,
        }
    }
}

/// The caller's own account: their profile, their email and their role. No one else sees
/// the email. The password and its hash never leave the server.
#[derive(Object)]
#[oai(example)]
pub struct Account {
    pub id: i64,
    pub email: String,
    /// Whether the owner has shown the address is theirs, by the link of a verification
    /// mail.
    pub email_verified: bool,
    pub handle: String,
    /// `null` until the person chooses one.
    pub display_name: NullableText,
    pub role: RoleName,
    pub created_at: Timestamp,
}

impl From<AccountView> for Account {
    fn from(account: AccountView) -> Self {
        Self {
            id: account.id,
            email: account.email,
            email_verified: account.email_verified,
            handle: account.handle,
            display_name: NullableText(account.display_name),
            role: account.role.into(),
            created_at: Timestamp(account.created_at),
        }
    }
}

/// A person as everyone else sees them: no email.
#[derive(Object)]
#[oai(example)]
pub struct Profile {
    pub id: i64,
    pub handle: String,
    /// `null` until the person chooses one.
    pub display_name: NullableText,
    pub created_at: Timestamp,
}

impl From<ProfileView> for Profile {
    fn from(profile: ProfileView) -> Self {
        Self {
            id: profile.id,
            handle: profile.handle,
            display_name: NullableText(profile.display_name),
            created_at: Timestamp(profile.created_at),
        }
    }
}

/// Changes to the caller's profile: a field left out stays as it is; a `display_name` of
/// `null` takes it away.
#[derive(Object)]
pub struct ProfilePatch {
    pub handle: MaybeUndefined<Checked<Handle>>,
    #[oai(nullable)]
    pub display_name: MaybeUndefined<Checked<DisplayName>>,
}

impl TryFrom<ProfilePatch> for ProfileChanges {
    type Error = ServiceError;

    fn try_from(body: ProfilePatch) -> Result<Self, ServiceError> {
        let display_name = match body.display_name {
            MaybeUndefined::Undefined => Ok(None),
            MaybeUndefined::Null => Ok(Some(None)),
            MaybeUndefined::Value(name) => name.named("display_name").map(|name| Some(Some(name))),
        };
        let (handle, display_name) = (patched("handle", body.handle), display_name).all_valid()?;
        Ok(ProfileChanges {
            handle,
            display_name,
        })
    }
}

/// The token of a verification mail's link, posted back by the front end.
#[derive(Object)]
pub struct EmailVerification {
    pub token: Checked<AccountToken>,
}

impl EmailVerification {
    /// The token.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming `token`.
    pub fn into_token(self) -> Result<String, ServiceError> {
        self.token.named("token")
    }
}

/// The address of an account whose password is forgotten.
#[derive(Object)]
pub struct PasswordResetRequest {
    pub email: Checked<Email>,
}

/// The token of a password reset mail's link, posted back by the front end with the new
/// password.
#[derive(Object)]
pub struct PasswordReset {
    pub token: Checked<AccountToken>,
    pub new_password: Checked<Password>,
}

impl PasswordReset {
    /// The token and the new password.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming each broken field.
    pub fn into_parts(self) -> Result<(String, Password), ServiceError> {
        (
            self.token.named("token"),
            self.new_password.named("new_password"),
        )
            .all_valid()
    }
}

/// Credentials as JSON.
#[derive(Object)]
pub struct LoginJson {
    pub email: Checked<LoginEmail>,
    pub password: Checked<LoginPassword>,
}

impl LoginJson {
    /// The email and the password.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming each broken field.
    pub fn into_credentials(self) -> Result<(LoginEmail, LoginPassword), ServiceError> {
        (self.email.named("email"), self.password.named("password")).all_valid()
    }
}

/// Credentials as the OAuth2 password form (what Swagger UI's Authorize sends).
#[derive(Object)]
pub struct LoginForm {
    pub username: Checked<LoginEmail>,
    pub password: Checked<LoginPassword>,
    /// `password` when present (OAuth2 password grant).
    pub grant_type: Checked<GrantType>,
    /// Ignored: every token may do everything its owner may.
    pub scope: Checked<Ignored>,
    /// Ignored.
    pub client_id: Checked<Ignored>,
    /// Ignored.
    pub client_secret: Checked<IgnoredSecret>,
}

impl LoginForm {
    /// The email (`username`) and the password.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming each broken field.
    pub fn into_credentials(self) -> Result<(LoginEmail, LoginPassword), ServiceError> {
        let checked = (
            self.username.named("username"),
            self.password.named("password"),
            self.grant_type.named("grant_type"),
        );
        let (email, password, ()) = checked.all_valid()?;
        // The ignored fields are only ever text, or left out.
        let ignored = (
            self.scope.named("scope"),
            self.client_id.named("client_id"),
            self.client_secret.named("client_secret"),
        );
        ignored.all_valid()?;
        Ok((email, password))
    }
}

/// The kind of token issued.
#[derive(Enum)]
#[oai(rename_all = "lowercase")]
pub enum TokenType {
    Bearer,
}

/// A session's tokens: an access token for requests, and a refresh token for the next pair.
#[derive(Object)]
#[oai(example)]
pub struct Token {
    /// A JWT (HS256) to send as `Authorization: Bearer <token>`.
    pub access_token: String,
    pub token_type: TokenType,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Gets the next pair from `POST /login/refresh`, once: keep it secret, and replace it
    /// with the one that call returns.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

impl From<SessionTokens> for Token {
    fn from(tokens: SessionTokens) -> Self {
        Self {
            access_token: tokens.access.access_token,
            token_type: TokenType::Bearer,
            expires_in: tokens.access.expires_in,
            refresh_token: tokens.refresh_token,
            refresh_expires_in: tokens.refresh_expires_in,
        }
    }
}

/// A refresh token to exchange, as JSON.
#[derive(Object)]
pub struct RefreshJson {
    pub refresh_token: Checked<RefreshToken>,
}

/// A refresh token to exchange, as the OAuth2 refresh form.
#[derive(Object)]
pub struct RefreshForm {
    pub grant_type: Checked<RefreshGrantType>,
    pub refresh_token: Checked<RefreshToken>,
    /// Ignored: the new tokens may do what the old ones could.
    pub scope: Checked<Ignored>,
    /// Ignored.
    pub client_id: Checked<Ignored>,
    /// Ignored.
    pub client_secret: Checked<IgnoredSecret>,
}

impl RefreshForm {
    /// The refresh token.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming each broken field.
    pub fn into_refresh_token(self) -> Result<String, ServiceError> {
        let checked = (
            self.grant_type.named("grant_type"),
            self.refresh_token.named("refresh_token"),
            self.scope.named("scope"),
        );
        let ((), refresh_token, ()) = checked.all_valid()?;
        (
            self.client_id.named("client_id"),
            self.client_secret.named("client_secret"),
        )
            .all_valid()?;
        Ok(refresh_token)
    }
}

/// A new address for the caller's account, given with the current password.
#[derive(Object)]
pub struct EmailChange {
    pub new_email: Checked<Email>,
    pub current_password: Checked<LoginPassword>,
}

impl EmailChange {
    /// The new address and the current password.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming each broken field.
    pub fn into_parts(self) -> Result<(Email, LoginPassword), ServiceError> {
        (
            self.new_email.named("new_email"),
            self.current_password.named("current_password"),
        )
            .all_valid()
    }
}

/// A new password, given with the current one.
#[derive(Object)]
pub struct PasswordChange {
    pub current_password: Checked<LoginPassword>,
    pub new_password: Checked<Password>,
}

impl PasswordChange {
    /// The current and the new password.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming each broken field.
    pub fn into_parts(self) -> Result<(LoginPassword, Password), ServiceError> {
        (
            self.current_password.named("current_password"),
            self.new_password.named("new_password"),
        )
            .all_valid()
    }
}

/// One of the caller's sessions: a login, and the refreshes since.
#[derive(Object)]
#[oai(example)]
pub struct Session {
    pub id: i64,
    /// When the session logged in.
    pub created_at: Timestamp,
    /// When it last logged in or refreshed its tokens.
    pub last_used_at: Timestamp,
    /// The `User-Agent` of the login (its start, if very long); `null` when none was sent.
    pub user_agent: NullableText,
    /// The client's address at login; `null` when unknown.
    pub client_address: NullableText,
    /// Whether this is the session of the token that asked.
    pub current: bool,
}

impl From<SessionView> for Session {
    fn from(session: SessionView) -> Self {
        Self {
            id: session.id,
            created_at: Timestamp(session.created_at),
            last_used_at: Timestamp(session.last_used_at),
            user_agent: NullableText(session.user_agent),
            client_address: NullableText(session.client_address),
            current: session.current,
        }
    }
}

/// A post to create, or the full new state of one (`PUT`).
#[derive(Object)]
pub struct PostIn {
    pub title: Checked<Title>,
    pub content: Checked<Content>,
    /// `false` makes a draft, visible to its owner only. Defaults to `true`; `null` is
    /// refused.
    pub published: Checked<Published>,
}

impl TryFrom<PostIn> for PostFields {
    type Error = ServiceError;

    fn try_from(body: PostIn) -> Result<Self, ServiceError> {
        let checked = (
            body.title.named("title"),
            body.content.named("content"),
            body.published.named("published"),
        );
        let (title, content, published) = checked.all_valid()?;
        Ok(PostFields::new(title, content, published))
    }
}

/// The fields of a post to change; those left out stay as they are. `null` is refused.
#[derive(Object)]
pub struct PostPatch {
    pub title: MaybeUndefined<Checked<Title>>,
    pub content: MaybeUndefined<Checked<Content>>,
    /// `false` makes the post a draft.
    pub published: MaybeUndefined<Checked<Flag>>,
}

impl TryFrom<PostPatch> for PostChanges {
    type Error = ServiceError;

    fn try_from(body: PostPatch) -> Result<Self, ServiceError> {
        let checked = (
            patched("title", body.title),
            patched("content", body.content),
            patched("published", body.published),
        );
        let (title, content, published) = checked.all_valid()?;
        Ok(PostChanges::new(title, content, published))
    }
}

/// A post with its owner and its number of votes.
#[derive(Object)]
#[oai(example)]
pub struct PostOut {
    pub id: i64,
    pub title: String,
    pub content: String,
    /// `false` for a draft, which only its owner sees.
    pub published: bool,
    /// `true` for a post a moderator hid: only its owner sees it (and a moderator's listing
    /// of hidden posts), whatever `published` says.
    pub hidden: bool,
    /// Why it was hidden; `null` unless it is.
    pub hidden_reason: NullableText,
    pub created_at: Timestamp,
    pub owner_id: i64,
    pub owner: Profile,
    /// How many people voted for the post.
    pub votes: i64,
}

impl From<PostView> for PostOut {
    fn from(view: PostView) -> Self {
        Self {
            id: view.post.id,
            title: view.post.title,
            content: view.post.content,
            published: view.post.published,
            hidden: view.post.hidden,
            hidden_reason: NullableText(view.post.hidden_reason),
            created_at: Timestamp(view.post.created_at),
            owner_id: view.post.owner_id,
            owner: view.owner.into(),
            votes: view.votes,
        }
    }
}

/// A vote to add (`dir: 1`) or take back (`dir: 0`).
#[derive(Object)]
pub struct VoteIn {
    pub post_id: Checked<Id>,
    /// 1 adds the caller's vote, 0 removes it.
    pub dir: Checked<VoteDirection>,
}

impl VoteIn {
    /// The post and what to do.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming each broken field.
    pub fn into_parts(self) -> Result<(i64, VoteDirection), ServiceError> {
        (self.post_id.named("post_id"), self.dir.named("dir")).all_valid()
    }
}

/// What a vote did.
#[derive(Object)]
#[oai(example)]
pub struct VoteResult {
    pub message: String,
}

impl VoteResult {
    /// The caller's vote for post `post_id` was added.
    pub fn added(post_id: i64) -> Self {
        Self {
            message: format!("Added your vote to post {post_id}."),
        }
    }

    /// The caller's vote for post `post_id` was taken back.
    pub fn removed(post_id: i64) -> Self {
        Self {
            message: format!("Removed your vote from post {post_id}."),
        }
    }
}

/// A ticket that opens one event stream (`GET /events?ticket=…`) as the session it was
/// issued to: for a browser's `EventSource`, which cannot send an `Authorization` header.
#[derive(Object)]
#[oai(example)]
pub struct EventTicket {
    pub ticket: String,
    /// Seconds the ticket may wait for its stream.
    pub expires_in: u64,
}

impl From<Ticket> for EventTicket {
    fn from(ticket: Ticket) -> Self {
        Self {
            ticket: ticket.value,
            expires_in: ticket.expires_in,
        }
    }
}

/// An event a stream sends, by its name, which its data carries as `type`: a kind the
/// outbox records ([`EventKind::name`]), or a reset.
pub trait NamedEvent {
    const NAME: &'static str;
}

/// The `type` of an event's data: the name of its kind, `K`.
pub struct EventType<K>(PhantomData<fn() -> K>);

impl<K> Default for EventType<K> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<K: NamedEvent + 'static> Type for EventType<K> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        format!("event_type_{}", K::NAME).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            enum_items: vec![Value::from(K::NAME)],
            ..MetaSchema::new("string")
        }))
    }

    own_raw_value!();
}

impl<K: NamedEvent + 'static> ParseFromJSON for EventType<K> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(name) if name == K::NAME => Ok(Self::default()),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl<K: NamedEvent + 'static> ToJSON for EventType<K> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(K::NAME))
    }
}

/// `post.created`: a post that came into the caller's view (written, or a draft published).
#[derive(Object)]
#[oai(example)]
pub struct PostCreated {
    #[oai(rename = "type")]
    pub kind: EventType<PostCreated>,
    #[oai(flatten)]
    pub post: PostOut,
}

impl NamedEvent for PostCreated {
    const NAME: &'static str = EventKind::PostCreated.name();
}

/// `post.updated`: a post as it is after a change (`PUT`, `PATCH`).
#[derive(Object)]
#[oai(example)]
pub struct PostUpdated {
    #[oai(rename = "type")]
    pub kind: EventType<PostUpdated>,
    #[oai(flatten)]
    pub post: PostOut,
}

impl NamedEvent for PostUpdated {
    const NAME: &'static str = EventKind::PostUpdated.name();
}

/// `post.deleted`: a post that left the caller's view (deleted, or made a draft by its
/// owner).
#[derive(Object)]
#[oai(example)]
pub struct DeletedPost {
    #[oai(rename = "type")]
    pub kind: EventType<DeletedPost>,
    pub id: i64,
}

impl NamedEvent for DeletedPost {
    const NAME: &'static str = EventKind::PostDeleted.name();
}

/// `vote`: a post's vote count after a vote was added or taken back.
#[derive(Object)]
#[oai(example)]
pub struct VoteCount {
    #[oai(rename = "type")]
    pub kind: EventType<VoteCount>,
    pub post_id: i64,
    pub votes: i64,
}

impl NamedEvent for VoteCount {
    const NAME: &'static str = EventKind::Vote.name();
}

/// `profile.updated`: a person's handle or display name as they now are. Sent to everyone,
/// once: the posts of that person show it from now on.
#[derive(Object)]
#[oai(example)]
pub struct ProfileUpdated {
    #[oai(rename = "type")]
    pub kind: EventType<ProfileUpdated>,
    #[oai(flatten)]
    pub profile: Profile,
}

impl NamedEvent for ProfileUpdated {
    const NAME: &'static str = EventKind::ProfileUpdated.name();
}

/// `reset`: the events after the `Last-Event-ID` sent are no longer all kept (or that id is
/// none this service gave). List again; the events after this one's id follow.
#[derive(Object)]
#[oai(example)]
pub struct StreamReset {
    #[oai(rename = "type")]
    pub kind: EventType<StreamReset>,
    pub detail: String,
}

impl NamedEvent for StreamReset {
    const NAME: &'static str = "reset";
}

/// The data of an event, one schema per kind, told apart by `type` (the event's name): a
/// discriminated union, which generated clients narrow by `type`.
macro_rules! event_data {
    ($(#[$doc:meta])* $name:ident { $($variant:ident($kind:ty)),* $(,)? }) => {
        $(#[$doc])*
        pub enum $name {
            $($variant($kind)),*
        }

        impl $name {
            /// The event's name (`event:`), which its data carries as `type`.
            pub fn event_name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$kind as NamedEvent>::NAME),*
                }
            }
        }

        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Reference(Self::name().into_owned())
            }

            fn register(registry: &mut Registry) {
                registry.create_schema::<Self, _>(Self::name().into_owned(), |registry| {
                    $(<$kind as Type>::register(registry);)*
                    MetaSchema {
                        description: Some(
                            "The data of an event: one schema per event name, which the data \
                             carries as `type`.",
                        ),
                        one_of: vec![$(<$kind as Type>::schema_ref()),*],
                        discriminator: Some(MetaDiscriminatorObject {
                            property_name: "type",
                            mapping: vec![$((
                                <$kind as NamedEvent>::NAME.to_owned(),
                                format!("#/components/schemas/{}", <$kind as Type>::name()),
                            )),*],
                        }),
                        ..MetaSchema::new("object")
                    }
                });
            }

            own_raw_value!();
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<Value> {
                match self {
                    $(Self::$variant(data) => data.to_json()),*
                }
            }
        }
    };
}

event_data! {
    /// The data of an event of `GET /events`.
    EventData {
        Created(PostCreated),
        Updated(PostUpdated),
        Deleted(DeletedPost),
        Vote(VoteCount),
        Profile(ProfileUpdated),
        Reset(StreamReset),
    }
}

/// One event of `GET /events`: its id (`id:`), and its data (`data:`, JSON), whose `type` is
/// its name (`event:`). Declared as its data, which is what a client parses.
pub struct LiveEvent {
    pub id: i64,
    pub data: EventData,
}

impl From<Delivery> for LiveEvent {
    fn from(delivery: Delivery) -> Self {
        let (id, data) = match delivery {
            Delivery::Reset { id } => (
                id,
                EventData::Reset(StreamReset {
                    kind: EventType::default(),
                    detail: "events since the Last-Event-ID sent are no longer kept; list again"
                        .into(),
                }),
            ),
            Delivery::Event { id, change } => (
                id,
                match change {
                    Change::PostCreated(view) => EventData::Created(PostCreated {
                        kind: EventType::default(),
                        post: (*view).into(),
                    }),
                    Change::PostUpdated(view) => EventData::Updated(PostUpdated {
                        kind: EventType::default(),
                        post: (*view).into(),
                    }),
                    Change::PostDeleted { id: post_id } => EventData::Deleted(DeletedPost {
                        kind: EventType::default(),
                        id: post_id,
                    }),
                    Change::Vote { post_id, votes } => EventData::Vote(VoteCount {
                        kind: EventType::default(),
                        post_id,
                        votes,
                    }),
                    Change::ProfileUpdated(profile) => EventData::Profile(ProfileUpdated {
                        kind: EventType::default(),
                        profile: profile.into(),
                    }),
                },
            ),
        };
        Self { id, data }
    }
}

impl Type for LiveEvent {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        EventData::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        EventData::schema_ref()
    }

    fn register(registry: &mut Registry) {
        EventData::register(registry);
    }

    own_raw_value!();
}

impl ToJSON for LiveEvent {
    fn to_json(&self) -> Option<Value> {
        self.data.to_json()
    }
}

impl LiveEvent {
    /// A delivery as the stream sends it: its `id:`, `event:` and `data:` lines (the data is
    /// one line of JSON) and the blank line that ends an event.
    pub fn render(delivery: Delivery) -> Bytes {
        let event = Self::from(delivery);
        let data = event.data.to_json_string();
        let mut frame = String::with_capacity(data.len() + 48);
        frame.push_str("id: ");
        frame.push_str(&event.id.to_string());
        frame.push_str("\nevent: ");
        frame.push_str(event.data.event_name());
        frame.push_str("\ndata: ");
        frame.push_str(&data);
        frame.push_str("\n\n");
        Bytes::from(frame)
    }
}

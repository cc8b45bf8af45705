//! Request and response objects: the shapes clients see, apart from the ORM's models.
//! Conversions from service values are `From` impls beside each object.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::{
    Enum, Object,
    registry::{MetaSchema, MetaSchemaRef},
    types::{MaybeUndefined, ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;
use service::{User, posts::PostView};

/// Declares a string type that refuses JSON numbers and booleans (poem-openapi's `String`
/// would quietly turn them into text) and reads form fields as they are.
macro_rules! strict_string {
    ($(#[$doc:meta])* $name:ident, $format:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                match $format {
                    Some(format) => format!("string_{format}").into(),
                    None => "string".into(),
                }
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Inline(Box::new(match $format {
                    Some(format) => MetaSchema::new_with_format("string", format),
                    None => MetaSchema::new("string"),
                }))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(
                &'a self,
            ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value.unwrap_or_default() {
                    Value::String(text) => Ok(Self(text)),
                    other => Err(ParseError::expected_type(other)),
                }
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }
    };
}

strict_string!(
    /// A JSON string.
    Text,
    None::<&'static str>
);

strict_string!(
    /// A password: a JSON string, shown masked in Swagger UI and never printed.
    Secret,
    Some("password")
);

strict_string!(
    /// An email address: a JSON string of format `email`.
    Email,
    Some("email")
);

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The OAuth2 grant type of the login form: only `password` (a string, so that the
/// handler can name any other value in its 422).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct GrantType(pub String);

impl Type for GrantType {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string(password)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            enum_items: vec![Value::String("password".into())],
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for GrantType {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(text) if text == "password" => Ok(Self(text)),
            Value::String(_) => Err(ParseError::custom("must be `password`")),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for GrantType {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

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

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
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

/// A message for a person.
#[derive(Object)]
pub struct Message {
    pub message: String,
}

/// The service's health.
#[derive(Object)]
pub struct Health {
    /// `ok` when the service answers.
    pub status: String,
    /// `ok` when the database answers.
    pub database: String,
}

/// A new account.
#[derive(Object)]
pub struct UserCreate {
    /// A valid email address of at most 254 characters. It is stored trimmed and lower-cased,
    /// so `Ann@X.io` and `ann@x.io` are the same account.
    #[oai(validator(min_length = 3, max_length = 254))]
    pub email: Email,
    /// 8 to 72 bytes of UTF-8 (bcrypt reads no more than 72), with no NUL character. JSON
    /// Schema counts characters, so the bounds below are the widest that byte limits allow.
    #[oai(validator(min_length = 2, max_length = 72, pattern = r"^[^\x00]*$"))]
    pub password: Secret,
}

/// A person, as anyone may see them. The password and its hash never leave the server.
#[derive(Object)]
pub struct UserOut {
    pub id: i64,
    pub email: String,
    pub created_at: Timestamp,
}

impl From<User> for UserOut {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            created_at: Timestamp(user.created_at),
        }
    }
}

/// Credentials as JSON.
#[derive(Object)]
pub struct LoginJson {
    /// The account's email: not blank, with no NUL character.
    #[oai(validator(pattern = r"^[^\x00]*[^\s\x00][^\x00]*$"))]
    pub email: Text,
    /// Not empty.
    #[oai(validator(min_length = 1))]
    pub password: Secret,
}

/// Credentials as the OAuth2 password form (what Swagger UI's Authorize sends).
#[derive(Object, serde::Deserialize)]
pub struct LoginForm {
    /// The account's email: not blank, with no NUL character.
    #[oai(validator(pattern = r"^[^\x00]*[^\s\x00][^\x00]*$"))]
    pub username: Text,
    /// Not empty.
    #[oai(validator(min_length = 1))]
    pub password: Secret,
    /// `password` when present (OAuth2 password grant).
    pub grant_type: Option<GrantType>,
    /// Ignored: every token may do everything its owner may.
    pub scope: Option<Text>,
    /// Ignored.
    pub client_id: Option<Text>,
    /// Ignored.
    pub client_secret: Option<Secret>,
}

/// The kind of token issued.
#[derive(Enum)]
#[oai(rename_all = "lowercase")]
pub enum TokenType {
    Bearer,
}

/// An access token.
#[derive(Object)]
pub struct Token {
    /// A JWT (HS256) to send as `Authorization: Bearer <token>`.
    pub access_token: String,
    pub token_type: TokenType,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

impl From<service::tokens::IssuedToken> for Token {
    fn from(token: service::tokens::IssuedToken) -> Self {
        Self {
            access_token: token.access_token,
            token_type: TokenType::Bearer,
            expires_in: token.expires_in,
        }
    }
}

/// A post to create, or the full new state of one (`PUT`).
#[derive(Object)]
pub struct PostIn {
    /// 1 to 200 characters once trimmed of white space, with no NUL character; stored
    /// trimmed.
    #[oai(validator(pattern = r"^\s*[^\s\x00](?:[^\x00]{0,198}[^\s\x00])?\s*$"))]
    pub title: Text,
    /// 1 to 20,000 characters, with no NUL character.
    #[oai(validator(min_length = 1, max_length = 20000, pattern = r"^[^\x00]*$"))]
    pub content: Text,
    /// `false` makes a draft, visible to its owner only. Defaults to `true`.
    #[oai(default = "published_by_default")]
    pub published: bool,
}

fn published_by_default() -> bool {
    true
}

/// The fields of a post to change; those left out stay as they are. `null` is refused.
#[derive(Object)]
pub struct PostPatch {
    /// 1 to 200 characters once trimmed of white space, with no NUL character; stored
    /// trimmed.
    #[oai(validator(pattern = r"^\s*[^\s\x00](?:[^\x00]{0,198}[^\s\x00])?\s*$"))]
    pub title: MaybeUndefined<Text>,
    /// 1 to 20,000 characters, with no NUL character.
    #[oai(validator(min_length = 1, max_length = 20000, pattern = r"^[^\x00]*$"))]
    pub content: MaybeUndefined<Text>,
    /// `false` makes the post a draft.
    pub published: MaybeUndefined<bool>,
}

/// A post with its owner and its number of votes.
#[derive(Object)]
pub struct PostOut {
    pub id: i64,
    pub title: String,
    pub content: String,
    /// `false` for a draft, which only its owner sees.
    pub published: bool,
    pub created_at: Timestamp,
    pub owner_id: i64,
    pub owner: UserOut,
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
    #[oai(validator(minimum(value = "1")))]
    pub post_id: i64,
    /// 1 adds the caller's vote, 0 removes it.
    #[oai(validator(minimum(value = "0"), maximum(value = "1")))]
    pub dir: i64,
}

/// What a vote did.
#[derive(Object)]
pub struct VoteResult {
    pub message: String,
}

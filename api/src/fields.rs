//! Request fields as the API declares and checks them. Each field is a [`Rule`]: its OpenAPI
//! schema, built from the constants of its rule in `service::fields`, and its check, which
//! is that rule after the value's JSON type. A request object holds [`Checked`] fields,
//! which never fail to parse, so that a 422 can name every broken field at once.

use std::{borrow::Cow, marker::PhantomData};

use chrono::{DateTime, Utc};
use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{MaybeUndefined, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
};
use serde_json::{Value, json};
use service::{
    ServiceError,
    accounts::{DisplayName, Email, Handle, LoginEmail, LoginPassword, Password, Role},
    fields::{self as rules, FieldError, Requirement},
    moderation::Reason,
    posts::{Content, PageSize, SEARCH_MAX_CHARS, Skip, Title, cursors},
    votes::VoteDirection,
};

/// One field's schema and check.
pub trait Rule: Send + Sync + 'static {
    /// What a value that keeps the rule becomes.
    type Value: Send + Sync;

    /// Whether a request must carry the field.
    const REQUIRED: bool = true;

    /// The field's schema, from the same constants as the check.
    fn schema() -> MetaSchema;

    /// Checks a JSON value; `None` when the field was left out.
    ///
    /// # Errors
    /// What the field must be.
    fn check(value: Option<&Value>) -> Result<Self::Value, Requirement>;

    /// Checks a value given as text (a query or path parameter): numbers are read from it.
    ///
    /// # Errors
    /// What the field must be.
    fn check_text(text: Option<&str>) -> Result<Self::Value, Requirement> {
        Self::check(text.map(|text| Value::String(text.to_owned())).as_ref())
    }
}

/// A field's value once its rule was checked: the value, or what it must be.
pub struct Checked<R: Rule>(Result<R::Value, Requirement>, PhantomData<R>);

impl<R: Rule> Checked<R> {
    fn new(result: Result<R::Value, Requirement>) -> Self {
        Self(result, PhantomData)
    }

    /// The value, or the error naming `field`.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] naming `field`.
    pub fn named(self, field: &'static str) -> Result<R::Value, ServiceError> {
        self.0
            .map_err(|requirement| ServiceError::Invalid(vec![FieldError::new(field, requirement)]))
    }
}

/// The two methods of poem-openapi's `Type` for a type that is its own raw value (a leaf,
/// not a container of other values).
macro_rules! own_raw_value {
    () => {
        fn as_raw_value(&self) -> Option<&Self::RawValueType> {
            Some(self)
        }

        fn raw_element_iter<'a>(
            &'a self,
        ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
            Box::new(std::iter::once(self))
        }
    };
}
pub(crate) use own_raw_value;

impl<R: Rule> Type for Checked<R> {
    const IS_REQUIRED: bool = R::REQUIRED;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        std::any::type_name::<R>().into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(R::schema()))
    }

    own_raw_value!();
}

impl<R: Rule> ParseFromJSON for Checked<R> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Ok(Self::new(R::check(value.as_ref())))
    }
}

impl<R: Rule> ParseFromParameter for Checked<R> {
    fn parse_from_parameter(text: &str) -> ParseResult<Self> {
        Ok(Self::new(R::check_text(Some(text))))
    }

    fn parse_from_parameters<I: IntoIterator<Item = A>, A: AsRef<str>>(
        iter: I,
    ) -> ParseResult<Self> {
        let first = iter.into_iter().next();
        Ok(Self::new(R::check_text(first.as_ref().map(AsRef::as_ref))))
    }
}

/// Request objects are only read: nothing writes one.
impl<R: Rule> ToJSON for Checked<R> {
    fn to_json(&self) -> Option<Value> {
        None
    }
}

/// A field of a `PATCH`: left out keeps what is stored; `null` is refused.
///
/// # Errors
/// [`ServiceError::Invalid`] naming `field`.
pub fn patched<R: Rule>(
    field: &'static str,
    value: MaybeUndefined<Checked<R>>,
) -> Result<Option<R::Value>, ServiceError> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Err(ServiceError::invalid(
            field,
            "must not be null; leave the field out to keep it",
        )),
        MaybeUndefined::Value(checked) => checked.named(field).map(Some),
    }
}

/// Combines checks of several parts of one request: the values of all, or every broken
/// field of each.
pub trait AllValid {
    type Values;

    /// # Errors
    /// [`ServiceError::Invalid`] naming every broken field; any other error as it is.
    fn all_valid(self) -> Result<Self::Values, ServiceError>;
}

fn merge(first: ServiceError, second: ServiceError) -> ServiceError {
    match (first, second) {
        (ServiceError::Invalid(mut a), ServiceError::Invalid(b)) => {
            a.extend(b);
            ServiceError::Invalid(a)
        }
        (ServiceError::Invalid(_), other) | (other, _) => other,
    }
}

impl<A, B> AllValid for (Result<A, ServiceError>, Result<B, ServiceError>) {
    type Values = (A, B);

    fn all_valid(self) -> Result<(A, B), ServiceError> {
        match self {
            (Ok(a), Ok(b)) => Ok((a, b)),
            (Err(a), Err(b)) => Err(merge(a, b)),
            (Err(err), _) | (_, Err(err)) => Err(err),
        }
    }
}

impl<A, B, C> AllValid
    for (
        Result<A, ServiceError>,
        Result<B, ServiceError>,
        Result<C, ServiceError>,
    )
{
    type Values = (A, B, C);

    fn all_valid(self) -> Result<(A, B, C), ServiceError> {
        let (a, b, c) = self;
        let ((a, b), c) = ((a, b).all_valid(), c).all_valid()?;
        Ok((a, b, c))
    }
}

// --- the JSON types ---------------------------------------------------------------------

fn text(value: Option<&Value>) -> Result<&str, Requirement> {
    match value {
        None => Err("is required".into()),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err("must be a string".into()),
    }
}

fn integer(value: Option<&Value>) -> Result<i64, Requirement> {
    match value {
        None => Err("is required".into()),
        Some(value) => value
            .as_i64()
            .ok_or_else(|| "must be a whole number of at most 64 bits".into()),
    }
}

fn integer_text(text: Option<&str>) -> Result<i64, Requirement> {
    match text {
        None => Err("is required".into()),
        Some(text) => text
            .parse()
            .map_err(|_| "must be a whole number of at most 64 bits".into()),
    }
}

/// Optional text of at most `max` characters: `None` when left out.
fn optional_text(value: Option<&Value>, max: usize) -> Result<Option<String>, Requirement> {
    value
        .map(|value| {
            let text = text(Some(value))?;
            rules::at_most(text, max)?;
            Ok(text.to_owned())
        })
        .transpose()
}

/// 2^63, the first float past the largest 64-bit integer: what poem-openapi can say of
/// that bound (below it), until the document writes the integer itself.
pub(crate) const INT64_BOUND_AS_FLOAT: f64 = 9_223_372_036_854_775_808.0;

/// A whole number of 64 bits, at least `minimum`, below [`INT64_BOUND_AS_FLOAT`].
fn int64_schema(minimum: i64) -> MetaSchema {
    MetaSchema {
        minimum: Some(minimum as f64),
        maximum: Some(INT64_BOUND_AS_FLOAT),
        exclusive_maximum: Some(true),
        ..MetaSchema::new_with_format("integer", "int64")
    }
}

fn string_schema(format: Option<&'static str>) -> MetaSchema {
    match format {
        Some(format) => MetaSchema::new_with_format("string", format),
        None => MetaSchema::new("string"),
    }
}

// --- the rules --------------------------------------------------------------------------

/// An email to register, in its stored form.
impl Rule for Email {
    type Value = Self;

    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(Email::MAX_CHARS),
            description: Some(Email::rule()),
            ..string_schema(Some("email"))
        }
    }

    fn check(value: Option<&Value>) -> Result<Self, Requirement> {
        Email::parse(text(value)?)
    }
}

/// A password to set.
impl Rule for Password {
    type Value = Self;

    fn schema() -> MetaSchema {
        MetaSchema {
            min_length: Some(Password::MIN_CHARS),
            max_length: Some(Password::MAX_CHARS),
            description: Some(Password::rule()),
            ..string_schema(Some("password"))
        }
    }

    fn check(value: Option<&Value>) -> Result<Self, Requirement> {
        Password::parse(text(value)?)
    }
}

/// A handle; becomes its lower-case form.
impl Rule for Handle {
    type Value = Self;

    fn schema() -> MetaSchema {
        MetaSchema {
            min_length: Some(Handle::MIN_CHARS),
            max_length: Some(Handle::MAX_CHARS),
            pattern: Some(Handle::pattern()),
            description: Some(Handle::rule()),
            ..string_schema(None)
        }
    }

    fn check(value: Option<&Value>) -> Result<Self, Requirement> {
        Handle::parse(text(value)?)
    }
}

/// A display name; becomes the trimmed name.
impl Rule for DisplayName {
    type Value = Self;

    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(DisplayName::MAX_SENT_CHARS),
            pattern: Some(DisplayName::pattern()),
            description: Some(DisplayName::rule()),
            ..string_schema(None)
        }
    }

    fn check(value: Option<&Value>) -> Result<Self, Requirement> {
        DisplayName::parse(text(value)?)
    }
}

/// Why a moderator acted; becomes the trimmed reason.
impl Rule for Reason {
    type Value = Self;

    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(2 * Reason::MAX_CHARS),
            pattern: Some(Reason::pattern()),
            description: Some(Reason::rule()),
            ..string_schema(None)
        }
    }

    fn check(value: Option<&Value>) -> Result<Self, Requirement> {
        Reason::parse(text(value)?)
    }
}

/// A role, by its name.
impl Rule for Role {
    type Value = Self;

    fn schema() -> MetaSchema {
        MetaSchema {
            enum_items: Role::ALL.iter().map(|role| json!(role.name())).collect(),
            ..MetaSchema::new("string")
        }
    }

    fn check(value: Option<&Value>) -> Result<Self, Requirement> {
        let name = text(value)?;
        Role::ALL
            .into_iter()
            .find(|role| role.name() == name)
            .ok_or_else(|| "must be one of member, moderator, admin".into())
    }
}

/// When something ends: a date and time with its offset (RFC 3339), or none (left out or
/// `null`).
pub struct Until;

impl Until {
    /// The longest date and time taken: RFC 3339's with nine digits of fractions and an
    /// offset is 35 characters.
    const MAX_CHARS: usize = 40;
}

/// `text`, if it is at most `max` characters long.
fn rules_at_most(text: &str, max: usize) -> Result<&str, Requirement> {
    rules::at_most(text, max).map(|()| text)
}

impl Rule for Until {
    type Value = Option<DateTime<Utc>>;
    const REQUIRED: bool = false;

    fn schema() -> MetaSchema {
        MetaSchema {
            nullable: true,
            max_length: Some(Until::MAX_CHARS),
            ..MetaSchema::new_with_format("string", "date-time")
        }
    }

    fn check(value: Option<&Value>) -> Result<Self::Value, Requirement> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                DateTime::parse_from_rfc3339(rules_at_most(text(Some(value))?, Until::MAX_CHARS)?)
                    .map(|until| Some(until.to_utc()))
                    .map_err(|_| {
                        "must be a date and time with its offset (RFC 3339), such as \
                     2027-01-31T12:00:00Z"
                            .into()
                    })
            }
        }
    }
}

/// The email a login names; kept as the key it is looked up by.
impl Rule for LoginEmail {
    type Value = Self;

    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(Email::MAX_CHARS),
            pattern: Some(LoginEmail::PATTERN.into()),
            description: Some(LoginEmail::rule()),
            ..string_schema(None)
        }
    }

    fn check(value: Option<&Value>) -> Result<Self, Requirement> {
        LoginEmail::parse(text(value)?)
    }
}

/// The password a login gives.
impl Rule for LoginPassword {
    type Value = Self;

    fn schema() -> MetaSchema {
        MetaSchema {
            min_length: Some(LoginPassword::MIN_CHARS),
            max_length: Some(Password::MAX_CHARS),
            description: Some(LoginPassword::rule()),
            ..string_schema(Some("password"))
        }
    }

    fn check(value: Option<&Value>) -> Result<Self, Requirement> {
        LoginPassword::parse(text(value)?)
    }
}

/// The OAuth2 grant type of the login form: `password` when present.
pub struct GrantType;

impl Rule for GrantType {
    type Value = ();
    const REQUIRED: bool = false;

    fn schema() -> MetaSchema {
        grant_type_schema("password")
    }

    fn check(value: Option<&Value>) -> Result<(), Requirement> {
        match value {
            None => Ok(()),
            value => grant_type(value, "password"),
        }
    }
}

/// The OAuth2 grant type of the refresh form: `refresh_token`.
pub struct RefreshGrantType;

impl Rule for RefreshGrantType {
    type Value = ();

    fn schema() -> MetaSchema {
        grant_type_schema("refresh_token")
    }

    fn check(value: Option<&Value>) -> Result<(), Requirement> {
        grant_type(value, "refresh_token")
    }
}

fn grant_type_schema(grant: &'static str) -> MetaSchema {
    MetaSchema {
        enum_items: vec![json!(grant)],
        ..string_schema(None)
    }
}

fn grant_type(value: Option<&Value>, grant: &str) -> Result<(), Requirement> {
    if text(value)? == grant {
        Ok(())
    } else {
        Err(format!("must be `{grant}`").into())
    }
}

/// A refresh token as the client holds it. Any text is read; one that no login issued is
/// refused as unknown (401), not as invalid.
pub struct RefreshToken;

impl Rule for RefreshToken {
    type Value = String;

    fn schema() -> MetaSchema {
        MetaSchema {
            description: Some("The refresh token of the last login or refresh."),
            max_length: Some(rules::REFRESH_TOKEN_MAX_CHARS),
            ..string_schema(None)
        }
    }

    fn check(value: Option<&Value>) -> Result<String, Requirement> {
        let token = text(value)?;
        rules::at_most(token, rules::REFRESH_TOKEN_MAX_CHARS)?;
        Ok(token.to_owned())
    }
}

/// A token mailed to an account's owner, as the front end posts it back. Any text is read;
/// one that was never issued, was used, or has expired is refused by the service (422
/// naming `token`, as one too long is here).
pub struct AccountToken;

impl Rule for AccountToken {
    type Value = String;

    fn schema() -> MetaSchema {
        MetaSchema {
            description: Some("The token of the link in the mail."),
            max_length: Some(rules::ACCOUNT_TOKEN_MAX_CHARS),
            ..string_schema(None)
        }
    }

    fn check(value: Option<&Value>) -> Result<String, Requirement> {
        let token = text(value)?;
        rules::at_most(token, rules::ACCOUNT_TOKEN_MAX_CHARS)?;
        Ok(token.to_owned())
    }
}

/// A form field the service ignores: any text, or nothing.
pub struct Ignored;

impl Rule for Ignored {
    type Value = ();
    const REQUIRED: bool = false;

    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(rules::IGNORED_FIELD_MAX_CHARS),
            ..string_schema(None)
        }
    }

    fn check(value: Option<&Value>) -> Result<(), Requirement> {
        optional_text(value, rules::IGNORED_FIELD_MAX_CHARS).map(drop)
    }
}

/// A form field the service ignores that may hold a secret: shown masked in Swagger UI.
pub struct IgnoredSecret;

impl Rule for IgnoredSecret {
    type Value = ();
    const REQUIRED: bool = false;

    fn schema() -> MetaSchema {
        MetaSchema {
            format: Some("password"),
            ..Ignored::schema()
        }
    }

    fn check(value: Option<&Value>) -> Result<(), Requirement> {
        Ignored::check(value)
    }
}

/// A post's title; becomes the trimmed title.
impl Rule for Title {
    type Value = Self;

    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(Title::MAX_SENT_CHARS),
            pattern: Some(Title::pattern()),
            description: Some(Title::rule()),
            ..string_schema(None)
        }
    }

    fn check(value: Option<&Value>) -> Result<Self, Requirement> {
        Title::parse(text(value)?)
    }
}

/// A post's content.
impl Rule for Content {
    type Value = Self;

    fn schema() -> MetaSchema {
        MetaSchema {
            min_length: Some(Content::MIN_CHARS),
            max_length: Some(Content::MAX_CHARS),
            pattern: Some(Content::PATTERN.into()),
            description: Some(Content::rule()),
            ..string_schema(None)
        }
    }

    fn check(value: Option<&Value>) -> Result<Self, Requirement> {
        Content::parse(text(value)?)
    }
}

/// Whether a new post is published: `true` when left out; `null` is refused.
pub struct Published;

impl Rule for Published {
    type Value = bool;
    const REQUIRED: bool = false;

    fn schema() -> MetaSchema {
        MetaSchema {
            default: Some(json!(true)),
            ..MetaSchema::new("boolean")
        }
    }

    fn check(value: Option<&Value>) -> Result<bool, Requirement> {
        match value {
            None => Ok(true),
            Some(Value::Null) => Err("must not be null; leave the field out instead".into()),
            Some(value) => Flag::check(Some(value)),
        }
    }
}

/// A boolean.
pub struct Flag;

impl Rule for Flag {
    type Value = bool;

    fn schema() -> MetaSchema {
        MetaSchema::new("boolean")
    }

    fn check(value: Option<&Value>) -> Result<bool, Requirement> {
        match value {
            None => Err("is required".into()),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(_) => Err("must be a boolean".into()),
        }
    }
}

/// The id of a user or post ([`rules::id`]).
pub struct Id;

impl Rule for Id {
    type Value = i64;

    fn schema() -> MetaSchema {
        int64_schema(rules::ID_MIN)
    }

    fn check(value: Option<&Value>) -> Result<i64, Requirement> {
        rules::id(integer(value)?)
    }

    fn check_text(text: Option<&str>) -> Result<i64, Requirement> {
        rules::id(integer_text(text)?)
    }
}

/// What a vote does: 1 adds the caller's vote, 0 takes it back.
impl Rule for VoteDirection {
    type Value = Self;

    fn schema() -> MetaSchema {
        MetaSchema {
            minimum: Some(VoteDirection::Remove.number() as f64),
            maximum: Some(VoteDirection::Add.number() as f64),
            ..MetaSchema::new_with_format("integer", "int64")
        }
    }

    fn check(value: Option<&Value>) -> Result<Self, Requirement> {
        VoteDirection::parse(integer(value)?)
    }
}

/// What to look for in titles ([`SEARCH_MAX_CHARS`]): `None` when left out.
pub struct Search;

impl Rule for Search {
    type Value = Option<String>;
    const REQUIRED: bool = false;

    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(SEARCH_MAX_CHARS),
            ..string_schema(None)
        }
    }

    fn check(value: Option<&Value>) -> Result<Option<String>, Requirement> {
        optional_text(value, SEARCH_MAX_CHARS)
    }
}

/// A page cursor as the client holds it ([`cursors::MAX_CHARS`]); whether the service
/// issued it is the listing's to tell. `None` when left out.
pub struct Cursor;

impl Rule for Cursor {
    type Value = Option<String>;
    const REQUIRED: bool = false;

    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(cursors::MAX_CHARS),
            ..string_schema(None)
        }
    }

    fn check(value: Option<&Value>) -> Result<Option<String>, Requirement> {
        optional_text(value, cursors::MAX_CHARS)
    }
}

/// `If-Match` or `If-None-Match` ([`rules::ENTITY_TAGS_MAX_CHARS`]): `None` when left out.
pub struct EntityTags;

impl Rule for EntityTags {
    type Value = Option<String>;
    const REQUIRED: bool = false;

    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(rules::ENTITY_TAGS_MAX_CHARS),
            ..string_schema(None)
        }
    }

    fn check(value: Option<&Value>) -> Result<Option<String>, Requirement> {
        optional_text(value, rules::ENTITY_TAGS_MAX_CHARS)
    }
}

/// A page's size: `None` when left out (the default size, or a cursor's own).
pub struct Limit;

impl Rule for Limit {
    type Value = Option<PageSize>;
    const REQUIRED: bool = false;

    fn schema() -> MetaSchema {
        MetaSchema {
            default: Some(json!(PageSize::DEFAULT.get())),
            minimum: Some(PageSize::MIN as f64),
            maximum: Some(PageSize::MAX as f64),
            ..MetaSchema::new_with_format("integer", "int64")
        }
    }

    fn check(value: Option<&Value>) -> Result<Option<PageSize>, Requirement> {
        value
            .map(|v| PageSize::parse(integer(Some(v))?))
            .transpose()
    }

    fn check_text(text: Option<&str>) -> Result<Option<PageSize>, Requirement> {
        text.map(|t| PageSize::parse(integer_text(Some(t))?))
            .transpose()
    }
}

/// How many posts to pass over: none when left out.
impl Rule for Skip {
    type Value = Self;
    const REQUIRED: bool = false;

    fn schema() -> MetaSchema {
        MetaSchema {
            default: Some(json!(Skip::default().get())),
            ..int64_schema(Skip::MIN)
        }
    }

    fn check(value: Option<&Value>) -> Result<Self, Requirement> {
        value.map_or(Ok(Skip::default()), |v| Skip::parse(integer(Some(v))?))
    }

    fn check_text(text: Option<&str>) -> Result<Self, Requirement> {
        text.map_or(Ok(Skip::default()), |t| Skip::parse(integer_text(Some(t))?))
    }
}

/// The id of the last event received, to resume after ([`rules::event_id`]); none when left
/// out.
pub struct EventId;

impl Rule for EventId {
    type Value = Option<i64>;
    const REQUIRED: bool = false;

    fn schema() -> MetaSchema {
        int64_schema(rules::EVENT_ID_MIN)
    }

    fn check(value: Option<&Value>) -> Result<Option<i64>, Requirement> {
        value
            .map(|value| rules::event_id(integer(Some(value))?))
            .transpose()
    }

    fn check_text(text: Option<&str>) -> Result<Option<i64>, Requirement> {
        text.map(|text| rules::event_id(integer_text(Some(text))?))
            .transpose()
    }
}

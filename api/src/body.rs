//! Request bodies: JSON ([`JsonBody`]) and the URL-encoded form ([`FormBody`]). Both read
//! the body into a JSON object and parse the request object from it, whose [`Checked`]
//! fields never fail: what is wrong with them is named later, all at once. Only a body that
//! is not an object at all is refused here.
//!
//! [`Checked`]: crate::fields::Checked

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::{
    impl_apirequest_for_payload,
    payload::{Form, Json, ParsePayload, Payload},
    registry::{MetaSchemaRef, Registry},
    types::{ParseFromJSON, Type},
};
use serde_json::{Map, Value};

use crate::problem::Problem;

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

/// An `application/x-www-form-urlencoded` request body of type `T`; every value is text.
pub struct FormBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        <Json<T> as Payload>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type> Payload for FormBody<T> {
    const CONTENT_TYPE: &'static str = "application/x-www-form-urlencoded";

    fn check_content_type(content_type: &str) -> bool {
        <Form<T> as Payload>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let value: Value = serde_json::from_slice(&data).map_err(|err| {
            unreadable(format!(
                "the body is not valid JSON (line {}, column {})",
                err.line(),
                err.column()
            ))
        })?;
        object(value).map(Self)
    }
}

impl<T: ParseFromJSON> ParsePayload for FormBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&data)
            .map_err(|_| unreadable("the body is not a URL-encoded form".into()))?;
        // The first of repeated names counts, as in the query.
        let mut fields = Map::new();
        for (name, value) in pairs {
            fields.entry(name).or_insert(Value::String(value));
        }
        object(Value::Object(fields)).map(Self)
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON);
impl_apirequest_for_payload!(FormBody<T>, T: ParseFromJSON);

/// Parses a request object; its fields are checked later, so only a value that is not an
/// object fails here.
fn object<T: ParseFromJSON>(value: Value) -> poem::Result<T> {
    if !value.is_object() {
        return Err(unreadable("the body must be a JSON object".into()));
    }
    T::parse_from_json(Some(value)).map_err(|_| unreadable("the body could not be read".into()))
}

fn unreadable(detail: String) -> poem::Error {
    poem::Error::from_response(Problem::unprocessable(detail).into_response_with(&[]))
}

//! `JsonBody<T>`: poem-openapi's `Json<T>` request payload, with errors that name the field
//! (poem-openapi says "expected type string" without saying where).

use poem::{FromRequest, Request, RequestBody, http::StatusCode};
use poem_openapi::{
    impl_apirequest_for_payload,
    payload::{ParsePayload, Payload},
    registry::{MetaSchemaRef, Registry},
    types::{ParseFromJSON, Type},
};
use serde_json::Value;

use crate::problem::{Problem, sentence};

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        <poem_openapi::payload::Json<T> as Payload>::check_content_type(content_type)
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
        let value: Value = serde_json::from_slice(&data)
            .map_err(|err| invalid(format!("the body is not valid JSON ({err})")))?;
        if let Some(field) = null_field::<T>(&value) {
            return Err(invalid(format!(
                "{field}: must not be null; leave the field out instead"
            )));
        }
        match T::parse_from_json(Some(value.clone())) {
            Ok(parsed) => Ok(Self(parsed)),
            Err(err) => Err(invalid(describe::<T>(&value, &err.into_message()))),
        }
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON);

fn invalid(detail: String) -> poem::Error {
    let problem = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, sentence(&detail));
    poem::Error::from_response(problem.into_response_with(&[]))
}

/// Names the first field of `value` that does not fit `T`'s schema, or turns poem-openapi's
/// validator message into "field: rule".
fn describe<T: Type>(value: &Value, message: &str) -> String {
    let mut registry = Registry::new();
    T::register(&mut registry);
    let Some(schema) = registry.schemas.get(T::name().as_ref()) else {
        return rule_message(message);
    };
    let Value::Object(object) = value else {
        return "the body must be a JSON object".into();
    };
    for (name, property) in &schema.properties {
        let MetaSchemaRef::Inline(property) = property else {
            continue;
        };
        match object.get(*name) {
            None if schema.required.contains(name) => return format!("{name}: is required"),
            Some(found) if !fits(property.ty, found) => {
                return format!("{name}: must be {}", article(property.ty));
            }
            _ => {}
        }
    }
    rule_message(message)
}

/// The first optional field of `value` that is `null` where `T`'s schema does not declare it
/// nullable. poem-openapi would read such a `null` as the field left out (and so give a
/// field with a default its default), accepting a body its own schema rejects. (A `null`
/// in a required field fails parsing, and [`describe`] names it.)
fn null_field<T: Type>(value: &Value) -> Option<&'static str> {
    let Value::Object(object) = value else {
        return None;
    };
    let mut registry = Registry::new();
    T::register(&mut registry);
    let schema = registry.schemas.get(T::name().as_ref())?;
    schema.properties.iter().find_map(|(name, property)| {
        let nullable = match property {
            MetaSchemaRef::Inline(property) => property.nullable,
            MetaSchemaRef::Reference(_) => false,
        };
        let optional = !schema.required.contains(name);
        (optional && !nullable && object.get(*name) == Some(&Value::Null)).then_some(*name)
    })
}

fn fits(ty: &str, value: &Value) -> bool {
    match ty {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

fn article(ty: &str) -> String {
    match ty {
        "integer" | "array" | "object" => format!("an {ty}"),
        _ => format!("a {ty}"),
    }
}

/// Rewrites poem-openapi's "field `title` verification failed. maxLength(200)" (and the
/// parameter form "failed to parse parameter `limit`: verification failed. minimum(1, ...)")
/// as "title: must be at most 200 characters long". Values are never echoed: one may be a
/// password.
pub fn rule_message(message: &str) -> String {
    // Every path parameter of this API is an `id`; poem-openapi calls it `param0` here.
    let field = if message.starts_with("failed to parse path") {
        Some("id")
    } else {
        message.split('`').nth(1)
    };
    let field = field.filter(|_| message.contains("verification failed"));
    let Some(field) = field else {
        // A value of the wrong type or shape: keep the reason, drop the value.
        let reason = message.split(", found ").next().unwrap_or(message);
        let reason = reason.replace("`param0`", "`id`");
        return format!("the request is invalid: {}", reason.trim_end_matches('.'));
    };
    let rule = message
        .rsplit("verification failed. ")
        .next()
        .unwrap_or_default();
    let number = |rule: &str| -> String {
        rule.split(['(', ',', ')'])
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let requirement = if rule.starts_with("maxLength") {
        format!("must be at most {} characters long", number(rule))
    } else if rule.starts_with("minLength") && number(rule) == "1" {
        "must not be empty".to_owned()
    } else if rule.starts_with("minLength") {
        format!("must be at least {} characters long", number(rule))
    } else if rule.starts_with("maximum") {
        format!("must be at most {}", number(rule))
    } else if rule.starts_with("minimum") {
        format!("must be at least {}", number(rule))
    } else if rule.starts_with("pattern") {
        match field {
            "title" => {
                "must be 1 to 200 characters once trimmed of white space, with no NUL character"
            }
            "email" | "username" => "must not be blank or contain a NUL character",
            _ => "must not contain a NUL character",
        }
        .to_owned()
    } else {
        format!("must satisfy {rule}")
    };
    format!("{field}: {requirement}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{null_field, rule_message};
    use crate::schemas::{PostIn, PostPatch};

    #[test]
    fn null_in_an_optional_field_is_named_and_a_required_one_is_left_to_parsing() {
        let cases = [
            (
                json!({ "title": "t", "content": "c", "published": null }),
                Some("published"),
            ),
            (json!({ "title": null, "content": "c" }), None),
            (
                json!({ "title": "t", "content": "c", "published": false }),
                None,
            ),
            (json!({ "title": "t", "content": "c" }), None),
        ];
        for (body, expected) in cases {
            assert_eq!(null_field::<PostIn>(&body), expected, "{body}");
        }
        assert_eq!(
            null_field::<PostPatch>(&json!({ "content": null })),
            Some("content")
        );
        assert_eq!(null_field::<PostPatch>(&json!([null])), None);
    }

    #[test]
    fn validator_messages_name_the_field_and_the_rule() {
        let cases = [
            (
                r#"failed to parse "PostIn": field `title` verification failed. maxLength(200)"#,
                "title: must be at most 200 characters long",
            ),
            (
                "failed to parse parameter `limit`: verification failed. minimum(1, exclusive: false)",
                "limit: must be at least 1",
            ),
            (
                "failed to parse parameter `limit`: verification failed. maximum(100, exclusive: false)",
                "limit: must be at most 100",
            ),
            (
                r#"failed to parse "LoginJson": field `password` verification failed. minLength(1)"#,
                "password: must not be empty",
            ),
            (
                r#"failed to parse "LoginJson": field `email` verification failed. pattern(...)"#,
                "email: must not be blank or contain a NUL character",
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(rule_message(message), expected);
        }
    }

    #[test]
    fn type_errors_do_not_echo_the_value() {
        let message = r#"Expected input type "string", found "hunter22"."#;
        assert!(!rule_message(message).contains("hunter22"));
    }
}

//! Every error leaves as `application/problem+json` (RFC 9457). Service errors are mapped to
//! a status here, once; poem's own errors (unknown route, wrong method, unparsable request,
//! oversized body) are rewritten into the same shape by [`ProblemDetails`].

use std::marker::PhantomData;

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response,
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::{
    ApiResponse, Object,
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::{ToJSON, Type},
};
use service::{RateLimit, ServiceError, fields::FieldError};

use crate::{
    allowed_methods::AllowedMethods,
    spec_headers::{limit_headers, text_header},
};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Clone, Debug, Object)]
#[oai(example)]
pub struct Problem {
    /// A URI reference naming the problem type; `about:blank` means the status says it all.
    #[oai(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, as a sentence a person can act on; names the field for a
    /// validation error.
    pub detail: String,
    /// `urn:request:<id>`: the request's `X-Request-Id`, to quote when reporting a problem.
    #[oai(skip_serializing_if_is_none)]
    pub instance: Option<String>,
    /// For a validation error (422): every invalid or missing field, each named as the
    /// client sent it.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<InvalidField>>,
}

/// A field of the request that breaks its rule.
#[derive(Clone, Debug, Object)]
#[oai(example)]
pub struct InvalidField {
    /// The field's name, as the client sent it (a body field, a query or path parameter).
    pub field: String,
    /// What the field must be, as a sentence a person can act on.
    pub detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: crate::observe::problem_instance(),
            errors: None,
        }
    }

    /// A 422 for a request that cannot be read as fields at all (not JSON, not an object).
    pub fn unprocessable(clause: String) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, sentence(&clause))
    }

    /// A 422 naming every broken field, in `detail` and in `errors`.
    pub fn invalid_fields(errors: &[FieldError]) -> Self {
        let clauses: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Self {
            errors: Some(
                errors
                    .iter()
                    .map(|error| InvalidField {
                        field: error.field.to_string(),
                        detail: sentence(&error.requirement),
                    })
                    .collect(),
            ),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                sentence(&clauses.join("; ")),
            )
        }
    }

    /// The response, with the headers the status calls for.
    pub fn into_response_with(self, headers: &[(header::HeaderName, String)]) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.to_json().unwrap_or_default();
        let mut response = Response::builder()
            .status(status)
            .content_type(PROBLEM_JSON)
            .body(body.to_string());
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().insert(name.clone(), value);
            }
        }
        response
    }
}

/// The error statuses an operation documents, each with its meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStatus {
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unprocessable,
    TooManyRequests,
    Unavailable,
}

impl ErrorStatus {
    pub(crate) fn code(self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::PreconditionFailed => 412,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Unprocessable => 422,
            Self::TooManyRequests => 429,
            Self::Unavailable => 503,
        }
    }

    pub(crate) fn description(self) -> &'static str {
        match self {
            Self::Unauthorized => {
                "The bearer token or the credentials are missing, malformed, expired or wrong, or the token's session has ended."
            }
            Self::Forbidden => {
                "The caller is known but may not do this (or gave a wrong current password, \
                 or must verify their email address first)."
            }
            Self::NotFound => "The thing does not exist or is not visible to the caller.",
            Self::Conflict => "The request conflicts with what is stored.",
            Self::PreconditionFailed => {
                "The post has changed since the `If-Match` version: nothing was changed; \
                 `ETag` names its current version."
            }
            Self::PayloadTooLarge => "The request body is larger than 1 MiB.",
            Self::UnsupportedMediaType => "The request body is not of a supported content type.",
            Self::Unprocessable => {
                "The request failed validation; `errors` names every invalid or missing field."
            }
            Self::TooManyRequests => {
                "Too many failed logins (for this account or from this address), too many \
                 registrations from this address, too many event streams open for this \
                 account, too many writes from this account, too many mails asked for this \
                 account, address or client, or one sent a moment ago; retry after \
                 `Retry-After` seconds."
            }
            Self::Unavailable => "The database is unreachable or overloaded; retry shortly.",
        }
    }

    fn header(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Unauthorized => Some((
                "WWW-Authenticate",
                "The authentication scheme to use: `Bearer`.",
            )),
            Self::PreconditionFailed => Some(("ETag", "The post's current version.")),
            Self::TooManyRequests | Self::Unavailable => {
                Some(("Retry-After", "Seconds to wait before trying again."))
            }
            _ => None,
        }
    }
}

/// A set of error statuses, named for the operations that share it.
pub trait ErrorSet: Send + Sync + 'static {
    const STATUSES: &'static [ErrorStatus];
    /// Headers every one of these errors may carry, besides those of its status.
    const HEADERS: fn() -> Vec<MetaHeader> = Vec::new;
}

macro_rules! error_sets {
    ($($(#[$doc:meta])* $name:ident = [$($status:ident),* $(,)?] $(with $headers:path)?;)*) => {
        $(
            $(#[$doc])*
            pub struct $name;
            impl ErrorSet for $name {
                const STATUSES: &'static [ErrorStatus] = &[$(ErrorStatus::$status),*];
                $(const HEADERS: fn() -> Vec<MetaHeader> = $headers;)?
            }
        )*
    };
}

error_sets! {
    /// `GET /health`.
    HealthErrors = [Unavailable];
    /// `POST /users`.
    RegisterErrors = [Conflict, PayloadTooLarge, UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable];
    /// `POST /users/verify`.
    VerifyErrors = [Conflict, PayloadTooLarge, UnsupportedMediaType, Unprocessable, Unavailable];
    /// `POST /users/me/verification`.
    VerificationMailErrors = [Unauthorized, Conflict, TooManyRequests, Unavailable]
        with limit_headers;
    /// `POST /password-reset`.
    ResetRequestErrors = [PayloadTooLarge, UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable]
        with limit_headers;
    /// `POST /password-reset/confirm`.
    ResetErrors = [PayloadTooLarge, UnsupportedMediaType, Unprocessable, Unavailable];
    /// `POST /login`.
    LoginErrors = [Unauthorized, PayloadTooLarge, UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable];
    /// `POST /login/refresh`.
    RefreshErrors = [Unauthorized, PayloadTooLarge, UnsupportedMediaType, Unprocessable, Unavailable];
    /// Operations on the caller's own account.
    CallerErrors = [Unauthorized, Unavailable];
    /// `PATCH /users/me`.
    ProfileErrors = [Unauthorized, Forbidden, Conflict, PayloadTooLarge, UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable]
        with limit_headers;
    /// `GET /events`.
    StreamErrors = [Unauthorized, Unprocessable, TooManyRequests, Unavailable];
    /// `PUT /users/me/email`.
    EmailChangeErrors = [Unauthorized, Forbidden, Conflict, PayloadTooLarge, UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable]
        with limit_headers;
    /// `PUT /users/me/password`.
    PasswordErrors = [Unauthorized, Forbidden, PayloadTooLarge, UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable];
    /// Reading one thing by id.
    ReadErrors = [Unauthorized, NotFound, Unprocessable, Unavailable];
    /// Listing posts.
    ListErrors = [Unauthorized, Unprocessable, Unavailable];
    /// Creating a post.
    CreateErrors = [Unauthorized, Forbidden, PayloadTooLarge, UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable]
        with limit_headers;
    /// Replacing or patching a post.
    ChangeErrors = [Unauthorized, Forbidden, NotFound, PreconditionFailed, PayloadTooLarge, UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable]
        with limit_headers;
    /// Deleting a post.
    DeleteErrors = [Unauthorized, Forbidden, NotFound, PreconditionFailed, Unprocessable, TooManyRequests, Unavailable]
        with limit_headers;
    /// Giving a role.
    RoleErrors = [Unauthorized, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType, Unprocessable, Unavailable];
    /// A step of moderation with a body.
    ModerationErrors = [Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType, Unprocessable, Unavailable];
    /// Undoing a step of moderation.
    ModerationUndoErrors = [Unauthorized, Forbidden, NotFound, Conflict, Unprocessable, Unavailable];
    /// A moderation listing.
    ModerationListErrors = [Unauthorized, Forbidden, Unprocessable, Unavailable];
    /// Voting.
    VoteErrors = [Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable]
        with limit_headers;
}

/// An error response of an operation whose documented statuses are `S`.
pub struct ApiError<S> {
    problem: Problem,
    headers: Vec<(header::HeaderName, String)>,
    statuses: PhantomData<S>,
}

impl<S> ApiError<S> {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self::from_problem(Problem::new(status, detail))
    }

    fn from_problem(problem: Problem) -> Self {
        Self {
            problem,
            headers: Vec::new(),
            statuses: PhantomData,
        }
    }

    fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn status(&self) -> u16 {
        self.problem.status
    }

    /// The problem document the response carries.
    pub fn into_problem(self) -> Problem {
        self.problem
    }
}

/// Seconds a client should wait when the database is unavailable.
pub(crate) const UNAVAILABLE_RETRY_AFTER: &str = "5";

impl<S> From<ServiceError> for ApiError<S> {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::NotFound(detail) => Self::new(StatusCode::NOT_FOUND, sentence(&detail)),
            ServiceError::Forbidden(detail) => Self::new(StatusCode::FORBIDDEN, sentence(&detail)),
            ServiceError::Conflict(detail) => Self::new(StatusCode::CONFLICT, sentence(&detail)),
            ServiceError::Stale {
                detail,
                current_tag,
            } => Self::new(StatusCode::PRECONDITION_FAILED, sentence(&detail))
                .with_header(header::ETAG, crate::conditional::quoted(&current_tag)),
            ServiceError::Invalid(errors) => Self::from_problem(Problem::invalid_fields(&errors)),
            ServiceError::Unauthorized(detail) => {
                Self::new(StatusCode::UNAUTHORIZED, sentence(&detail))
            }
            ServiceError::RateLimited {
                limit,
                retry_after_secs,
            } => {
                let detail = match limit {
                    RateLimit::FailedLoginsForAccount => format!(
                        "Too many failed logins for this account; retry in {retry_after_secs} seconds."
                    ),
                    RateLimit::FailedLoginsFromAddress => format!(
                        "Too many failed logins from this address; retry in {retry_after_secs} seconds."
                    ),
                    RateLimit::Registrations => format!(
                        "Too many registrations from this address; retry in {retry_after_secs} seconds."
                    ),
                    RateLimit::EventStreams => format!(
                        "This account has as many event streams open as it may; close one, or \
                         retry in {retry_after_secs} seconds."
                    ),
                    RateLimit::Writes => format!(
                        "Too many writes from this account; retry in {retry_after_secs} seconds."
                    ),
                    RateLimit::VerificationMails => format!(
                        "A verification mail was sent to this account a moment ago; check the \
                         inbox, or retry in {retry_after_secs} seconds."
                    ),
                    RateLimit::EmailChanges => format!(
                        "This account asked to change its address a moment ago; check the new \
                         address's inbox, or retry in {retry_after_secs} seconds."
                    ),
                    RateLimit::AccountMailsFromAddress => format!(
                        "Too many verification and address change mails asked from this \
                         address; retry in {retry_after_secs} seconds."
                    ),
                    RateLimit::PasswordResetsForEmail => format!(
                        "Password resets for this address were asked for too often; check the \
                         inbox, or retry in {retry_after_secs} seconds."
                    ),
                    RateLimit::PasswordResetsFromAddress => format!(
                        "Too many password resets asked from this address; retry in \
                         {retry_after_secs} seconds."
                    ),
                };
                Self::new(StatusCode::TOO_MANY_REQUESTS, detail)
                    .with_header(header::RETRY_AFTER, retry_after_secs.to_string())
            }
            ServiceError::Busy { retry_after_secs } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("The service is busy; retry in {retry_after_secs} seconds."),
            )
            .with_header(header::RETRY_AFTER, retry_after_secs.to_string()),
            ServiceError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database is unreachable or overloaded; retry shortly.",
                )
                .with_header(header::RETRY_AFTER, UNAVAILABLE_RETRY_AFTER.into())
            }
            internal @ ServiceError::Internal { .. } => {
                tracing::error!(error = %causes(&internal), "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An unexpected error occurred.",
                )
            }
        }
    }
}

/// An error and each of its causes, as `what: why: …`, for the log.
fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Turns a clause into a detail sentence: capitalised (unless it starts with a field name,
/// as in "title: is required") and ending in one full stop.
pub(crate) fn sentence(clause: &str) -> String {
    let clause = clause.trim_end_matches('.');
    let names_a_field = clause.split_once(": ").is_some_and(|(head, _)| {
        !head.is_empty() && head.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    });
    let mut chars = clause.chars();
    match chars.next() {
        Some(first) if !names_a_field => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        _ => format!("{clause}."),
    }
}

impl<S: Send> IntoResponse for ApiError<S> {
    fn into_response(self) -> Response {
        self.problem.into_response_with(&self.headers)
    }
}

impl<S: Send> From<ApiError<S>> for poem::Error {
    fn from(err: ApiError<S>) -> Self {
        poem::Error::from_response(err.into_response())
    }
}

impl<S: ErrorSet> ApiResponse for ApiError<S> {
    fn meta() -> MetaResponses {
        let responses = S::STATUSES
            .iter()
            .map(|status| MetaResponse {
                description: status.description(),
                status: Some(status.code()),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: PROBLEM_JSON,
                    schema: Problem::schema_ref(),
                }],
                headers: status
                    .header()
                    .map(|(name, description)| text_header(name, description, true))
                    .into_iter()
                    .chain((S::HEADERS)())
                    .collect(),
            })
            .collect();
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// Rewrites every error that is not already a problem document (unknown routes, wrong
/// methods, unparsable requests, oversized bodies) into one, and keeps 5xx causes out of
/// responses and in the log.
pub struct ProblemDetails {
    allowed: AllowedMethods,
}

impl ProblemDetails {
    pub fn new(allowed: AllowedMethods) -> Self {
        Self { allowed }
    }
}

impl<E: Endpoint> Middleware<E> for ProblemDetails {
    type Output = ProblemDetailsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ProblemDetailsEndpoint {
            inner,
            allowed: self.allowed.clone(),
        }
    }
}

pub struct ProblemDetailsEndpoint<E> {
    inner: E,
    allowed: AllowedMethods,
}

impl<E: Endpoint> Endpoint for ProblemDetailsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let err = match self.inner.call(req).await {
            Ok(output) => return Ok(output.into_response()),
            Err(err) if err.is_from_response() => return Ok(err.into_response()),
            Err(err) => err,
        };
        let status = err.status();
        let (status, detail) = match status {
            StatusCode::NOT_FOUND => (
                status,
                format!("There is no resource at {path}; see /docs for what exists."),
            ),
            StatusCode::METHOD_NOT_ALLOWED => {
                (status, format!("{method} is not allowed on {path}."))
            }
            StatusCode::PAYLOAD_TOO_LARGE => (
                status,
                ErrorStatus::PayloadTooLarge.description().to_owned(),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (status, unsupported_media_type(&err)),
            // poem-openapi reports a parameter or body it could not read as 400: the request
            // failed validation. Every field is checked by its rule (see `fields`), so this
            // is left for what poem reads itself; its own text is not shown.
            StatusCode::BAD_REQUEST => {
                let problem = match err.downcast_ref::<poem_openapi::error::ParseParamError>() {
                    Some(param) => Problem::invalid_fields(&[FieldError::new(
                        param.name.to_owned(),
                        "could not be read",
                    )]),
                    None => Problem::unprocessable("the request could not be read".into()),
                };
                return Ok(problem.into_response_with(&[]));
            }
            status if status.is_server_error() => {
                tracing::error!(cause = %err, %status, "request failed");
                (status, "An unexpected error occurred.".to_owned())
            }
            status => (status, sentence(&err.to_string())),
        };
        let mut headers = Vec::new();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            headers.push((header::ALLOW, self.allowed.for_path(&path).join(", ")));
        }
        Ok(Problem::new(status, detail).into_response_with(&headers))
    }
}

/// A 415's detail: what was sent, and where to look for what is accepted.
fn unsupported_media_type(err: &poem::Error) -> String {
    let accepted = "see /docs for the types each operation accepts";
    match err.downcast_ref::<poem_openapi::error::ContentTypeError>() {
        Some(poem_openapi::error::ContentTypeError::NotSupported { content_type }) => {
            format!("A body of type {content_type} is not accepted here; {accepted}.")
        }
        _ => format!("The request body has no Content-Type; {accepted}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_of_an_internal_error_names_each_of_its_causes() {
        let err = ServiceError::from(service::sea_orm::DbErr::Custom("the disk is full".into()));
        let logged = causes(&err);
        assert!(
            logged.starts_with("internal error: a database statement failed: "),
            "{logged}"
        );
        assert!(logged.ends_with("the disk is full"), "{logged}");
    }
}

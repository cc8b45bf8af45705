//! Who is calling: the bearer token, declared as an OAuth2 password flow (so Swagger UI's
//! Authorize button logs in through `/login`) and as plain HTTP bearer, and checked once.

use poem::{
    Request, RequestBody,
    http::{StatusCode, header},
};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, OAuthScopes, SecurityScheme, auth::Bearer,
    registry::Registry,
};
use service::{Caller, ServiceError};

use std::sync::Arc;

use crate::{
    observe::RequestContext,
    problem::{ApiError, CallerErrors},
    state::AppState,
};

/// The scopes of the OAuth2 flow. OpenAPI requires at least one; a token carries them all.
#[derive(OAuthScopes)]
pub enum Scope {
    /// Read and write posts and votes, and manage the caller's account.
    #[oai(rename = "social")]
    #[expect(
        dead_code,
        reason = "scopes are declared in the spec; tokens carry them all"
    )]
    Social,
}

/// Log in with email (as `username`) and password; Swagger UI's Authorize uses this. The
/// access token is a JWT checked as RFC8725 advises: HS256 only (`none` and every other
/// algorithm refused), with an expiry.
#[derive(SecurityScheme)]
#[oai(
    rename = "OAuth2Password",
    ty = "oauth2",
    // Relative, so that it resolves against wherever the docs are served (any host, port
    // or proxy).
    flows(password(token_url = "/login", refresh_url = "/login/refresh", scopes = "Scope"))
)]
pub struct OAuth2Password(#[allow(dead_code)] Bearer);

/// Paste a token from `POST /login`: a JWT checked as RFC8725 advises (HS256 only, `none` and
/// every other algorithm refused, with an expiry).
#[derive(SecurityScheme)]
#[oai(rename = "BearerToken", ty = "bearer", bearer_format = "JWT")]
pub struct BearerToken(#[allow(dead_code)] Bearer);

/// The caller named by a valid bearer token. Whether their session is still live is for each
/// operation to check, in the way that costs it least: a handler cannot skip it.
pub struct Authenticated {
    pub caller: Caller,
}

impl<'a> ApiExtractor<'a> for Authenticated {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <OAuth2Password as ApiExtractor>::register(registry);
        <BearerToken as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = <OAuth2Password as ApiExtractor>::security_schemes();
        schemes.extend(<BearerToken as ApiExtractor>::security_schemes());
        schemes
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = app_state(req)?;
        let caller = bearer_token(req)
            .and_then(|token| state.accounts.token_caller(token))
            .map_err(ApiError::<CallerErrors>::from)?;
        log_caller(req, &caller);
        Ok(Self { caller })
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme name is
/// case-insensitive).
///
/// # Errors
/// [`ServiceError::Unauthorized`] when there is none.
pub(crate) fn bearer_token(req: &Request) -> Result<&str, ServiceError> {
    let token = || {
        let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    };
    token().ok_or_else(|| {
        ServiceError::Unauthorized("a bearer token is required; get one from POST /login".into())
    })
}

/// A ticket from `POST /events/ticket`, for `GET /events` only.
#[derive(SecurityScheme)]
#[oai(
    rename = "EventTicket",
    ty = "api_key",
    key_in = "query",
    key_name = "ticket"
)]
pub struct EventTicketKey(#[allow(dead_code)] poem_openapi::auth::ApiKey);

/// The caller of an event stream: by bearer token, or else by a ticket (which it spends).
pub struct Subscriber {
    pub caller: Caller,
}

impl<'a> ApiExtractor<'a> for Subscriber {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Authenticated as ApiExtractor>::register(registry);
        <EventTicketKey as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = <Authenticated as ApiExtractor>::security_schemes();
        schemes.extend(<EventTicketKey as ApiExtractor>::security_schemes());
        schemes
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let Some(ticket) = ticket(req).filter(|_| bearer_token(req).is_err()) else {
            let Authenticated { caller } =
                Authenticated::from_request(req, body, param_opts).await?;
            return Ok(Self { caller });
        };
        let caller = service::events::redeem_ticket(&app_state(req)?.db, &ticket)
            .await
            .map_err(ApiError::<CallerErrors>::from)?;
        log_caller(req, &caller);
        Ok(Self { caller })
    }
}

pub(crate) fn app_state(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>().ok_or_else(|| {
        poem::Error::from_string("no application state", StatusCode::INTERNAL_SERVER_ERROR)
    })
}

/// Names the caller in the request's log line.
pub(crate) fn log_caller(req: &Request, caller: &Caller) {
    if let Some(context) = req.data::<Arc<RequestContext>>() {
        context.set_user(caller.user_id());
    }
}

/// The `ticket` query parameter, if given.
fn ticket(req: &Request) -> Option<String> {
    let query = req.uri().query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find_map(|(name, value)| (name == "ticket").then_some(value))
}

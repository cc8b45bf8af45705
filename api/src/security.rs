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
use service::{Caller, ServiceError, User};

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

/// The authenticated caller's account and session, read from the database: one query before
/// the operation's own, for operations that need the account itself (its email, or its id
/// checked before a write).
pub struct CallerAccount(pub User, pub Caller);

/// The caller's account and session from a valid token, with no query: the operation checks
/// that the session still exists inside its own statement (a listing, a read), at no extra
/// round trip.
pub struct CallerFromToken(pub Caller);

/// Declares both security schemes and extracts `Self` from a request's bearer token.
macro_rules! bearer_extractor {
    ($ty:ty, |$state:ident, $token:ident| $resolve:expr) => {
        impl<'a> ApiExtractor<'a> for $ty {
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
                let $state = app_state(req)?;
                let resolved = match bearer_token(req) {
                    Some($token) => $resolve,
                    None => Err(ServiceError::Unauthorized(
                        "a bearer token is required; get one from POST /login".into(),
                    )),
                };
                let resolved: Self = resolved.map_err(|err| ApiError::<CallerErrors>::from(err))?;
                log_caller(req, resolved.id());
                Ok(resolved)
            }
        }
    };
}

impl CallerAccount {
    fn id(&self) -> i64 {
        self.0.id
    }
}

impl CallerFromToken {
    fn id(&self) -> i64 {
        self.0.user_id
    }
}

bearer_extractor!(CallerAccount, |state, token| state
    .accounts
    .authenticate(&state.db, token)
    .await
    .map(|(user, caller)| CallerAccount(user, caller)));

bearer_extractor!(CallerFromToken, |state, token| state
    .accounts
    .token_caller(token)
    .map(CallerFromToken));

/// The token of an `Authorization: Bearer <token>` header (the scheme name is
/// case-insensitive).
fn bearer_token(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
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
pub struct EventsCaller(pub Caller);

impl<'a> ApiExtractor<'a> for EventsCaller {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <CallerFromToken as ApiExtractor>::register(registry);
        <EventTicketKey as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = <CallerFromToken as ApiExtractor>::security_schemes();
        schemes.extend(<EventTicketKey as ApiExtractor>::security_schemes());
        schemes
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let Some(ticket) = ticket(req).filter(|_| bearer_token(req).is_none()) else {
            let CallerFromToken(caller) =
                CallerFromToken::from_request(req, body, param_opts).await?;
            return Ok(Self(caller));
        };
        let caller = service::events::redeem_ticket(&app_state(req)?.db, &ticket)
            .await
            .map_err(ApiError::<CallerErrors>::from)?;
        log_caller(req, caller.user_id);
        Ok(Self(caller))
    }
}

pub(crate) fn app_state(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>().ok_or_else(|| {
        poem::Error::from_string("no application state", StatusCode::INTERNAL_SERVER_ERROR)
    })
}

/// Names the caller in the request's log line.
fn log_caller(req: &Request, user_id: i64) {
    if let Some(context) = req.data::<Arc<RequestContext>>() {
        context.set_user(user_id);
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

//! Limits as clients meet them: every response of an operation counted against limits,
//! success or error, says what is left of each in `RateLimit-Policy` and `RateLimit` (IETF
//! draft-ietf-httpapi-ratelimit-headers, version 08: structured fields), e.g.
//! `"writes";q=60;w=60` and `"writes";r=57;t=41`; a limit that is off is not shown.
//!
//! An operation that writes takes a [`Writer`], which counts the write against the caller's
//! budget (429 past it); others show the limits the service counted them against with
//! [`Shown::show`].

use std::sync::{Arc, OnceLock};

use poem::{
    Endpoint, IntoResponse, Request, RequestBody, Response,
    http::{HeaderName, HeaderValue},
};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions,
    registry::{MetaResponses, Registry},
};
use service::{Caller, ServiceError, limits::Allowance, writes};

use crate::{
    problem::{ApiError, CallerErrors},
    security::{Authenticated, app_state, bearer_token, log_caller},
    spec_headers::limit_headers,
    state::AppState,
};

const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The caller of a write, read with their account (their session checked live in the same
/// statement) and the write counted against their budget, where the database allows; when
/// `REQUIRE_VERIFIED_EMAIL` is on, one whose address is not verified is refused (403).
pub struct Writer {
    pub caller: Caller,
}

impl<'a> ApiExtractor<'a> for Writer {
    const TYPES: &'static [ApiExtractorType] = <Authenticated as ApiExtractor>::TYPES;
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Authenticated as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        <Authenticated as ApiExtractor>::security_schemes()
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = app_state(req)?;
        let token = bearer_token(req).map_err(ApiError::<CallerErrors>::from)?;
        let caller = if state.writes_per_minute == 0 {
            state.accounts.authenticate(&state.db, token).await
        } else {
            counted(req, state, token).await
        }
        .map_err(ApiError::<CallerErrors>::from)?;
        log_caller(req, &caller);
        if state.require_verified_email {
            service::accounts::require_verified(&state.db, &caller)
                .await
                .map_err(ApiError::<CallerErrors>::from)?;
        }
        Ok(Self { caller })
    }
}

/// The caller of `token`, their write counted against the budget, which is shown.
async fn counted(req: &Request, state: &AppState, token: &str) -> Result<Caller, ServiceError> {
    let caller = state.accounts.token_caller(token)?;
    let (caller, budget) = writes::count(&state.db, caller, state.writes_per_minute).await?;
    if let Some(shown) = req.data::<Arc<Shown>>() {
        shown.show(vec![budget]);
    }
    budget.check()?;
    Ok(caller)
}

/// Where a request leaves the limits it was counted against, for [`show_limits`] to show;
/// every request has one.
#[derive(Default)]
pub struct Shown(OnceLock<Vec<Allowance>>);

impl Shown {
    /// Shows `allowances` on the response (the first call of a request's only).
    pub fn show(&self, allowances: Vec<Allowance>) {
        let _ = self.0.set(allowances);
    }
}

/// `RateLimit-Policy`: each limit's name, quota and window.
pub fn policies(allowances: &[Allowance]) -> String {
    list(allowances, |allowance| {
        format!("q={};w={}", allowance.quota, allowance.window_seconds)
    })
}

/// `RateLimit`: what is left of each limit, and when it grows again.
pub fn remaining(allowances: &[Allowance]) -> String {
    list(allowances, |allowance| {
        format!(
            "r={};t={}",
            allowance.remaining, allowance.resets_in_seconds
        )
    })
}

/// A structured-field list of the limits, each its policy's name with `parameters`.
fn list(allowances: &[Allowance], parameters: impl Fn(&Allowance) -> String) -> String {
    allowances
        .iter()
        .map(|allowance| format!("\"{}\";{}", allowance.limit.policy(), parameters(allowance)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Puts the headers of the limits a request was counted against on its response, whatever
/// its status (errors from parsing the request included).
pub async fn show_limits<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let shown = Arc::new(Shown::default());
    req.set_data(Arc::clone(&shown));
    let mut response = match ep.call(req).await {
        Ok(output) => output.into_response(),
        Err(err) => err.into_response(),
    };
    if let Some(allowances) = shown.0.get().filter(|allowances| !allowances.is_empty()) {
        let headers = response.headers_mut();
        for (name, value) in [
            (POLICY, policies(allowances)),
            (RATE_LIMIT, remaining(allowances)),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    Ok(response)
}

/// A success response `T` of an operation counted against limits, with their headers
/// declared.
pub struct Limited<T>(pub T);

impl<T: ApiResponse> ApiResponse for Limited<T> {
    fn meta() -> MetaResponses {
        let mut meta = T::meta();
        for response in &mut meta.responses {
            response.headers.extend(limit_headers());
        }
        meta
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: IntoResponse> IntoResponse for Limited<T> {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

//! The write limit as clients meet it: an operation that writes takes a [`Writer`], which
//! counts the write against the caller's budget (429 past it), and every response of such an
//! operation, success or error, says what is left of the budget in `RateLimit-Policy` and
//! `RateLimit` (IETF draft-ietf-httpapi-ratelimit-headers, version 08: structured fields),
//! e.g. `"writes";q=60;w=60` and `"writes";r=57;t=41`. With the limit off there are none.

use std::sync::{Arc, OnceLock};

use poem::{
    Endpoint, IntoResponse, Request, RequestBody, Response,
    http::{HeaderName, HeaderValue},
};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions,
    registry::{MetaResponses, Registry},
};
use service::{
    Caller, ServiceError,
    writes::{self, WINDOW_SECONDS, WriteBudget},
};

use crate::{
    problem::{ApiError, CallerErrors},
    security::{Authenticated, app_state, bearer_token, log_caller},
    spec_headers::write_budget_headers,
    state::AppState,
};

const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The name of the policy in both headers.
const POLICY_NAME: &str = "writes";

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

/// The caller of `token`, their write counted against the budget, which is left for
/// [`budget_headers`] to show.
async fn counted(req: &Request, state: &AppState, token: &str) -> Result<Caller, ServiceError> {
    let caller = state.accounts.token_caller(token)?;
    let (caller, budget) = writes::count(&state.db, caller, state.writes_per_minute).await?;
    if let Some(slot) = req.data::<Arc<BudgetSlot>>() {
        let _ = slot.0.set(budget);
    }
    budget.check()?;
    Ok(caller)
}

/// Where a [`Writer`] leaves the budget for [`budget_headers`] to show.
#[derive(Default)]
struct BudgetSlot(OnceLock<WriteBudget>);

/// Puts the budget's headers on the response of every request whose write was counted,
/// whatever its status (errors from parsing the request included).
pub async fn budget_headers<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let slot = Arc::new(BudgetSlot::default());
    req.set_data(Arc::clone(&slot));
    let mut response = match ep.call(req).await {
        Ok(output) => output.into_response(),
        Err(err) => err.into_response(),
    };
    if let Some(budget) = slot.0.get() {
        let headers = response.headers_mut();
        for (name, value) in [
            (
                POLICY,
                format!("\"{POLICY_NAME}\";q={};w={WINDOW_SECONDS}", budget.quota),
            ),
            (
                RATE_LIMIT,
                format!(
                    "\"{POLICY_NAME}\";r={};t={}",
                    budget.remaining, budget.resets_in_seconds
                ),
            ),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    Ok(response)
}

/// A write's success response `T`, with the budget's headers declared.
pub struct Limited<T>(pub T);

impl<T: ApiResponse> ApiResponse for Limited<T> {
    fn meta() -> MetaResponses {
        let mut meta = T::meta();
        for response in &mut meta.responses {
            response.headers.extend(write_budget_headers());
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

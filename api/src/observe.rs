//! What operators see: a request id on every request and log line, one log line per request,
//! and Prometheus metrics.

use std::{
    net::IpAddr,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::{Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, http::HeaderValue};
use poem_openapi::OperationId;
use tracing::Instrument;

use crate::client_address::TrustedProxies;

pub const REQUEST_ID: &str = "x-request-id";

tokio::task_local! {
    /// The id of the request whose handling this task is doing.
    static CURRENT_REQUEST: Arc<str>;
}

/// `urn:request:<id>` for a problem document about the request being handled, so that a
/// client can quote it and an operator can find the request's log lines.
pub fn problem_instance() -> Option<String> {
    CURRENT_REQUEST
        .try_with(|id| format!("urn:request:{id}"))
        .ok()
}

/// Per-request facts: the client's address for handlers, and what handlers add to the
/// request's log line.
pub struct RequestContext {
    client: Option<IpAddr>,
    user_id: OnceLock<i64>,
}

impl RequestContext {
    fn new(client: Option<IpAddr>) -> Self {
        Self {
            client,
            user_id: OnceLock::new(),
        }
    }

    /// The client's address, as [`TrustedProxies::client_address`] resolves it.
    pub fn client(&self) -> Option<IpAddr> {
        self.client
    }

    /// Records who the caller is, once authenticated.
    pub fn set_user(&self, id: i64) {
        let _ = self.user_id.set(id);
    }
}

/// Gives every request an id (the client's `X-Request-Id` when well formed), runs it inside a
/// span carrying that id, writes one log line when it ends, counts it in the metrics, and
/// puts the id in the response header (and, through [`problem_instance`], in the `instance`
/// of every problem document built meanwhile).
pub struct Observe {
    pub proxies: TrustedProxies,
}

impl<E: Endpoint> Middleware<E> for Observe {
    type Output = ObserveEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ObserveEndpoint {
            inner,
            proxies: self.proxies.clone(),
        }
    }
}

pub struct ObserveEndpoint<E> {
    inner: E,
    proxies: TrustedProxies,
}

impl<E: Endpoint> Endpoint for ObserveEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let request_id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| is_well_formed(id))
            .map_or_else(new_request_id, str::to_owned);
        let client = self.proxies.client_address(&req);
        let context = Arc::new(RequestContext::new(client));
        req.set_data(Arc::clone(&context));
        let method = req.method().clone();
        let span = tracing::info_span!("request", request_id = %request_id);

        let call = self.inner.call(req).instrument(span.clone());
        let result = CURRENT_REQUEST
            .scope(Arc::from(request_id.as_str()), call)
            .await;
        let mut response = match result {
            Ok(output) => output.into_response(),
            Err(err) => err.into_response(),
        };

        let status = response.status().as_u16();
        let route = response
            .data::<PathPattern>()
            .map_or_else(|| "unmatched".to_owned(), |p| route_template(&p.0));
        let operation = response.data::<OperationId>().map_or("none", |id| id.0);
        let latency = started.elapsed();
        let _entered = span.enter();
        tracing::info!(
            %method,
            route,
            status,
            latency_ms = latency.as_secs_f64() * 1000.0,
            user_id = context.user_id.get().copied(),
            client = client.map(|c| c.to_string()),
            "request"
        );
        let labels = [
            ("operation", operation.to_owned()),
            ("status", status.to_string()),
        ];
        metrics::counter!("http_requests_total", &labels).increment(1);
        match (operation, status) {
            ("login", 401) => metrics::counter!("login_failures_total").increment(1),
            ("login", 429) => metrics::counter!("login_rate_limited_total").increment(1),
            _ => {}
        }
        metrics::histogram!("http_request_duration_seconds", &labels).record(latency.as_secs_f64());

        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        Ok(response)
    }
}

/// The route as the spec writes it: poem-openapi routes `/posts/{id}` as `/posts/:param0`,
/// and every path parameter of this API is an `id`.
fn route_template(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| {
            if segment.starts_with(':') {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Up to 128 characters of letters, digits, `-`, `_`, `.` and `:`; anything else is
/// replaced, so that a log line cannot be forged through the header.
fn is_well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The process's metrics recorder, installed once (several applications may run in one
/// process, as in the tests).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then ours simply records nothing.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Every few seconds, folds the latency samples recorded since the last time into their
/// histogram buckets. The recorder keeps each sample until then (a scrape does it too), so a
/// service nobody scrapes would otherwise grow by 8 bytes a request, without end.
pub async fn metrics_upkeep() {
    let handle = metrics_handle();
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_and_plain() {
        assert!(is_well_formed("abc-123_x.y:z"));
        for bad in ["", "two words", "new\nline", &"x".repeat(129)] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
        assert!(is_well_formed(&new_request_id()));
    }

    #[test]
    fn route_templates_name_the_id() {
        assert_eq!(route_template("/posts/:param0"), "/posts/{id}");
        assert_eq!(route_template("/posts"), "/posts");
    }
}

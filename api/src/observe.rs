//! What operators see: a request id on every request and log line, one log line per request,
//! and Prometheus metrics.

use std::{
    net::IpAddr,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use ipnet::{IpNet, Ipv4Net};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use poem::{Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, http::HeaderValue};
use poem_openapi::OperationId;
use tracing::Instrument;

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

/// Which peers may tell us the client's address in `X-Forwarded-For`: addresses and
/// ranges. An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, as a dual-stack listener sees
/// an IPv4 peer) is taken as the IPv4 address it maps.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(Arc::new(networks))
    }

    /// Reads `TRUSTED_PROXIES` entries: addresses (`10.0.0.1`, `::1`) or ranges
    /// (`10.0.0.0/8`, `fd00::/8`); blank entries are skipped.
    ///
    /// # Errors
    /// One line naming the first entry that is neither: the service must not start with a
    /// proxy it would silently not trust.
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        let mut networks = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let network = match entry.parse::<IpNet>() {
                Ok(network) => network,
                Err(_) => match entry.parse::<IpAddr>() {
                    Ok(address) => IpNet::from(address),
                    Err(_) => anyhow::bail!(
                        "TRUSTED_PROXIES: {entry:?} is neither an IP address nor a range \
                         (such as 10.0.0.1 or 10.0.0.0/8)"
                    ),
                },
            };
            networks.push(canonical_network(network));
        }
        Ok(Self::new(networks))
    }

    /// Whether `peer` is one of the trusted proxies, whose forwarding headers are believed.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|network| network.contains(&peer))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy, in which case
    /// the right-most address of `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_address(&self, req: &Request) -> Option<IpAddr> {
        let peer = req.remote_addr().as_socket_addr().map(|a| a.ip())?;
        let forwarded: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Some(self.resolve(peer, &forwarded))
    }

    fn resolve(&self, peer: IpAddr, forwarded: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        forwarded
            .iter()
            .flat_map(|header| header.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .map(|a| a.to_canonical())
            .rev()
            .find(|a| !self.is_trusted(*a))
            .unwrap_or(peer)
    }
}

/// An IPv4-mapped IPv6 range (`::ffff:10.0.0.0/104`) as the IPv4 range it maps, so that it
/// matches the canonical addresses it is compared with.
fn canonical_network(network: IpNet) -> IpNet {
    match network {
        IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
            Some(v4) if v6.prefix_len() >= 96 => {
                Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(network, IpNet::V4)
            }
            _ => network,
        },
        IpNet::V4(_) => network,
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

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(entries: &[&str]) -> TrustedProxies {
        let entries: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        TrustedProxies::parse(&entries).unwrap()
    }

    #[test]
    fn ranges_and_addresses_are_trusted_and_anything_else_refused() {
        let trusted = proxies(&["10.0.0.0/8", " 192.0.2.1 ", "fd00::/8", "::1", ""]);
        for peer in ["10.1.2.3", "192.0.2.1", "fd12::7", "::1", "::ffff:10.9.9.9"] {
            assert_eq!(
                trusted.resolve(ip(peer), &["198.51.100.7"]),
                ip("198.51.100.7"),
                "{peer}"
            );
        }
        for peer in ["11.0.0.1", "192.0.2.2", "fe80::1"] {
            assert_eq!(
                trusted.resolve(ip(peer), &["198.51.100.7"]),
                ip(peer),
                "{peer}"
            );
        }
        for bad in ["10.0.0.0/33", "localhost", "10.0.0", "10.0.0.1:80"] {
            let err = TrustedProxies::parse(&[bad.to_owned()])
                .expect_err(bad)
                .to_string();
            assert!(err.contains(bad) && !err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn an_ipv4_mapped_peer_matches_its_ipv4_entry() {
        let trusted = proxies(&["127.0.0.1"]);
        assert_eq!(
            trusted.resolve(ip("::ffff:127.0.0.1"), &["198.51.100.7"]),
            ip("198.51.100.7")
        );
        let mapped_range = proxies(&["::ffff:10.0.0.0/104"]);
        assert_eq!(
            mapped_range.resolve(ip("10.2.3.4"), &["198.51.100.7"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = proxies(&["10.0.0.1"]);
        assert_eq!(
            proxies.resolve(ip("198.51.100.7"), &["203.0.113.9"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client() {
        let proxies = proxies(&["10.0.0.1", "10.0.0.2"]);
        // The client forged the first entry; the proxies appended the real one and their own.
        let forwarded = ["203.0.113.9, 198.51.100.7", "10.0.0.2"];
        assert_eq!(
            proxies.resolve(ip("10.0.0.1"), &forwarded),
            ip("198.51.100.7")
        );
        assert_eq!(proxies.resolve(ip("10.0.0.1"), &[]), ip("10.0.0.1"));
        assert_eq!(
            proxies.resolve(ip("10.0.0.1"), &["not an address"]),
            ip("10.0.0.1")
        );
    }

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

//! CORS for the requests it is about: those from another origin.
//!
//! Browsers send `Origin` on same-origin requests too (a `POST` from Swagger UI's "Try it
//! out" on `/docs`, say), and poem's `Cors` refuses every origin it was not given, the
//! service's own included. A same-origin request is never a CORS matter, so it passes
//! without the origin check; a request from any other origin meets the configured list, and
//! preflights are always answered by it.
//!
//! The request's own origin is its scheme, host and port: `http` (the service speaks plain
//! HTTP) and the `Host` header; behind a trusted proxy, the scheme the proxy names in
//! `X-Forwarded-Proto` and the `Host` it forwards. Forwarding headers from any other peer
//! are ignored. A browser sets both `Origin` and `Host` itself, and a page cannot make them
//! agree for an origin other than its own; a client that is not a browser can send
//! anything, and is not what CORS protects against.
//!
//! Every response says `Vary: Origin`: whether it is refused, and which origin it allows,
//! depends on the request's `Origin`.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response,
    http::{
        HeaderMap, HeaderValue, Method, Uri, header,
        uri::{Authority, Scheme},
    },
    middleware::{Cors, CorsEndpoint},
};

use crate::{
    client_address::TrustedProxies,
    problem::{Problem, sentence},
};

/// poem's [`Cors`] for cross-origin requests; same-origin requests go straight through.
pub struct CrossOrigin {
    cors: Cors,
    proxies: TrustedProxies,
}

impl CrossOrigin {
    pub fn new(cors: Cors, proxies: TrustedProxies) -> Self {
        Self { cors, proxies }
    }
}

impl<E: Endpoint> Middleware<E> for CrossOrigin {
    type Output = CrossOriginEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        let inner = Arc::new(inner);
        CrossOriginEndpoint {
            cors: self.cors.transform(Arc::clone(&inner)),
            inner,
            proxies: self.proxies.clone(),
        }
    }
}

pub struct CrossOriginEndpoint<E> {
    inner: Arc<E>,
    cors: CorsEndpoint<Arc<E>>,
    proxies: TrustedProxies,
}

impl<E: Endpoint> Endpoint for CrossOriginEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let result = if is_same_origin(&req, &self.proxies) && !is_preflight(&req) {
            self.inner.call(req).await.map(IntoResponse::into_response)
        } else {
            self.cors.call(req).await
        };
        // This layer sits outside `ProblemDetails`, so that errors reach it as responses and
        // get their `Vary` too; poem's own refusals (an origin, method or headers not
        // allowed) become problem documents here.
        let mut response = result.unwrap_or_else(|err| {
            if err.is_from_response() {
                err.into_response()
            } else {
                Problem::new(err.status(), sentence(&err.to_string())).into_response_with(&[])
            }
        });
        vary_on_origin(response.headers_mut());
        Ok(response)
    }
}

fn is_preflight(req: &Request) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Whether the request's `Origin` is the origin the request was sent to (see the module's
/// documentation). `false` without an `Origin`, or when either cannot be read.
fn is_same_origin(req: &Request, proxies: &TrustedProxies) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return false;
    };
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
    let forwarded = peer.is_some_and(|peer| proxies.is_trusted(peer));
    let own = own_origin(req.headers(), req.uri(), forwarded);
    match (parse_origin(origin), own) {
        (Some(origin), Some(own)) => origin == own,
        _ => false,
    }
}

/// An origin as compared: scheme and host in lower case, and the port, the scheme's
/// default when none is written.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn new(scheme: &str, authority: &Authority) -> Option<Self> {
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        // An origin, or a Host header, never carries user information.
        if authority.as_str().contains('@') {
            return None;
        }
        Some(Self {
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
            scheme,
        })
    }
}

/// `scheme://host[:port]`, as browsers write `Origin` (`null` and anything with a path or
/// query is no origin to compare).
fn parse_origin(value: &HeaderValue) -> Option<Origin> {
    let uri: Uri = value.to_str().ok()?.parse().ok()?;
    let path = uri.path_and_query().map_or("", |p| p.as_str());
    if !path.is_empty() && path != "/" {
        return None;
    }
    Origin::new(uri.scheme().map(Scheme::as_str)?, uri.authority()?)
}

/// The origin the request was sent to: `http` and `Host` (or the request line's authority,
/// in HTTP/2); behind a trusted proxy (`forwarded`), the scheme its one `X-Forwarded-Proto`
/// names.
fn own_origin(headers: &HeaderMap, uri: &Uri, forwarded: bool) -> Option<Origin> {
    let scheme = if forwarded {
        let mut protos = headers.get_all("x-forwarded-proto").iter();
        match (protos.next(), protos.next()) {
            (None, _) => "http",
            (Some(proto), None) => proto.to_str().ok()?.trim(),
            // Several: which one is the client's is anyone's guess.
            (Some(_), Some(_)) => return None,
        }
    } else {
        "http"
    };
    let authority = match headers.get(header::HOST) {
        Some(host) => host.to_str().ok()?.parse::<Authority>().ok()?,
        None => uri.authority()?.clone(),
    };
    Origin::new(scheme, &authority)
}

/// Adds `Origin` to the response's `Vary`, unless it is there already (or `Vary: *`).
fn vary_on_origin(headers: &mut HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|name| {
            let name = name.trim();
            name == "*" || name.eq_ignore_ascii_case("origin")
        });
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(host: &str, proto: Option<&str>, forwarded: bool) -> Option<Origin> {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(proto) = proto {
            headers.insert("x-forwarded-proto", HeaderValue::from_str(proto).unwrap());
        }
        own_origin(&headers, &Uri::from_static("/users"), forwarded)
    }

    fn origin(value: &str) -> Option<Origin> {
        parse_origin(&HeaderValue::from_str(value).unwrap())
    }

    #[test]
    fn an_origin_is_scheme_host_and_port_with_the_default_port_filled_in() {
        assert_eq!(
            origin("http://127.0.0.1:8000"),
            own("127.0.0.1:8000", None, false)
        );
        assert_eq!(
            origin("http://Example.ORG"),
            own("example.org:80", None, false)
        );
        assert_eq!(origin("http://[::1]:8000"), own("[::1]:8000", None, false));
        assert_ne!(
            origin("http://127.0.0.1:8001"),
            own("127.0.0.1:8000", None, false)
        );
        assert_ne!(
            origin("https://127.0.0.1:8000"),
            own("127.0.0.1:8000", None, false)
        );
        for not_an_origin in [
            "null",
            "http://a.example/path",
            "ftp://a.example",
            "a.example",
        ] {
            assert_eq!(origin(not_an_origin), None, "{not_an_origin}");
        }
        assert_eq!(own("user@a.example", None, false), None);
    }

    #[test]
    fn the_forwarded_scheme_counts_only_from_a_trusted_proxy() {
        let https = origin("https://api.example.org");
        assert_eq!(https, own("api.example.org", Some("https"), true));
        assert_ne!(https, own("api.example.org", Some("https"), false));
        assert_eq!(
            origin("http://api.example.org"),
            own("api.example.org", Some("https"), false)
        );
        assert_eq!(own("api.example.org", Some("gopher"), true), None);
    }

    #[test]
    fn vary_names_origin_once() {
        let mut headers = HeaderMap::new();
        vary_on_origin(&mut headers);
        vary_on_origin(&mut headers);
        assert_eq!(headers.get_all(header::VARY).iter().count(), 1);
        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        vary_on_origin(&mut headers);
        let vary: Vec<_> = headers.get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);
    }
}

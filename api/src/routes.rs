//! The HTTP surface: the OpenAPI service, the documentation pages, and the middleware every
//! request passes through.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;

use poem::{
    Body, Endpoint, EndpointExt, IntoResponse, Request, Response, Route,
    endpoint::BoxEndpoint,
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{Cors, NormalizePath, SetHeader, TrailingSlash},
};
use poem_openapi::OpenApiService;

use crate::{
    allowed_methods::AllowedMethods,
    client_address::TrustedProxies,
    cors::CrossOrigin,
    observe::{Observe, metrics_handle},
    openapi::{Apis, json_text, openapi_document, openapi_service, yaml_text},
    problem::ProblemDetails,
    rate_limit::show_limits,
    settings::{AppEnv, Settings},
    state::AppState,
};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The whole application as one endpoint.
pub fn app(
    settings: &Settings,
    state: AppState,
    proxies: TrustedProxies,
) -> impl Endpoint + 'static {
    // Built once: poem-openapi's document is the largest part of the start-up's own work.
    let document = openapi_document();
    let allowed = AllowedMethods::from_spec(&document);
    let mut routes = Route::new();
    if settings.metrics_enabled && settings.metrics_listen.is_none() {
        routes = routes.at("/metrics", metrics_endpoint(state.db.clone()));
    }
    let routes = routes
        .nest(
            "/docs",
            DocsPage::new(|api| api.swagger_ui().map_to_response().boxed()),
        )
        .nest(
            "/redoc",
            DocsPage::new(|api| api.redoc().map_to_response().boxed()),
        )
        .at(
            "/openapi.json",
            spec_endpoint("application/json", json_text(&document)),
        )
        .at(
            "/openapi.yaml",
            spec_endpoint("application/x-yaml", yaml_text(&document)).with(
                SetHeader::new().overriding(
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static("inline; filename=\"spec.yaml\""),
                ),
            ),
        )
        .nest("/", openapi_service());
    routes
        .around(limit_body)
        .with(NormalizePath::new(TrailingSlash::Trim))
        .with(ProblemDetails::new(allowed))
        .around(show_limits)
        .with(CrossOrigin::new(cors(settings), proxies.clone()))
        .with(SetHeader::new().overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with(Observe { proxies })
        .data(state)
}

/// Serves `spec`, built once, as poem-openapi's spec endpoints do.
fn spec_endpoint(content_type: &'static str, spec: String) -> impl Endpoint + 'static {
    poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type(content_type)
            .body(spec.clone())
    })
}

/// A documentation page, built anew for each request it serves. The pages embed Swagger UI's
/// and ReDoc's scripts: built once at start they would hold about 5 MB for as long as the
/// service runs, for pages few requests ask for.
struct DocsPage {
    api: OpenApiService<Apis, ()>,
    build: for<'a> fn(&'a OpenApiService<Apis, ()>) -> BoxEndpoint<'a>,
}

impl DocsPage {
    fn new(build: for<'a> fn(&'a OpenApiService<Apis, ()>) -> BoxEndpoint<'a>) -> Self {
        Self {
            api: openapi_service(),
            build,
        }
    }
}

impl Endpoint for DocsPage {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        (self.build)(&self.api).call(req).await
    }
}

/// `/metrics` in Prometheus text format, with the pool's usage read at scrape time.
pub fn metrics_endpoint(db: service::Database) -> impl Endpoint + 'static {
    let handle = metrics_handle();
    poem::endpoint::make_sync(move |_| {
        let pool = service::database::pool_usage(&db);
        metrics::gauge!("db_pool_connections").set(f64::from(pool.size));
        metrics::gauge!("db_pool_connections_in_use").set(f64::from(pool.in_use));
        handle.run_upkeep();
        Response::builder()
            .content_type("text/plain; version=0.0.4")
            .body(handle.render())
    })
}

/// poem's CORS rules, which [`CrossOrigin`] applies to requests from other origins only.
fn cors(settings: &Settings) -> Cors {
    let cors = Cors::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        // Swagger UI's Authorize adds X-Requested-With to its login request; a client that
        // follows `GET /events` with fetch resumes with Last-Event-ID.
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static("last-event-id"),
            header::HeaderName::from_static("x-requested-with"),
        ])
        .expose_headers([
            header::ETAG,
            header::LINK,
            header::LOCATION,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            header::HeaderName::from_static("ratelimit"),
            header::HeaderName::from_static("ratelimit-policy"),
        ])
        .max_age(600);
    match (&settings.cors_allowed_origins, settings.app_env) {
        (Some(origins), _) if origins.iter().any(|o| o == "*") => cors,
        (Some(origins), _) => cors.allow_origins(origins.iter().map(String::as_str)),
        (None, AppEnv::Development) => cors,
        // In production no origin is allowed until one is configured.
        (None, AppEnv::Production) => cors.allow_origins_fn(|_| false),
    }
}

/// Refuses bodies over [`MAX_BODY_BYTES`]: at once when `Content-Length` says so, and after
/// reading at most one byte too many when the body comes without a length (HTTP/1.1 chunked,
/// and HTTP/2, where a request need not say its length at all).
///
/// The refused body is then discarded in the background for a while (as nginx's lingering
/// close does): closing a socket with unread data resets the connection, and the client
/// would see the reset instead of the 413 while it is still sending.
async fn limit_body<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let too_large = |req: &mut Request| {
        discard_in_background(req.take_body());
        poem::Error::from_status(poem::http::StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_BODY_BYTES as u64 => return Err(too_large(&mut req)),
        Some(_) => {}
        None => {
            let body = req.take_body();
            if body.is_empty() {
                req.set_body(body);
            } else {
                match read_at_most(body, MAX_BODY_BYTES).await? {
                    Ok(whole) => req.set_body(whole),
                    Err(rest) => {
                        req.set_body(rest);
                        return Err(too_large(&mut req));
                    }
                }
            }
        }
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

/// The whole body if it holds at most `limit` bytes; else what is left of it, once one byte too
/// many has been read.
async fn read_at_most(body: Body, limit: usize) -> poem::Result<Result<Vec<u8>, Body>> {
    let mut whole = Vec::new();
    let mut chunks = body.into_bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| poem::Error::from_status(StatusCode::BAD_REQUEST))?;
        if whole.len() + chunk.len() > limit {
            return Ok(Err(Body::from_bytes_stream(chunks)));
        }
        whole.extend_from_slice(&chunk);
    }
    Ok(Ok(whole))
}

/// How long, and how much, a refused body is read and thrown away before the connection is
/// dropped: enough for an honest client that sent a little too much to read its 413.
const DISCARD_FOR: Duration = Duration::from_secs(5);
const DISCARD_AT_MOST: usize = 16 << 20;

fn discard_in_background(body: Body) {
    tokio::spawn(async move {
        let mut chunks = body.into_bytes_stream();
        let mut discarded = 0;
        let _ = tokio::time::timeout(DISCARD_FOR, async {
            while let Some(Ok(chunk)) = chunks.next().await {
                discarded += chunk.len();
                if discarded > DISCARD_AT_MOST {
                    break;
                }
            }
        })
        .await;
    });
}

use std::{io, task::Poll, time::Duration};

use bytes::Bytes;
use futures_util::{StreamExt, stream::BoxStream};
use poem::{Body, IntoResponse, Response, web::Data};
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Header, Query},
    payload::{EventStream, Json, Payload},
    registry::{MetaSchemaRef, Registry},
    types::Type,
};
use service::events;

use super::ApiTags;
use crate::{
    fields::{AllValid, Checked, EventId},
    problem::{ApiError, CallerErrors, StreamErrors},
    schemas::{EventTicket, LiveEvent},
    security::{Authenticated, Subscriber},
    state::AppState,
};

pub struct EventsApi;

/// How often an idle stream sends a comment line, so that proxies and clients know it lives.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(ApiResponse)]
enum TicketIssued {
    /// A ticket for one stream of the caller's session, to use within `expires_in` seconds.
    #[oai(status = 201)]
    Issued(Json<EventTicket>),
}

#[derive(ApiResponse)]
enum EventsStream {
    /// Server-sent events, each with an `id`, an `event` (`post.created`, `post.updated`,
    /// `post.deleted`, `vote`, or `reset`) and JSON `data`. A comment line comes every 15
    /// seconds when nothing else does.
    #[oai(status = 200)]
    Stream(
        Frames,
        /// `no`: proxies pass each event on as it comes.
        #[oai(header = "X-Accel-Buffering")]
        String,
    ),
}

/// Server-sent events already rendered: the live ones are bytes every subscriber shares,
/// which poem-openapi's `EventStream` would render again for each (and copy twice more on the
/// way). Declared as that `EventStream` of [`LiveEvent`]s.
struct Frames(BoxStream<'static, Bytes>);

type Declared = EventStream<BoxStream<'static, LiveEvent>>;

impl Payload for Frames {
    const CONTENT_TYPE: &'static str = Declared::CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        Declared::schema_ref()
    }

    fn register(registry: &mut Registry) {
        LiveEvent::register(registry);
    }
}

impl IntoResponse for Frames {
    fn into_response(self) -> Response {
        let Self(mut frames) = self;
        let comment = Bytes::from_static(b":\n\n");
        // The first comment goes out at once: a proxy may hold the response's head until the
        // body's first byte (nginx over HTTP/2), and an `EventSource` opens with the head.
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        let body = futures_util::stream::poll_fn(move |cx| {
            if let Poll::Ready(frame) = frames.poll_next_unpin(cx) {
                return Poll::Ready(frame.map(Ok::<_, io::Error>));
            }
            keep_alive.poll_tick(cx).map(|_| Some(Ok(comment.clone())))
        });
        Response::builder()
            .content_type(Self::CONTENT_TYPE)
            .header("Cache-Control", "no-cache")
            .body(Body::from_bytes_stream(body))
    }
}

#[OpenApi(tag = "ApiTags::Events")]
impl EventsApi {
    /// Get a ticket for an event stream
    ///
    /// For a browser's `EventSource`, which cannot send an `Authorization` header: open
    /// `GET /events?ticket=…` with it, once, within 30 seconds. The access token itself never
    /// goes into a URL.
    #[oai(
        path = "/events/ticket",
        method = "post",
        operation_id = "issueEventTicket"
    )]
    async fn issue_ticket(
        &self,
        auth: Authenticated,
        state: Data<&AppState>,
    ) -> Result<TicketIssued, ApiError<CallerErrors>> {
        let ticket = events::issue_ticket(&state.db, &auth.caller).await?;
        Ok(TicketIssued::Issued(Json(ticket.into())))
    }

    /// Follow changes live
    ///
    /// What changes among the posts the caller may see, as it happens, on whichever instance
    /// it happens: another person's draft never shows; a draft being published is
    /// `post.created`, a post becoming a draft `post.deleted`. After a dropped connection,
    /// `Last-Event-ID` (which `EventSource` sends by itself) replays every event missed in
    /// the replay window (`EVENT_REPLAY_MINUTES`, 10 by default) in order, then goes on live;
    /// past the window a `reset` comes first; a replay leaves out what was recorded before the
    /// caller's account existed. The stream ends when the caller's session ends, and when its
    /// client falls further behind than `EVENT_STREAM_MAX_LAG_BYTES` of events (1 MiB by
    /// default): it resumes with `Last-Event-ID`. An account may have
    /// `EVENT_STREAMS_PER_ACCOUNT` streams (5 by default) open at once, on every instance
    /// together (429 past it), and an instance gives streams at most half of its connections
    /// (503 past it); a closed stream's place is free again at once.
    #[oai(path = "/events", method = "get", operation_id = "streamEvents")]
    async fn stream_events(
        &self,
        subscriber: Subscriber,
        state: Data<&AppState>,
        /// The `id` of the last event received: the stream resumes after it.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Checked<EventId>>,
        /// As `Last-Event-ID`, for a client that cannot send headers and opens a new stream
        /// (with a new ticket); the header wins when both are given.
        #[oai(name = "last_event_id")]
        last_event_id_param: Query<Checked<EventId>>,
    ) -> Result<EventsStream, ApiError<StreamErrors>> {
        let (header, param) = (
            last_event_id.0.named("Last-Event-ID"),
            last_event_id_param.0.named("last_event_id"),
        )
            .all_valid()?;
        let subscription = state
            .feed
            .subscribe(&state.db, &subscriber.caller, header.or(param))
            .await?;
        Ok(EventsStream::Stream(Frames(subscription), "no".into()))
    }
}

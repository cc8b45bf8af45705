//! Reading server-sent event streams (`text/event-stream`) as a browser would.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::assertions::header;
use crate::client::ApiClient;

/// One server-sent event as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    /// The `event:` field (`message` when none was sent).
    pub event: String,
    pub data: String,
}

impl SseEvent {
    /// What the event says of its subject: its data, JSON whose `type` must be the event's
    /// name, without that `type` (so a `post.created` compares equal to the `PostOut` it
    /// carries).
    pub fn payload(&self) -> Value {
        let mut data: Value = serde_json::from_str(&self.data)
            .unwrap_or_else(|err| panic!("event data is not JSON ({err}): {:?}", self.data));
        let kind = data
            .as_object_mut()
            .and_then(|fields| fields.remove("type"));
        assert_eq!(
            kind.as_ref().and_then(Value::as_str),
            Some(self.event.as_str()),
            "the data's `type` is the event's name: {:?}",
            self.data
        );
        data
    }

    /// The id as a number.
    pub fn number(&self) -> i64 {
        self.id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("an event without a numeric id: {self:?}"))
    }
}

/// What reading the next event of a stream found.
#[derive(Debug, PartialEq, Eq)]
pub enum SseRead {
    Event(SseEvent),
    /// The server ended the stream.
    Ended,
    /// Nothing came within the time given.
    TimedOut,
}

/// A reader of an open `text/event-stream` response (RFC: WHATWG HTML, server-sent events).
pub struct SseStream {
    response: Response,
    buffer: String,
    /// Comment lines read so far (keep-alives).
    pub comments: usize,
}

impl SseStream {
    /// Opens `GET path` (its query included) as a stream; the response must be a 200.
    pub async fn open(
        app: &ApiClient,
        path: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> SseStream {
        let response = Self::request(app, path, token, last_event_id).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "GET {path} should open a stream"
        );
        let content_type = header(&response, "content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("text/event-stream"),
            "content type {content_type}"
        );
        SseStream::new(response)
    }

    /// `GET path` as a stream would ask for it, whatever the answer.
    pub async fn request(
        app: &ApiClient,
        path: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Response {
        // A client of its own: `ApiClient`'s timeout would cut a stream.
        let client = reqwest::Client::new();
        let mut builder = client
            .get(app.url(path))
            .header("accept", "text/event-stream");
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            builder = builder.header("last-event-id", id);
        }
        builder
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {path} failed: {err}"))
    }

    pub fn new(response: Response) -> SseStream {
        SseStream {
            response,
            buffer: String::new(),
            comments: 0,
        }
    }

    /// The next event, waiting at most `wait` for it.
    pub async fn next(&mut self, wait: Duration) -> SseRead {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(event) = self.take_event() {
                return SseRead::Event(event);
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return SseRead::TimedOut,
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None) | Err(_)) => return SseRead::Ended,
            }
        }
    }

    /// The next event, which must come within `wait`.
    pub async fn expect_event(&mut self, wait: Duration, context: &str) -> SseEvent {
        match self.next(wait).await {
            SseRead::Event(event) => event,
            other => panic!("{context}: expected an event, got {other:?}"),
        }
    }

    /// Every event that comes until nothing has come for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let SseRead::Event(event) = self.next(quiet).await {
            events.push(event);
        }
        events
    }

    /// Takes one whole event (up to a blank line) from the buffer, counting comments.
    fn take_event(&mut self) -> Option<SseEvent> {
        loop {
            let end = self.buffer.find("\n\n")?;
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut event = SseEvent {
                id: None,
                event: "message".into(),
                data: String::new(),
            };
            let mut has_data = false;
            for line in block.lines() {
                if line.starts_with(':') {
                    self.comments += 1;
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => event.id = Some(value.to_owned()),
                    "event" => event.event = value.to_owned(),
                    "data" => {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(value);
                        has_data = true;
                    }
                    _ => {}
                }
            }
            if has_data {
                return Some(event);
            }
        }
    }
}

// Following GET /events (server-sent events) through the client, as typed events, resuming
// after a dropped connection with the id of the last event received.
//
//   for await (const change of follow(api)) {
//     switch (change.event) {
//       case "post.created": case "post.updated": show(change.data); break;  // PostOut
//       case "post.deleted": remove(change.data.id); break;
//       case "vote": count(change.data.post_id, change.data.votes); break;
//       case "reset": relist(); break;                                        // missed too much
//     }
//   }
//
//   const unsubscribe = subscribe(api, { onEvent: show, onReset: relist });  // the same, with callbacks
//
// The request goes through the client (its bearer token, or a Session's, in the
// `Authorization` header). When the connection drops or the service ends the stream, the
// walk reconnects after a delay (the stream's `retry`, or `reconnectDelay`) and sends
// `Last-Event-ID`: the service replays what came meanwhile, then goes on live. A stream that
// cannot be opened (401 once the session ended, 422 for a bad id…) throws a ProblemError;
// network errors and 503 are retried, `maxRetries` times in a row. Stopping the loop, or
// aborting `signal`, closes the connection.
//
// With `ticket` (for a client that cannot send headers, as EventSource), each connection
// asks for a new one-use ticket and passes it, and the id to resume after, in the query
// (`?ticket=…&last_event_id=…`); give such a walk a client without a token.
//
// The stream is read by eventsource-parser, as `EventSource` reads it (every line ending,
// comments, multi-line data, `retry`).

import { createParser, type EventSourceMessage, type ParseError } from "eventsource-parser";

import type { Api } from "./api.js";
import type { operations } from "./generated/openapi.js";
import { ProblemError } from "./problems.js";

/** The data the spec declares for the stream's events: a union of every kind. */
type Item = operations["streamEvents"]["responses"][200]["content"]["text/event-stream"][number];

/**
 * The data of the event named `E`: the member of the union whose `type` is `E` when the spec
 * discriminates them so, else the member of the shape given. Named by event, never by
 * schema, so that a regeneration of the types is all a renamed schema needs.
 */
type DataOf<E extends string, Shape> = [Extract<Item, { type: E }>] extends [never]
  ? Extract<Item, Shape>
  : Extract<Item, { type: E }>;

/** The data of each event, by its name. */
export interface EventPayloads {
  "post.created": DataOf<"post.created", { title: string }>;
  "post.updated": DataOf<"post.updated", { title: string }>;
  "post.deleted": DataOf<"post.deleted", { id: number; title?: never }>;
  vote: DataOf<"vote", { post_id: number }>;
  "profile.updated": DataOf<"profile.updated", { handle: string }>;
  reset: DataOf<"reset", { detail: string }>;
}
export type EventName = keyof EventPayloads;

// Every event has data of a type the spec declares (tsc fails here when one is `never`).
const everyEventIsTyped: { [E in EventName]: [EventPayloads[E]] extends [never] ? never : true } = {
  "post.created": true,
  "post.updated": true,
  "post.deleted": true,
  vote: true,
  "profile.updated": true,
  reset: true,
};
const names: ReadonlySet<string> = new Set(Object.keys(everyEventIsTyped));

/** An event of the stream: a union discriminated by `event`, with its `id`. */
export type LiveEvent = { [E in EventName]: { event: E; id: number; data: EventPayloads[E] } }[EventName];

/** The query and headers of GET /events, as generated. */
type StreamQuery = NonNullable<operations["streamEvents"]["parameters"]["query"]>;
type StreamHeaders = NonNullable<operations["streamEvents"]["parameters"]["header"]>;

function openStream(api: Api, query: StreamQuery, header: StreamHeaders, ticket: string | undefined, signal: AbortSignal) {
  return api.GET("/events", {
    params: { query, header },
    parseAs: "stream",
    signal,
    // The ticket is the `EventTicket` security scheme's query parameter, not an operation's.
    middleware:
      ticket === undefined
        ? []
        : [
            {
              onRequest: ({ request }) => {
                const url = new URL(request.url);
                url.searchParams.set("ticket", ticket);
                return new Request(url, request);
              },
            },
          ],
  });
}

/** A connection of the walk, as it opened. */
export interface Connection {
  /** 1 for the first connection, then counting every attempt. */
  attempt: number;
  /** The id this connection resumed after, if any. */
  lastEventId: number | undefined;
  response: Response;
}

export interface FollowOptions {
  /** Resume after this event id (the first connection sends it too). */
  lastEventId?: number;
  /** Open each connection with a new ticket from this (POST /events/ticket, say); a
   * ProblemError it throws ends the walk, unless a 503. */
  ticket?: () => Promise<string>;
  /** Stops following and closes the connection. */
  signal?: AbortSignal;
  /** Milliseconds before reconnecting, until the stream sends a `retry`; default 1000. */
  reconnectDelay?: number;
  /** Failed attempts in a row (network errors, 503) before giving up; default 10. */
  maxRetries?: number;
  /** Called when a connection opens (200). */
  onConnect?: (connection: Connection) => void;
  /** Called with a message this SDK has no type for (a newer service's event, say). */
  onUnknown?: (message: EventSourceMessage) => void;
}

/** Asks for a one-use ticket to open GET /events without an Authorization header. */
export function issueTicket(api: Api) {
  return api.POST("/events/ticket");
}

/** The typed events of GET /events, reconnecting with the last id after a dropped connection. */
export async function* follow(api: Api, options: FollowOptions = {}): AsyncGenerator<LiveEvent, void, undefined> {
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  let lastEventId = options.lastEventId;
  let delay = options.reconnectDelay ?? 1000;
  const maxRetries = options.maxRetries ?? 10;
  let failures = 0;
  let attempt = 0;
  try {
    while (!signal.aborted) {
      attempt++;
      let opened: Awaited<ReturnType<typeof openStream>>;
      try {
        const ticket = options.ticket ? await options.ticket() : undefined;
        const query: StreamQuery = {};
        const header: StreamHeaders = {};
        if (lastEventId !== undefined) {
          if (ticket === undefined) header["Last-Event-ID"] = lastEventId;
          else query.last_event_id = lastEventId;
        }
        opened = await openStream(api, query, header, ticket, signal);
      } catch (error) {
        if (signal.aborted) return;
        // A ticket refused (the session ended, say) is final, as a refused stream is.
        if (error instanceof ProblemError && error.status !== 503) throw error;
        if (++failures > maxRetries) throw error;
        await sleep(backoff(delay, failures), signal);
        continue;
      }
      const { data: body, error, response } = opened;
      if (response.status === 503 && ++failures <= maxRetries) {
        await response.body?.cancel();
        await sleep(retryAfter(response) ?? backoff(delay, failures), signal);
        continue;
      }
      if (!response.ok) throw new ProblemError(error, response);
      if (!body || !/^text\/event-stream\b/.test(response.headers.get("content-type") ?? "")) {
        await body?.cancel();
        throw new Error(`GET ${response.url}: ${response.status} is not an event stream`);
      }
      failures = 0;
      options.onConnect?.({ attempt, lastEventId, response });

      try {
        for await (const message of messages(body, (ms) => (delay = ms))) {
          // What the connection had already received when it was closed is not delivered.
          if (signal.aborted) return;
          const event = typed(message);
          if (event === undefined) {
            options.onUnknown?.(message);
            continue;
          }
          lastEventId = event.id;
          yield event;
        }
      } catch {
        if (signal.aborted) return;
        // The connection dropped: resume below.
      }
      await sleep(delay, signal);
    }
  } finally {
    stop.abort();
  }
}

/** A change of the posts a caller may see: every event but `reset`. */
export type Change = Exclude<LiveEvent, { event: "reset" }>;

/** What a subscription tells the app. */
export interface Subscriber {
  /** A post created, updated or deleted, or a vote counted. */
  onEvent: (change: Change) => void;
  /** More was missed than the service keeps (a long absence): list the posts again. */
  onReset: (reset: EventPayloads["reset"]) => void;
  /** The subscription ended for good: a ProblemError when the service refused the stream
   * (401 once the session ended, say), or the error of the last of `maxRetries` attempts. */
  onError: (error: unknown) => void;
  /** A connection opened (each reconnection too). */
  onOpen?: (connection: Connection) => void;
}

export type SubscribeOptions = Omit<FollowOptions, "signal" | "onConnect">;

/** Stops a subscription and closes its connection. */
export type Unsubscribe = () => void;

/**
 * Follows GET /events (see {@link follow}) in the background, calling `subscriber` with each
 * event, until the returned function is called. A handler that throws ends the subscription
 * with that error.
 */
export function subscribe(api: Api, subscriber: Subscriber, options: SubscribeOptions = {}): Unsubscribe {
  const stop = new AbortController();
  void (async () => {
    try {
      for await (const event of follow(api, { ...options, signal: stop.signal, onConnect: subscriber.onOpen })) {
        if (stop.signal.aborted) return;
        if (event.event === "reset") subscriber.onReset(event.data);
        else subscriber.onEvent(event);
      }
    } catch (error) {
      if (!stop.signal.aborted) subscriber.onError(error);
    }
  })();
  return () => stop.abort();
}

/**
 * The most characters of one event the parser holds (a post is at most about 80 KB): a
 * stream that sends more without ending the event is dropped, and resumed.
 */
const MAX_EVENT_CHARS = 4 << 20;

/**
 * The messages of an event stream's body, as they arrive; `retry` fields go to `onRetry`.
 * The stream's end ends them (a message left incomplete is dropped); a failing read (a
 * dropped connection) or an event over MAX_EVENT_CHARS throws.
 */
async function* messages(
  body: ReadableStream<Uint8Array>,
  onRetry: (milliseconds: number) => void,
): AsyncGenerator<EventSourceMessage, void, undefined> {
  const ready: EventSourceMessage[] = [];
  let overflow: ParseError | undefined;
  const parser = createParser({
    onEvent: (message) => ready.push(message),
    onRetry,
    // Other parse errors are fields the standard says to ignore.
    onError: (error) => {
      if (error.type === "max-buffer-size-exceeded") overflow = error;
    },
    maxBufferSize: MAX_EVENT_CHARS,
  });
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      parser.feed(decoder.decode(value, { stream: true }));
      if (overflow) throw overflow;
      while (ready.length > 0) yield ready.shift() as EventSourceMessage;
    }
  } finally {
    // Stops reading the body (and so the connection) when the caller stops early.
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** A message as a LiveEvent, or undefined when its name is none this SDK knows. */
function typed(message: EventSourceMessage): LiveEvent | undefined {
  const name = message.event ?? "message";
  if (!names.has(name)) return undefined;
  const id = message.id ?? "";
  if (!/^[0-9]+$/.test(id)) throw new Error(`event ${name} has no numeric id: ${JSON.stringify(message.id)}`);
  const data: unknown = JSON.parse(message.data);
  const event = { event: name, id: Number(id), data } as LiveEvent;
  if (!shaped(event)) throw new Error(`event ${name} ${id} has data of another shape: ${message.data}`);
  return event;
}

/** The required fields of each payload are there, with their types. */
function shaped({ event, data }: LiveEvent): boolean {
  const has = (name: string, type: string) =>
    typeof data === "object" && data !== null && typeof (data as Record<string, unknown>)[name] === type;
  switch (event) {
    case "post.created":
    case "post.updated":
      return has("id", "number") && has("title", "string") && has("owner", "object");
    case "post.deleted":
      return has("id", "number");
    case "vote":
      return has("post_id", "number") && has("votes", "number");
    case "profile.updated":
      return has("id", "number") && has("handle", "string");
    case "reset":
      return has("detail", "string");
  }
}

function backoff(delay: number, failures: number): number {
  return Math.min(delay * 2 ** (failures - 1), 30_000);
}

/** `Retry-After` of a 503, in milliseconds. */
function retryAfter(response: Response): number | undefined {
  const value = response.headers.get("retry-after");
  const seconds = value === null ? NaN : Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

function sleep(milliseconds: number, signal: AbortSignal): Promise<void> {
  return new Promise((done) => {
    if (signal.aborted) return done();
    const timer = setTimeout(finish, milliseconds);
    signal.addEventListener("abort", finish, { once: true });
    function finish() {
      clearTimeout(timer);
      signal.removeEventListener("abort", finish);
      done();
    }
  });
}

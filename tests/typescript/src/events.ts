// Following GET /events (server-sent events) through the client, as typed events, resuming
// after a dropped connection with the id of the last event received.
//
//   for await (const change of follow(api)) {
//     switch (change.event) {
//       case "post.created": case "post.updated": show(change.data); break;  // PostOut, and `type`
//       case "post.deleted": remove(change.data.id); break;                   // DeletedPost
//       case "vote": count(change.data.post_id, change.data.votes); break;     // VoteCount
//       case "reset": relist(); break;                                        // StreamReset
//     }
//   }
//
// The request goes through the client (its bearer token, or a Session's, in the
// `Authorization` header). When the connection drops or the service ends the stream, the
// walk reconnects after a delay (the stream's `retry`, or `reconnectDelay`) and sends
// `Last-Event-ID`: the service replays what came meanwhile, then goes on live. A stream that
// cannot be opened (401 once the session ended, 422 for a bad id…) throws an EventsError
// with the problem as the SDK types it; network errors and 503 are retried, `maxRetries`
// times in a row. Stopping the loop, or aborting `signal`, closes the connection.
//
// With `ticket` (for a client that cannot send headers, as EventSource), each connection
// asks for a new one-use ticket and passes it, and the id to resume after, in the query
// (`?ticket=…&last_event_id=…`); give such a walk a client without a token.

import type { Api } from "./client.js";
import type { components, operations } from "./generated/openapi.js";
import { readMessages, type SseMessage } from "./sse.js";

type Schemas = components["schemas"];

/** The data of each event, by its name (openapi.yaml's `EventData`, one member each, whose
 * `type` is the name). */
export interface EventPayloads {
  "post.created": Schemas["PostCreated"];
  "post.updated": Schemas["PostUpdated"];
  "post.deleted": Schemas["DeletedPost"];
  vote: Schemas["VoteCount"];
  reset: Schemas["StreamReset"];
}
export type EventName = keyof EventPayloads;

// Every payload is one of the members the spec declares for the stream's items.
type Item = operations["streamEvents"]["responses"][200]["content"]["text/event-stream"][number];
const payloadsAreItems: EventPayloads[EventName] extends Item ? true : never = true;
void payloadsAreItems;

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
/** The errors of GET /events as the SDK types them (problem documents). */
export type StreamProblem = NonNullable<Awaited<ReturnType<typeof openStream>>["error"]>;

/** A stream could not be opened: its status, the problem the service sent, the response. */
export class EventsError extends Error {
  readonly status: number;
  constructor(
    readonly problem: StreamProblem | undefined,
    readonly response: Response,
  ) {
    super(`GET ${response.url.replace(/ticket=[^&]*/, "ticket=…")}: ${response.status}${problem ? `: ${problem.detail}` : ""}`);
    this.name = "EventsError";
    this.status = response.status;
  }
}

/** A connection the walk opened: which one, what it resumed after, the response. */
export interface Connection {
  attempt: number;
  lastEventId: number | undefined;
  response: Response;
}

export interface FollowOptions {
  /** Resume after this event id (the first connection sends it too). */
  lastEventId?: number;
  /** Open each connection with a new ticket from this (POST /events/ticket, say). */
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
  onUnknown?: (message: SseMessage) => void;
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
      if (!response.ok) throw new EventsError(error, response);
      if (!body || !/^text\/event-stream\b/.test(response.headers.get("content-type") ?? "")) {
        await body?.cancel();
        throw new Error(`GET ${response.url}: ${response.status} is not an event stream`);
      }
      failures = 0;
      options.onConnect?.({ attempt, lastEventId, response });

      try {
        for await (const message of readMessages(body, { retry: (ms) => (delay = ms) })) {
          const event = typed(message);
          if (event === undefined) {
            options.onUnknown?.(message);
            continue;
          }
          lastEventId = event.id;
          yield event;
        }
      } catch (dropped) {
        if (signal.aborted) return;
        void dropped; // the connection dropped: resume below
      }
      await sleep(delay, signal);
    }
  } finally {
    stop.abort();
  }
}

const names: ReadonlySet<string> = new Set<EventName>(["post.created", "post.updated", "post.deleted", "vote", "reset"]);

/** A message as a LiveEvent, or undefined when its name is none this SDK knows. */
function typed(message: SseMessage): LiveEvent | undefined {
  if (!names.has(message.event)) return undefined;
  if (!/^[0-9]+$/.test(message.id)) throw new Error(`event ${message.event} has no numeric id: ${JSON.stringify(message.id)}`);
  const data: unknown = JSON.parse(message.data);
  const event = { event: message.event, id: Number(message.id), data } as LiveEvent;
  if (!shaped(event)) throw new Error(`event ${message.event} ${message.id} has data of another shape: ${message.data}`);
  return event;
}

/** The data's `type` is the event's name, and the required fields of each payload are there,
 * with their types. */
function shaped({ event, data }: LiveEvent): boolean {
  const has = (name: string, type: string) =>
    typeof data === "object" && data !== null && typeof (data as Record<string, unknown>)[name] === type;
  if ((data as { type?: unknown } | null)?.type !== event) return false;
  switch (event) {
    case "post.created":
    case "post.updated":
      return has("id", "number") && has("title", "string") && has("owner", "object");
    case "post.deleted":
      return has("id", "number");
    case "vote":
      return has("post_id", "number") && has("votes", "number");
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

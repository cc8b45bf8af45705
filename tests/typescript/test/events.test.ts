// Live events: GET /events followed through the SDK (`follow` and `subscribe`) with fetch
// streaming: typed events for every kind of write, a dropped connection resumed with
// Last-Event-ID (exactly what was missed, then live), the ticket flow of EventSource, and
// the errors as typed problems.
//
// Other suites may write at the same time, and their published posts reach these streams
// too: each test looks at the events of the posts it wrote, and checks the ids of all.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  type Api,
  type Connection,
  createApi,
  type EventName,
  type EventPayloads,
  ProblemError,
  follow,
  type FollowOptions,
  issueTicket,
  type LiveEvent,
  type PostIn,
  type PostOut,
  type EventSourceMessage,
} from "@social-api/client";
import { anonymous, baseUrl, expectData, expectProblem, type Person, register, unique } from "./support.js";

/** How long an event may take to arrive (the service reads its outbox at least once a second). */
const ARRIVAL = 10_000;

// --- helpers ------------------------------------------------------------------------------

async function newPost(person: Person, post: Partial<PostIn> = {}): Promise<PostOut> {
  const body: PostIn = { title: unique("Live"), content: "Followed.", published: true, ...post };
  const { data, error, response } = await person.api.POST("/posts", { body });
  assert.equal(response.status, 201);
  return expectData(data, response, error);
}

async function vote(person: Person, postId: number, dir: 0 | 1): Promise<void> {
  const { response } = await person.api.POST("/vote", { body: { post_id: postId, dir } });
  assert.equal(response.status, dir === 1 ? 201 : 200, `vote ${dir} on ${postId}`);
}

/** The post an event is about (a profile's change, reset: none). */
function postOf(event: LiveEvent): number | undefined {
  switch (event.event) {
    case "post.created":
    case "post.updated":
    case "post.deleted":
      return event.data.id;
    case "vote":
      return event.data.post_id;
    case "profile.updated":
    case "reset":
      return undefined;
    default: {
      const unknown: never = event; // every kind of event is handled above
      return unknown;
    }
  }
}

/** What an event of kind `name` says of its subject: its data, typed as the SDK types it, without
 * its `type`, which must be `name` (fails for another kind). */
function dataOf<E extends EventName>(event: LiveEvent | undefined, name: E): Omit<EventPayloads[E], "type"> {
  assert.ok(event, `an event ${name}`);
  assert.equal(event.event, name, `expected ${name}, got ${JSON.stringify(event)}`);
  const { type, ...subject } = event.data as EventPayloads[E];
  assert.equal(type, name, "the data's type is the event's name");
  return subject;
}

/** When `condition` holds, within `ms`. */
async function until(condition: () => boolean, what: string, ms = ARRIVAL): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((tick) => setTimeout(tick, 20));
  }
}

/**
 * A walk of `follow` run in the background: every event it yields is kept with the
 * connection it came on, and read in order with `next`.
 */
class Follower {
  readonly received: { event: LiveEvent; connection: number }[] = [];
  readonly connections: Connection[] = [];
  readonly unknown: EventSourceMessage[] = [];
  /** What ended the walk: an error, or "done". */
  end: unknown;
  #read = 0;
  #stop = new AbortController();

  constructor(api: Api, options: FollowOptions = {}) {
    const walk = follow(api, {
      reconnectDelay: 100,
      ...options,
      signal: this.#stop.signal,
      onConnect: (connection) => this.connections.push(connection),
      onUnknown: (message) => this.unknown.push(message),
    });
    void (async () => {
      try {
        for await (const event of walk) this.received.push({ event, connection: this.connections.length });
        this.end = "done";
      } catch (error) {
        this.end = error;
      }
    })();
  }

  /** Waits until `count` connections were opened. */
  async connected(count = 1): Promise<void> {
    await until(() => this.connections.length >= count || this.end !== undefined, `connection ${count}`);
    if (this.connections.length < count) assert.fail(`the walk ended: ${String(this.end)}`);
  }

  /** The next event about one of `posts` (or a reset), after those already read; profiles'
   * changes are passed over. */
  async next(posts: ReadonlySet<number>): Promise<LiveEvent> {
    let found: LiveEvent | undefined;
    await until(() => {
      while (found === undefined && this.#read < this.received.length) {
        const { event } = this.received[this.#read++] as { event: LiveEvent };
        // Everyone is told of everyone's profile changes, other suites' people's too.
        if (event.event === "profile.updated") continue;
        const post = postOf(event);
        if (post === undefined || posts.has(post)) found = event;
      }
      return found !== undefined || this.end !== undefined;
    }, `an event about ${[...posts].join(", ")}`);
    if (found === undefined) assert.fail(`the walk ended: ${String(this.end)}`);
    return found;
  }

  /** Every event's id is greater than the one before: none twice, none out of order. */
  assertIdsGrow(): void {
    const ids = this.received.map(({ event }) => event.id);
    assert.deepEqual(ids, [...new Set(ids)].sort((a, b) => a - b), "ids grow across connections");
    assert.deepEqual(this.unknown, [], "no event the SDK has no type for");
  }

  /** The ids of the events received on connection `n` (1 is the first). */
  idsOn(n: number): number[] {
    return this.received.filter(({ connection }) => connection === n).map(({ event }) => event.id);
  }

  stop(): void {
    this.#stop.abort();
  }
}

/**
 * A client whose connections a test can drop, as a network would: `drop()` aborts the open
 * one and holds the next until the returned `reconnect` is called. Every request is kept.
 */
function droppable(token?: string) {
  const requests: Request[] = [];
  let open: AbortController | undefined;
  let held: Promise<void> | undefined;
  const api = createApi(baseUrl, {
    ...(token === undefined ? {} : { token }),
    fetch: async (request) => {
      requests.push(request.clone());
      await held;
      const connection = new AbortController();
      open = connection;
      return fetch(request, { signal: AbortSignal.any([request.signal, connection.signal]) });
    },
  });
  function drop(): () => void {
    let reconnect = () => {};
    held = new Promise((go) => (reconnect = go));
    assert.ok(open, "a connection is open");
    open.abort();
    return () => {
      held = undefined;
      reconnect();
    };
  }
  return { api, requests, drop };
}

// --- the stream -----------------------------------------------------------------------------

describe("following GET /events with the bearer token", () => {
  test("typed events for a post created, updated, voted for, its vote taken back, and deleted", async () => {
    const author = await register();
    const voter = await register();
    const follower = new Follower(author.api);
    const watching = new Follower(voter.api);
    try {
      await follower.connected();
      await watching.connected();
      const request = follower.connections[0]?.response;
      assert.match(request?.headers.get("content-type") ?? "", /^text\/event-stream/);
      assert.equal(request?.headers.get("x-accel-buffering"), "no", "the header the 200 declares");

      const post = await newPost(author);
      const mine = new Set([post.id]);
      const created = await follower.next(mine);
      assert.deepEqual(dataOf(created, "post.created"), post, "post.created carries the PostOut the write returned");

      const patched = await author.api.PATCH("/posts/{id}", {
        params: { path: { id: post.id } },
        body: { title: `${post.title} (edited)` },
      });
      const edited = expectData(patched.data, patched.response, patched.error);
      assert.deepEqual(dataOf(await follower.next(mine), "post.updated"), edited);

      await vote(voter, post.id, 1);
      assert.deepEqual(dataOf(await follower.next(mine), "vote"), { post_id: post.id, votes: 1 });
      await vote(voter, post.id, 0);
      assert.deepEqual(dataOf(await follower.next(mine), "vote"), { post_id: post.id, votes: 0 });

      // Another person's draft never shows; their published post does.
      const draft = await newPost(voter, { published: false });
      const published = await newPost(voter);
      const next = await follower.next(new Set([post.id, draft.id, published.id]));
      assert.deepEqual(dataOf(next, "post.created"), published, "the draft before it did not show");

      const deleted = await author.api.DELETE("/posts/{id}", { params: { path: { id: post.id } } });
      assert.equal(deleted.response.status, 204);
      assert.deepEqual(dataOf(await follower.next(mine), "post.deleted"), { id: post.id });

      // The voter saw the same changes of the author's post, in the same order, with the same ids.
      const seen = new Set([post.id]);
      const theirs = [];
      for (let n = 0; n < 5; n++) theirs.push(await watching.next(seen));
      const ours = follower.received.map(({ event }) => event).filter((event) => postOf(event) === post.id);
      assert.deepEqual(theirs, ours);
      follower.assertIdsGrow();
      watching.assertIdsGrow();
      assert.equal(follower.connections.length, 1, "one connection all along");
    } finally {
      follower.stop();
      watching.stop();
    }
  });

  test("a dropped connection resumes with Last-Event-ID: exactly what was missed, in order, then live", async () => {
    const author = await register();
    const voter = await register();
    const { api, requests, drop } = droppable(author.token);
    const follower = new Follower(api);
    try {
      await follower.connected();
      const first = await newPost(author);
      const mine = new Set([first.id]);
      assert.deepEqual(dataOf(await follower.next(mine), "post.created"), first);

      // The connection drops; writes happen while the client is away.
      const reconnect = drop();
      const second = await newPost(author);
      mine.add(second.id);
      const patched = await author.api.PATCH("/posts/{id}", { params: { path: { id: first.id } }, body: { content: "Changed meanwhile." } });
      const edited = expectData(patched.data, patched.response, patched.error);
      await vote(voter, first.id, 1);
      assert.equal((await author.api.DELETE("/posts/{id}", { params: { path: { id: second.id } } })).response.status, 204);
      const third = await newPost(author);
      mine.add(third.id);
      reconnect();
      await follower.connected(2);

      const missed = [];
      for (let n = 0; n < 5; n++) missed.push(await follower.next(mine));
      assert.deepEqual(
        missed.map((event) => [event.event, postOf(event)]),
        [
          ["post.created", second.id],
          ["post.updated", first.id],
          ["vote", first.id],
          ["post.deleted", second.id],
          ["post.created", third.id],
        ],
        "every write made while away, once, in commit order",
      );
      assert.deepEqual(dataOf(missed[0], "post.created"), second);
      assert.deepEqual(dataOf(missed[1], "post.updated"), edited);
      assert.deepEqual(dataOf(missed[2], "vote"), { post_id: first.id, votes: 1 });

      // The second connection asked for what came after the last event of the first.
      const before = follower.idsOn(1);
      assert.equal(requests.length, 2, "one reconnection");
      assert.equal(requests[0]?.headers.get("last-event-id"), null, "the first connection starts live");
      assert.equal(requests[1]?.headers.get("last-event-id"), String(before.at(-1)));
      assert.equal(follower.connections[1]?.lastEventId, before.at(-1));
      assert.ok(requests.every((request) => request.headers.get("authorization") === `Bearer ${author.token}`));
      assert.ok(requests.every((request) => !new URL(request.url).search.includes(author.token)), "no token in a URL");

      // Then live, and nothing replayed twice: the next event of these posts is the new write.
      const fourth = await newPost(author);
      mine.add(fourth.id);
      assert.deepEqual(dataOf(await follower.next(mine), "post.created"), fourth);
      follower.assertIdsGrow();
      assert.ok((follower.idsOn(2)[0] ?? 0) > (before.at(-1) ?? Infinity), "the replay starts after the last id seen");
    } finally {
      follower.stop();
    }
  });

  test("the walk ends with a typed 401 once its session ends (the stream closes, the reconnection is refused)", async () => {
    const person = await register();
    const follower = new Follower(person.api);
    try {
      await follower.connected();
      const started = Date.now();
      assert.equal((await person.api.POST("/logout")).response.status, 204);
      await until(() => follower.end !== undefined, "the walk ends");
      assert.ok(follower.end instanceof ProblemError, `ended by ${String(follower.end)}`);
      expectProblem(follower.end.problem, follower.end.response, 401);
      assert.ok(Date.now() - started < 5_000, "within a few seconds of the logout");
      assert.equal(follower.connections.length, 1, "no stream opened after the session ended");
    } finally {
      follower.stop();
    }
  });
});

describe("following GET /events with tickets (as EventSource does)", () => {
  test("a ticket per connection, no Authorization header, resuming with ?last_event_id=", async () => {
    const author = await register();
    const issued = await issueTicket(author.api);
    const first = expectData(issued.data, issued.response, issued.error);
    assert.equal(issued.response.status, 201);
    assert.ok(first.expires_in > 0 && first.expires_in <= 60, `expires_in ${first.expires_in}`);
    assert.ok(first.ticket.length >= 20, "a ticket too long to guess");
    const refused = await issueTicket(anonymous);
    expectProblem(refused.error, refused.response, 401);

    const tickets: string[] = [];
    const { api, requests, drop } = droppable();
    const follower = new Follower(api, {
      ticket: async () => {
        const { data, error, response } = await issueTicket(author.api);
        tickets.push(expectData(data, response, error).ticket);
        return tickets.at(-1) as string;
      },
    });
    try {
      await follower.connected();
      const before = await newPost(author);
      const mine = new Set([before.id]);
      assert.deepEqual(dataOf(await follower.next(mine), "post.created"), before);

      const reconnect = drop();
      const meanwhile = await newPost(author);
      mine.add(meanwhile.id);
      reconnect();
      await follower.connected(2);
      assert.deepEqual(dataOf(await follower.next(mine), "post.created"), meanwhile, "missed while away, replayed");
      const after = await newPost(author);
      mine.add(after.id);
      assert.deepEqual(dataOf(await follower.next(mine), "post.created"), after, "then live, nothing twice");
      follower.assertIdsGrow();

      assert.equal(tickets.length, 2, "a new ticket for each connection");
      assert.notEqual(tickets[0], tickets[1]);
      const urls = requests.map((request) => new URL(request.url));
      assert.deepEqual(urls.map((url) => url.searchParams.get("ticket")), tickets);
      assert.equal(urls[0]?.searchParams.get("last_event_id"), null);
      assert.equal(urls[1]?.searchParams.get("last_event_id"), String(follower.idsOn(1).at(-1)));
      assert.ok(requests.every((request) => request.headers.get("authorization") === null), "no Authorization header");
    } finally {
      follower.stop();
    }

    // A ticket opens one stream: used again (or made up), 401 as a typed problem.
    for (const ticket of [tickets[0] as string, first.ticket.slice(0, 20), unique("forged")]) {
      const spent = follow(anonymous, { ticket: async () => ticket, maxRetries: 0 });
      const error = await spent.next().then(
        () => undefined,
        (failure: unknown) => failure,
      );
      assert.ok(error instanceof ProblemError, `refused: ${String(error)}`);
      expectProblem(error.problem, error.response, 401);
    }
  });
});

describe("errors of GET /events, as typed problems", () => {
  async function refusal(api: Api, options: FollowOptions): Promise<ProblemError> {
    const walk = follow(api, { maxRetries: 0, ...options });
    try {
      const result = await walk.next();
      assert.fail(`GET /events was not refused: ${JSON.stringify(result)}`);
    } catch (error) {
      assert.ok(error instanceof ProblemError, `refused with an ProblemError: ${String(error)}`);
      return error;
    } finally {
      await walk.return();
    }
  }

  test("a malformed or negative Last-Event-ID (header or query) is a 422 naming it", async () => {
    const person = await register();
    const negative = await refusal(person.api, { lastEventId: -1 });
    const problem = expectProblem(negative.problem, negative.response, 422, /Last-Event-ID/);
    assert.deepEqual(problem.errors?.map((field) => field.field), ["Last-Event-ID"]);

    const byTicket = await refusal(anonymous, {
      lastEventId: -5,
      ticket: async () => {
        const { data, error, response } = await issueTicket(person.api);
        return expectData(data, response, error).ticket;
      },
    });
    assert.deepEqual(expectProblem(byTicket.problem, byTicket.response, 422).errors?.map((field) => field.field), ["last_event_id"]);

    for (const garbage of ["abc", "1.5", "99999999999999999999", "-0x1"]) {
      const { error, response } = await person.api.GET("/events", { headers: { "Last-Event-ID": garbage }, parseAs: "stream" });
      const typed = expectProblem(error, response, 422, /Last-Event-ID/);
      assert.deepEqual(typed.errors?.map((field) => field.field), ["Last-Event-ID"], garbage);
    }
  });

  test("no token, or a wrong one: 401 with WWW-Authenticate, and no stream", async () => {
    for (const api of [anonymous, createApi(baseUrl, { token: "not.a.token" })]) {
      const refused = await refusal(api, {});
      expectProblem(refused.problem, refused.response, 401);
      assert.match(refused.response.headers.get("www-authenticate") ?? "", /^Bearer/);
    }
  });

  test("an id no event had yet: a typed reset first, then live", async () => {
    const person = await register();
    const follower = new Follower(person.api, { lastEventId: 9_000_000_000 });
    try {
      await follower.connected();
      const reset = await follower.next(new Set());
      assert.equal(typeof dataOf(reset, "reset").detail, "string");
      const post = await newPost(person);
      const next = await follower.next(new Set([post.id]));
      assert.deepEqual(dataOf(next, "post.created"), post);
      assert.ok(next.id > reset.id);
      follower.assertIdsGrow();
    } finally {
      follower.stop();
    }
  });
});

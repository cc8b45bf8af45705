// The SDK's front door, `SocialClient`, against a live service (API_URL): the calls an app
// makes for accounts and sessions, posts (safe edits, pages) and live events, each error
// thrown as a ProblemError carrying the problem document; tokens kept in a store the app
// chooses.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  type Change,
  ConflictError,
  type KeyValueStorage,
  localStorageStore,
  type LiveEvent,
  type Problem,
  ProblemError,
  type SessionEnd,
  SocialClient,
  type SocialClientOptions,
} from "@social-api/client";
import { baseUrl, unique } from "./support.js";

/** How long an event may take to arrive (the service reads its outbox at least once a second). */
const ARRIVAL = 10_000;

function client(options: Partial<SocialClientOptions> = {}): SocialClient {
  return new SocialClient({ baseUrl, ...options });
}

/** A new account, logged in on a client of its own. */
async function loggedIn(options: Partial<SocialClientOptions> = {}) {
  const email = `${unique("sdk")}@example.org`;
  const password = unique("pw");
  const app = client(options);
  const account = await app.auth.register({ email, password });
  await app.auth.logIn({ email, password });
  return { app, account, email, password };
}

/** The ProblemError `call` throws, checked against `status`. */
async function refusal(call: () => Promise<unknown>, status: number, detail?: RegExp): Promise<ProblemError> {
  try {
    await call();
  } catch (error) {
    assert.ok(error instanceof ProblemError, `a ProblemError: ${String(error)}`);
    assert.equal(error.status, status, error.message);
    const problem: Problem = error.problem;
    assert.equal(problem.status, status);
    assert.equal(error.title, problem.title);
    assert.ok(error.title.length > 0 && error.detail.length > 0, "a title and a detail");
    if (detail) assert.match(error.detail, detail);
    return error;
  }
  assert.fail(`expected ${status}, but the call succeeded`);
}

/** A Web Storage in memory, as `localStorage` behaves. */
function storage(): KeyValueStorage & { items: Map<string, string> } {
  const items = new Map<string, string>();
  return {
    items,
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
    removeItem: (key) => void items.delete(key),
  };
}

async function until(condition: () => boolean, what: string, ms = ARRIVAL): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((tick) => setTimeout(tick, 20));
  }
}

describe("SocialClient: accounts and sessions", () => {
  test("register, log in with JSON and with the form, read the account, log out", async () => {
    const ended: SessionEnd[] = [];
    const { app, account, email, password } = await loggedIn({ onEnded: (end) => ended.push(end) });
    assert.equal(account.email, email);
    assert.ok(app.auth.loggedIn);
    assert.deepEqual(await app.auth.me(), account);

    await app.auth.logOut();
    assert.equal(app.auth.loggedIn, false);
    assert.deepEqual(ended, [{ reason: "logged-out" }], "the app hears that the session ended");
    await refusal(() => app.auth.me(), 401);

    const token = await app.auth.logInWithForm(email.toUpperCase(), password);
    assert.equal(token.token_type, "bearer");
    assert.deepEqual(await app.auth.me(), account);
    await app.auth.logOut();
    await app.auth.logOut(); // nothing held: nothing to do
  });

  test("every error is a ProblemError with the problem document, a 422 naming each field", async () => {
    const { app, email } = await loggedIn();
    await refusal(() => app.auth.register({ email, password: "another password" }), 409);
    const invalid = await refusal(() => app.auth.register({ email: "ann@localhost", password: "short" }), 422);
    assert.deepEqual(invalid.errors?.map((field) => field.field).sort(), ["email", "password"]);
    assert.match(invalid.response.headers.get("content-type") ?? "", /^application\/problem\+json/);
    await refusal(() => client().auth.logIn({ email, password: "wrong password" }), 401);
    await refusal(() => app.posts.get(2_000_000_000), 404, /2000000000/);
  });

  test("list the sessions, end one, end the others, change the password", async () => {
    const { app, email, password } = await loggedIn();
    const laptop = client();
    await laptop.auth.logIn({ email, password });
    const phone = client();
    await phone.auth.logIn({ email, password });

    const sessions = await app.auth.sessions();
    assert.equal(sessions.length, 3);
    assert.deepEqual(sessions.filter((session) => session.current).length, 1);
    const laptopSession = (await laptop.auth.sessions()).find((session) => session.current);
    assert.ok(laptopSession);
    await app.auth.endSession(laptopSession.id);
    await refusal(() => laptop.auth.me(), 401);
    assert.equal(laptop.auth.loggedIn, false, "its refresh was refused: the tokens are gone");

    await app.auth.endOtherSessions();
    await refusal(() => phone.auth.me(), 401);
    assert.equal((await app.auth.sessions()).length, 1);

    const newPassword = unique("new");
    await refusal(() => app.auth.changePassword({ current_password: "not it", new_password: newPassword }), 403);
    await app.auth.changePassword({ current_password: password, new_password: newPassword });
    await refusal(() => client().auth.logIn({ email, password }), 401);
    await client().auth.logIn({ email, password: newPassword });
  });

  test("tokens in localStorage: kept across clients of the origin (tabs, reloads), gone after logging out", async () => {
    const local = storage();
    const { app, account } = await loggedIn({ store: localStorageStore("social", local) });
    const saved = JSON.parse(local.items.get("social") ?? "null") as { access_token: string; expires_at: number } | null;
    assert.ok(saved?.access_token, "the tokens are stored");
    assert.ok(saved.expires_at > Date.now(), "with their expiry");

    const reloaded = client({ store: localStorageStore("social", local) });
    assert.ok(reloaded.auth.loggedIn);
    assert.deepEqual(await reloaded.auth.me(), account, "another client of the same storage is logged in");
    await reloaded.auth.logOut();
    assert.equal(local.items.has("social"), false, "logging out removes them");
    assert.equal(app.auth.loggedIn, false, "for every client of the storage");

    local.items.set("social", "not json");
    assert.equal(client({ store: localStorageStore("social", local) }).auth.loggedIn, false, "what it cannot read is no session");
  });
});

describe("SocialClient: posts", () => {
  test("create, read (304 when current), update and replace with If-Match, a stale ETag a ConflictError, delete", async () => {
    const { app, account } = await loggedIn();
    const created = await app.posts.create({ title: unique("SDK"), content: "First version." });
    assert.equal(created.post.owner_id, account.id);
    assert.match(created.etag, /^"[^"]+"$/);

    const read = await app.posts.get(created.post.id);
    assert.ok(!read.notModified);
    assert.deepEqual(read.post, created.post);
    assert.deepEqual(await app.posts.get(created.post.id, created.etag), { notModified: true, etag: created.etag });

    const updated = await app.posts.update(created.post.id, { content: "Second version." }, created.etag);
    assert.equal(updated.post.content, "Second version.");
    assert.notEqual(updated.etag, created.etag);

    const conflict = await refusal(() => app.posts.update(created.post.id, { title: "Lost update" }, created.etag), 412);
    assert.ok(conflict instanceof ConflictError, "a 412 is a ConflictError");
    assert.equal(conflict.currentEtag, updated.etag, "naming the version to merge with");

    const replaced = await app.posts.replace(created.post.id, { title: "Replaced", content: "All new." }, conflict.currentEtag);
    assert.equal(replaced.post.title, "Replaced");
    await refusal(() => app.posts.delete(created.post.id, updated.etag), 412);
    await app.posts.delete(created.post.id, replaced.etag);
    await refusal(() => app.posts.get(created.post.id), 404);

    const other = await loggedIn();
    const theirs = await other.app.posts.create({ title: unique("Theirs"), content: "Not yours." });
    await refusal(() => app.posts.update(theirs.post.id, { title: "Mine" }, theirs.etag), 403);
    await refusal(() => app.posts.create({ title: "   ", content: "" }), 422);
  });

  test("pages and all follow the Link headers; list reads one page; vote", async () => {
    const { app } = await loggedIn();
    const search = unique("Paged");
    const ids: number[] = [];
    for (let n = 1; n <= 5; n++) ids.unshift((await app.posts.create({ title: `${search} ${n}`, content: "x" })).post.id);

    const walked: number[][] = [];
    for await (const page of app.posts.pages({ limit: 2, search })) walked.push(page.map((post) => post.id));
    assert.deepEqual(walked, [ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)], "newest first, two by two");
    const all: number[] = [];
    for await (const post of app.posts.all({ limit: 3, search })) all.push(post.id);
    assert.deepEqual(all, ids);
    assert.deepEqual((await app.posts.list({ limit: 2, search })).map((post) => post.id), ids.slice(0, 2));

    const voter = await loggedIn();
    await voter.app.posts.vote(ids[0]!, 1);
    const read = await app.posts.get(ids[0]!);
    assert.equal(read.notModified ? undefined : read.post.votes, 1);
    await refusal(() => voter.app.posts.vote(ids[0]!, 1), 409);

    await assert.rejects(
      async () => {
        for await (const page of app.posts.pages({ limit: 0 })) void page;
      },
      (error: unknown) => error instanceof ProblemError && error.status === 422 && /limit/.test(error.detail),
    );
  });
});

describe("SocialClient: live events", () => {
  for (const tickets of [false, true]) {
    test(`subscribe${tickets ? " with tickets" : ""}: changes to onEvent, nothing after unsubscribing`, async () => {
      const { app } = await loggedIn();
      const changes: Change[] = [];
      const errors: unknown[] = [];
      let opened = 0;
      const unsubscribe = app.events.subscribe(
        {
          onEvent: (change) => changes.push(change),
          onReset: () => assert.fail("no reset for a live subscription"),
          onError: (error) => errors.push(error),
          onOpen: () => opened++,
        },
        { tickets },
      );
      try {
        await until(() => opened === 1, "the stream opens");
        const { post, etag } = await app.posts.create({ title: unique("Live"), content: "Followed." });
        await app.posts.update(post.id, { content: "Edited." }, etag);
        const mine = () =>
          changes.filter((change) => change.event.startsWith("post.") && "title" in change.data && change.data.id === post.id);
        await until(() => mine().length === 2, "post.created and post.updated");
        assert.deepEqual(mine().map((change) => change.event), ["post.created", "post.updated"]);
      } finally {
        unsubscribe();
      }
      const seen = changes.length;
      await app.posts.create({ title: unique("Unseen"), content: "After unsubscribing." });
      await new Promise((wait) => setTimeout(wait, 1_500));
      assert.equal(changes.length, seen, "no event after unsubscribing");
      assert.deepEqual(errors, []);
    });
  }

  test("subscribe: a reset tells the app to list again; a session that ends is a 401 ProblemError", async () => {
    const { app } = await loggedIn();
    const resets: unknown[] = [];
    const errors: unknown[] = [];
    const events: LiveEvent[] = [];
    const unsubscribe = app.events.subscribe(
      { onEvent: (change) => events.push(change), onReset: (reset) => resets.push(reset), onError: (error) => errors.push(error) },
      { lastEventId: 9_000_000_000, reconnectDelay: 100 },
    );
    try {
      await until(() => resets.length === 1, "a reset for an id no event had yet");
      await app.auth.endSession((await app.auth.sessions()).find((session) => session.current)!.id);
      await until(() => errors.length === 1, "the subscription ends with an error");
      const [error] = errors;
      assert.ok(error instanceof ProblemError && error.status === 401, `a 401 ProblemError: ${String(error)}`);
    } finally {
      unsubscribe();
    }
  });
});

// Sessions against a live service (API_URL): refreshing the tokens (JSON and the OAuth2
// form), logging out, listing and ending sessions, changing the password; then the SDK's
// session middleware (`Session`): a token about to expire is refreshed before the requests,
// an expired access token is refreshed once and the request retried, concurrent requests
// share one refresh, a refused refresh fails cleanly.
//
// Expired access tokens are made here, signed with the service's SECRET_KEY
// (CONTRACT_SECRET_KEY, which `npm test` sets when it starts the service); without it those
// tests are skipped.

import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import {
  type Api,
  createApi,
  createSessionApi,
  logInWithForm,
  logInWithJson,
  refreshWithForm,
  refreshWithJson,
  type SessionEnd,
  type UserSession,
  memoryStore,
  type Token,
  type StoredTokens,
} from "@social-api/client";
import { anonymous, baseUrl, expectData, expectProblem, type Person, register } from "./support.js";

const secretKey = process.env.CONTRACT_SECRET_KEY;
const needsSecret = secretKey ? false : "CONTRACT_SECRET_KEY is not set: cannot make expired tokens";

interface Claims {
  sub: string;
  sid: number;
  iat: number;
  exp: number;
}

function claimsOf(accessToken: string): Claims {
  const payload = accessToken.split(".")[1];
  assert.ok(payload, "a JWT has a payload");
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Claims;
}

/** An HS256 JWT with these claims, signed with the service's key. */
function signed(claims: Claims): string {
  assert.ok(secretKey, "CONTRACT_SECRET_KEY is set");
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
  return `${unsigned}.${createHmac("sha256", secretKey).update(unsigned).digest("base64url")}`;
}

/** The access token `accessToken` would be had it expired a minute ago (past any leeway). */
function expired(accessToken: string): string {
  const now = Math.floor(Date.now() / 1000);
  return signed({ ...claimsOf(accessToken), iat: now - 1800, exp: now - 60 });
}

/** A login of `person` as a fresh session (another device). */
async function logInAgain(person: Person, userAgent?: string): Promise<Token> {
  const api = userAgent ? createApi(baseUrl) : anonymous;
  const { data, error, response } = userAgent
    ? await api.POST("/login", {
        body: { email: person.email, password: person.password },
        headers: { "User-Agent": userAgent },
      })
    : await logInWithJson(api, person.email, person.password);
  return expectData(data, response, error);
}

async function sessionsOf(api: Api): Promise<UserSession[]> {
  const { data, error, response } = await api.GET("/users/me/sessions");
  return expectData(data, response, error);
}

/** Whether this access token is still accepted (200) or refused (401). */
async function accepted(accessToken: string): Promise<boolean> {
  const { response } = await createApi(baseUrl, { token: accessToken }).GET("/users/me");
  assert.ok(response.status === 200 || response.status === 401, `GET /users/me answered ${response.status}`);
  return response.status === 200;
}

async function refreshRefused(refreshToken: string): Promise<void> {
  const { error, response } = await refreshWithJson(anonymous, refreshToken);
  expectProblem(error, response, 401);
  assert.equal(response.headers.get("www-authenticate"), "Bearer");
}

/**
 * A fetch that records every request the client makes, with the answer's status. A request
 * with the header `X-Test-Delay: <ms>` gets its answer that much later.
 */
function recordingFetch() {
  const calls: { method: string; path: string; status: number; authorization: string | null }[] = [];
  const fetch = async (request: Request): Promise<Response> => {
    const authorization = request.headers.get("Authorization");
    const delay = Number(request.headers.get("X-Test-Delay") ?? 0);
    const response = await globalThis.fetch(request);
    if (delay > 0) await sleep(delay);
    calls.push({ method: request.method, path: new URL(request.url).pathname, status: response.status, authorization });
    return response;
  };
  const list = () => calls.map((call) => `${call.method} ${call.path} ${call.status}`);
  const refreshes = () => calls.filter((call) => call.path === "/login/refresh").length;
  return { fetch, calls, list, refreshes };
}

/** A client whose session starts with `tokens`, and what it did. */
function sessionClient(tokens?: StoredTokens) {
  const recorder = recordingFetch();
  const events = { tokens: [] as StoredTokens[], ended: [] as SessionEnd[] };
  const { api, session } = createSessionApi(baseUrl, {
    fetch: recorder.fetch,
    store: memoryStore(tokens),
    onTokens: (pair) => events.tokens.push(pair),
    onEnded: (end) => events.ended.push(end),
  });
  return { api, session, recorder, events };
}

describe("refreshing the tokens", () => {
  test("a login returns a refresh token; its access token names the account and the session", async () => {
    const person = await register();
    const token = person.login;
    assert.equal(token.token_type, "bearer");
    assert.ok(token.refresh_expires_in > token.expires_in, "the refresh token outlives the access token");
    assert.ok(token.refresh_token.length >= 43, "at least 256 random bits");
    assert.notEqual(token.refresh_token, token.access_token);
    const claims = claimsOf(token.access_token);
    assert.equal(claims.sub, String(person.user.id));
    assert.ok(Number.isInteger(claims.sid) && claims.sid > 0, `sid is a session id: ${claims.sid}`);
    assert.equal(claims.exp - claims.iat, token.expires_in);
    const [mine] = await sessionsOf(person.api);
    assert.equal(mine?.id, claims.sid, "sid is the id GET /users/me/sessions lists");
  });

  test("JSON and the OAuth2 form each give a new pair of the same session, never cached", async () => {
    const person = await register();
    const sid = claimsOf(person.token).sid;

    const json = await refreshWithJson(anonymous, person.login.refresh_token);
    const first = expectData(json.data, json.response, json.error);
    assert.equal(json.response.status, 200);
    assert.match(json.response.headers.get("cache-control") ?? "", /no-store/);
    assert.equal(first.token_type, "bearer");
    assert.notEqual(first.refresh_token, person.login.refresh_token, "the refresh token rotates");
    assert.equal(claimsOf(first.access_token).sid, sid, "the same session");
    assert.ok(await accepted(first.access_token));

    const form = await refreshWithForm(anonymous, first.refresh_token);
    const second = expectData(form.data, form.response, form.error);
    assert.notEqual(second.refresh_token, first.refresh_token);
    assert.equal(claimsOf(second.access_token).sid, sid);
    const me = await createApi(baseUrl, { token: second.access_token }).GET("/users/me");
    assert.deepEqual(expectData(me.data, me.response, me.error), person.user);
    assert.equal((await sessionsOf(person.api)).length, 1, "refreshing starts no session");
  });

  test("unknown and malformed refresh tokens are 401; a missing one is 422", async () => {
    await refreshRefused(randomBytes(32).toString("base64url"));
    await refreshRefused("not a token");
    const person = await register();
    await refreshRefused(person.token); // an access token is no refresh token
    const missing = await anonymous.POST("/login/refresh", { body: {} as unknown as { refresh_token: string } });
    expectProblem(missing.error, missing.response, 422, /refresh_token/);
  });

  test("a spent refresh token again within the grace gets the first use's successor; the session goes on", async () => {
    const person = await register();
    const first = await refreshWithJson(anonymous, person.login.refresh_token);
    const rotated = expectData(first.data, first.response, first.error);
    const again = await refreshWithJson(anonymous, person.login.refresh_token);
    const other = expectData(again.data, again.response, again.error);
    assert.equal(other.refresh_token, rotated.refresh_token, "the session never branches");
    assert.ok(await accepted(rotated.access_token));
    assert.ok(await accepted(other.access_token));
    assert.ok(await accepted(person.token));
  });

  test("a spent refresh token again after the grace (10 s) is a replay: the session ends", async () => {
    const person = await register();
    const other = await logInAgain(person);
    const first = await refreshWithJson(anonymous, person.login.refresh_token);
    const rotated = expectData(first.data, first.response, first.error);
    await sleep(11_500);
    await refreshRefused(person.login.refresh_token);
    assert.equal(await accepted(rotated.access_token), false, "the session's access tokens are refused");
    assert.equal(await accepted(person.token), false);
    await refreshRefused(rotated.refresh_token);
    assert.ok(await accepted(other.access_token), "the person's other session goes on");
  });
});

describe("logging out and ending sessions", () => {
  test("POST /logout ends the caller's session only, at once", async () => {
    const person = await register();
    const other = await logInAgain(person);
    const out = await person.api.POST("/logout");
    assert.equal(out.response.status, 204);
    assert.equal(out.data, undefined);
    for (const path of ["/users/me", "/users/me/sessions", "/posts"] as const) {
      const { error, response } = await person.api.GET(path);
      expectProblem(error, response, 401);
    }
    const twice = await person.api.POST("/logout");
    expectProblem(twice.error, twice.response, 401);
    await refreshRefused(person.login.refresh_token);
    assert.ok(await accepted(other.access_token), "the other session goes on");
  });

  test("GET /users/me/sessions lists every session, marks the caller's, most recently used first", async () => {
    const person = await register();
    const userAgent = `contract-test/${randomBytes(3).toString("hex")}`;
    const phone = await logInAgain(person, userAgent);
    const phoneApi = createApi(baseUrl, { token: phone.access_token });
    const sid = claimsOf(person.token).sid;
    const phoneSid = claimsOf(phone.access_token).sid;
    assert.notEqual(sid, phoneSid, "each login is a session");

    const listed = await sessionsOf(person.api);
    assert.deepEqual(listed.map((s) => s.id), [phoneSid, sid], "the latest login first");
    assert.deepEqual(listed.map((s) => s.current), [false, true]);
    const [phoneSession, ownSession] = listed;
    assert.equal(phoneSession?.user_agent, userAgent);
    assert.equal(phoneSession?.client_address, "127.0.0.1");
    for (const session of listed) {
      assert.equal(Object.keys(session).sort().join(), "client_address,created_at,current,id,last_used_at,user_agent");
      assert.ok(!Number.isNaN(Date.parse(session.created_at)));
      assert.ok(Date.parse(session.last_used_at) >= Date.parse(session.created_at));
    }
    assert.ok(ownSession);

    const fromPhone = await sessionsOf(phoneApi);
    assert.deepEqual(fromPhone.filter((s) => s.current).map((s) => s.id), [phoneSid], "current is the asking token's");

    // Refreshing makes a session the most recently used.
    const refreshed = await refreshWithJson(anonymous, person.login.refresh_token);
    expectData(refreshed.data, refreshed.response, refreshed.error);
    assert.deepEqual((await sessionsOf(phoneApi)).map((s) => s.id), [sid, phoneSid]);

    const stranger = await register();
    assert.deepEqual((await sessionsOf(stranger.api)).map((s) => s.id), [claimsOf(stranger.token).sid], "only one's own");
  });

  test("DELETE /users/me/sessions/{id} ends that session; another person's is 404", async () => {
    const person = await register();
    const laptop = await logInAgain(person);
    const laptopSid = claimsOf(laptop.access_token).sid;
    const ended = await person.api.DELETE("/users/me/sessions/{id}", { params: { path: { id: laptopSid } } });
    assert.equal(ended.response.status, 204);
    assert.equal(await accepted(laptop.access_token), false, "its access token is refused at once");
    await refreshRefused(laptop.refresh_token);
    assert.ok(await accepted(person.token), "the caller's own goes on");
    assert.deepEqual((await sessionsOf(person.api)).map((s) => s.id), [claimsOf(person.token).sid]);

    const again = await person.api.DELETE("/users/me/sessions/{id}", { params: { path: { id: laptopSid } } });
    expectProblem(again.error, again.response, 404);
    const stranger = await register();
    const strangerSid = claimsOf(stranger.token).sid;
    const theirs = await person.api.DELETE("/users/me/sessions/{id}", { params: { path: { id: strangerSid } } });
    expectProblem(theirs.error, theirs.response, 404);
    assert.ok(await accepted(stranger.token), "another person's session is untouched");

    // Ending one's own session is logging out.
    const own = await person.api.DELETE("/users/me/sessions/{id}", {
      params: { path: { id: claimsOf(person.token).sid } },
    });
    assert.equal(own.response.status, 204);
    assert.equal(await accepted(person.token), false);
  });

  test("DELETE /users/me/sessions ends every session but the caller's", async () => {
    const person = await register();
    const others = [await logInAgain(person), await logInAgain(person)];
    const stranger = await register();
    const ended = await person.api.DELETE("/users/me/sessions");
    assert.equal(ended.response.status, 204);
    for (const other of others) {
      assert.equal(await accepted(other.access_token), false);
      await refreshRefused(other.refresh_token);
    }
    assert.ok(await accepted(person.token));
    const listed = await sessionsOf(person.api);
    assert.deepEqual(listed.map((s) => [s.id, s.current]), [[claimsOf(person.token).sid, true]]);
    assert.ok(await accepted(stranger.token), "another person's sessions are untouched");
  });
});

describe("changing the password", () => {
  test("a wrong current password is 403 and changes nothing", async () => {
    const person = await register();
    const other = await logInAgain(person);
    const wrong = await person.api.PUT("/users/me/password", {
      body: { current_password: "not the password", new_password: "a new password" },
    });
    expectProblem(wrong.error, wrong.response, 403);
    assert.ok(await accepted(other.access_token), "no session ends");
    expectData((await logInWithForm(anonymous, person.email, person.password)).data, wrong.response);
    const short = await person.api.PUT("/users/me/password", {
      body: { current_password: person.password, new_password: "short" },
    });
    expectProblem(short.error, short.response, 422, /new_password/);
  });

  test("the new password works, the old one not, and every other session ends", async () => {
    const person = await register();
    const others = [await logInAgain(person), await logInAgain(person)];
    const newPassword = `new-${randomBytes(8).toString("hex")}`;
    const changed = await person.api.PUT("/users/me/password", {
      body: { current_password: person.password, new_password: newPassword },
    });
    assert.equal(changed.response.status, 204);
    assert.ok(await accepted(person.token), "the caller's session goes on");
    for (const other of others) {
      assert.equal(await accepted(other.access_token), false);
      await refreshRefused(other.refresh_token);
    }
    assert.equal((await sessionsOf(person.api)).length, 1);
    const old = await logInWithForm(anonymous, person.email, person.password);
    expectProblem(old.error, old.response, 401);
    const fresh = await logInWithForm(anonymous, person.email, newPassword);
    assert.ok(await accepted(expectData(fresh.data, fresh.response, fresh.error).access_token));
  });
});

describe("the SDK's session middleware", () => {
  test("a made token is accepted until it expires (the expired ones below are refused for expiry)", { skip: needsSecret }, async () => {
    const person = await register();
    const now = Math.floor(Date.now() / 1000);
    const valid = signed({ ...claimsOf(person.token), iat: now, exp: now + 600 });
    assert.ok(await accepted(valid), "a token signed here with the service's key is accepted");
    assert.equal(await accepted(expired(person.token)), false, "the same claims, expired, are refused");
  });

  test("a login through the client starts the session; its token is sent; logging out forgets it", async () => {
    const person = await register();
    const { api, session, recorder, events } = sessionClient();
    assert.equal(session.tokens?.access_token, undefined, "no tokens before the login");
    const login = await logInWithForm(api, person.email, person.password);
    const token = expectData(login.data, login.response, login.error);
    const held = session.tokens;
    assert.equal(held?.access_token, token.access_token);
    assert.equal(held?.refresh_token, token.refresh_token);
    const lifetime = (held?.expires_at ?? 0) - Date.now();
    assert.ok(lifetime > (token.expires_in - 60) * 1000 && lifetime <= token.expires_in * 1000, "it expires as expires_in says");
    assert.deepEqual(events.tokens, [held]);
    assert.equal(recorder.calls[0]?.authorization, null, "/login carries no token");

    const me = await api.GET("/users/me");
    assert.deepEqual(expectData(me.data, me.response, me.error), person.user);
    assert.equal(recorder.calls[1]?.authorization, `Bearer ${token.access_token}`);

    const out = await api.POST("/logout");
    assert.equal(out.response.status, 204);
    assert.equal(session.tokens, undefined);
    assert.deepEqual(events.ended, [{ reason: "logged-out" }]);
    const after = await api.GET("/users/me");
    expectProblem(after.error, after.response, 401);
    assert.equal(recorder.calls.at(-1)?.authorization, null, "no token is sent any more");
    assert.deepEqual(recorder.list(), [
      "POST /login 200",
      "GET /users/me 200",
      "POST /logout 204",
      "GET /users/me 401",
    ], "no refresh without a session");
  });

  test("an expired access token: one refresh, the request retried with its body, success", { skip: needsSecret }, async () => {
    const person = await register();
    const { api, session, recorder, events } = sessionClient({
      access_token: expired(person.token),
      refresh_token: person.login.refresh_token,
    });

    const title = `Retried ${randomBytes(4).toString("hex")}`;
    const created = await api.POST("/posts", { body: { title, content: "The body survives the retry." } });
    const post = expectData(created.data, created.response, created.error);
    assert.equal(created.response.status, 201);
    assert.equal(post.title, title);
    assert.equal(post.content, "The body survives the retry.");
    assert.deepEqual(recorder.list(), ["POST /posts 401", "POST /login/refresh 200", "POST /posts 201"]);

    const pair = session.tokens;
    assert.ok(pair, "the session holds the new pair");
    assert.notEqual(pair.refresh_token, person.login.refresh_token);
    assert.deepEqual(events.tokens, [pair]);
    assert.equal(recorder.calls[2]?.authorization, `Bearer ${pair.access_token}`, "retried with the new token");
    assert.equal(claimsOf(pair.access_token).sid, claimsOf(person.token).sid, "the same session");

    const mine = await person.api.GET("/posts/{id}", { params: { path: { id: post.id } } });
    assert.equal(expectData(mine.data, mine.response).title, title, "created once, by the person");
    const me = await api.GET("/users/me");
    expectData(me.data, me.response, me.error);
    assert.equal(recorder.refreshes(), 1, "a valid token is not refreshed");
    assert.deepEqual(events.ended, []);
  });

  test("ten requests failing together cause one refresh, and all ten succeed", { skip: needsSecret }, async () => {
    const person = await register();
    const { api, session, recorder } = sessionClient({
      access_token: expired(person.token),
      refresh_token: person.login.refresh_token,
    });
    // One of them gets its 401 only after the refresh is done: it is retried with the new
    // token, without a second refresh.
    const late = { headers: { "X-Test-Delay": "400" } };
    const results = await Promise.all([
      ...Array.from({ length: 4 }, (_, n) =>
        api.GET("/users/me", n === 0 ? late : {}).then(({ data, response }) => data?.id ?? response.status),
      ),
      ...Array.from({ length: 3 }, () => api.GET("/users/me/sessions").then(({ data, response }) => data?.length ?? response.status)),
      ...Array.from({ length: 3 }, (_, n) =>
        api.POST("/posts", { body: { title: `Concurrent ${n}`, content: "x" } }).then(({ data, response }) => data?.title ?? response.status),
      ),
    ]);
    assert.deepEqual(results, [
      ...Array<number>(4).fill(person.user.id),
      ...Array<number>(3).fill(1),
      "Concurrent 0",
      "Concurrent 1",
      "Concurrent 2",
    ]);
    assert.equal(recorder.refreshes(), 1, `one POST /login/refresh:\n${recorder.list().join("\n")}`);
    assert.equal(recorder.calls.length, 21, "ten requests, one refresh, ten retries");
    assert.equal(recorder.calls.filter((call) => call.status === 401).length, 10);
    const newToken = `Bearer ${session.tokens?.access_token}`;
    assert.deepEqual(
      recorder.calls.filter((call) => call.status !== 401 && call.path !== "/login/refresh").map((call) => call.authorization),
      Array<string>(10).fill(newToken),
      "every retry carries the one new token",
    );
    assert.equal((await sessionsOf(person.api)).length, 1);
  });

  test("a token about to expire is refreshed before the requests, once for ten at a time, with no 401", async () => {
    const person = await register();
    const { api, session, recorder, events } = sessionClient();
    const loggedIn = await logInWithJson(api, person.email, person.password);
    expectData(loggedIn.data, loggedIn.response, loggedIn.error);
    const login = session.tokens;
    assert.ok(login?.expires_at, "the login's expiry is kept");
    assert.ok(login.expires_at > Date.now() + 60_000);
    // Within the default margin (60 s) of its expiry, as it will be in half an hour.
    session.setTokens({ ...login, expires_at: Date.now() + 20_000 });

    const results = await Promise.all(Array.from({ length: 10 }, () => api.GET("/users/me").then(({ response }) => response.status)));
    assert.deepEqual(results, Array<number>(10).fill(200));
    assert.deepEqual(recorder.list().slice(1), ["POST /login/refresh 200", ...Array<string>(10).fill("GET /users/me 200")]);
    const refreshed = session.tokens;
    assert.ok(refreshed && refreshed.refresh_token !== login.refresh_token, "the pair rotated");
    assert.ok((refreshed.expires_at ?? 0) > Date.now() + 60_000, "the new access token's expiry is kept");
    assert.deepEqual(
      recorder.calls.slice(2).map((call) => call.authorization),
      Array<string>(10).fill(`Bearer ${refreshed.access_token}`),
      "every request carries the new token",
    );
    assert.deepEqual(events.ended, []);
  });

  test("a refresh before a request that is refused ends the session; the request goes without a token", async () => {
    const person = await register();
    const { api, session, recorder, events } = sessionClient({
      access_token: person.token,
      refresh_token: person.login.refresh_token,
      expires_at: Date.now() - 1_000,
    });
    assert.equal((await person.api.POST("/logout")).response.status, 204, "logged out elsewhere");
    const me = await api.GET("/users/me");
    expectProblem(me.error, me.response, 401);
    assert.deepEqual(recorder.list(), ["POST /login/refresh 401", "GET /users/me 401"]);
    assert.equal(recorder.calls[1]?.authorization, null);
    assert.equal(session.tokens, undefined);
    assert.deepEqual(events.ended.map((end) => end.reason), ["refresh-refused"]);
  });

  test("a refused refresh (the session was logged out) fails cleanly: the 401, no loop, tokens gone", async () => {
    const person = await register();
    const { api, session, recorder, events } = sessionClient({
      access_token: person.token,
      refresh_token: person.login.refresh_token,
    });
    assert.equal((await person.api.POST("/logout")).response.status, 204, "logged out elsewhere");

    const me = await api.GET("/users/me");
    expectProblem(me.error, me.response, 401);
    assert.deepEqual(recorder.list(), ["GET /users/me 401", "POST /login/refresh 401"]);
    assert.equal(session.tokens, undefined, "the tokens are forgotten");
    assert.equal(events.ended.length, 1);
    assert.equal(events.ended[0]?.reason, "refresh-refused");

    const again = await api.GET("/users/me/sessions");
    expectProblem(again.error, again.response, 401);
    assert.equal(recorder.calls.length, 3, "sent without a token, and not retried");
    assert.equal(recorder.calls[2]?.authorization, null);
  });

  test("a revoked session: concurrent requests share one refused refresh, none is retried", async () => {
    const person = await register();
    const laptop = await logInAgain(person);
    const { api, session, recorder, events } = sessionClient({
      access_token: laptop.access_token,
      refresh_token: laptop.refresh_token,
    });
    const laptopSid = claimsOf(laptop.access_token).sid;
    const revoked = await person.api.DELETE("/users/me/sessions/{id}", { params: { path: { id: laptopSid } } });
    assert.equal(revoked.response.status, 204);

    const statuses = await Promise.all(Array.from({ length: 5 }, () => api.GET("/posts").then((r) => r.response.status)));
    assert.deepEqual(statuses, [401, 401, 401, 401, 401]);
    assert.equal(recorder.refreshes(), 1, `one refresh:\n${recorder.list().join("\n")}`);
    assert.equal(recorder.calls.length, 6, "five requests and one refresh, no retry");
    assert.equal(session.tokens, undefined);
    assert.equal(events.ended.length, 1, "the session ends once");
  });

  test("/login and /login/refresh are never retried, nor a request with its own token", async () => {
    const person = await register();
    const { api, session, recorder } = sessionClient({
      access_token: person.token,
      refresh_token: person.login.refresh_token,
    });
    const wrong = await logInWithForm(api, person.email, "wrong password");
    expectProblem(wrong.error, wrong.response, 401);
    const bogus = await refreshWithJson(api, "bogus");
    expectProblem(bogus.error, bogus.response, 401);
    const foreign = await api.GET("/users/me", { headers: { Authorization: "Bearer not-a-jwt" } });
    expectProblem(foreign.error, foreign.response, 401);
    assert.deepEqual(recorder.list(), ["POST /login 401", "POST /login/refresh 401", "GET /users/me 401"]);
    assert.deepEqual(recorder.calls.map((call) => call.authorization), [null, null, "Bearer not-a-jwt"]);
    assert.deepEqual(session.tokens, { access_token: person.token, refresh_token: person.login.refresh_token });
  });

  test("rotation: each refresh replaces the stored refresh token; a replayed one ends the session", { skip: needsSecret }, async () => {
    const person = await register();
    const { api, session, recorder, events } = sessionClient({
      access_token: expired(person.token),
      refresh_token: person.login.refresh_token,
    });
    const seen = [person.login.refresh_token];
    for (let round = 0; round < 3; round++) {
      const me = await api.GET("/users/me");
      expectData(me.data, me.response, me.error);
      const pair = session.tokens;
      assert.ok(pair);
      assert.ok(!seen.includes(pair.refresh_token), "a new refresh token each time");
      seen.push(pair.refresh_token);
      session.setTokens({ ...pair, access_token: expired(pair.access_token) });
    }
    assert.equal(recorder.refreshes(), 3);

    // The first refresh token, spent long enough ago, is a replay: the whole session ends,
    // and the middleware's next refresh is refused.
    await sleep(11_500);
    await refreshRefused(seen[0]!);
    const after = await api.GET("/users/me");
    expectProblem(after.error, after.response, 401);
    assert.deepEqual(recorder.list().slice(-2), ["GET /users/me 401", "POST /login/refresh 401"]);
    assert.equal(session.tokens, undefined);
    assert.equal(events.ended.at(-1)?.reason, "refresh-refused");
  });
});

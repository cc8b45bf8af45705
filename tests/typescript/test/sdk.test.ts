// The generated TypeScript client against a live service (API_URL): every operation a
// client uses, and the main errors with their problem+json bodies read through the client.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  createApi,
  logInWithForm,
  logInWithJson,
  type components,
  type PostIn,
  type PostOut,
  type Token,
  type Account,
} from "@social-api/client";
import { anonymous, baseUrl, expectData, expectProblem, type Person, register, unique } from "./support.js";

async function newPost(person: Person, post: PostIn): Promise<PostOut> {
  const { data, error, response } = await person.api.POST("/posts", { body: post });
  assert.equal(response.status, 201);
  return expectData(data, response, error);
}

describe("the service", () => {
  test("says where the docs are and that it is healthy", async () => {
    const root = await anonymous.GET("/");
    assert.match(expectData(root.data, root.response).message, /\/docs/);
    const health = await anonymous.GET("/health");
    const body = expectData(health.data, health.response);
    // The suite's service reads on no replica.
    assert.deepEqual(body, { status: "ok", database: "ok", replicas: [] });
  });
});

describe("accounts", () => {
  test("register, log in with the OAuth2 form and with JSON, read the account", async () => {
    const email = `${unique("Ann")}@Example.org`;
    const password = "correct horse battery";
    const created = await anonymous.POST("/users", { body: { email, password } });
    const user: Account = expectData(created.data, created.response, created.error);
    assert.equal(created.response.status, 201);
    assert.equal(created.response.headers.get("location"), `/users/${user.id}`);
    assert.equal(user.email, email.toLowerCase(), "the email is stored lower-cased");
    assert.ok(!Number.isNaN(Date.parse(user.created_at)), "created_at is a timestamp");
    assert.equal(
      Object.keys(user).sort().join(),
      "created_at,display_name,email,email_verified,handle,id,role",
      "no password leaves the server",
    );
    assert.match(user.handle, /^user_[a-z0-9]+$/, "a handle that tells nothing of the email");
    assert.equal(user.role, "member");

    const form = await logInWithForm(anonymous, email.toUpperCase(), password);
    const token: Token = expectData(form.data, form.response, form.error);
    assert.equal(token.token_type, "bearer");
    assert.ok(token.expires_in > 0);
    assert.equal(token.access_token.split(".").length, 3, "a JWT");

    const json = await logInWithJson(anonymous, email, password);
    assert.equal(expectData(json.data, json.response, json.error).token_type, "bearer");

    const api = createApi(baseUrl, { token: token.access_token });
    const me = await api.GET("/users/me");
    assert.deepEqual(expectData(me.data, me.response, me.error), user);
    const byId = await api.GET("/users/{id}", { params: { path: { id: user.id } } });
    const { id, handle, display_name, created_at } = user;
    assert.deepEqual(expectData(byId.data, byId.response, byId.error), { id, handle, display_name, created_at });
  });

  test("a profile: chosen handle, display name, found by handle, never the email", async () => {
    const person = await register();
    const handle = unique("Ann").replace(/[^A-Za-z0-9_]/g, "_").slice(0, 30);
    const changed = await person.api.PATCH("/users/me", { body: { handle, display_name: "  Ann Lee " } });
    const account: Account = expectData(changed.data, changed.response, changed.error);
    assert.equal(account.handle, handle.toLowerCase());
    assert.equal(account.display_name, "Ann Lee");
    assert.equal(account.email, person.email);

    const reader = await register();
    const found = await reader.api.GET("/profiles/{handle}", { params: { path: { handle: handle.toUpperCase() } } });
    const profile = expectData(found.data, found.response, found.error);
    assert.deepEqual(profile, {
      id: account.id,
      handle: account.handle,
      display_name: "Ann Lee",
      created_at: account.created_at,
    });
    const taken = await reader.api.PATCH("/users/me", { body: { handle } });
    expectProblem(taken.error, taken.response, 409);
    const invalid = await reader.api.PATCH("/users/me", { body: { handle: "no way" } });
    expectProblem(invalid.error, invalid.response, 422);
  });

  test("an email is taken whatever its case (409)", async () => {
    const person = await register();
    const { error, response } = await anonymous.POST("/users", {
      body: { email: person.email.toUpperCase(), password: "another password" },
    });
    expectProblem(error, response, 409);
  });

  test("invalid registrations are 422 naming the field", async () => {
    const short = await anonymous.POST("/users", { body: { email: `${unique("s")}@example.org`, password: "short" } });
    expectProblem(short.error, short.response, 422, /password/);
    const email = await anonymous.POST("/users", { body: { email: "not an email", password: "long enough" } });
    expectProblem(email.error, email.response, 422, /email/);
    const both = await anonymous.POST("/users", { body: { email: "ann@localhost", password: "short" } });
    const problem = expectProblem(both.error, both.response, 422, /email.*password/);
    const fields = (problem.errors ?? []).map((error) => error.field).sort();
    assert.deepEqual(fields, ["email", "password"], "every invalid field is listed");
  });

  test("a wrong password is 401, and repeated failures are 429 with Retry-After", async () => {
    const person = await register();
    const wrong = await logInWithForm(anonymous, person.email, "wrong password");
    expectProblem(wrong.error, wrong.response, 401);
    assert.equal(wrong.response.headers.get("www-authenticate"), "Bearer");
    const unknown = await logInWithForm(anonymous, `${unique("nobody")}@example.org`, "wrong password");
    const wrongProblem = expectProblem(unknown.error, unknown.response, 401);
    assert.equal(wrongProblem.detail, wrong.error?.detail, "an unknown email and a wrong password look alike");

    let limited: Awaited<ReturnType<typeof logInWithForm>> | undefined;
    for (let attempt = 2; attempt <= 20 && !limited; attempt++) {
      const result = await logInWithForm(anonymous, person.email, "wrong password");
      if (result.response.status === 429) limited = result;
      else expectProblem(result.error, result.response, 401);
    }
    assert.ok(limited, "failed logins are limited within 20 attempts");
    expectProblem(limited.error, limited.response, 429);
    assert.match(limited.response.headers.get("retry-after") ?? "", /^\d+$/);
    const right = await logInWithForm(anonymous, person.email, person.password);
    expectProblem(right.error, right.response, 429);
  });

  test("a blank login field or another grant type is 422 naming it", async () => {
    const json = await anonymous.POST("/login", { body: { email: " ", password: "whatever" } });
    expectProblem(json.error, json.response, 422, /email/);
    const form = await logInWithForm(anonymous, "", "whatever");
    expectProblem(form.error, form.response, 422, /username/);
    const grant = { username: "ann@example.org", password: "whatever", grant_type: "client_credentials" };
    const other = await anonymous.POST("/login", {
      body: grant as unknown as components["schemas"]["LoginForm"],
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    expectProblem(other.error, other.response, 422, /grant_type/);
  });

  test("delete the account: its token stops working and its posts go", async () => {
    const person = await register();
    const other = await register();
    const post = await newPost(person, { title: "Soon gone", content: "With its owner." });
    const deleted = await person.api.DELETE("/users/me");
    assert.equal(deleted.response.status, 204);
    assert.equal(deleted.data, undefined, "a 204 has no body");

    const me = await person.api.GET("/users/me");
    expectProblem(me.error, me.response, 401);
    const gone = await other.api.GET("/posts/{id}", { params: { path: { id: post.id } } });
    expectProblem(gone.error, gone.response, 404);
    const user = await other.api.GET("/users/{id}", { params: { path: { id: person.user.id } } });
    expectProblem(user.error, user.response, 404);
  });
});

describe("authentication", () => {
  test("no token, a malformed one, and a tampered one are 401 with WWW-Authenticate", async () => {
    const person = await register();
    const [header, payload] = person.token.split(".");
    for (const api of [
      anonymous,
      createApi(baseUrl, { token: "not-a-jwt" }),
      createApi(baseUrl, { token: `${header}.${payload}.${Buffer.from("forged").toString("base64url")}` }),
    ]) {
      const { error, response } = await api.GET("/posts");
      expectProblem(error, response, 401);
      assert.equal(response.headers.get("www-authenticate"), "Bearer");
    }
  });
});

describe("posts", () => {
  test("create, read, replace, patch and delete", async () => {
    const person = await register();
    const created = await person.api.POST("/posts", { body: { title: "  Hello  ", content: "First post" } });
    const post: PostOut = expectData(created.data, created.response, created.error);
    assert.equal(created.response.status, 201);
    assert.equal(created.response.headers.get("location"), `/posts/${post.id}`);
    assert.equal(post.title, "Hello", "the title is stored trimmed");
    assert.equal(post.content, "First post");
    assert.equal(post.published, true, "published by default");
    assert.equal(post.votes, 0);
    assert.equal(post.owner_id, person.user.id);
    const { id, handle, display_name, created_at } = person.user;
    assert.deepEqual(post.owner, { id, handle, display_name, created_at }, "the owner's profile, no email");

    const path = { params: { path: { id: post.id } } };
    const read = await person.api.GET("/posts/{id}", path);
    assert.deepEqual(expectData(read.data, read.response, read.error), post);

    const replaced = await person.api.PUT("/posts/{id}", {
      ...path,
      body: { title: "Replaced", content: "All new", published: false },
    });
    const draft = expectData(replaced.data, replaced.response, replaced.error);
    assert.deepEqual(
      { title: draft.title, content: draft.content, published: draft.published, id: draft.id },
      { title: "Replaced", content: "All new", published: false, id: post.id },
    );
    const republished = await person.api.PUT("/posts/{id}", { ...path, body: { title: "Again", content: "Body" } });
    assert.equal(expectData(republished.data, republished.response).published, true, "PUT without published is true");

    const patched = await person.api.PATCH("/posts/{id}", { ...path, body: { content: "Only the content" } });
    const after = expectData(patched.data, patched.response, patched.error);
    assert.equal(after.title, "Again", "fields left out stay");
    assert.equal(after.content, "Only the content");
    const unpublished = await person.api.PATCH("/posts/{id}", { ...path, body: { published: false } });
    assert.equal(expectData(unpublished.data, unpublished.response).published, false);

    const deleted = await person.api.DELETE("/posts/{id}", path);
    assert.equal(deleted.response.status, 204);
    const gone = await person.api.GET("/posts/{id}", path);
    expectProblem(gone.error, gone.response, 404, new RegExp(String(post.id)));
    const again = await person.api.DELETE("/posts/{id}", path);
    expectProblem(again.error, again.response, 404);
  });

  test("list newest first, page with limit and skip, search the title", async () => {
    const person = await register();
    const marker = unique("Needle");
    const titles = [1, 2, 3, 4, 5].map((n) => `${marker} number ${n}`);
    const posts: PostOut[] = [];
    for (const title of titles) posts.push(await newPost(person, { title, content: "Listed." }));
    await newPost(person, { title: `${marker.replace("Needle", "Hay")} elsewhere`, content: "Not found." });

    const search = marker.toLowerCase();
    const list = async (limit: number, skip: number): Promise<PostOut[]> => {
      const { data, error, response } = await person.api.GET("/posts", {
        params: { query: { limit, skip, search } },
      });
      return expectData(data, response, error);
    };
    const newestFirst = posts.map((p) => p.id).reverse();
    assert.deepEqual((await list(2, 0)).map((p) => p.id), newestFirst.slice(0, 2));
    assert.deepEqual((await list(2, 2)).map((p) => p.id), newestFirst.slice(2, 4));
    assert.deepEqual((await list(2, 4)).map((p) => p.id), newestFirst.slice(4));
    assert.deepEqual(await list(10, 5), []);
    const all = await list(100, 0);
    assert.deepEqual(all.map((p) => p.title), [...titles].reverse(), "search ignores case and finds only the marker");

    const literal = await person.api.GET("/posts", { params: { query: { search: `${marker}%` } } });
    assert.deepEqual(expectData(literal.data, literal.response), [], "% is an ordinary character");

    const defaults = await person.api.GET("/posts");
    assert.ok(expectData(defaults.data, defaults.response).length <= 10, "10 posts by default");
  });

  test("out-of-range paging is 422 naming the parameter", async () => {
    const person = await register();
    const zero = await person.api.GET("/posts", { params: { query: { limit: 0 } } });
    expectProblem(zero.error, zero.response, 422, /limit/);
    const many = await person.api.GET("/posts", { params: { query: { limit: 101 } } });
    expectProblem(many.error, many.response, 422, /limit/);
    const negative = await person.api.GET("/posts", { params: { query: { skip: -1 } } });
    expectProblem(negative.error, negative.response, 422, /skip/);
  });

  test("invalid posts are 422 naming the field, and null is refused", async () => {
    const person = await register();
    const blank = await person.api.POST("/posts", { body: { title: "   ", content: "x" } });
    expectProblem(blank.error, blank.response, 422, /title/);
    const long = await person.api.POST("/posts", { body: { title: "t".repeat(201), content: "x" } });
    expectProblem(long.error, long.response, 422, /title/);
    const empty = await person.api.POST("/posts", { body: { title: "Fine", content: "" } });
    expectProblem(empty.error, empty.response, 422, /content/);

    // Clients that send null anyway (the types do not allow it): null is not "left out".
    const nullPublished = { title: "Fine", content: "x", published: null } as unknown as PostIn;
    const created = await person.api.POST("/posts", { body: nullPublished });
    expectProblem(created.error, created.response, 422, /published/);
    const post = await newPost(person, { title: "Kept", content: "As it is" });
    const body = { title: null } as unknown as { title: string };
    const nulled = await person.api.PATCH("/posts/{id}", { params: { path: { id: post.id } }, body });
    expectProblem(nulled.error, nulled.response, 422, /title/);
    const kept = await person.api.GET("/posts/{id}", { params: { path: { id: post.id } } });
    assert.equal(expectData(kept.data, kept.response).title, "Kept");
  });

  test("only the owner may change a post (403), and another person's draft is 404", async () => {
    const owner = await register();
    const other = await register();
    const post = await newPost(owner, { title: "Mine", content: "Not yours" });
    const path = { params: { path: { id: post.id } } };

    const put = await other.api.PUT("/posts/{id}", { ...path, body: { title: "Theirs", content: "Now" } });
    expectProblem(put.error, put.response, 403);
    const patch = await other.api.PATCH("/posts/{id}", { ...path, body: { title: "Theirs" } });
    expectProblem(patch.error, patch.response, 403);
    const del = await other.api.DELETE("/posts/{id}", path);
    expectProblem(del.error, del.response, 403);
    assert.deepEqual(expectData((await other.api.GET("/posts/{id}", path)).data, patch.response), post);

    const draft = await newPost(owner, { title: unique("Draft"), content: "Hidden", published: false });
    const draftPath = { params: { path: { id: draft.id } } };
    const hidden = await other.api.GET("/posts/{id}", draftPath);
    expectProblem(hidden.error, hidden.response, 404);
    const listed = await other.api.GET("/posts", { params: { query: { search: draft.title } } });
    assert.deepEqual(expectData(listed.data, listed.response), []);
    const own = await owner.api.GET("/posts", { params: { query: { search: draft.title } } });
    assert.deepEqual(expectData(own.data, own.response).map((p) => p.id), [draft.id]);
    const vote = await other.api.POST("/vote", { body: { post_id: draft.id, dir: 1 } });
    expectProblem(vote.error, vote.response, 404);
  });
});

describe("votes", () => {
  test("vote, vote again (409), unvote, unvote again (404)", async () => {
    const author = await register();
    const voter = await register();
    const post = await newPost(author, { title: "Vote for me", content: "Please" });
    const path = { params: { path: { id: post.id } } };

    const added = await voter.api.POST("/vote", { body: { post_id: post.id, dir: 1 } });
    assert.equal(added.response.status, 201);
    assert.equal(typeof expectData(added.data, added.response, added.error).message, "string");
    const twice = await voter.api.POST("/vote", { body: { post_id: post.id, dir: 1 } });
    expectProblem(twice.error, twice.response, 409);
    const own = await author.api.POST("/vote", { body: { post_id: post.id, dir: 1 } });
    assert.equal(own.response.status, 201, "an author may vote their own post");
    assert.equal(expectData((await voter.api.GET("/posts/{id}", path)).data, added.response).votes, 2);

    const removed = await voter.api.POST("/vote", { body: { post_id: post.id, dir: 0 } });
    assert.equal(removed.response.status, 200);
    expectData(removed.data, removed.response, removed.error);
    const again = await voter.api.POST("/vote", { body: { post_id: post.id, dir: 0 } });
    expectProblem(again.error, again.response, 404);
    assert.equal(expectData((await voter.api.GET("/posts/{id}", path)).data, removed.response).votes, 1);
  });

  test("a vote for no post is 404, and dir other than 0 or 1 is 422", async () => {
    const voter = await register();
    const missing = await voter.api.POST("/vote", { body: { post_id: 2_000_000_000, dir: 1 } });
    expectProblem(missing.error, missing.response, 404);
    const post = await newPost(voter, { title: "Direction", content: "Up or nothing" });
    const bad = await voter.api.POST("/vote", { body: { post_id: post.id, dir: 2 } });
    expectProblem(bad.error, bad.response, 422, /dir/);
  });
});

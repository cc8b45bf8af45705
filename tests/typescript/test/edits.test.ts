// Safe edits: every PostOut carries a strong ETag; If-None-Match reads answer 304; If-Match
// writes apply only to the version named, else 412 with the current ETag, which the SDK's
// helpers (src/edits.ts) read as a typed conflict.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  deletePost,
  editPost,
  type ETag,
  type PostOut,
  readPost,
  type ReadResult,
  replacePost,
  type WriteResult,
} from "@social-api/client";
import { expectData, expectProblem, type Person, register, unique } from "./support.js";

const STRONG = /^"[^"]*"$/;

async function newPost(person: Person): Promise<{ post: PostOut; etag: ETag }> {
  const { data, error, response } = await person.api.POST("/posts", {
    body: { title: unique("Versioned"), content: "First version." },
  });
  const post = expectData(data, response, error);
  const etag = response.headers.get("etag");
  assert.ok(etag, "a created post carries an ETag");
  assert.match(etag, STRONG, "a strong ETag");
  return { post, etag };
}

/** The post and its ETag as a plain read sees them now. */
async function current(person: Person, id: number): Promise<{ post: PostOut; etag: ETag }> {
  const read = await readPost(person.api, id);
  assert.ok(read.ok && !read.notModified, `GET /posts/${id}: ${read.response.status}`);
  return { post: read.post, etag: read.etag };
}

function expectDone<R extends WriteResult<object, unknown>>(result: R): Extract<R, { ok: true }> {
  if (!result.ok) {
    assert.fail(`expected success, got ${result.response.status}: ${JSON.stringify(result.error ?? result.conflict)}`);
  }
  return result as Extract<R, { ok: true }>;
}

function expectConflict<R extends WriteResult<object, unknown>>(result: R) {
  assert.equal(result.response.status, 412);
  assert.ok(!result.ok && result.conflict, `expected a conflict: ${JSON.stringify(result)}`);
  assert.match(result.conflict.currentEtag, STRONG);
  expectProblem(result.conflict.problem, result.response, 412);
  return result.conflict;
}

describe("conditional reads", () => {
  test("GET carries the ETag; If-None-Match with it, with a list naming it, or *, is 304 without a body", async () => {
    const person = await register();
    const { post, etag } = await newPost(person);
    const read = await current(person, post.id);
    assert.equal(read.etag, etag, "the ETag of the created post");
    assert.deepEqual(read.post, post);

    for (const held of [etag, `W/${etag}`, `"0.0", ${etag}`, "*"]) {
      const again: ReadResult = await readPost(person.api, post.id, held);
      assert.equal(again.response.status, 304, `If-None-Match: ${held}`);
      assert.ok(again.ok && again.notModified, `If-None-Match: ${held}: not modified`);
      assert.equal(again.etag, etag);
      assert.equal(await again.response.text(), "", "a 304 has no body");
    }

    const stale = await readPost(person.api, post.id, '"0.0"');
    assert.ok(stale.ok && !stale.notModified, "another version: the post");
    assert.deepEqual(stale.post, post);
    assert.equal(stale.etag, etag);

    const missing = await readPost(person.api, 2_000_000_000, etag);
    assert.ok(!missing.ok);
    expectProblem(missing.error, missing.response, 404);
  });
});

describe("conditional writes", () => {
  test("PATCH with the current ETag succeeds and returns the new one; a stale one is a typed conflict", async () => {
    const person = await register();
    const { post, etag } = await newPost(person);

    const edited = expectDone(await editPost(person.api, post.id, { title: "Second version" }, etag));
    assert.equal(edited.post.title, "Second version");
    assert.match(edited.etag, STRONG);
    assert.notEqual(edited.etag, etag, "the ETag changes with the post");
    assert.equal((await current(person, post.id)).etag, edited.etag, "a fresh GET carries the new ETag");

    const stale = expectConflict(await editPost(person.api, post.id, { title: "Lost update" }, etag));
    const now = await current(person, post.id);
    assert.equal(stale.currentEtag, now.etag, "the conflict names the ETag a fresh GET carries");
    assert.deepEqual(now.post, edited.post, "nothing changed");

    // The conflict's ETag is the one to retry with.
    const retried = expectDone(await editPost(person.api, post.id, { title: "Merged" }, stale.currentEtag));
    assert.equal(retried.post.title, "Merged");
  });

  test("If-Match compares strongly: a weak ETag never matches; * and a list naming it do", async () => {
    const person = await register();
    const { post, etag } = await newPost(person);
    const weak = expectConflict(await editPost(person.api, post.id, { content: "Weak" }, `W/${etag}`));
    assert.equal(weak.currentEtag, etag);

    const listed = expectDone(await editPost(person.api, post.id, { content: "Listed" }, `"0.0", ${etag}`));
    const any = expectDone(await editPost(person.api, post.id, { content: "Any" }, "*"));
    assert.notEqual(any.etag, listed.etag);
    assert.equal(any.post.content, "Any");
  });

  test("PUT and DELETE with a stale ETag change nothing; with the current one they apply", async () => {
    const person = await register();
    const { post, etag } = await newPost(person);
    const changed = expectDone(await editPost(person.api, post.id, { published: false }, etag));

    const replace = { title: "Replaced", content: "Whole", published: true };
    const putConflict = expectConflict(await replacePost(person.api, post.id, replace, etag));
    assert.equal(putConflict.currentEtag, changed.etag);
    const deleteConflict = expectConflict(await deletePost(person.api, post.id, etag));
    assert.equal(deleteConflict.currentEtag, changed.etag);
    assert.deepEqual((await current(person, post.id)).post, changed.post, "still there, unchanged");

    const replaced = expectDone(await replacePost(person.api, post.id, replace, changed.etag));
    assert.deepEqual(
      { title: replaced.post.title, content: replaced.post.content, published: replaced.post.published },
      replace,
    );
    expectDone(await deletePost(person.api, post.id, replaced.etag));
    const gone = await readPost(person.api, post.id);
    assert.ok(!gone.ok);
    expectProblem(gone.error, gone.response, 404);
  });

  test("a vote changes the ETag: an edit made for the version before it is a conflict", async () => {
    const author = await register();
    const voter = await register();
    const { post, etag } = await newPost(author);
    const vote = await voter.api.POST("/vote", { body: { post_id: post.id, dir: 1 } });
    assert.equal(vote.response.status, 201);

    const voted = await current(author, post.id);
    assert.equal(voted.post.votes, 1);
    assert.notEqual(voted.etag, etag, "the vote count is part of the version");
    const conflict = expectConflict(await editPost(author.api, post.id, { title: "Before the vote" }, etag));
    assert.equal(conflict.currentEtag, voted.etag);
    assert.equal((await readPost(author.api, post.id, etag)).response.status, 200, "the old version is not current");
  });

  test("writes without If-Match proceed as before", async () => {
    const person = await register();
    const { post, etag } = await newPost(person);
    const plain = await person.api.PATCH("/posts/{id}", { params: { path: { id: post.id } }, body: { title: "Plain" } });
    expectData(plain.data, plain.response, plain.error);
    const newEtag = plain.response.headers.get("etag");
    assert.ok(newEtag && newEtag !== etag, "and carry the new ETag");
  });

  test("five edits racing with the same ETag: exactly one applies, the others are conflicts", async () => {
    const person = await register();
    const { post, etag } = await newPost(person);
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => editPost(person.api, post.id, { title: `Racer ${n}` }, etag)),
    );
    const winners = results.filter((result) => result.ok);
    assert.equal(winners.length, 1, `statuses: ${results.map((r) => r.response.status).join()}`);
    for (const result of results) if (!result.ok) expectConflict(result);
    const now = await current(person, post.id);
    assert.deepEqual(now.post, winners[0]?.ok && winners[0].post);
  });

  test("other errors are not conflicts: the SDK's typed problem, 403, 404, 422", async () => {
    const owner = await register();
    const other = await register();
    const { post, etag } = await newPost(owner);

    const forbidden = await editPost(other.api, post.id, { title: "Theirs" }, etag);
    assert.ok(!forbidden.ok && !forbidden.conflict);
    expectProblem(forbidden.error, forbidden.response, 403);
    const missing = await replacePost(owner.api, 2_000_000_000, { title: "No", content: "Post" }, "*");
    assert.ok(!missing.ok && !missing.conflict);
    expectProblem(missing.error, missing.response, 404);
    const invalid = await editPost(owner.api, post.id, { title: "   " }, etag);
    assert.ok(!invalid.ok && !invalid.conflict);
    expectProblem(invalid.error, invalid.response, 422, /title/);
    assert.equal((await current(owner, post.id)).etag, etag, "nothing changed");
  });
});

// Deep pages: GET /posts links every full page to the next by cursor (`Link: <…>;
// rel="next"`), and the SDK's `pages`/`posts` walk them; a cursor is a position, beside
// which a limit and search are used; cursors the service did not issue are 422 naming
// `cursor`.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  type Api,
  createApi,
  type ListQuery,
  nextLink,
  pages,
  type PostOut,
  ProblemError,
  posts,
} from "@social-api/client";
import { baseUrl, expectData, expectProblem, type Person, register, unique } from "./support.js";

/** A client whose requests are counted (and their URLs kept). */
function recording(person: Person): { api: Api; urls: string[] } {
  const urls: string[] = [];
  const api = createApi(baseUrl, { token: person.token });
  api.use({
    onRequest: ({ request }) => {
      urls.push(request.url);
      return undefined;
    },
  });
  return { api, urls };
}

async function createPosts(person: Person, marker: string, count: number): Promise<PostOut[]> {
  const created: PostOut[] = [];
  for (let n = 1; n <= count; n++) {
    const { data, error, response } = await person.api.POST("/posts", {
      body: { title: `${marker} ${n}`, content: "Paged." },
    });
    created.push(expectData(data, response, error));
  }
  return created;
}

async function collect<T>(iterator: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of iterator) all.push(item);
  return all;
}

/** The cursor of a page's next link. */
function cursorOf(response: Response): string {
  const next = nextLink(response);
  assert.ok(next, `a next link on ${response.url}`);
  const cursor = new URL(next, baseUrl).searchParams.get("cursor");
  assert.ok(cursor, `the next link names a cursor: ${next}`);
  return cursor;
}

describe("Link headers (RFC 8288)", () => {
  test("the next link among several, with parameters, quoted commas and relation lists", () => {
    const linked = (field: string) => new Response(null, { headers: { Link: field } });
    const field =
      '</posts?limit=5>; rel="first", <https://h.example/a,b;c>; title="x, y; z"; rel="prev", ' +
      '</posts?limit=5&cursor=AB.cd>;rel="Next start"';
    assert.equal(nextLink(linked(field)), "/posts?limit=5&cursor=AB.cd");
    assert.equal(nextLink(linked("<a>; rel=next")), "a", "an unquoted token");
    assert.equal(nextLink(linked('<a>; rel="NEXT"')), "a", "relation types ignore case");
    assert.equal(nextLink(linked('<a>; rel="nextpage"')), undefined);
    assert.equal(nextLink(new Response(null)), undefined);
  });
});

describe("pages of posts", () => {
  test("23 posts by 5: five pages, every post once, newest first, as one listing of 100", async () => {
    const person = await register();
    const marker = unique("Paged");
    const created = await createPosts(person, marker, 23);
    const search = marker.toLowerCase();

    const { api, urls } = recording(person);
    const walked = await collect(pages(api, { limit: 5, search }));
    assert.deepEqual(walked.map((page) => page.length), [5, 5, 5, 5, 3]);
    assert.equal(urls.length, 5, "one request per page");
    const ids = walked.flat().map((post) => post.id);
    assert.equal(new Set(ids).size, 23, "no post twice");
    assert.deepEqual(ids, created.map((post) => post.id).reverse(), "newest first");

    const whole = await person.api.GET("/posts", { params: { query: { limit: 100, search } } });
    assert.deepEqual(walked.flat(), expectData(whole.data, whole.response, whole.error));
    assert.equal(whole.response.headers.get("link"), null, "a page that is not full has no next link");

    // Every link after the first request: relative, the page's limit and search, a cursor.
    for (const url of urls.slice(1)) {
      const { pathname, searchParams } = new URL(url);
      assert.equal(pathname, "/posts");
      assert.equal(searchParams.get("limit"), "5");
      assert.equal(searchParams.get("search"), search);
      assert.ok(searchParams.get("cursor"));
    }

    const each = await collect(posts(api, { limit: 7, search }));
    assert.deepEqual(each.map((post) => post.id), ids, "posts() yields the same, whatever the page size");
  });

  test("a full last page links to an empty one, which is not yielded", async () => {
    const person = await register();
    const marker = unique("Exact");
    await createPosts(person, marker, 4);
    const { api, urls } = recording(person);
    const walked = await collect(pages(api, { limit: 2, search: marker }));
    assert.deepEqual(walked.map((page) => page.length), [2, 2]);
    assert.equal(urls.length, 3, "the second page was full, so its link was followed too");
    assert.deepEqual(await collect(pages(api, { search: unique("Nothing") })), [], "no posts, no pages");
  });

  test("without a search: the default page size, every page linked with its limit only", async () => {
    const person = await register();
    await createPosts(person, unique("Everything"), 11);
    const { api, urls } = recording(person);
    const all = await collect(posts(api));
    const ids = all.map((post) => post.id);
    assert.ok(ids.length >= 11);
    assert.equal(new Set(ids).size, ids.length, "no post twice");
    const second = new URL(urls[1] ?? "");
    assert.equal(second.searchParams.get("limit"), "10", "the default limit");
    assert.equal(second.searchParams.has("search"), false, "no search in a listing without one");
  });

  test("posts written and deleted while walking: none repeated, none of the others missed", async () => {
    const person = await register();
    const marker = unique("Moving");
    const created = await createPosts(person, marker, 9);
    const expected = created.map((post) => post.id).reverse();
    const removed = expected[6]; // on the third page
    assert.ok(removed !== undefined);

    const seen: number[] = [];
    let page = 0;
    for await (const batch of pages(person.api, { limit: 3, search: marker })) {
      seen.push(...batch.map((post) => post.id));
      if (++page === 1) {
        await createPosts(person, marker, 2); // newer than the cursor: not on later pages
        const { response }: { response: Response } = await person.api.DELETE("/posts/{id}", { params: { path: { id: removed } } });
        assert.equal(response.status, 204);
      }
    }
    assert.deepEqual(seen, expected.filter((id) => id !== removed));
  });

  test("a failing page throws a ProblemError with the problem", async () => {
    const person = await register();
    await assert.rejects(collect(pages(person.api, { limit: 0 })), (error: unknown) => {
      assert.ok(error instanceof ProblemError);
      expectProblem(error.problem, error.response, 422, /limit/);
      return true;
    });
  });
});

describe("cursors", () => {
  test("a cursor is a position: a limit or search beside it is used, an empty one is none", async () => {
    const person = await register();
    const marker = unique("Again");
    await createPosts(person, marker, 3);
    const first = await person.api.GET("/posts", { params: { query: { limit: 2, search: marker } } });
    const cursor = cursorOf(first.response);
    const alone = await person.api.GET("/posts", { params: { query: { cursor } } });
    const repeated = await person.api.GET("/posts", { params: { query: { cursor, limit: 2, search: marker } } });
    const page = expectData(alone.data, alone.response, alone.error);
    assert.equal(page.length, 1);
    assert.deepEqual(expectData(repeated.data, repeated.response, repeated.error), page);
    const elsewhere = await person.api.GET("/posts", { params: { query: { cursor, search: `${marker}x` } } });
    assert.deepEqual(expectData(elsewhere.data, elsewhere.response, elsewhere.error), [], "another search");
    const bigger = await person.api.GET("/posts", { params: { query: { cursor, limit: 3 } } });
    assert.deepEqual(expectData(bigger.data, bigger.response, bigger.error).slice(0, 1), page, "another limit");
    const empty = await person.api.GET("/posts", { params: { query: { cursor: "", limit: 2, search: marker } } });
    assert.deepEqual(
      expectData(empty.data, empty.response, empty.error),
      expectData(first.data, first.response, first.error),
      "an empty cursor is none",
    );
  });

  test("a malformed or altered cursor, or one with skip, is 422 naming cursor", async () => {
    const person = await register();
    const marker = unique("Tamper");
    await createPosts(person, marker, 3);
    const first = await person.api.GET("/posts", { params: { query: { limit: 2, search: marker } } });
    const cursor = cursorOf(first.response);
    // One character of the cursor changed, wherever it is.
    const flip = (at: number) => cursor.slice(0, at) + (cursor[at] === "A" ? "B" : "A") + cursor.slice(at + 1);
    // What the cursor says (its first part, when that is base64url text), a digit changed,
    // well-formed again, its signature kept.
    const [payload = "", ...rest] = cursor.split(".");
    const said = Buffer.from(payload, "base64url").toString("latin1");
    const resaid = said.replace(/\d/, (digit) => String((Number(digit) + 1) % 10));
    const rewritten = [Buffer.from(resaid, "latin1").toString("base64url"), ...rest].join(".");
    assert.notEqual(rewritten, cursor);
    const cases: [string, ListQuery][] = [
      ["malformed", { cursor: "not a cursor" }],
      ["altered at the start", { cursor: flip(0) }],
      ["altered at the end", { cursor: flip(cursor.length - 1) }],
      ["rewritten, its signature kept", { cursor: rewritten }],
      ["truncated", { cursor: cursor.slice(0, -2) }],
      ["with skip", { cursor, skip: 1 }],
    ];
    for (const [what, query] of cases) {
      const { error, response } = await person.api.GET("/posts", { params: { query } });
      assert.equal(response.status, 422, `a cursor ${what}: ${response.status}`);
      const problem = expectProblem(error, response, 422, /cursor/);
      assert.ok(
        (problem.errors ?? []).some((e) => e.field === "cursor"),
        `a cursor ${what}: errors name cursor: ${JSON.stringify(problem.errors)}`,
      );
    }
  });
});

// Walking every page of GET /posts by its `Link: <…>; rel="next"` headers.
//
//   for await (const page of pages(api, { limit: 50, search: "rust" })) show(page);
//   for await (const post of posts(api)) index(post);
//
// Each request goes through the client (its middleware, a Session say, included) with the
// query the link names: the first page's `limit` and `search`, then the cursor the service
// put in the link. The walk ends on a page without a next link; a page that is empty (the
// one after a full last page, say) is not yielded. A failing page throws a ListError with
// the problem as the SDK types it.

import type { Api } from "./client.js";
import type { components, operations } from "./generated/openapi.js";
import { declaredHeader } from "./headers.js";
import { linkTarget } from "./links.js";

type PostOut = components["schemas"]["PostOut"];

/** The query of GET /posts, as generated. */
export type ListQuery = NonNullable<operations["listPosts"]["parameters"]["query"]>;

/** Where a walk starts: the page size and the search of every page. */
export type PagesOptions = Pick<ListQuery, "limit" | "search">;

/** The `Link` header the 200 of listPosts declares. */
const link = declaredHeader<"listPosts", 200>("Link");

function listPage(api: Api, query: ListQuery) {
  return api.GET("/posts", { params: { query } });
}
type ListResult = Awaited<ReturnType<typeof listPage>>;
/** The errors of GET /posts as the SDK types them (problem documents). */
export type ListProblem = NonNullable<ListResult["error"]>;

/** A page of the walk failed: its status, the problem the service sent, the response. */
export class ListError extends Error {
  readonly status: number;
  constructor(
    readonly problem: ListProblem | undefined,
    readonly response: Response,
  ) {
    super(`GET ${response.url}: ${response.status}${problem ? `: ${problem.detail}` : ""}`);
    this.name = "ListError";
    this.status = response.status;
  }
}

/** The pages of GET /posts, following `rel="next"` until a page has none. */
export async function* pages(api: Api, options: PagesOptions = {}): AsyncGenerator<PostOut[], void, undefined> {
  let query: ListQuery = { ...options };
  const followed = new Set<string>();
  for (;;) {
    const { data, error, response } = await listPage(api, query);
    if (data === undefined) throw new ListError(error, response);
    if (data.length > 0) yield data;

    const next = linkTarget(link(response), "next");
    if (next === undefined) return;
    const target = new URL(next, response.url);
    const here = new URL(response.url);
    if (target.origin !== here.origin || target.pathname !== here.pathname) {
      throw new Error(`GET ${response.url}: the next page ${next} is not a page of this listing`);
    }
    if (followed.has(target.href)) throw new Error(`GET ${response.url}: the next page ${next} was already read`);
    followed.add(target.href);
    query = queryOf(target);
  }
}

/** Every post of GET /posts, page after page. */
export async function* posts(api: Api, options: PagesOptions = {}): AsyncGenerator<PostOut, void, undefined> {
  for await (const page of pages(api, options)) yield* page;
}

/** The query of a next link, in the generated type (numbers for `limit` and `skip`). */
function queryOf(url: URL): ListQuery {
  const query: ListQuery & Record<string, unknown> = {};
  for (const [name, value] of url.searchParams) {
    if (name === "limit" || name === "skip") query[name] = Number(value);
    else query[name] = value; // `search`, `cursor`, and whatever else the link names
  }
  return query;
}

// Safe edits of a post: reads that answer 304 when the held version is current, and writes
// that apply only to the version the caller read (`If-Match`), a 412 read as a conflict.
//
//   const read = await readPost(api, id);                  // { ok, notModified: false, post, etag }
//   const edit = await editPost(api, id, { title }, read.etag);
//   if (edit.ok) keep(edit.post, edit.etag);
//   else if (edit.conflict) reread(edit.conflict.currentEtag);  // someone changed it first
//   else show(edit.error);                                  // 403, 404, 422…, typed by the SDK
//
// The ETag is strong: the service compares If-Match strongly (a weak `W/"…"` never matches)
// and If-None-Match weakly; `*` matches any existing post. It changes whenever the post
// does, its vote count included.

import type { Api } from "./client.js";
import type { components, operations } from "./generated/openapi.js";
import { declaredHeader, type DeclaredHeaders } from "./headers.js";

type PostOut = components["schemas"]["PostOut"];
type PostIn = components["schemas"]["PostIn"];
type PostPatch = components["schemas"]["PostPatch"];

/** A post's version, as the 200 of getPost declares its `ETag`. */
export type ETag = DeclaredHeaders<"getPost", 200>["ETag"];

// Every header read here is one openapi.yaml declares for that response (tsc checks).
const etagOfRead = declaredHeader<"getPost", 200>("ETag");
const etagOfNotModified = declaredHeader<"getPost", 304>("ETag");
const etagOfPatch = declaredHeader<"updatePost", 200>("ETag");
const etagOfPut = declaredHeader<"replacePost", 200>("ETag");
const conflictOfPatch = declaredHeader<"updatePost", 412>("ETag");
const conflictOfPut = declaredHeader<"replacePost", 412>("ETag");
const conflictOfDelete = declaredHeader<"deletePost", 412>("ETag");

/** What a 412 says: the version the post is at now, and the problem document. */
export interface Conflict {
  currentEtag: DeclaredHeaders<"updatePost", 412>["ETag"];
  problem: operations["updatePost"]["responses"][412]["content"]["application/problem+json"];
}

/** The outcome of a conditional write: done, refused as a conflict (412), or another error. */
export type WriteResult<Done, E> =
  | ({ ok: true; response: Response } & Done)
  | { ok: false; conflict: Conflict; error?: undefined; response: Response }
  | { ok: false; conflict?: undefined; error: E; response: Response };

function requiredEtag(value: string | undefined, response: Response): ETag {
  if (value === undefined) {
    throw new Error(`${response.url}: ${response.status} without the ETag header openapi.yaml declares`);
  }
  return value;
}

/** Reads a result of the SDK as a WriteResult: a 412 becomes a Conflict. */
function written<E, Done>(
  result: { error?: E; response: Response },
  currentEtag: (response: Response) => string | undefined,
  done: () => Done,
): WriteResult<Done, E> {
  const { error, response } = result;
  if (response.ok) return { ok: true, response, ...done() };
  if (response.status === 412) {
    const problem = error as unknown as Conflict["problem"];
    return { ok: false, conflict: { currentEtag: requiredEtag(currentEtag(response), response), problem }, response };
  }
  return { ok: false, error: error as E, response };
}

function sendPatch(api: Api, id: number, changes: PostPatch, etag: string) {
  return api.PATCH("/posts/{id}", { params: { path: { id }, header: { "If-Match": etag } }, body: changes });
}
function sendPut(api: Api, id: number, post: PostIn, etag: string) {
  return api.PUT("/posts/{id}", { params: { path: { id }, header: { "If-Match": etag } }, body: post });
}
function sendDelete(api: Api, id: number, etag: string) {
  return api.DELETE("/posts/{id}", { params: { path: { id }, header: { "If-Match": etag } } });
}
function sendGet(api: Api, id: number, etag: string | undefined) {
  return api.GET("/posts/{id}", {
    params: { path: { id }, ...(etag === undefined ? {} : { header: { "If-None-Match": etag } }) },
  });
}

/** The errors of each operation as the SDK types them, a 412 included. */
export type PatchError = NonNullable<Awaited<ReturnType<typeof sendPatch>>["error"]>;
export type PutError = NonNullable<Awaited<ReturnType<typeof sendPut>>["error"]>;
export type DeleteError = NonNullable<Awaited<ReturnType<typeof sendDelete>>["error"]>;
export type GetError = NonNullable<Awaited<ReturnType<typeof sendGet>>["error"]>;

export type EditResult = WriteResult<{ post: PostOut; etag: ETag }, PatchError>;
export type ReplaceResult = WriteResult<{ post: PostOut; etag: ETag }, PutError>;
export type DeleteResult = WriteResult<object, DeleteError>;

/** PATCH /posts/{id} with `If-Match: etag` (`*`: any version). */
export async function editPost(api: Api, id: number, changes: PostPatch, etag: string): Promise<EditResult> {
  const result = await sendPatch(api, id, changes, etag);
  return written(result, conflictOfPatch, () => ({
    post: result.data as PostOut,
    etag: requiredEtag(etagOfPatch(result.response), result.response),
  }));
}

/** PUT /posts/{id} with `If-Match: etag` (`*`: any version). */
export async function replacePost(api: Api, id: number, post: PostIn, etag: string): Promise<ReplaceResult> {
  const result = await sendPut(api, id, post, etag);
  return written(result, conflictOfPut, () => ({
    post: result.data as PostOut,
    etag: requiredEtag(etagOfPut(result.response), result.response),
  }));
}

/** DELETE /posts/{id} with `If-Match: etag` (`*`: any version). */
export async function deletePost(api: Api, id: number, etag: string): Promise<DeleteResult> {
  return written(await sendDelete(api, id, etag), conflictOfDelete, () => ({}));
}

/** The outcome of a read: the post, or 304 (the held version is current), or an error. */
export type ReadResult =
  | { ok: true; notModified: false; post: PostOut; etag: ETag; response: Response }
  | { ok: true; notModified: true; post?: undefined; etag: ETag; response: Response }
  | { ok: false; error: GetError; response: Response };

/** GET /posts/{id}, with `If-None-Match: etag` when given (a version held, or `*`). */
export async function readPost(api: Api, id: number, etag?: string): Promise<ReadResult> {
  const { data, error, response } = await sendGet(api, id, etag);
  if (response.status === 304) {
    return { ok: true, notModified: true, etag: requiredEtag(etagOfNotModified(response), response), response };
  }
  if (data !== undefined) {
    return { ok: true, notModified: false, post: data, etag: requiredEtag(etagOfRead(response), response), response };
  }
  return { ok: false, error: error as GetError, response };
}

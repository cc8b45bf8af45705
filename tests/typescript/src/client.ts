// The TypeScript SDK: openapi-fetch over the types that openapi-typescript generates from
// openapi.yaml (`npm run generate` writes src/generated/openapi.ts).

import createClient, { type Client } from "openapi-fetch";

import type { components, operations, paths } from "./generated/openapi.js";
import { Session, type SessionOptions } from "./session.js";

export type { components, operations, paths };
export { Session, type SessionEnd, type SessionOptions, type TokenPair } from "./session.js";
export { ListError, type ListProblem, type ListQuery, pages, type PagesOptions, posts } from "./paging.js";
export {
  type Conflict,
  deletePost,
  type DeleteResult,
  editPost,
  type EditResult,
  type ETag,
  readPost,
  type ReadResult,
  replacePost,
  type ReplaceResult,
  type WriteResult,
} from "./edits.js";
export { declaredHeader, type DeclaredHeaders } from "./headers.js";
export {
  type Connection,
  type EventName,
  type EventPayloads,
  EventsError,
  follow,
  type FollowOptions,
  issueTicket,
  type LiveEvent,
  type StreamProblem,
} from "./events.js";
export { readMessages, type SseHandlers, type SseMessage, SseParser } from "./sse.js";
export { type Link, linkTarget, parseLinks } from "./links.js";

type Schemas = components["schemas"];
export type UserOut = Schemas["UserOut"];
export type UserCreate = Schemas["UserCreate"];
export type LoginForm = Schemas["LoginForm"];
export type LoginJson = Schemas["LoginJson"];
export type Token = Schemas["Token"];
export type PostIn = Schemas["PostIn"];
export type PostPatch = Schemas["PostPatch"];
export type PostOut = Schemas["PostOut"];
export type VoteIn = Schemas["VoteIn"];
export type VoteOutcome = Schemas["VoteOutcome"];
export type Problem = Schemas["Problem"];
export type Health = Schemas["Health"];
export type RefreshForm = Schemas["RefreshForm"];
export type RefreshJson = Schemas["RefreshJson"];
export type SessionOut = Schemas["Session"];
export type PasswordChange = Schemas["PasswordChange"];
export type EventTicket = Schemas["EventTicket"];
export type DeletedPost = Schemas["DeletedPost"];
export type VoteCount = Schemas["VoteCount"];
export type StreamReset = Schemas["StreamReset"];

export type Api = Client<paths>;

/** A client of the service at `baseUrl`, sending `token` as a bearer token when given. */
export function createApi(baseUrl: string, token?: string): Api {
  return createClient<paths>({
    baseUrl,
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
  });
}

/**
 * A client of the service at `baseUrl` with a {@link Session}: it sends the session's access
 * token and refreshes the pair on its own (src/session.ts). A login through this client
 * starts the session. `fetch` replaces the global fetch (to watch the requests, say).
 */
export function createSessionApi(
  baseUrl: string,
  options: SessionOptions & { fetch?: (request: Request) => Promise<Response> } = {},
): { api: Api; session: Session } {
  const { fetch, ...sessionOptions } = options;
  const api = createClient<paths>(fetch === undefined ? { baseUrl } : { baseUrl, fetch });
  const session = new Session(sessionOptions);
  api.use(session);
  return { api, session };
}

/** Exchanges a refresh token with the OAuth2 refresh form. */
export function refreshWithForm(api: Api, refreshToken: string) {
  const form: RefreshForm = { grant_type: "refresh_token", refresh_token: refreshToken };
  return api.POST("/login/refresh", {
    body: form,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
}

/** Exchanges a refresh token with a JSON body. */
export function refreshWithJson(api: Api, refreshToken: string) {
  const body: RefreshJson = { refresh_token: refreshToken };
  return api.POST("/login/refresh", { body });
}

/** Logs in with the OAuth2 password form, as Swagger UI's Authorize does. */
export function logInWithForm(api: Api, username: string, password: string) {
  const form: LoginForm = { username, password, grant_type: "password" };
  return api.POST("/login", {
    body: form,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
}

/** Logs in with a JSON body. */
export function logInWithJson(api: Api, email: string, password: string) {
  const credentials: LoginJson = { email, password };
  return api.POST("/login", { body: credentials });
}

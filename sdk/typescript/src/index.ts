// @social-api/client: a typed client of the Social API.

export { type Api, type ApiOptions, createApi, createSessionApi, type Fetch, logInWithForm, logInWithJson, refreshWithForm, refreshWithJson } from "./api.js";
export {
  type Account,
  AuthCalls,
  EventCalls,
  type EventTicket,
  ModerationCalls,
  type ModerationEntry,
  type ModerationQuery,
  PostCalls,
  type PostIn,
  type PostOut,
  type PostPatch,
  type Profile,
  type ProfilePatch,
  type RoleName,
  SocialClient,
  type SocialClientOptions,
  type Token,
  type UserSession,
  type Versioned,
} from "./client.js";
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
export {
  type Change,
  type Connection,
  type EventName,
  type EventPayloads,
  follow,
  type FollowOptions,
  issueTicket,
  type LiveEvent,
  subscribe,
  type SubscribeOptions,
  type Subscriber,
  type Unsubscribe,
} from "./events.js";
export type { EventSourceMessage } from "eventsource-parser";
export type { components, operations, paths } from "./generated/openapi.js";
export { type ListQuery, nextLink, pages, type PagesOptions, posts } from "./paging.js";
export { ConflictError, type Problem, problemOf, ProblemError } from "./problems.js";
export { Session, type SessionEnd, type SessionOptions } from "./session.js";
export { type KeyValueStorage, localStorageStore, memoryStore, type StoredTokens, type TokenStore } from "./store.js";

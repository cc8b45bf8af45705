// The SDK's front door: one object with the calls an app makes, each answering the data it
// asked for or throwing a ProblemError (a ConflictError for a 412). Everything else the API
// offers is typed on `client.api` (openapi-fetch), which shares the session.
//
//   const client = new SocialClient({ baseUrl, store: localStorageStore(), onEnded: showLogin });
//   await client.auth.logIn({ email, password });
//   const { post, etag } = await client.posts.create({ title: "Hello", content: "…" });
//   for await (const page of client.posts.pages({ limit: 20 })) show(page);
//   const unsubscribe = client.events.subscribe({ onEvent, onReset: relist, onError });

import { type Api, createApi, type Fetch, logInWithForm, logInWithJson } from "./api.js";
import { deletePost, editPost, type ETag, etagOf, readPost, replacePost, type WriteResult } from "./edits.js";
import { follow, type FollowOptions, issueTicket, type LiveEvent, subscribe, type SubscribeOptions, type Subscriber, type Unsubscribe } from "./events.js";
import type { components, operations } from "./generated/openapi.js";
import { pages, type PagesOptions, posts, type ListQuery } from "./paging.js";
import { ConflictError, ProblemError } from "./problems.js";
import { Session, type SessionOptions } from "./session.js";

type Schemas = components["schemas"];
/** The body of an operation's response `status`, as generated (whatever its media type). */
type Body<Op extends keyof operations, Status extends keyof operations[Op]["responses"]> =
  operations[Op]["responses"][Status] extends { content: infer C } ? C[keyof C] : never;

export type Account = Body<"readMe", 200>;
export type Profile = Body<"getUser", 200>;
export type ProfilePatch = Schemas["ProfilePatch"];
export type UserSession = Body<"listSessions", 200>[number];
export type Token = Body<"login", 200>;
export type EventTicket = Body<"issueEventTicket", 201>;
export type PostOut = Schemas["PostOut"];
export type PostIn = Schemas["PostIn"];
export type PostPatch = Schemas["PostPatch"];
export type RoleName = Schemas["RoleName"];
export type ModerationEntry = Schemas["ModerationEntry"];
/** A page of a moderation listing: its size, and the cursor of the page before's `Link`. */
export type ModerationQuery = NonNullable<operations["readModerationLog"]["parameters"]["query"]>;

/** A post and its version, to send back as `If-Match` when changing it. */
export interface Versioned {
  post: PostOut;
  etag: ETag;
}

export interface SocialClientOptions extends SessionOptions {
  /** Where the service is: `http://127.0.0.1:8000`, say. */
  baseUrl: string;
  /** Replaces the global fetch. */
  fetch?: Fetch;
}

/** Throws the problem of a failed call; answers the data of a successful one. */
function answer<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (!result.response.ok) throw new ProblemError(result.error, result.response);
  return result.data as T;
}

/** The post and ETag of a conditional write, or its problem thrown (a 412 as a ConflictError). */
function applied<Done>(result: WriteResult<Done, unknown>): Done {
  if (result.ok) return result;
  if (result.conflict) throw new ConflictError(result.conflict.problem, result.response, result.conflict.currentEtag);
  throw new ProblemError(result.error, result.response);
}

export class SocialClient {
  /** Every operation of the API, typed, sent with the session's token. */
  readonly api: Api;
  /** The tokens, their store and their refresh (src/session.ts). */
  readonly session: Session;
  readonly auth: AuthCalls;
  readonly posts: PostCalls;
  readonly events: EventCalls;
  readonly moderation: ModerationCalls;

  constructor({ baseUrl, fetch, ...sessionOptions }: SocialClientOptions) {
    this.api = createApi(baseUrl, fetch === undefined ? {} : { fetch });
    this.session = new Session(sessionOptions);
    this.api.use(this.session);
    this.auth = new AuthCalls(this.api, this.session);
    this.posts = new PostCalls(this.api);
    this.moderation = new ModerationCalls(this.api);
    // A client without the session's token, for streams opened with a ticket.
    this.events = new EventCalls(this.api, createApi(baseUrl, fetch === undefined ? {} : { fetch }));
  }
}

/** Accounts and sessions. */
export class AuthCalls {
  constructor(
    private readonly api: Api,
    private readonly session: Session,
  ) {}

  /** Creates an account (it does not log in). */
  async register(account: Schemas["UserCreate"]): Promise<Body<"createUser", 201>> {
    return answer(await this.api.POST("/users", { body: account }));
  }

  /** Logs in with JSON and keeps the session's tokens in the store. */
  async logIn(credentials: Schemas["LoginJson"]): Promise<Token> {
    return answer(await logInWithJson(this.api, credentials.email, credentials.password));
  }

  /** Logs in with the OAuth2 password form (`username` is the email) and keeps the tokens. */
  async logInWithForm(username: string, password: string): Promise<Token> {
    return answer(await logInWithForm(this.api, username, password));
  }

  /** Ends this session at the service and forgets its tokens (also when it had ended already). */
  async logOut(): Promise<void> {
    if (this.session.tokens === undefined) return;
    const { error, response } = await this.api.POST("/logout");
    this.session.clear();
    if (!response.ok && response.status !== 401) throw new ProblemError(error, response);
  }

  /** Whether a session's tokens are held (they may still be refused: the service decides). */
  get loggedIn(): boolean {
    return this.session.tokens !== undefined;
  }

  /** The account logged in. */
  async me(): Promise<Account> {
    return answer(await this.api.GET("/users/me"));
  }

  /** Changes the handle or the display name (`null` takes it away); answers the account. */
  async updateProfile(changes: ProfilePatch): Promise<Account> {
    return answer(await this.api.PATCH("/users/me", { body: changes }));
  }

  /** Someone's profile, by their handle (any case) or their id: never their email. */
  async profile(who: string | number): Promise<Profile> {
    if (typeof who === "number") return answer(await this.api.GET("/users/{id}", { params: { path: { id: who } } }));
    return answer(await this.api.GET("/profiles/{handle}", { params: { path: { handle: who } } }));
  }

  /** Marks the address verified, with the token of a verification mail's link. */
  async verifyEmail(token: string): Promise<void> {
    answer(await this.api.POST("/users/verify", { body: { token } }));
  }

  /** Sends the account a new verification mail (429 within a minute of the last). */
  async requestVerification(): Promise<void> {
    answer(await this.api.POST("/users/me/verification"));
  }

  /** Asks to move the account to `newEmail` (a link mailed there confirms it); needs the current password. */
  async changeEmail(newEmail: string, currentPassword: string): Promise<void> {
    answer(await this.api.PUT("/users/me/email", { body: { new_email: newEmail, current_password: currentPassword } }));
  }

  /** Asks for a password reset mail to `email`: the same answer whether or not it has an account. */
  async requestPasswordReset(email: string): Promise<void> {
    answer(await this.api.POST("/password-reset", { body: { email } }));
  }

  /** Sets a new password with the token of a reset mail's link; every session of the account ends. */
  async resetPassword(token: string, newPassword: string): Promise<void> {
    answer(await this.api.POST("/password-reset/confirm", { body: { token, new_password: newPassword } }));
  }

  /** Changes the password; every other session of the account ends. */
  async changePassword(change: Schemas["PasswordChange"]): Promise<void> {
    answer(await this.api.PUT("/users/me/password", { body: change }));
  }

  /** The account's sessions, most recently used first; `current` marks this one. */
  async sessions(): Promise<UserSession[]> {
    return answer(await this.api.GET("/users/me/sessions"));
  }

  /** Ends one session of the account (this one included: that is logging out). */
  async endSession(id: number): Promise<void> {
    answer(await this.api.DELETE("/users/me/sessions/{id}", { params: { path: { id } } }));
  }

  /** Ends every session of the account but this one. */
  async endOtherSessions(): Promise<void> {
    answer(await this.api.DELETE("/users/me/sessions"));
  }
}

/** Posts: written, read and changed safely, and listed page by page. */
export class PostCalls {
  constructor(private readonly api: Api) {}

  /** Writes a post; answers it and its ETag. */
  async create(post: PostIn): Promise<Versioned> {
    const result = await this.api.POST("/posts", { body: post });
    return { post: answer(result), etag: etagOf(result.response) };
  }

  /**
   * Reads a post. With the ETag of the version held, answers `{ notModified: true }` when
   * that is still current (304, no body sent).
   */
  async get(id: number, etag?: ETag): Promise<(Versioned & { notModified: false }) | { notModified: true; etag: ETag }> {
    const read = await readPost(this.api, id, etag);
    if (!read.ok) throw new ProblemError(read.error, read.response);
    return read.notModified ? { notModified: true, etag: read.etag } : { notModified: false, post: read.post, etag: read.etag };
  }

  /** Changes the fields given, if the post is still at version `etag` (`*`: any). */
  async update(id: number, changes: PostPatch, etag: ETag): Promise<Versioned> {
    const { post, etag: current } = applied(await editPost(this.api, id, changes, etag));
    return { post, etag: current };
  }

  /** Replaces the post, if it is still at version `etag` (`*`: any). */
  async replace(id: number, post: PostIn, etag: ETag): Promise<Versioned> {
    const { post: replaced, etag: current } = applied(await replacePost(this.api, id, post, etag));
    return { post: replaced, etag: current };
  }

  /** Deletes the post, if it is still at version `etag` (`*`: any). */
  async delete(id: number, etag: ETag): Promise<void> {
    applied(await deletePost(this.api, id, etag));
  }

  /** One page of posts, newest first (`limit`, `search`, `cursor`, `skip` as the API takes them). */
  async list(query: ListQuery = {}): Promise<PostOut[]> {
    return answer(await this.api.GET("/posts", { params: { query } }));
  }

  /** Every page of posts, following the `Link` headers; a failing page throws a ProblemError. */
  pages(options: PagesOptions = {}): AsyncGenerator<PostOut[], void, undefined> {
    return pages(this.api, options);
  }

  /** Every post, page after page. */
  all(options: PagesOptions = {}): AsyncGenerator<PostOut, void, undefined> {
    return posts(this.api, options);
  }

  /** Votes for a post (`dir` 1) or takes the vote back (0). */
  async vote(postId: number, dir: 0 | 1): Promise<void> {
    answer(await this.api.POST("/vote", { body: { post_id: postId, dir } }));
  }
}

/** Live events (GET /events). */
export class EventCalls {
  constructor(
    private readonly api: Api,
    private readonly anonymous: Api,
  ) {}

  /**
   * Follows the events in the background until the returned function is called: changes go
   * to `onEvent`, a `reset` (too much missed) to `onReset`, a stream refused for good to
   * `onError`. Reconnects by itself with `Last-Event-ID`; with `tickets: true`, opens each
   * connection with a new one-use ticket instead of the `Authorization` header.
   */
  subscribe(subscriber: Subscriber, options: SubscribeOptions & { tickets?: boolean } = {}): Unsubscribe {
    const { tickets, ...rest } = options;
    return tickets ? subscribe(this.anonymous, subscriber, { ...rest, ticket: () => this.ticket() }) : subscribe(this.api, subscriber, rest);
  }

  /** The events as an async iterator (see `follow`); breaking out of the loop closes the stream. */
  follow(options: FollowOptions = {}): AsyncGenerator<LiveEvent, void, undefined> {
    return follow(this.api, options);
  }

  /** A one-use ticket for `GET /events?ticket=…` (an `EventSource` cannot send headers). */
  async ticket(): Promise<string> {
    return answer(await issueTicket(this.api)).ticket;
  }
}

/** Roles, hidden posts, suspensions and their log: for moderators and administrators. */
export class ModerationCalls {
  constructor(private readonly api: Api) {}

  /** Gives a person a role (administrators only); answers their account as it is now. */
  async setRole(userId: number, role: RoleName): Promise<Account> {
    return answer(await this.api.PUT("/users/{id}/role", { params: { path: { id: userId } }, body: { role } }));
  }

  /** Hides a post from everyone but its owner, who is shown `reason`. */
  async hidePost(postId: number, reason: string): Promise<void> {
    answer(await this.api.POST("/posts/{id}/hide", { params: { path: { id: postId } }, body: { reason } }));
  }

  /** Shows a hidden post again, as its owner left it. */
  async restorePost(postId: number): Promise<void> {
    answer(await this.api.DELETE("/posts/{id}/hide", { params: { path: { id: postId } } }));
  }

  /** Suspends an account (every session of it ends), until `until` or until lifted. */
  async suspend(userId: number, reason: string, until?: Date): Promise<void> {
    const body = until === undefined ? { reason } : { reason, until: until.toISOString() };
    answer(await this.api.POST("/users/{id}/suspend", { params: { path: { id: userId } }, body }));
  }

  /** Lifts a suspension. */
  async liftSuspension(userId: number): Promise<void> {
    answer(await this.api.DELETE("/users/{id}/suspend", { params: { path: { id: userId } } }));
  }

  /** One page of the hidden posts, newest first. */
  async hiddenPosts(query: ModerationQuery = {}): Promise<PostOut[]> {
    return answer(await this.api.GET("/moderation/hidden", { params: { query } }));
  }

  /** One page of the moderation log, newest first. */
  async log(query: ModerationQuery = {}): Promise<ModerationEntry[]> {
    return answer(await this.api.GET("/moderation/log", { params: { query } }));
  }
}

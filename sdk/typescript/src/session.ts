// A session for the SDK: an openapi-fetch middleware that keeps the token pair in a store,
// sends the access token, and refreshes the pair on its own.
//
//   const session = new Session({ store: localStorageStore(), onEnded: () => showLogin() });
//   const api = createApi(baseUrl);
//   api.use(session);
//   await logInWithJson(api, email, password);  // the session keeps the pair /login returns
//   await api.GET("/users/me/sessions");         // sent with `Authorization: Bearer <access>`
//
// Before a request, when the access token expires within `refreshMargin` seconds (the
// store knows when from the login's `expires_in`), the session refreshes the pair through
// POST /login/refresh first. When a request that carried the session's access token still
// gets a 401 (the clock was off, say), the session refreshes once and retries the request
// once with the new access token. Requests needing a refresh together share one.
//
// When the service refuses the refresh (the session ended: logged out, revoked, the
// password changed, the refresh token spent or expired), the session forgets its tokens,
// calls `onEnded`, and the caller gets the 401 (a problem document, as typed for every
// operation); nothing is retried again. When the refresh cannot be made (no network, or
// the service answers 429 or 5xx) the tokens are kept, the request goes out with the token
// it had, and a later request may try again.
//
// /login and /login/refresh themselves are never retried; a request that did not carry the
// session's token (before login, or with its own Authorization header) is never retried.

import createClient, { type Middleware } from "openapi-fetch";

import type { components, paths } from "./generated/openapi.js";
import { memoryStore, type StoredTokens, type TokenStore } from "./store.js";

type Token = components["schemas"]["Token"];

/** Why the session has no tokens any more. */
export type SessionEnd =
  | { reason: "refresh-refused"; response: Response }
  | { reason: "logged-out" }
  | { reason: "cleared" };

export interface SessionOptions {
  /** Where the tokens live; in memory unless given (see `localStorageStore`). */
  store?: TokenStore;
  /** Seconds before the access token expires when a request refreshes it first; default 60. */
  refreshMargin?: number;
  /** Called with every new pair: after a login through the client, and after each refresh. */
  onTokens?: (tokens: StoredTokens) => void;
  /** Called once the session's tokens are gone: its refresh was refused, or it logged out. */
  onEnded?: (end: SessionEnd) => void;
}

/** Operations whose 401 is about credentials, not about the access token: never retried. */
const UNAUTHENTICATED = new Set(["/login", "/login/refresh"]);

/** What the session remembers of a request it sent its token with, until its response. */
interface Sent {
  /** The access token the request carried. */
  access: string;
  /** An unsent copy of the request (bodies are read once), for the retry. */
  copy: Request;
}

/** The outcome of a refresh: the new access token, or why there is none. */
type Refreshed = { access: string } | { failed: "refused" | "unavailable" };

type Fetch = (request: Request) => Promise<Response>;

/** An openapi-fetch middleware: `api.use(session)` (createSessionApi in api.ts does). */
export class Session {
  #refreshing: Promise<Refreshed> | undefined;
  readonly #sent = new Map<string, Sent>();
  readonly #store: TokenStore;
  readonly #margin: number;
  readonly #options: SessionOptions;

  constructor(options: SessionOptions = {}) {
    this.#options = options;
    this.#store = options.store ?? memoryStore();
    this.#margin = (options.refreshMargin ?? 60) * 1000;
  }

  /** The tokens held now, if any. */
  get tokens(): StoredTokens | undefined {
    return this.#store.get();
  }

  /** Holds a new pair: what /login or /login/refresh returned, or a pair kept elsewhere. */
  setTokens(token: Token | StoredTokens): void {
    const tokens: StoredTokens = { access_token: token.access_token, refresh_token: token.refresh_token };
    const expiresAt = "expires_in" in token ? Date.now() + token.expires_in * 1000 : token.expires_at;
    if (expiresAt !== undefined) tokens.expires_at = expiresAt;
    this.#store.set(tokens);
    this.#options.onTokens?.({ ...tokens });
  }

  /** Forgets the tokens (without telling the service: POST /logout does). */
  clear(): void {
    this.#end({ reason: "cleared" });
  }

  // Arrow properties, so `this` holds however openapi-fetch calls them.

  readonly onRequest: NonNullable<Middleware["onRequest"]> = async ({ request, schemaPath, id, options }) => {
    let tokens = this.#store.get();
    if (!tokens || UNAUTHENTICATED.has(schemaPath) || request.headers.has("Authorization")) return undefined;
    if (tokens.expires_at !== undefined && tokens.expires_at - this.#margin <= Date.now()) {
      const refreshed = await this.#refresh(options.baseUrl, options.fetch);
      if ("access" in refreshed) tokens = { ...tokens, access_token: refreshed.access };
      else if (refreshed.failed === "refused") return undefined; // the session ended: sent without a token
    }
    const headers = new Headers(request.headers);
    headers.set("Authorization", `Bearer ${tokens.access_token}`);
    const authorized = new Request(request, { headers });
    this.#sent.set(id, { access: tokens.access_token, copy: authorized.clone() });
    return authorized;
  };

  readonly onResponse: NonNullable<Middleware["onResponse"]> = async ({ response, schemaPath, id, request, options }) => {
    const sent = this.#sent.get(id);
    this.#sent.delete(id);

    if (response.status === 200 && schemaPath === "/login" && request.method === "POST") {
      this.setTokens((await response.clone().json()) as Token);
      return undefined;
    }
    if (!sent) return undefined;
    if (response.status === 204 && schemaPath === "/logout" && sent.access === this.#store.get()?.access_token) {
      this.#end({ reason: "logged-out" });
      return undefined;
    }
    if (response.status !== 401) return undefined;

    // A refresh since this request left already replaced its token: retry with the new one.
    // Otherwise refresh, sharing the refresh in flight if there is one.
    const current = this.#store.get();
    let access: string;
    if (current && current.access_token !== sent.access && !this.#refreshing) {
      access = current.access_token;
    } else {
      const refreshed = await this.#refresh(options.baseUrl, options.fetch);
      if (!("access" in refreshed)) return undefined; // the original 401
      access = refreshed.access;
    }

    const headers = new Headers(sent.copy.headers);
    headers.set("Authorization", `Bearer ${access}`);
    // Sent with the client's fetch, not through the middleware again: one retry at most.
    return options.fetch(new Request(sent.copy, { headers }));
  };

  readonly onError: NonNullable<Middleware["onError"]> = ({ id }) => {
    this.#sent.delete(id);
    return undefined;
  };

  /** One refresh at a time: concurrent callers share the one in flight. */
  #refresh(baseUrl: string, fetch: Fetch): Promise<Refreshed> {
    if (this.#refreshing) return this.#refreshing;
    const tokens = this.#store.get();
    if (!tokens) return Promise.resolve({ failed: "refused" });
    const refreshing = (async (): Promise<Refreshed> => {
      const auth = createClient<paths>({ baseUrl, fetch });
      let result;
      try {
        result = await auth.POST("/login/refresh", { body: { refresh_token: tokens.refresh_token } });
      } catch {
        return { failed: "unavailable" };
      }
      const { data, response } = result;
      if (data) {
        // A pair set meanwhile (a new login) wins over the refreshed one.
        if (this.#store.get()?.refresh_token === tokens.refresh_token) this.setTokens(data);
        return { access: data.access_token };
      }
      if (response.status === 429 || response.status >= 500) return { failed: "unavailable" };
      if (this.#store.get()?.refresh_token === tokens.refresh_token) {
        this.#end({ reason: "refresh-refused", response });
      }
      return { failed: "refused" };
    })();
    this.#refreshing = refreshing;
    void refreshing.finally(() => {
      if (this.#refreshing === refreshing) this.#refreshing = undefined;
    });
    return refreshing;
  }

  #end(end: SessionEnd): void {
    const had = this.#store.get() !== undefined;
    this.#store.set(undefined);
    if (had) this.#options.onEnded?.(end);
  }
}

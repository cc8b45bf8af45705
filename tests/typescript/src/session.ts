// A session for the SDK: an openapi-fetch middleware that holds the token pair, sends the
// access token, and refreshes it on its own.
//
//   const session = new Session();
//   const api = createApi(baseUrl);
//   api.use(session);
//   await logInWithForm(api, email, password);  // the session keeps the pair /login returns
//   await api.GET("/users/me/sessions");         // sent with `Authorization: Bearer <access>`
//
// When a request that carried the session's access token gets a 401 (the token expired,
// say), the session refreshes the pair once through POST /login/refresh and retries the
// request once with the new access token. Requests failing together share one refresh: ten
// requests whose token expired cause one POST /login/refresh, then ten retries.
//
// When the service refuses the refresh (the session ended: logged out, revoked, the
// password changed, the refresh token spent or expired), the session forgets its tokens,
// calls `onEnded`, and the caller gets the original 401 (a problem document, as typed for
// every operation); nothing is retried again. When the refresh cannot be made (no network,
// or the service answers 429 or 5xx) the tokens are kept, the original 401 is returned, and
// a later request may try again.
//
// /login and /login/refresh themselves are never retried; a request that did not carry the
// session's token (before login, or with its own Authorization header) is never retried.

import createClient, { type MiddlewareCallbackParams } from "openapi-fetch";

import type { components, paths } from "./generated/openapi.js";

type Token = components["schemas"]["Token"];

/** The pair the session holds. */
export interface TokenPair {
  access_token: string;
  refresh_token: string;
}

/** Why the session has no tokens any more. */
export type SessionEnd =
  | { reason: "refresh-refused"; response: Response }
  | { reason: "logged-out" }
  | { reason: "cleared" };

export interface SessionOptions {
  /** A pair to start with (one kept from an earlier login, say). */
  tokens?: TokenPair;
  /** Called with every new pair: after a login through the client, and after each refresh. */
  onTokens?: (tokens: TokenPair) => void;
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

/** An openapi-fetch middleware: `api.use(session)` (createSessionApi in client.ts does). */
export class Session {
  #tokens: TokenPair | undefined;
  #refreshing: Promise<Refreshed> | undefined;
  readonly #sent = new Map<string, Sent>();
  readonly #options: SessionOptions;

  constructor(options: SessionOptions = {}) {
    this.#options = options;
    this.#tokens = options.tokens && { ...options.tokens };
  }

  /** The pair held now, if any. */
  get tokens(): TokenPair | undefined {
    return this.#tokens && { ...this.#tokens };
  }

  /** Holds a new pair (what /login or /login/refresh returned). */
  setTokens(token: TokenPair | Token): void {
    this.#tokens = { access_token: token.access_token, refresh_token: token.refresh_token };
    this.#options.onTokens?.({ ...this.#tokens });
  }

  /** Forgets the pair (without telling the service: use POST /logout for that). */
  clear(): void {
    this.#end({ reason: "cleared" });
  }

  // Arrow properties, so `this` holds however openapi-fetch calls them.

  readonly onRequest = ({ request, schemaPath, id }: MiddlewareCallbackParams): Request | undefined => {
    const tokens = this.#tokens;
    if (!tokens || UNAUTHENTICATED.has(schemaPath) || request.headers.has("Authorization")) return undefined;
    const headers = new Headers(request.headers);
    headers.set("Authorization", `Bearer ${tokens.access_token}`);
    const authorized = new Request(request, { headers });
    this.#sent.set(id, { access: tokens.access_token, copy: authorized.clone() });
    return authorized;
  };

  readonly onResponse = async ({
    response,
    schemaPath,
    id,
    request,
    options,
  }: MiddlewareCallbackParams & { response: Response }): Promise<Response | undefined> => {
    const sent = this.#sent.get(id);
    this.#sent.delete(id);

    if (response.status === 200 && schemaPath === "/login" && request.method === "POST") {
      this.setTokens((await response.clone().json()) as Token);
      return undefined;
    }
    if (!sent) return undefined;
    if (response.status === 204 && schemaPath === "/logout" && sent.access === this.#tokens?.access_token) {
      this.#end({ reason: "logged-out" });
      return undefined;
    }
    if (response.status !== 401) return undefined;

    // A refresh since this request left already replaced its token: retry with the new one.
    // Otherwise refresh, sharing the refresh in flight if there is one.
    const current = this.#tokens;
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

  readonly onError = ({ id }: MiddlewareCallbackParams & { error: unknown }): undefined => {
    this.#sent.delete(id);
    return undefined;
  };

  /** One refresh at a time: concurrent callers share the one in flight. */
  #refresh(baseUrl: string, fetch: (request: Request) => Promise<Response>): Promise<Refreshed> {
    if (this.#refreshing) return this.#refreshing;
    const tokens = this.#tokens;
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
        if (this.#tokens?.refresh_token === tokens.refresh_token) this.setTokens(data);
        return { access: data.access_token };
      }
      if (response.status === 429 || response.status >= 500) return { failed: "unavailable" };
      if (this.#tokens?.refresh_token === tokens.refresh_token) {
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
    const had = this.#tokens !== undefined;
    this.#tokens = undefined;
    if (had) this.#options.onEnded?.(end);
  }
}

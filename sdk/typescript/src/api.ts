// The typed client of every operation: openapi-fetch over the types that openapi-typescript
// generates from openapi.yaml (`npm run generate` writes src/generated/openapi.ts).

import createClient, { type Client } from "openapi-fetch";

import type { components, paths } from "./generated/openapi.js";
import { Session, type SessionOptions } from "./session.js";

/** The openapi-fetch client of the API: `api.GET("/posts/{id}", …)` and so on, all typed. */
export type Api = Client<paths>;

export type Fetch = (request: Request) => Promise<Response>;

export interface ApiOptions {
  /** A bearer token to send with every request. */
  token?: string;
  /** Replaces the global fetch (to watch the requests, or to run them elsewhere). */
  fetch?: Fetch;
}

/** A client of the service at `baseUrl`, sending `token` as a bearer token when given. */
export function createApi(baseUrl: string, { token, fetch }: ApiOptions = {}): Api {
  return createClient<paths>({
    baseUrl,
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
    ...(fetch === undefined ? {} : { fetch }),
  });
}

/**
 * A client of the service at `baseUrl` with a {@link Session}: it sends the session's access
 * token and refreshes the pair on its own (src/session.ts). A login through this client
 * starts the session.
 */
export function createSessionApi(
  baseUrl: string,
  options: SessionOptions & { fetch?: Fetch } = {},
): { api: Api; session: Session } {
  const { fetch, ...sessionOptions } = options;
  const api = createApi(baseUrl, fetch === undefined ? {} : { fetch });
  const session = new Session(sessionOptions);
  api.use(session);
  return { api, session };
}

type Schemas = components["schemas"];

/** Exchanges a refresh token with the OAuth2 refresh form. */
export function refreshWithForm(api: Api, refreshToken: string) {
  const form: Schemas["RefreshForm"] = { grant_type: "refresh_token", refresh_token: refreshToken };
  return api.POST("/login/refresh", {
    body: form,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
}

/** Exchanges a refresh token with a JSON body. */
export function refreshWithJson(api: Api, refreshToken: string) {
  const body: Schemas["RefreshJson"] = { refresh_token: refreshToken };
  return api.POST("/login/refresh", { body });
}

/** Logs in with the OAuth2 password form, as Swagger UI's Authorize does. */
export function logInWithForm(api: Api, username: string, password: string) {
  const form: Schemas["LoginForm"] = { username, password, grant_type: "password" };
  return api.POST("/login", {
    body: form,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
}

/** Logs in with a JSON body. */
export function logInWithJson(api: Api, email: string, password: string) {
  const credentials: Schemas["LoginJson"] = { email, password };
  return api.POST("/login", { body: credentials });
}

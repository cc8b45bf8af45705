// The TypeScript SDK: openapi-fetch over the types that openapi-typescript generates from
// openapi.yaml (`npm run generate` writes src/generated/openapi.ts).

import createClient, { type Client } from "openapi-fetch";

import type { components, operations, paths } from "./generated/openapi.js";

export type { components, operations, paths };

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
export type VoteResult = Schemas["VoteResult"];
export type Problem = Schemas["Problem"];
export type Health = Schemas["Health"];

export type Api = Client<paths>;

/** A client of the service at `baseUrl`, sending `token` as a bearer token when given. */
export function createApi(baseUrl: string, token?: string): Api {
  return createClient<paths>({
    baseUrl,
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
  });
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

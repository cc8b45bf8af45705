// What the suites share: the service under test, accounts, and reading results.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

import { type Api, createApi, logInWithForm, type Problem, type Token, type Account } from "@social-api/client";

const apiUrl = process.env.API_URL;
if (!apiUrl) throw new Error("API_URL is not set: run the suite with `npm test`");
export const baseUrl: string = apiUrl;

export const anonymous = createApi(baseUrl);

export interface Person {
  user: Account;
  email: string;
  password: string;
  token: string;
  /** What the login returned: the access and refresh tokens. */
  login: Token;
  api: Api;
}

export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(6).toString("hex")}`;
}

/** Fails with the response when `value` is undefined (a status the test did not expect). */
export function expectData<T>(value: T | undefined, response: Response, error?: unknown): T {
  assert.notEqual(
    value,
    undefined,
    `${response.url}: ${response.status}, not a success${error === undefined ? "" : `: ${JSON.stringify(error)}`}`,
  );
  return value as T;
}

/** Checks a problem document read through the client: status, content type, a detail. */
export function expectProblem(
  error: Problem | undefined,
  response: Response,
  status: number,
  detail?: RegExp,
): Problem {
  assert.equal(response.status, status, `${response.url}: expected ${status}, got ${response.status}`);
  assert.match(response.headers.get("content-type") ?? "", /^application\/problem\+json/);
  assert.ok(error, "the error body is read through the client");
  assert.equal(error.status, status);
  assert.equal(typeof error.type, "string");
  assert.ok(error.title.length > 0, "the problem has a title");
  assert.ok(error.detail.length > 0, "the problem has a detail");
  if (detail) assert.match(error.detail, detail);
  return error;
}

export async function register(email = `${unique("ts")}@example.org`, password = unique("pw")): Promise<Person> {
  const { data, error, response } = await anonymous.POST("/users", { body: { email, password } });
  const user = expectData(data, response, error);
  assert.equal(response.status, 201);
  const { data: token } = await logInWithForm(anonymous, email, password);
  assert.ok(token, "the new account can log in");
  const api = createApi(baseUrl, { token: token.access_token });
  return { user, email, password, token: token.access_token, login: token, api };
}

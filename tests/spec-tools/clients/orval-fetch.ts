// The fetch that orval's functions call: the service's URL before each path, and the caller's
// bearer token once logged in. It answers as orval's fetch client does: status, data, headers.

import { baseUrl } from "./common.js";

let token: string | undefined;

/** Sends the token with every later request. */
export function useToken(accessToken: string): void {
  token = accessToken;
}

export async function orvalFetch<T>(url: string, options: RequestInit): Promise<T> {
  const headers = new Headers(options.headers);
  if (token !== undefined) headers.set("Authorization", `Bearer ${token}`);
  const response = await fetch(new URL(url, baseUrl), { ...options, headers });
  const text = [204, 205, 304].includes(response.status) ? "" : await response.text();
  const data: unknown = text ? JSON.parse(text) : undefined;
  return { status: response.status, data, headers: response.headers } as T;
}

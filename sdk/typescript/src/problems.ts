// Every error the SDK reports is a problem document (RFC 9457), as the service sends them:
// `status`, `title`, `detail`, and for a 422 `errors`, one entry per invalid field. A
// response that is not a problem document (a proxy's HTML page, say) is described as one.

import type { components } from "./generated/openapi.js";

/** An RFC 9457 problem document, as openapi.yaml declares it. */
export type Problem = components["schemas"]["Problem"];

/** The problem a failed response stands for: its body when that is a problem document. */
export function problemOf(body: unknown, response: Response): Problem {
  if (isProblem(body)) return body;
  return {
    type: "about:blank",
    title: response.statusText || `HTTP ${response.status}`,
    status: response.status,
    detail: `${response.url} answered ${response.status} without a problem document`,
  };
}

function isProblem(body: unknown): body is Problem {
  if (typeof body !== "object" || body === null) return false;
  const { status, title, detail } = body as Record<string, unknown>;
  return typeof status === "number" && typeof title === "string" && typeof detail === "string";
}

/** A request the service refused: the problem document it sent, and the response. */
export class ProblemError extends Error {
  readonly problem: Problem;
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  /** For a 422: every invalid or missing field, by the name the client sent. */
  readonly errors: Problem["errors"];

  constructor(
    body: unknown,
    readonly response: Response,
  ) {
    const problem = problemOf(body, response);
    // A ticket in a URL is a credential: it stays out of messages and logs.
    super(`${response.url.replace(/ticket=[^&]*/, "ticket=…")}: ${problem.status} ${problem.title}: ${problem.detail}`);
    this.name = "ProblemError";
    this.problem = problem;
    this.status = problem.status;
    this.title = problem.title;
    this.detail = problem.detail;
    this.errors = problem.errors;
  }
}

/**
 * A conditional write refused because the post changed since it was read (412): `currentEtag`
 * is the version it is at now; read it again, merge, and write with that.
 */
export class ConflictError extends ProblemError {
  constructor(
    body: unknown,
    response: Response,
    readonly currentEtag: string,
  ) {
    super(body, response);
    this.name = "ConflictError";
  }
}

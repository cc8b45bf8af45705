// The response headers openapi.yaml declares, typed from the generated `operations`:
// openapi-typescript puts them in `operations[op]["responses"][status]["headers"]`, next to
// an index signature for any other header.
//
//   const etag = declaredHeader<"getPost", 200>("ETag");   // tsc refuses a name not declared
//   etag(response)                                          // string | undefined
//
// The name is the spec's spelling (`ETag`, `Link`, `Location`, as their RFCs write them); HTTP
// header names ignore case, and so does `Headers.get`.

import type { operations } from "./generated/openapi.js";

/** The declared headers of a response, without the index signature. */
export type DeclaredHeaders<
  Op extends keyof operations,
  Status extends keyof operations[Op]["responses"],
> = operations[Op]["responses"][Status] extends { headers: infer H }
  ? { [K in keyof H as string extends K ? never : number extends K ? never : K]: H[K] }
  : never;

/**
 * A reader of the header `name` that the response `Status` of `Op` declares: its value,
 * or undefined when the response has none.
 */
export function declaredHeader<Op extends keyof operations, Status extends keyof operations[Op]["responses"]>(
  name: keyof DeclaredHeaders<Op, Status> & string,
): (response: Response) => string | undefined {
  return (response) => response.headers.get(name) ?? undefined;
}

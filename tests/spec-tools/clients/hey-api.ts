// The SDK of @hey-api/openapi-ts over its fetch client: register, log in, write a post, find it
// in the list, and read its `post.created` from GET /events (replayed after event 0) through the
// SDK's own event-stream support.
import { client } from "../generated/hey-api/client.gen.js";
import { createPost, createUser, listPosts, login, streamEvents } from "../generated/hey-api/sdk.gen.js";
import type { EventData } from "../generated/hey-api/types.gen.js";
import { baseUrl, check, newPerson, newTitle } from "./common.js";

async function main(): Promise<void> {
  let token: string | undefined;
  client.setConfig({ baseUrl, auth: () => token });
  const person = newPerson("hey-api");
  const registered = await createUser({ body: person });
  check(registered.response.status === 201, `register: ${registered.response.status}`);
  const { data: tokens } = await login({ body: person });
  check(tokens, "log in");
  token = tokens.access_token;

  const title = newTitle("hey-api");
  const { data: post } = await createPost({ body: { title, content: "Generated SDK functions." } });
  check(post?.title === title, "write a post");
  const { data: page } = await listPosts({ query: { search: title } });
  check(page?.some((listed) => listed.id === post.id), "find it in the list");

  const stop = new AbortController();
  const { stream } = await streamEvents({ headers: { "Last-Event-ID": 0 }, signal: stop.signal, sseMaxRetryAttempts: 1 });
  // The spec declares the stream as an array of EventData (OpenAPI 3.0 cannot say "each event's
  // data"), so the SDK types an event's data as that array: it is one EventData.
  let change: EventData | undefined;
  for await (const data of stream) {
    change = data as unknown as EventData;
    if (change.type === "post.created" && change.id === post.id) break;
  }
  stop.abort();
  check(change?.type === "post.created" && change.id === post.id, `read its event: ${JSON.stringify(change)}`);
  console.log(`hey-api: registered, logged in, wrote post ${post.id}, listed it, read its ${change.type}`);
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

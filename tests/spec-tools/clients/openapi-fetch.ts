// The types of openapi-typescript, through openapi-fetch: register, log in, write a post, find
// it in the list, and read its `post.created` from GET /events (replayed after event 0).
import createClient from "openapi-fetch";

import type { components, paths } from "../generated/openapi-typescript/schema.js";
import { baseUrl, check, findEvent, newPerson, newTitle } from "./common.js";

async function main(): Promise<void> {
  const api = createClient<paths>({ baseUrl });
  const person = newPerson("openapi-fetch");
  const registered = await api.POST("/users", { body: person });
  check(registered.response.status === 201, `register: ${registered.response.status}`);
  const { data: tokens } = await api.POST("/login", { body: person });
  check(tokens, "log in");
  api.use({
    onRequest: ({ request }) => {
      request.headers.set("Authorization", `Bearer ${tokens.access_token}`);
      return request;
    },
  });

  const title = newTitle("openapi-fetch");
  const { data: post } = await api.POST("/posts", { body: { title, content: "Generated types, typed calls." } });
  check(post?.title === title, "write a post");
  const { data: page } = await api.GET("/posts", { params: { query: { search: title } } });
  check(page?.some((listed) => listed.id === post.id), "find it in the list");

  const { data: stream } = await api.GET("/events", { params: { header: { "Last-Event-ID": 0 } }, parseAs: "stream" });
  check(stream, "open the event stream");
  type EventData = components["schemas"]["EventData"];
  const created = (data: unknown) => {
    const change = data as EventData;
    return change.type === "post.created" && change.id === post.id;
  };
  const { event, data } = await findEvent(stream, (_, data) => created(data));
  const change = data as EventData;
  check(event === change.type, `read its event: ${event}`);
  console.log(`openapi-fetch: registered, logged in, wrote post ${post.id}, listed it, read its ${change.type}`);
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

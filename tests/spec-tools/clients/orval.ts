// orval's functions over fetch (through orval-fetch.ts): register, log in, write a post and find
// it in the list. Not GET /events: orval's fetch client reads a whole body before it answers, and
// an event stream has no end.
import { createPost, createUser, listPosts, login } from "../generated/orval/social";
import { check, newPerson, newTitle } from "./common.js";
import { useToken } from "./orval-fetch.js";

async function main(): Promise<void> {
  const person = newPerson("orval");
  const registered = await createUser(person);
  check(registered.status === 201, `register: ${registered.status}`);
  // POST /login takes JSON or a form: orval sets no Content-Type for a body of two types.
  const loggedIn = await login(person, { headers: { "Content-Type": "application/json" } });
  check(loggedIn.status === 200, `log in: ${loggedIn.status}`);
  useToken(loggedIn.data.access_token);

  const title = newTitle("orval");
  const created = await createPost({ title, content: "Generated functions." });
  check(created.status === 201 && created.data.title === title, `write a post: ${created.status}`);
  const listed = await listPosts({ search: title });
  check(listed.status === 200 && listed.data.some((post) => post.id === created.data.id), "find it in the list");
  console.log(`orval: registered, logged in, wrote post ${created.data.id}, listed it`);
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

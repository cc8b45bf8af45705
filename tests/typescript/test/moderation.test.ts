// Moderation through the SDK: an administrator made from the command line (`api admin
// grant`, on the suite's own service) gives a role, hides and restores a post, suspends an
// account and lifts it, and reads the log; each call is typed, and a member's is refused.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";

import { ProblemError, SocialClient } from "@social-api/client";
import { baseUrl, unique } from "./support.js";

const binary = process.env.CONTRACT_API_BIN;
const databaseUrl = process.env.CONTRACT_SERVER_DATABASE_URL;

async function person(): Promise<{ client: SocialClient; email: string; password: string; id: number }> {
  const email = `${unique("mod")}@example.org`;
  const password = "correct horse battery";
  const client = new SocialClient({ baseUrl });
  const { id } = await client.auth.register({ email, password });
  await client.auth.logIn({ email, password });
  return { client, email, password, id };
}

async function refused(call: Promise<unknown>, status: number): Promise<void> {
  await assert.rejects(call, (error: unknown) => error instanceof ProblemError && error.status === status);
}

describe("moderation", { skip: (binary === undefined || databaseUrl === undefined) && "the suite did not start the service" }, () => {
  test("an administrator gives a role, hides a post, suspends an account, and it is all on the record", async () => {
    const admin = await person();
    const printed = execFileSync(binary!, ["admin", "grant", admin.email, "admin"], {
      env: { PATH: process.env.PATH ?? "", DATABASE_URL: databaseUrl!, RUST_LOG: "warn" },
      encoding: "utf8",
    });
    assert.match(printed, /member → admin/);
    const member = await person();
    await refused(member.client.moderation.log(), 403);

    const account = await admin.client.moderation.setRole(member.id, "moderator");
    assert.equal(account.role, "moderator");
    const [latest] = await member.client.moderation.log();
    assert.equal(latest?.role, "moderator", "a moderator at the next request");
    await admin.client.moderation.setRole(member.id, "member");

    const { post } = await member.client.posts.create({ title: "Cheap watches", content: "Buy them here." });
    await admin.client.moderation.hidePost(post.id, "advertising");
    const hidden = await admin.client.moderation.hiddenPosts({ limit: 5 });
    assert.equal(hidden[0]?.hidden_reason, "advertising");
    const own = await member.client.posts.get(post.id);
    assert.ok(!own.notModified && own.post.hidden, "its owner still sees it, hidden");
    await refused(admin.client.posts.get(post.id), 404);
    await refused(admin.client.moderation.hidePost(post.id, "again"), 409);
    await admin.client.moderation.restorePost(post.id);
    assert.ok(!(await admin.client.posts.get(post.id)).notModified);

    await admin.client.moderation.suspend(member.id, "abuse", new Date(Date.now() + 3_600_000));
    await refused(new SocialClient({ baseUrl }).auth.logIn({ email: member.email, password: member.password }), 403);
    await admin.client.moderation.liftSuspension(member.id);
    await new SocialClient({ baseUrl }).auth.logIn({ email: member.email, password: member.password });

    const actions = (await admin.client.moderation.log({ limit: 10 })).map((entry) => entry.action);
    assert.deepEqual(actions, [
      "suspension_lifted",
      "suspended",
      "post_restored",
      "post_hidden",
      "role_changed",
      "role_changed",
      "role_changed",
    ]);
  });
});

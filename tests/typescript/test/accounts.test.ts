// Accounts people can recover, through the SDK, with mail read from the real SMTP server the
// suite's service sends to (CONTRACT_MAILDIR): registering mails a link that verifies the
// address; a forgotten password is reset through a mailed link, and the old sessions end.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { ProblemError, SocialClient } from "@social-api/client";
import { baseUrl, unique } from "./support.js";

const maildir = process.env.CONTRACT_MAILDIR;
const publicUrl = process.env.CONTRACT_PUBLIC_URL ?? "";

/** Every mail the server took, raw, with soft line breaks and `=XX` of quoted-printable undone. */
function mails(): string[] {
  if (maildir === undefined) return [];
  const found: string[] = [];
  for (const folder of ["new", "cur"]) {
    let names: string[] = [];
    try {
      names = readdirSync(join(maildir, folder));
    } catch {
      continue;
    }
    for (const name of names) {
      const raw = readFileSync(join(maildir, folder, name), "utf8");
      found.push(raw.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))));
    }
  }
  return found;
}

/** The token of the link to `{PUBLIC_URL}{path}` in the `nth` such mail to `email` (0 is the first), once it came. */
async function mailedToken(email: string, path: string, nth = 0): Promise<string> {
  const link = new RegExp(`${publicUrl.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}${path}\\?token=([A-Za-z0-9_-]+)`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const tokens = mails()
      .filter((mail) => new RegExp(`^To: .*${email.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`, "im").test(mail))
      .map((mail) => link.exec(mail)?.[1])
      .filter((token): token is string => token !== undefined);
    const token = tokens[nth];
    if (token !== undefined) return token;
    if (Date.now() > deadline) assert.fail(`no mail ${nth + 1} to ${email} with a link to ${path}`);
    await new Promise((tick) => setTimeout(tick, 100));
  }
}

describe("accounts people can recover", { skip: maildir === undefined && "the service was not started with a mail server" }, () => {
  test("register, verify through the mailed link, reset a forgotten password: the old sessions end", async () => {
    const email = `${unique("mail")}@example.org`;
    const password = "correct horse battery";
    const app = new SocialClient({ baseUrl });
    const account = await app.auth.register({ email, password });
    assert.equal(account.email_verified, false);

    await app.auth.logIn({ email, password });
    await app.auth.verifyEmail(await mailedToken(email, "/verify-email"));
    assert.equal((await app.auth.me()).email_verified, true);
    const otherDevice = new SocialClient({ baseUrl });
    await otherDevice.auth.logIn({ email, password });

    const stranger = new SocialClient({ baseUrl });
    await stranger.auth.requestPasswordReset(email.toUpperCase());
    await stranger.auth.requestPasswordReset(`${unique("nobody")}@example.org`);
    const token = await mailedToken(email, "/reset-password");
    await stranger.auth.resetPassword(token, "a brand new password");

    for (const device of [app, otherDevice]) {
      await assert.rejects(device.auth.me(), (error: unknown) => error instanceof ProblemError && error.status === 401);
    }
    const again = stranger.auth.resetPassword(token, "yet another password");
    await assert.rejects(again, (error: unknown) => error instanceof ProblemError && error.status === 422);
    const fresh = new SocialClient({ baseUrl });
    await assert.rejects(fresh.auth.logIn({ email, password }), (error: unknown) => error instanceof ProblemError && error.status === 401);
    await fresh.auth.logIn({ email, password: "a brand new password" });
    assert.equal((await fresh.auth.me()).email, email);
  });
});

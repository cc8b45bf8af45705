// Swagger UI (/docs) and ReDoc (/redoc) in a real browser, Debian's Chromium driven by
// playwright-core: register through "Try it out", log in with the Authorize dialog,
// create a post (its ETag shown), read it (the same ETag; 304 with it as If-None-Match),
// list it, list pages of one (the next link shown), list the sessions (the current one), find
// GET /events listed, get a ticket and follow the events with the page's EventSource (it sees
// the next post written), log out (the EventSource gives up) and see the token refused; from a
// front end's page on another origin (FRONT_END_ORIGIN, which production's
// CORS_ALLOWED_ORIGINS names; any free port in development), read the exposed ETag, Location
// and Link, send If-Match and If-None-Match, follow the events with an EventSource and resume
// with fetch and Last-Event-ID; from such a page, run the SDK's browser bundle (register, log
// in, write and page posts, a typed 412, a live event); then see every operation listed by
// ReDoc. Screenshots go to
// target/contract-screenshots/ at the workspace root (in a folder named BROWSER_RUN, when
// set).
//
// API_URL is the service as this process reaches it. BROWSER_URL, when set, is where the
// browser opens the pages instead (say https://api.example.org, the name nginx serves), and
// BROWSER_HOST_RULES maps that name to a local port (Chromium's --host-resolver-rules), so the
// browser sends the Host and Origin it would send in production; the certificate of such a
// test-made name is not checked.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { type Browser, chromium, type Locator, type Page } from "playwright-core";

import type { EventTicket, PostOut, UserSession, Account } from "@social-api/client";

const baseUrl = process.env.API_URL;
if (!baseUrl) throw new Error("API_URL is not set: run the suite with `npm run test:browser`");

const pageUrl = process.env.BROWSER_URL?.replace(/\/+$/, "") ?? baseUrl;
const hostRules = process.env.BROWSER_HOST_RULES;

const screenshots = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "../../../../target/contract-screenshots",
  process.env.BROWSER_RUN ?? "",
);
mkdirSync(screenshots, { recursive: true });

let browser: Browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...(hostRules ? [`--host-resolver-rules=${hostRules}`] : []),
    ],
  });
});

after(async () => {
  await browser?.close();
});

async function newPage(): Promise<Page> {
  const page = await browser.newPage({
    viewport: { width: 1400, height: 1000 },
    ignoreHTTPSErrors: pageUrl !== baseUrl,
  });
  page.setDefaultTimeout(20_000);
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: false });
}

/** Opens an operation of Swagger UI, presses "Try it out", and returns its block. */
async function tryOut(page: Page, tag: string, operationId: string): Promise<Locator> {
  const block = page.locator(`#operations-${tag}-${operationId}`);
  await block.locator(".opblock-summary").first().click();
  await block.locator("button.try-out__btn").click();
  return block;
}

/** Presses Execute and returns the status and body of the live response. */
async function execute(block: Locator): Promise<{ status: number; body: string }> {
  await block.locator("button.execute").click();
  const row = block.locator(".live-responses-table .response").first();
  await row.waitFor();
  // An undocumented status reads "403\nUndocumented".
  const statusText = await row.locator(".response-col_status").innerText();
  const status = Number(/\d{3}/.exec(statusText)?.[0]);
  const body = (await row.locator(".response-col_description pre").first().innerText()).trim();
  return { status, body };
}

/** Clears the live response of an operation Swagger UI executed, then executes it again. */
async function executeAgain(block: Locator): Promise<{ status: number; body: string }> {
  await block.locator("button.btn-clear").click();
  await block.locator(".live-responses-table").waitFor({ state: "detached" });
  return execute(block);
}

async function fillBody(block: Locator, body: unknown): Promise<void> {
  await block.locator("textarea.body-param__text").fill(JSON.stringify(body, null, 2));
}

async function fillParameter(block: Locator, name: string, value: string): Promise<void> {
  await block.locator(`tr[data-param-name="${name}"] input`).fill(value);
}

/** The response headers Swagger UI shows under the live response, by lower-case name. */
async function shownHeaders(block: Locator): Promise<Record<string, string>> {
  const lines = await block.locator(".live-responses-table .response-col_description .headerline").allInnerTexts();
  return Object.fromEntries(
    lines.map((line) => {
      const colon = line.indexOf(":");
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
    }),
  );
}

/** What a page's EventSource received, kept on its window. */
interface SeenEvent {
  type: string;
  id: string;
  data: unknown;
}
/** The page's window as openEventSource leaves it (functions run in the page read it so). */
type LiveWindow = { liveEvents?: SeenEvent[]; liveSource?: EventSource };

/**
 * Run in the page: opens `new EventSource('/events?ticket=…')` on the page's origin, keeps
 * every event it receives on the window, and resolves once the stream is open.
 */
function openEventSource(ticket: string): Promise<void> {
  const live = window as LiveWindow;
  const events: SeenEvent[] = (live.liveEvents = []);
  const source = new EventSource(`/events?ticket=${encodeURIComponent(ticket)}`);
  live.liveSource = source;
  for (const type of ["post.created", "post.updated", "post.deleted", "vote", "reset"]) {
    source.addEventListener(type, (event) => {
      const message = event as MessageEvent<string>;
      events.push({ type, id: message.lastEventId, data: JSON.parse(message.data) });
    });
  }
  return new Promise((opened, failed) => {
    source.onopen = () => opened();
    source.onerror = () => failed(new Error(`the EventSource failed to open (readyState ${source.readyState})`));
  });
}

describe("Swagger UI at /docs", () => {
  test("register, Authorize with username and password, create a post, list it, list sessions, follow events, log out", async () => {
    const page = await newPage();
    const email = `ui-${randomBytes(6).toString("hex")}@example.org`;
    const password = `pw-${randomBytes(8).toString("hex")}`;
    const title = `From the browser ${randomBytes(4).toString("hex")}`;
    try {
      await page.goto(`${pageUrl}/docs`);
      await page.locator(".information-container .title").waitFor();
      await shot(page, "swagger-ui");

      // Register through "Try it out".
      const register = await tryOut(page, "Users", "createUser");
      await fillBody(register, { email, password });
      const registered = await execute(register);
      await shot(page, "swagger-ui-register");
      assert.equal(registered.status, 201, `createUser answered ${registered.status}: ${registered.body}`);
      assert.equal((JSON.parse(registered.body) as Account).email, email);

      // Log in with the Authorize dialog: the OAuth2 password flow, username and password.
      await page.locator(".auth-wrapper button.authorize").click();
      const modal = page.locator(".modal-ux");
      await modal.waitFor();
      const oauth = modal.locator(".auth-container").filter({ hasText: "OAuth2Password" });
      await oauth.locator("#oauth_username").fill(email);
      await oauth.locator("#oauth_password").fill(password);
      const tokenUrl = (await oauth.locator("p", { hasText: "Token URL" }).innerText()).replace(/^Token URL:\s*/, "");
      await oauth.getByRole("button", { name: "Apply given OAuth2 credentials" }).click();
      // Swagger UI turns the button into "Logout" once it holds a token, or shows an error.
      const loggedIn = oauth.getByRole("button", { name: "Remove authorization" });
      await loggedIn.or(oauth.locator(".errors")).first().waitFor();
      await shot(page, "swagger-ui-authorized");
      const errors = await oauth.locator(".errors").allInnerTexts();
      assert.deepEqual(
        errors,
        [],
        `Authorize failed: it posted to the spec's tokenUrl ${tokenUrl} while the page is ${pageUrl}/docs`,
      );
      assert.equal(await loggedIn.count(), 1, "Swagger UI holds a token");
      await modal.locator("button.close-modal").click();
      await modal.waitFor({ state: "detached" });

      // Create a post with the token Authorize obtained.
      const create = await tryOut(page, "Posts", "createPost");
      await fillBody(create, { title, content: "Written in Swagger UI.", published: true });
      const createdResponse = await execute(create);
      assert.equal(createdResponse.status, 201, `createPost answered ${createdResponse.status}: ${createdResponse.body}`);
      const created = JSON.parse(createdResponse.body) as PostOut;
      assert.equal(created.title, title);
      const etag = (await shownHeaders(create)).etag;
      assert.match(etag ?? "", /^"[^"]+"$/, `Swagger UI shows the new post's ETag: ${JSON.stringify(await shownHeaders(create))}`);

      // listPosts answers 200 with the post. "Try it out" fills each parameter with its
      // example: the search's would keep only the titles with "hello" in them.
      const list = await tryOut(page, "Posts", "listPosts");
      await fillParameter(list, "search", "");
      const listed = await execute(list);
      await list.locator(".live-responses-table").scrollIntoViewIfNeeded();
      await shot(page, "swagger-ui-list-posts");
      assert.equal(listed.status, 200, `listPosts answered ${listed.status}: ${listed.body}`);
      const found = (JSON.parse(listed.body) as PostOut[]).find((p) => p.id === created.id);
      assert.ok(found, `the new post is listed: ${listed.body}`);
      assert.equal(found.title, title);
      assert.ok(!("email" in found.owner), `no email in the owner's profile: ${listed.body}`);

      // getPost shows the same ETag; with it as If-None-Match, 304.
      const read = await tryOut(page, "Posts", "getPost");
      await fillParameter(read, "id", String(created.id));
      const readResponse = await execute(read);
      assert.equal(readResponse.status, 200, `getPost answered ${readResponse.status}: ${readResponse.body}`);
      assert.equal((await shownHeaders(read)).etag, etag, "getPost shows the ETag createPost showed");
      await fillParameter(read, "If-None-Match", etag ?? "");
      await read.locator("button.btn-clear").click();
      await read.locator(".live-responses-table").waitFor({ state: "detached" });
      await read.locator("button.execute").click();
      const notModified = read.locator(".live-responses-table .response").first();
      await notModified.waitFor();
      await shot(page, "swagger-ui-get-post-304");
      assert.match(await notModified.locator(".response-col_status").innerText(), /^304/);
      assert.equal((await shownHeaders(read)).etag, etag);

      // With a second post, a page of one is full: listPosts shows its next link.
      await fillBody(create, { title: `${title} again`, content: "Second.", published: true });
      assert.equal((await executeAgain(create)).status, 201);
      await fillParameter(list, "limit", "1");
      const firstOfOne = await executeAgain(list);
      await list.locator(".live-responses-table").scrollIntoViewIfNeeded();
      await shot(page, "swagger-ui-list-posts-link");
      assert.equal(firstOfOne.status, 200, `listPosts?limit=1 answered ${firstOfOne.status}: ${firstOfOne.body}`);
      assert.equal((JSON.parse(firstOfOne.body) as PostOut[]).length, 1);
      assert.match(
        (await shownHeaders(list)).link ?? "",
        /^<\/posts\?limit=1&cursor=[^>]+>; rel="next"$/,
        `Swagger UI shows the next link: ${JSON.stringify(await shownHeaders(list))}`,
      );

      // The Authorize login is a session: listSessions shows it, the current one.
      const sessions = await tryOut(page, "Users", "listSessions");
      const listedSessions = await execute(sessions);
      await sessions.locator(".live-responses-table").scrollIntoViewIfNeeded();
      await shot(page, "swagger-ui-list-sessions");
      assert.equal(listedSessions.status, 200, `listSessions answered ${listedSessions.status}: ${listedSessions.body}`);
      const mine = JSON.parse(listedSessions.body) as UserSession[];
      assert.equal(mine.length, 1, `one session: ${listedSessions.body}`);
      assert.equal(mine[0]?.current, true, "it is the token's own");
      assert.match(mine[0]?.user_agent ?? "", /Chrome/, "the browser's User-Agent is recorded");

      // Live events: Swagger UI lists GET /events; a ticket from issueEventTicket opens an
      // EventSource in this page, which sees the next post Swagger UI writes.
      const stream = page.locator("#operations-Events-streamEvents");
      await stream.locator(".opblock-summary").first().click();
      await stream.locator("tr[data-param-name='Last-Event-ID']").waitFor();
      await stream.scrollIntoViewIfNeeded();
      await shot(page, "swagger-ui-stream-events");
      assert.equal(await stream.locator(".opblock-summary-path").getAttribute("data-path"), "/events");
      assert.equal((await stream.locator(".opblock-summary-description").innerText()).trim(), "Follow changes live");
      assert.equal(await stream.locator("tr[data-param-name='last_event_id']").count(), 1, "the query parameter is listed");
      assert.match(await stream.innerText(), /text\/event-stream/, "the 200 is shown as text/event-stream");

      const issue = await tryOut(page, "Events", "issueEventTicket");
      const issued = await execute(issue);
      assert.equal(issued.status, 201, `issueEventTicket answered ${issued.status}: ${issued.body}`);
      const { ticket } = JSON.parse(issued.body) as EventTicket;
      await page.evaluate(openEventSource, ticket);
      await fillBody(create, { title: `${title} live`, content: "Seen by an EventSource.", published: true });
      const liveResponse = await executeAgain(create);
      assert.equal(liveResponse.status, 201, `createPost answered ${liveResponse.status}: ${liveResponse.body}`);
      const live = JSON.parse(liveResponse.body) as PostOut;
      const seenLive = await page
        .waitForFunction(
          (id) =>
            ((window as LiveWindow).liveEvents ?? []).find(
              (event) => event.type === "post.created" && (event.data as PostOut).id === id,
            ),
          live.id,
          { timeout: 10_000 },
        )
        .then((handle) => handle.jsonValue());
      assert.ok(seenLive);
      assert.deepEqual(
        seenLive.data,
        { type: "post.created", ...live },
        "the EventSource received post.created with the post Swagger UI wrote",
      );
      assert.match(seenLive.id, /^\d+$/, "with its id");

      // Log out: 204, and the token Swagger UI holds is refused from now on.
      const logout = await tryOut(page, "Auth", "logout");
      const loggedOut = await execute(logout);
      await shot(page, "swagger-ui-logout");
      assert.equal(loggedOut.status, 204, `logout answered ${loggedOut.status}: ${loggedOut.body}`);
      // The stream ends with the session; EventSource reconnects (with the spent ticket and
      // Last-Event-ID), is refused, and gives up.
      await page.waitForFunction(() => (window as LiveWindow).liveSource?.readyState === EventSource.CLOSED, undefined, { timeout: 20_000 });
      const refused = await executeAgain(sessions);
      await sessions.locator(".live-responses-table").scrollIntoViewIfNeeded();
      await shot(page, "swagger-ui-list-sessions-after-logout");
      assert.equal(refused.status, 401, `listSessions after logout answered ${refused.status}: ${refused.body}`);
      assert.match(refused.body, /"status": 401/);
    } finally {
      await page.close();
    }
  });
});

describe("CORS, from a front end on another origin", () => {
  test("a page there reads ETag and Link (exposed), not X-Request-Id (not exposed), and follows live events", async () => {
    // A front end's page, served on FRONT_END_ORIGIN (the origin the service's
    // CORS_ALLOWED_ORIGINS names in production) or, in development, on any free port.
    const wanted = process.env.FRONT_END_ORIGIN ? new URL(process.env.FRONT_END_ORIGIN) : undefined;
    const server = createServer((_, response) => {
      response.writeHead(200, { "Content-Type": "text/html" }).end("<!doctype html><title>Front end</title>");
    });
    await new Promise<void>((listening) => server.listen(Number(wanted?.port ?? 0), "127.0.0.1", listening));
    const origin = `http://${wanted?.hostname ?? "127.0.0.1"}:${(server.address() as AddressInfo).port}`;
    const page = await newPage();
    try {
      await page.goto(`${origin}/`);
      const seen = await page.evaluate(async (api) => {
        const jsonType = { "Content-Type": "application/json" };
        const email = `front-${Math.random().toString(36).slice(2)}@example.org`;
        const password = "front end password";
        await fetch(`${api}/users`, { method: "POST", headers: jsonType, body: JSON.stringify({ email, password }) });
        const login = await fetch(`${api}/login`, { method: "POST", body: new URLSearchParams({ username: email, password }) });
        const auth = { Authorization: `Bearer ${((await login.json()) as { access_token: string }).access_token}` };
        const post = (title: string) =>
          fetch(`${api}/posts`, {
            method: "POST",
            headers: { ...auth, ...jsonType },
            body: JSON.stringify({ title, content: "From another origin." }),
          });
        const created = await post("First");
        await post("Second");
        const { id } = (await created.json()) as { id: number };
        const etag = created.headers.get("ETag");
        const read = await fetch(`${api}/posts/${id}`, { headers: { ...auth, "If-None-Match": etag ?? "" } });
        const stale = await fetch(`${api}/posts/${id}`, {
          method: "PATCH",
          headers: { ...auth, ...jsonType, "If-Match": 'W/"0.0"' },
          body: JSON.stringify({ title: "Stale" }),
        });
        const list = await fetch(`${api}/posts?limit=1`, { headers: auth });
        return {
          created: created.status,
          etag,
          location: created.headers.get("Location"),
          requestId: created.headers.get("X-Request-Id"),
          read: read.status,
          readEtag: read.headers.get("ETag"),
          stale: stale.status,
          staleEtag: stale.headers.get("ETag"),
          list: list.status,
          link: list.headers.get("Link"),
        };
      }, pageUrl);
      assert.equal(seen.created, 201, JSON.stringify(seen));
      assert.match(seen.etag ?? "", /^"[^"]+"$/, `ETag is exposed: ${JSON.stringify(seen)}`);
      assert.equal(seen.location, `/posts/${/\d+/.exec(seen.location ?? "")?.[0]}`, "Location is exposed");
      assert.equal(seen.requestId, null, "a header the service does not expose stays hidden from another origin");
      assert.equal(seen.read, 304, "If-None-Match is an allowed request header");
      assert.equal(seen.readEtag, seen.etag);
      assert.equal(seen.stale, 412, "If-Match is an allowed request header");
      assert.equal(seen.staleEtag, seen.etag);
      assert.equal(seen.list, 200);
      assert.match(seen.link ?? "", /^<\/posts\?limit=1&cursor=[^>]+>; rel="next"$/, `Link is exposed: ${JSON.stringify(seen)}`);

      // Live events from there: a ticket (POST with Authorization), an EventSource on the
      // service's origin that sees the next post, and fetch resuming with Last-Event-ID (an
      // allowed request header) from the id before that post's event: it is replayed first.
      const live = await page.evaluate(async (api) => {
        const within = <T>(promise: Promise<T>, what: string): Promise<T> =>
          Promise.race([
            promise,
            new Promise<never>((_, late) => setTimeout(() => late(new Error(`${what}: not within 10 s`)), 10_000)),
          ]);
        const jsonType = { "Content-Type": "application/json" };
        const email = `live-${Math.random().toString(36).slice(2)}@example.org`;
        const password = "front end password";
        await fetch(`${api}/users`, { method: "POST", headers: jsonType, body: JSON.stringify({ email, password }) });
        const login = await fetch(`${api}/login`, { method: "POST", body: new URLSearchParams({ username: email, password }) });
        const auth = { Authorization: `Bearer ${((await login.json()) as { access_token: string }).access_token}` };

        const issued = await fetch(`${api}/events/ticket`, { method: "POST", headers: auth });
        const { ticket } = (await issued.json()) as { ticket: string };
        const source = new EventSource(`${api}/events?ticket=${encodeURIComponent(ticket)}`);
        const received: { id: string; data: { id: number } }[] = [];
        source.addEventListener("post.created", (event) => {
          const message = event as MessageEvent<string>;
          received.push({ id: message.lastEventId, data: JSON.parse(message.data) as { id: number } });
        });
        await within(
          new Promise<void>((opened, failed) => {
            source.onopen = () => opened();
            source.onerror = () => failed(new Error(`the EventSource failed to open (readyState ${source.readyState})`));
          }),
          "the EventSource opening",
        );
        const created = await fetch(`${api}/posts`, {
          method: "POST",
          headers: { ...auth, ...jsonType },
          body: JSON.stringify({ title: "Live from another origin", content: "Followed." }),
        });
        const post = (await created.json()) as { id: number };
        const event = await within(
          new Promise<{ id: string; data: { id: number } }>((found) => {
            const look = () => {
              const match = received.find((candidate) => candidate.data.id === post.id);
              if (match) found(match);
              else setTimeout(look, 50);
            };
            look();
          }),
          "post.created through the EventSource",
        );
        source.close();

        const resumed = await fetch(`${api}/events`, { headers: { ...auth, "Last-Event-ID": String(Number(event.id) - 1) } });
        const reader = (resumed.body as ReadableStream<Uint8Array>).getReader();
        const decoder = new TextDecoder();
        let text = "";
        const first = await within(
          (async () => {
            for (;;) {
              const { done, value } = await reader.read();
              if (done) return undefined;
              text += decoder.decode(value, { stream: true });
              const block = text.split(/\r?\n\r?\n/).find((lines) => /^data:/m.test(lines));
              if (block) return block;
            }
          })(),
          "the replay",
        );
        await reader.cancel();
        return {
          ticket: issued.status,
          post,
          event,
          resumed: resumed.status,
          resumedType: resumed.headers.get("content-type"),
          first,
        };
      }, pageUrl);
      assert.equal(live.ticket, 201, JSON.stringify(live));
      assert.deepEqual(
        live.event.data,
        { type: "post.created", ...live.post },
        "the EventSource on the service's origin received post.created",
      );
      assert.equal(live.resumed, 200, JSON.stringify(live));
      assert.match(live.resumedType ?? "", /^text\/event-stream/);
      const fields = Object.fromEntries(
        (live.first ?? "").split(/\r?\n/).map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 1).trim()]),
      );
      assert.equal(fields.id, live.event.id, `the replay after Last-Event-ID starts with that post's event: ${live.first}`);
      assert.equal(fields.event, "post.created");
      assert.deepEqual(JSON.parse(fields.data ?? "null"), { type: "post.created", ...live.post });
    } finally {
      await page.close();
      await new Promise((closed) => server.close(closed));
    }
  });
});

describe("the SDK's browser bundle, in a front end's page", () => {
  test("registers, logs in (tokens in localStorage), writes and pages posts, gets a typed 412, follows an event", async () => {
    // What a front end's build makes of the installed SDK (esbuild, `npm run test:browser`),
    // served by a page on FRONT_END_ORIGIN, as in the test above.
    const bundlePath = process.env.SDK_BROWSER_BUNDLE;
    assert.ok(bundlePath, "SDK_BROWSER_BUNDLE is set: run the suite with `npm run test:browser`");
    const bundle = readFileSync(bundlePath);
    const wanted = process.env.FRONT_END_ORIGIN ? new URL(process.env.FRONT_END_ORIGIN) : undefined;
    const server = createServer((request, response) => {
      if (request.url === "/sdk.js") response.writeHead(200, { "Content-Type": "text/javascript" }).end(bundle);
      else response.writeHead(200, { "Content-Type": "text/html" }).end('<!doctype html><title>Front end</title><script src="/sdk.js"></script>');
    });
    await new Promise<void>((listening) => server.listen(Number(wanted?.port ?? 0), "127.0.0.1", listening));
    const origin = `http://${wanted?.hostname ?? "127.0.0.1"}:${(server.address() as AddressInfo).port}`;
    const page = await newPage();
    try {
      await page.goto(`${origin}/`);
      const seen = await page.evaluate(async (api) => {
        type Sdk = typeof import("@social-api/client");
        const { localStorageStore, ProblemError, SocialClient } = (window as unknown as { SocialApi: Sdk }).SocialApi;
        const client = new SocialClient({ baseUrl: api, store: localStorageStore("tokens") });
        const marker = `bundle-${Math.random().toString(36).slice(2)}`;
        const email = `${marker}@example.org`;
        const password = "bundle password";
        await client.auth.register({ email, password });
        await client.auth.logIn({ email, password });
        const stored = localStorage.getItem("tokens");

        const first = await client.posts.create({ title: `${marker} 1`, content: "From the bundle." });
        await client.posts.create({ title: `${marker} 2`, content: "From the bundle." });
        const titles: string[] = [];
        for await (const post of client.posts.all({ limit: 1, search: marker })) titles.push(post.title);
        let conflict = "";
        try {
          await client.posts.update(first.post.id, { title: "Stale" }, 'W/"0.0"');
        } catch (error) {
          conflict = error instanceof ProblemError ? `${error.name} ${error.status}` : String(error);
        }

        const event = await new Promise<string>((resolve, reject) => {
          const unsubscribe = client.events.subscribe({
            onOpen: () => void client.posts.create({ title: `${marker} live`, content: "Followed." }).catch(reject),
            onEvent: (change) => {
              // A stream opened just after a write may still be sent it (live starts where the
              // feed has read to): wait for the post written once the stream is open.
              if (change.event !== "post.created" || change.data.title !== `${marker} live`) return;
              unsubscribe();
              resolve(`${change.event} ${change.data.title}`);
            },
            onReset: () => reject(new Error("reset")),
            onError: reject,
          });
        });
        await client.auth.logOut();
        return { stored, etag: first.etag, titles, conflict, event, marker, after: localStorage.getItem("tokens") };
      }, pageUrl);
      assert.match(seen.stored ?? "", /"access_token"/, "the tokens are kept in localStorage");
      assert.match(seen.etag, /^"[^"]+"$/, "the ETag is read from another origin");
      assert.deepEqual(seen.titles, [`${seen.marker} 2`, `${seen.marker} 1`], "paged by Link, one by one");
      assert.equal(seen.conflict, "ConflictError 412");
      assert.equal(seen.event, `post.created ${seen.marker} live`);
      assert.equal(seen.after, null, "logging out removes the tokens");
    } finally {
      await page.close();
      await new Promise((closed) => server.close(closed));
    }
  });
});

describe("ReDoc at /redoc", () => {
  test("lists every operation of the spec under its tag", async () => {
    type Operation = { operationId?: string; summary?: string; tags?: string[] };
    const spec = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as {
      tags: { name: string }[];
      paths: Record<string, Record<string, Operation>>;
    };
    const operations = Object.values(spec.paths).flatMap((item) => Object.values(item));
    assert.ok(operations.length >= 14, `the spec has the API's operations: ${operations.length}`);

    const page = await newPage();
    try {
      await page.goto(`${pageUrl}/redoc`);
      await page.locator(".menu-content").waitFor();
      await shot(page, "redoc");
      const missing: string[] = [];
      for (const { name } of spec.tags) {
        // Open the tag in the side menu, as a reader would; ReDoc shows its operations.
        await page.locator(`.menu-content li[data-item-id="tag/${name}"] > label`).click();
        for (const { operationId, summary, tags } of operations.filter((op) => op.tags?.[0] === name)) {
          assert.ok(operationId && summary, "every operation has an id and a summary");
          const menuItem = page.locator(`.menu-content li[data-item-id="tag/${name}/operation/${operationId}"]`);
          const section = page.locator(`[data-section-id="tag/${name}/operation/${operationId}"]`);
          const listed =
            (await menuItem.count()) === 1 &&
            (await menuItem.isVisible()) &&
            (await menuItem.innerText()).includes(summary) &&
            (await section.count()) === 1;
          if (!listed) missing.push(`${operationId} (${summary}) under ${tags?.join()}`);
        }
        if (name === "Posts") await shot(page, "redoc-posts");
      }
      const untagged = operations.filter((op) => !spec.tags.some((tag) => tag.name === op.tags?.[0]));
      assert.deepEqual(untagged.map((op) => op.operationId), [], "every operation is under a declared tag");
      assert.deepEqual(missing, [], "ReDoc lists every operation, with its summary, in the menu and the page");
    } finally {
      await page.close();
    }
  });
});

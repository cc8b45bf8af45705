// What each generated client's program shares: the service's URL, a person of its own, checks
// that say which step failed, and the first event of a stream of server-sent events.

/** The service's URL, the program's one argument. */
export const baseUrl = process.argv[2] ?? "";
if (!baseUrl) throw new Error("usage: node dist/clients/CLIENT.js URL");

/** Fails with `what` unless `condition` holds. */
export function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`failed: ${what}`);
}

/** Credentials no one else registered. */
export function newPerson(client: string): { email: string; password: string } {
  const unique = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  return { email: `${client}-${unique}@example.org`, password: `${client} password ${unique}` };
}

/** A title no other post has. */
export function newTitle(client: string): string {
  return `Written through ${client} at ${Date.now()}`;
}

/** The first event of a `text/event-stream` body (comments skipped) that `wanted` accepts: its
 * name and its data. */
export async function findEvent(
  body: ReadableStream<Uint8Array>,
  wanted: (event: string, data: unknown) => boolean,
): Promise<{ event: string; data: unknown }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the stream ended before the event");
      text += decoder.decode(value, { stream: true });
      for (let end = text.indexOf("\n\n"); end >= 0; end = text.indexOf("\n\n")) {
        const lines = text.slice(0, end).split("\n");
        text = text.slice(end + 2);
        const event = lines.find((line) => line.startsWith("event: "))?.slice("event: ".length);
        const data = lines.filter((line) => line.startsWith("data: ")).map((line) => line.slice("data: ".length));
        if (event === undefined || data.length === 0) continue;
        const parsed: unknown = JSON.parse(data.join("\n"));
        if (wanted(event, parsed)) return { event, data: parsed };
      }
    }
  } finally {
    await reader.cancel();
  }
}

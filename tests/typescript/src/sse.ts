// Reading a `text/event-stream` body as the HTML standard's event stream interpretation
// does (what `EventSource` does), for clients that read it through `fetch`:
//
//   for await (const message of readMessages(response.body)) handle(message);
//
// Lines end with CRLF, LF or CR (a CR at the end of one chunk and an LF at the start of the
// next are one line end); a leading BOM is dropped; `:` starts a comment; `field: value`
// loses one space after the colon; `data` lines join with LF; an `id` (without NUL) holds
// until another replaces it; `retry` counts only when it is all digits. A blank line
// dispatches the message, unless it has no data; a message the stream ends in the middle of
// is dropped.

/** One dispatched message: its type (`message` when unnamed), data, and the last id seen. */
export interface SseMessage {
  event: string;
  data: string;
  /** The last `id` field of the stream so far (`EventSource`'s `lastEventId`); "" if none. */
  id: string;
}

export interface SseHandlers {
  message: (message: SseMessage) => void;
  /** A comment line, without its colon (the service's keep-alive, say). */
  comment?: (text: string) => void;
  /** A `retry` field: the reconnection delay the server asks for, in milliseconds. */
  retry?: (milliseconds: number) => void;
}

/** An incremental parser: feed it decoded text as it arrives. */
export class SseParser {
  #buffer = "";
  #started = false;
  #pendingCr = false;
  #data: string[] = [];
  #hasData = false;
  #event = "";
  #lastId = "";

  constructor(private readonly handlers: SseHandlers) {}

  /** The last `id` field seen (held across messages). */
  get lastEventId(): string {
    return this.#lastId;
  }

  feed(text: string): void {
    if (!this.#started && text.length > 0) {
      this.#started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    // A CR that ended the previous chunk already ended its line: an LF right after it is
    // the same line end.
    if (this.#pendingCr) {
      this.#pendingCr = false;
      if (text.startsWith("\n")) text = text.slice(1);
    }
    this.#buffer += text;
    let start = 0;
    for (;;) {
      const cr = this.#buffer.indexOf("\r", start);
      const lf = this.#buffer.indexOf("\n", start);
      if (cr === -1 && lf === -1) break;
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      const line = this.#buffer.slice(start, end);
      if (this.#buffer[end] === "\r") {
        if (end + 1 === this.#buffer.length) {
          this.#pendingCr = true;
          start = end + 1;
        } else {
          start = this.#buffer[end + 1] === "\n" ? end + 2 : end + 1;
        }
      } else {
        start = end + 1;
      }
      this.#line(line);
    }
    this.#buffer = this.#buffer.slice(start);
  }

  #line(line: string): void {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) {
      this.handlers.comment?.(line.slice(1));
      return;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.#event = value;
        break;
      case "data":
        this.#data.push(value);
        this.#hasData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.#lastId = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.handlers.retry?.(Number(value));
        break;
      default:
        break; // ignored, as the standard says
    }
  }

  #dispatch(): void {
    const { message } = this.handlers;
    const event = this.#event || "message";
    const data = this.#data.join("\n");
    const hasData = this.#hasData;
    this.#data = [];
    this.#hasData = false;
    this.#event = "";
    if (hasData) message({ event, data, id: this.#lastId });
  }
}

/**
 * The messages of an event stream's body, as they arrive. Comments and `retry` fields go
 * to the handlers given; the stream's end ends the iteration (a message left incomplete is
 * dropped), and a failing read (a dropped connection) throws.
 */
export async function* readMessages(
  body: ReadableStream<Uint8Array>,
  handlers: Omit<SseHandlers, "message"> = {},
): AsyncGenerator<SseMessage, void, undefined> {
  const ready: SseMessage[] = [];
  const parser = new SseParser({ ...handlers, message: (message) => ready.push(message) });
  const decoder = new TextDecoder("utf-8");
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      parser.feed(done ? decoder.decode() : decoder.decode(value, { stream: true }));
      while (ready.length > 0) yield ready.shift() as SseMessage;
      if (done) return;
    }
  } finally {
    // Stops reading the body (and so the connection) when the caller stops early.
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

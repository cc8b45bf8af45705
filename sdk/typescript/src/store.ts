// Where a session's tokens live. The SDK reads the store before every request and writes it
// after every login and refresh, so a store shared by several clients (browser tabs sharing
// `localStorage`, say) keeps them on one session.

/** What a session keeps: the token pair, and when the access token expires. */
export interface StoredTokens {
  access_token: string;
  refresh_token: string;
  /** When the access token expires, in milliseconds since the epoch (from `expires_in`). */
  expires_at?: number;
}

/** A place for the tokens; replace it to keep them elsewhere (a cookie jar, a keychain). */
export interface TokenStore {
  get(): StoredTokens | undefined;
  /** `undefined` forgets the tokens. */
  set(tokens: StoredTokens | undefined): void;
}

/** Tokens held in memory only: gone when the page or process ends. The default. */
export function memoryStore(initial?: StoredTokens): TokenStore {
  let held = initial && { ...initial };
  return {
    get: () => held && { ...held },
    set: (tokens) => {
      held = tokens && { ...tokens };
    },
  };
}

/** The part of the Web Storage API a store needs (`localStorage` has it). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Tokens kept in `localStorage` (or any Web Storage) under `key`, as JSON: they survive a
 * reload, and every tab of the origin shares them. Anything a script on the page runs can
 * read them; keep the page free of scripts you do not trust.
 */
export function localStorageStore(key = "social-api.tokens", storage: KeyValueStorage = globalThis.localStorage): TokenStore {
  return {
    get: () => {
      const text = storage.getItem(key);
      if (text === null) return undefined;
      try {
        const value = JSON.parse(text) as Partial<StoredTokens>;
        if (typeof value.access_token !== "string" || typeof value.refresh_token !== "string") return undefined;
        return {
          access_token: value.access_token,
          refresh_token: value.refresh_token,
          ...(typeof value.expires_at === "number" ? { expires_at: value.expires_at } : {}),
        };
      } catch {
        return undefined; // not what this store wrote: as if empty
      }
    },
    set: (tokens) => {
      if (tokens === undefined) storage.removeItem(key);
      else storage.setItem(key, JSON.stringify(tokens));
    },
  };
}

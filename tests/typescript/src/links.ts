// Reading `Link` header fields (RFC 8288, section 3): the links of a response, and the one a
// client follows to the next page.
//
//   Link: </posts?limit=5&cursor=abc>; rel="next", </posts?limit=5>; rel="first"
//
// A field is a comma-separated list of link-values, `<URI-Reference>` followed by
// `; name=value` parameters whose values are tokens or quoted strings; commas and semicolons
// may appear inside `<…>` and inside quoted strings. `rel` is a space-separated list of
// relation types, compared ignoring case; only its first occurrence counts (3.3). Fields
// sent more than once arrive joined by ", " (as fetch's Headers.get joins them), which is
// the same list.

/** One link-value: its target as written (usually relative) and its parameters. */
export interface Link {
  href: string;
  /** Parameter names lower-cased, values unquoted; the first occurrence of each name. */
  params: Record<string, string>;
  /** The relation types of `rel`, lower-cased. */
  rels: string[];
}

/** The links of a `Link` field value; malformed link-values are passed over. */
export function parseLinks(field: string | null | undefined): Link[] {
  const links: Link[] = [];
  if (!field) return links;
  let i = 0;
  const n = field.length;
  const skipSpace = () => {
    while (i < n && (field[i] === " " || field[i] === "\t")) i++;
  };
  // Passes over the rest of a malformed link-value, up to the comma that ends it.
  const skipValue = () => {
    let quoted = false;
    for (; i < n; i++) {
      const c = field[i];
      if (quoted && c === "\\") i++;
      else if (c === '"') quoted = !quoted;
      else if (c === "," && !quoted) break;
    }
  };

  while (i < n) {
    skipSpace();
    if (field[i] === ",") {
      i++;
      continue;
    }
    if (field[i] !== "<") {
      skipValue();
      continue;
    }
    const end = field.indexOf(">", i + 1);
    if (end < 0) break;
    const href = field.slice(i + 1, end).trim();
    i = end + 1;
    const params: Record<string, string> = {};
    let malformed = false;
    for (;;) {
      skipSpace();
      if (i >= n || field[i] === ",") break;
      if (field[i] !== ";") {
        malformed = true;
        skipValue();
        break;
      }
      i++;
      skipSpace();
      const nameStart = i;
      while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(field[i] ?? "")) i++;
      const name = field.slice(nameStart, i).toLowerCase();
      skipSpace();
      let value = "";
      if (field[i] === "=") {
        i++;
        skipSpace();
        if (field[i] === '"') {
          i++;
          while (i < n && field[i] !== '"') {
            if (field[i] === "\\" && i + 1 < n) i++;
            value += field[i];
            i++;
          }
          i++; // the closing quote
        } else {
          const valueStart = i;
          while (i < n && !/[;,\s]/.test(field[i] ?? "")) i++;
          value = field.slice(valueStart, i);
        }
      }
      if (name && !(name in params)) params[name] = value;
    }
    if (!malformed) {
      const rels = (params.rel ?? "").toLowerCase().split(/\s+/).filter(Boolean);
      links.push({ href, params, rels });
    }
  }
  return links;
}

/** The target of the first link of relation `rel` (say "next"), if any. */
export function linkTarget(field: string | null | undefined, rel: string): string | undefined {
  const wanted = rel.toLowerCase();
  return parseLinks(field).find((link) => link.rels.includes(wanted))?.href;
}

"""Counts the requests schemathesis sent to each operation of the spec, from its HAR files,
and fails when an operation got none, or when no request carrying a cursor from an earlier
`Link` header got a 200 (the stateful phase follows listPosts' `nextPage` link).

    python3 coverage.py SPEC_URL RUN.har [RUN.har ...]
"""

import json
import re
import sys
import urllib.parse
import urllib.request
from collections import Counter

METHODS = ("get", "put", "post", "delete", "patch")
# The cursor in a `Link: </posts?limit=N&cursor=...>; rel="next"` header.
NEXT_CURSOR = re.compile(r"[?&]cursor=([^&>]+)")


def main() -> int:
    spec_url, *hars = sys.argv[1:]
    with urllib.request.urlopen(spec_url) as response:
        spec = json.load(response)
    operations = []
    for path, item in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "/?$")
        literal = "{" not in path
        for method in METHODS:
            if method in item:
                operations.append((method.upper(), path, pattern, literal, item[method].get("operationId", "")))
    # Literal paths first, so that /users/me is not counted as /users/{id}.
    operations.sort(key=lambda op: not op[3])

    counts = Counter()
    other = 0
    followed = Counter()
    for har in hars:
        with open(har, encoding="utf-8") as file:
            entries = json.load(file)["log"]["entries"]
        followed += link_followed_statuses(entries)
        for entry in entries:
            method = entry["request"]["method"]
            path = urllib.parse.urlsplit(entry["request"]["url"]).path
            match = next((op for op in operations if op[0] == method and op[2].match(path)), None)
            if match:
                counts[match[4]] += 1
            else:
                other += 1

    missing = []
    print(f"{'requests':>8}  operation")
    for method, path, _, _, operation_id in sorted(operations, key=lambda op: (op[1], op[0])):
        print(f"{counts[operation_id]:>8}  {method} {path} ({operation_id})")
        if counts[operation_id] == 0:
            missing.append(operation_id)
    print(f"{other:>8}  requests outside the spec's operations (other methods, unknown paths)")
    print(f"{sum(counts.values()) + other:>8}  in all")
    statuses = ", ".join(f"{count} × {status}" for status, count in sorted(followed.items()))
    print(f"{sum(followed.values()):>8}  with a cursor from an earlier response's Link ({statuses or 'none'})")
    failed = False
    if missing:
        print(f"schemathesis sent nothing to: {', '.join(missing)}", file=sys.stderr)
        failed = True
    if followed[200] == 0:
        print("no request with a cursor from a Link got a 200: the stateful phase did not page", file=sys.stderr)
        failed = True
    return 1 if failed else 0


def link_followed_statuses(entries: list) -> Counter:
    """The statuses of the requests whose `cursor` an earlier response's `Link` issued."""
    issued = set()
    statuses = Counter()
    for entry in entries:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(entry["request"]["url"]).query)
        if issued.intersection(query.get("cursor", ())):
            statuses[entry["response"]["status"]] += 1
        for header in entry["response"]["headers"]:
            if header["name"].lower() == "link":
                issued.update(urllib.parse.unquote(c) for c in NEXT_CURSOR.findall(header["value"]))
    return statuses


if __name__ == "__main__":
    sys.exit(main())

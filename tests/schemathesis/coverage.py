"""Counts the requests schemathesis sent to each operation of the spec, from its HAR files,
and fails when an operation got none.

    python3 coverage.py SPEC_URL RUN.har [RUN.har ...]
"""

import json
import re
import sys
import urllib.parse
import urllib.request
from collections import Counter

METHODS = ("get", "put", "post", "delete", "patch")


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
    for har in hars:
        with open(har, encoding="utf-8") as file:
            entries = json.load(file)["log"]["entries"]
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
    if missing:
        print(f"schemathesis sent nothing to: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# openapi.yaml as tools read it: linted, and turned into clients by three generators.
#
#   tests/spec-tools/run.sh lint          # Spectral (spectral:oas and the OWASP API security
#                                         # rules, .spectral.yaml) and Redocly (recommended,
#                                         # strict: warnings fail too; redocly.yaml): 0 problems
#   tests/spec-tools/run.sh clients URL   # clients from openapi-typescript (+ openapi-fetch),
#                                         # @hey-api/openapi-ts and orval, compiled with
#                                         # `tsc --strict`, each run against the service at URL
#                                         # (on a database of its own: it registers and writes)
#
# Installs its npm packages (npm ci, pinned in package-lock.json) when the lock file changed.
# tests/contract.sh runs `clients` against a service it starts (API_BIN), as `.ci/run` does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"

stamp=node_modules/.installed-lock
if ! cmp -s package-lock.json "$stamp" 2>/dev/null; then
  echo "== npm ci (tests/spec-tools)"
  npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
fi
bin=$here/node_modules/.bin

case ${1:-} in
  lint)
    cd "$root"
    echo "== Spectral: spectral:oas and the OWASP API security rules (.spectral.yaml)"
    "$bin/spectral" lint --ruleset .spectral.yaml --fail-severity=hint openapi.yaml
    echo "== Redocly: recommended-strict (redocly.yaml)"
    "$bin/redocly" lint --config redocly.yaml openapi.yaml
    ;;
  clients)
    url=${2:?usage: $0 clients URL}
    rm -rf generated dist
    echo "== generating: openapi-typescript, @hey-api/openapi-ts, orval"
    # A field with a default (`published`) is optional in a request, as in tests/typescript.
    "$bin/openapi-typescript" "$root/openapi.yaml" --default-non-nullable false --output generated/openapi-typescript/schema.ts
    "$bin/openapi-ts" --file openapi-ts.config.mjs
    "$bin/orval" --config orval.config.cjs
    echo "== tsc --strict"
    "$bin/tsc" -p tsconfig.json
    for client in openapi-fetch hey-api orval; do
      echo "== $client against $url"
      node "dist/clients/$client.js" "$url"
    done
    ;;
  *)
    echo "usage: $0 lint | clients URL" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# The contract, proven from the outside against the `api` binary:
#   - the TypeScript SDK generated from openapi.yaml: strict compile + integration suite
#     (tests/typescript, `npm test`), on SQLite and on PostgreSQL;
#   - Swagger UI and ReDoc in Debian's Chromium (tests/typescript, `npm run test:browser`);
#   - schemathesis with every check against /openapi.json (tests/schemathesis), on SQLite
#     and on PostgreSQL.
#
#   tests/contract.sh                 # everything
#   tests/contract.sh sdk schemathesis  # some suites (sdk, browser, schemathesis)
#
# Environment: CONTRACT_BACKENDS (default "sqlite postgres"), TEST_DATABASE_URL (an
# administrative PostgreSQL URL, as for `cargo test`; a database is created for each suite
# and dropped after it), API_BIN (skip the build and use this binary).
#
# Installs what it needs when missing: the npm packages (npm ci), schemathesis in a
# virtualenv (target/schemathesis-venv), Debian's chromium (apt-get, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(sdk browser schemathesis)
backends=${CONTRACT_BACKENDS:-sqlite postgres}
admin_url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
wants() { [[ " ${suites[*]} " == *" $1 "* ]]; }

# --- what the suites need --------------------------------------------------------------

if [ -z "${API_BIN:-}" ]; then
  echo "== building the api binary"
  cargo build -p api --bin api --locked
  target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  API_BIN=$target_dir/debug/api
fi
export API_BIN

if wants sdk || wants browser; then
  # npm ci only when package-lock.json changed since the last install.
  stamp=tests/typescript/node_modules/.installed-lock
  if ! cmp -s tests/typescript/package-lock.json "$stamp" 2>/dev/null; then
    echo "== npm ci (tests/typescript)"
    (cd tests/typescript && npm ci --no-audit --no-fund)
    cp tests/typescript/package-lock.json "$stamp"
  fi
fi

if wants browser && [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== apt-get install chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "the browser suite needs Debian's chromium: apt-get install chromium" >&2
    exit 1
  fi
fi

venv=target/schemathesis-venv
if wants schemathesis && ! cmp -s tests/schemathesis/requirements.txt "$venv/installed-requirements.txt" 2>/dev/null; then
  echo "== schemathesis virtualenv ($venv)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/schemathesis/requirements.txt
  cp tests/schemathesis/requirements.txt "$venv/installed-requirements.txt"
fi

# --- databases and servers -------------------------------------------------------------

databases=()
temp_dirs=()
server_pid=
cleanup() {
  [ -z "$server_pid" ] || { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  [ ${#temp_dirs[@]} = 0 ] || rm -rf "${temp_dirs[@]}"
  for name in "${databases[@]}"; do
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

# Sets database_url to a fresh, empty database on `$1` (sqlite or postgres).
new_database() {
  local name
  name="contract_$(date +%s)_$RANDOM"
  case $1 in
    sqlite)
      temp_dirs+=("$(mktemp -d)")
      database_url="sqlite://${temp_dirs[-1]}/api.db?mode=rwc"
      ;;
    postgres)
      psql "$admin_url" -qc "CREATE DATABASE \"$name\"" >/dev/null
      databases+=("$name")
      database_url="${admin_url%/*}/$name"
      ;;
    *) echo "unknown backend $1" >&2; return 1 ;;
  esac
}

# Starts the service on database `$1`; sets server_pid and server_url.
start_server() {
  local log workdir
  workdir=$(mktemp -d)
  temp_dirs+=("$workdir")
  log=$workdir/server.log
  (cd "$workdir" && exec env -i PATH="$PATH" APP_ENV=development HOST=127.0.0.1 PORT=0 \
    DATABASE_URL="$1" SECRET_KEY="$(openssl rand -hex 32 2>/dev/null || echo "contract-$RANDOM-secret-key-of-32-bytes-at-least")" \
    BCRYPT_COST=4 REGISTER_MAX_PER_ADDRESS=0 RUST_LOG=info "$API_BIN") >"$log" 2>&1 &
  server_pid=$!
  server_log=$log
  server_url=
  for _ in $(seq 600); do
    server_url=$(grep -o 'address=http://[^ ]*' "$log" | head -n1 | cut -d= -f2 || true)
    [ -n "$server_url" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the service did not start:" >&2
  cat "$log" >&2
  return 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# --- the suites ------------------------------------------------------------------------

passed=0
failed=0
failures=()
record() { # name, status
  if [ "$2" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

for backend in $backends; do
  if wants sdk; then
    echo "== TypeScript SDK suite on $backend"
    status=0
    new_database "$backend"
    (cd tests/typescript && CONTRACT_DATABASE_URL=$database_url npm test --silent) || status=$?
    record "TypeScript SDK on $backend" "$status"
  fi

  if wants schemathesis; then
    echo "== schemathesis on $backend"
    status=0
    new_database "$backend"
    start_server "$database_url"
    SCHEMATHESIS_REPORT_DIR=target/schemathesis-report/$backend tests/schemathesis/run.sh "$server_url" || status=$?
    stop_server
    if [ "$status" != 0 ]; then
      echo "-- the service's log (last 40 lines):"
      tail -n 40 "$server_log"
    fi
    record "schemathesis on $backend" "$status"
  fi
done

if wants browser; then
  # The page does not depend on the database: SQLite is enough.
  echo "== Swagger UI and ReDoc in Chromium"
  status=0
  (cd tests/typescript && CONTRACT_DATABASE_URL= npm run test:browser --silent) || status=$?
  record "Swagger UI and ReDoc" "$status"
fi

for failure in "${failures[@]}"; do echo "FAILED: $failure"; done
echo "contract: $passed passed, $failed failed"
[ "$failed" = 0 ]

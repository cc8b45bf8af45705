#!/usr/bin/env bash
# The contract, proven from the outside against the `api` binary:
#   - the TypeScript SDK (sdk/typescript): its committed types are what openapi-typescript
#     generates from openapi.yaml (`types`);
#   - the SDK installed from its packed tarball: strict compile + integration suite
#     (tests/typescript, `npm test`), on SQLite and on PostgreSQL (`sdk`);
#   - the README's TypeScript program, in an empty folder with the SDK's tarball: compiled
#     with `tsc --strict` and run against the service (`readme`);
#   - Swagger UI, ReDoc and the SDK's browser bundle in Debian's Chromium (tests/typescript,
#     `npm run test:browser`):
#     in development; in production (CORS allows only another origin, so the pages' own
#     requests must pass as same-origin), directly and behind nginx
#     (deploy/nginx-social-api.conf, TLS with a certificate made for the run);
#   - schemathesis with every check against /openapi.json (tests/schemathesis; GET /events
#     on its own, see run.sh), on SQLite and on PostgreSQL;
#   - clients made by three generators (openapi-typescript with openapi-fetch, @hey-api/openapi-ts,
#     orval) from openapi.yaml: strict compile, and a few calls each (tests/spec-tools), on SQLite
#     and on PostgreSQL.
#
#   tests/contract.sh                   # everything
#   tests/contract.sh sdk schemathesis  # some suites (types, sdk, readme, browser, schemathesis, clients)
#
# Environment: CONTRACT_BACKENDS (default "sqlite postgres"), TEST_DATABASE_URL (an
# administrative PostgreSQL URL, as for `cargo test`; a database is created for each suite
# and dropped after it), API_BIN (skip the build and use this binary).
#
# Installs what it needs when missing: the npm packages (npm ci, tests/spec-tools/run.sh), schemathesis in a
# virtualenv (target/schemathesis-venv), Debian's chromium, nginx and openssl (apt-get, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(types sdk readme browser schemathesis clients)
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

# npm ci in $1 only when its package-lock.json changed since the last install.
npm_ci() {
  local stamp=$1/node_modules/.installed-lock
  if ! cmp -s "$1/package-lock.json" "$stamp" 2>/dev/null; then
    echo "== npm ci ($1)"
    (cd "$1" && npm ci --no-audit --no-fund)
    cp "$1/package-lock.json" "$stamp"
  fi
}
if wants types || wants sdk || wants readme || wants browser; then
  npm_ci sdk/typescript
fi
if wants sdk || wants readme || wants browser; then
  npm_ci tests/typescript
fi

nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
if wants browser; then
  missing=()
  [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || missing+=(chromium)
  [ -x "$nginx_bin" ] || missing+=(nginx)
  command -v openssl >/dev/null || missing+=(openssl)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "== apt-get install ${missing[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
      nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    else
      echo "the browser suite needs Debian's ${missing[*]}: apt-get install ${missing[*]}" >&2
      exit 1
    fi
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
nginx_pid=
cleanup() {
  [ -z "$nginx_pid" ] || { kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; }
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

# A random secret, as production requires.
random_secret() {
  openssl rand -hex 32 2>/dev/null || python3 -c 'import secrets; print(secrets.token_hex(32))'
}

# Starts the service on database `$1`, in development unless the further arguments
# (NAME=value) say otherwise; sets server_pid and server_url.
start_server() {
  local log workdir
  workdir=$(mktemp -d)
  temp_dirs+=("$workdir")
  log=$workdir/server.log
  (cd "$workdir" && exec env -i PATH="$PATH" APP_ENV=development HOST=127.0.0.1 PORT=0 \
    DATABASE_URL="$1" SECRET_KEY="$(random_secret)" BCRYPT_COST=4 REGISTER_MAX_PER_ADDRESS=0 WRITES_PER_MINUTE=0 \
    PASSWORD_RESET_MAX_PER_EMAIL=0 PASSWORD_RESET_MAX_PER_ADDRESS=0 MAIL_REQUESTS_MAX_PER_ADDRESS=0 \
    VERIFICATION_RESEND_SECONDS=0.001 \
    EVENT_STREAMS_PER_ACCOUNT=1000 RUST_LOG=info "${@:2}" "$API_BIN") >"$log" 2>&1 &
  server_pid=$!
  server_log=$log
  server_url=
  wait_until 600 "$server_pid" "the service" "$log" server_listening
}

server_listening() {
  server_url=$(grep -o 'address=http://[^ ]*' "$server_log" 2>/dev/null | head -n1 | cut -d= -f2 || true)
  [ -n "$server_url" ]
}

# wait_until TRIES PID NAME LOG CHECK: runs CHECK every 0.1 s until it succeeds; fails,
# showing LOG, when the process PID exits or TRIES run out.
wait_until() {
  for _ in $(seq "$1"); do
    "$5" && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "$3 did not start:" >&2
  cat "$4" >&2
  return 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts nginx in front of the service at `$1` with deploy/nginx-social-api.conf, rendered
# by tests/deploy/nginx_site.py (the upstream is the service, `listen` free ports of
# loopback, a self-signed certificate for api.example.org and 127.0.0.1). Sets nginx_pid,
# nginx_https_port and nginx_certificate (what a client of nginx trusts).
start_nginx() {
  local workdir nginx_http_port
  workdir=$(mktemp -d)
  temp_dirs+=("$workdir")
  nginx_http_port=$(free_port)
  nginx_https_port=$(free_port)
  nginx_certificate=$workdir/cert.pem
  python3 tests/deploy/nginx_site.py "$workdir" "$nginx_http_port" "$nginx_https_port" "${1#http://}"
  "$nginx_bin" -p "$workdir" -c "$workdir/nginx.conf" -g 'daemon off;' &
  nginx_pid=$!
  nginx_log=$workdir/error.log
  wait_until 100 "$nginx_pid" nginx "$nginx_log" nginx_answering
}

nginx_answering() {
  curl -sf -o /dev/null --cacert "$nginx_certificate" "https://127.0.0.1:$nginx_https_port/health/live"
}

stop_nginx() {
  kill "$nginx_pid" 2>/dev/null || true
  wait "$nginx_pid" 2>/dev/null || true
  nginx_pid=
}

# --- the suites ------------------------------------------------------------------------

passed=0
failed=0
failures=()
record() { # name, status
  if [ "$2" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

if wants types; then
  echo "== the SDK's committed types are openapi.yaml's"
  status=0
  (cd sdk/typescript && npm run check:generated --silent) || status=$?
  record "the SDK's types match openapi.yaml" "$status"
fi

if wants readme; then
  echo "== the README's TypeScript program, against the service"
  status=0
  new_database sqlite
  start_server "$database_url"
  (cd tests/typescript && API_URL=$server_url npm run readme --silent) || status=$?
  stop_server
  [ "$status" = 0 ] || { echo "-- the service's log (last 40 lines):"; tail -n 40 "$server_log"; }
  record "the README's TypeScript program" "$status"
fi

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
    SCHEMATHESIS_REPORT_DIR=target/schemathesis-report/$backend SCHEMATHESIS_API_BIN=$API_BIN \
      SCHEMATHESIS_DATABASE_URL=$database_url tests/schemathesis/run.sh "$server_url" || status=$?
    stop_server
    if [ "$status" != 0 ]; then
      echo "-- the service's log (last 40 lines):"
      tail -n 40 "$server_log"
    fi
    record "schemathesis on $backend" "$status"
  fi

  if wants clients; then
    echo "== generated clients on $backend"
    status=0
    new_database "$backend"
    start_server "$database_url"
    tests/spec-tools/run.sh clients "$server_url" || status=$?
    stop_server
    record "generated clients on $backend" "$status"
  fi
done

if wants browser; then
  # The pages do not depend on the database: SQLite is enough.
  echo "== Swagger UI, ReDoc and the SDK's browser bundle in Chromium (development)"
  status=0
  (cd tests/typescript && CONTRACT_DATABASE_URL= BROWSER_RUN=development npm run test:browser --silent) ||
    status=$?
  record "Swagger UI and ReDoc (development)" "$status"

  # In production CORS allows only front ends' origins: the pages' own requests (which
  # carry Origin too) must pass as same-origin, at the service's address and behind nginx.
  # The suite serves a front end's page at FRONT_END_ORIGIN, one of them, to read the
  # exposed headers from there.
  front_end_origin=http://127.0.0.1:$(free_port)
  # Production requires mail settings; these suites read no mail, and nothing listens on port
  # 1: the verification mails wait in the outbox.
  production=(APP_ENV=production CORS_ALLOWED_ORIGINS=http://localhost:5173,$front_end_origin LOG_FORMAT=text
    SMTP_URL=smtp://127.0.0.1:1 MAIL_FROM=noreply@example.org PUBLIC_URL=http://localhost:5173)

  echo "== Swagger UI, ReDoc and the SDK's browser bundle in Chromium (production)"
  status=0
  new_database sqlite
  start_server "$database_url" "${production[@]}"
  (cd tests/typescript && API_URL=$server_url FRONT_END_ORIGIN=$front_end_origin BROWSER_RUN=production \
    npm run test:browser --silent) ||
    status=$?
  stop_server
  [ "$status" = 0 ] || { echo "-- the service's log (last 40 lines):"; tail -n 40 "$server_log"; }
  record "Swagger UI and ReDoc (production)" "$status"

  # The browser opens https://api.example.org, which it resolves to nginx's TLS port: it
  # sends the Host and Origin it would send in production, and nginx forwards them with
  # X-Forwarded-Proto: https to a service that trusts it. The suite's own requests go to
  # nginx's TLS port too (plain HTTP only redirects), trusting the run's certificate.
  echo "== Swagger UI, ReDoc and the SDK's browser bundle in Chromium (production, behind nginx with TLS)"
  status=0
  new_database sqlite
  start_server "$database_url" "${production[@]}" TRUSTED_PROXIES=127.0.0.1
  start_nginx "$server_url"
  (cd tests/typescript && API_URL=https://127.0.0.1:$nginx_https_port NODE_EXTRA_CA_CERTS=$nginx_certificate \
    BROWSER_URL=https://api.example.org \
    BROWSER_HOST_RULES="MAP api.example.org 127.0.0.1:$nginx_https_port" FRONT_END_ORIGIN=$front_end_origin \
    BROWSER_RUN=production-nginx npm run test:browser --silent) || status=$?
  stop_nginx
  stop_server
  if [ "$status" != 0 ]; then
    echo "-- the service's log (last 40 lines):"; tail -n 40 "$server_log"
    echo "-- nginx's error log:"; cat "$nginx_log"
  fi
  record "Swagger UI and ReDoc (production, behind nginx)" "$status"
fi

for failure in "${failures[@]}"; do echo "FAILED: $failure"; done
echo "contract: $passed passed, $failed failed"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# Runs schemathesis with every check against the service at BASE_URL (which must be on a
# database of its own: the run writes to it), as a registered caller with a valid token.
#
#   tests/schemathesis/run.sh http://127.0.0.1:8000
#
# Settings (environment): SCHEMATHESIS (the executable; default: the virtualenv that
# tests/contract.sh makes), SCHEMATHESIS_SEED (default 1), SCHEMATHESIS_EXAMPLES (at most
# this many cases per operation and phase; default 100), SCHEMATHESIS_REPORT_DIR (where the
# HAR files of every request go; default target/schemathesis-report). The moderation
# operations run as an administrator that `api admin grant` makes: SCHEMATHESIS_API_BIN (the
# `api` binary) and SCHEMATHESIS_DATABASE_URL (the service's database) say where.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base_url=${1:?usage: $0 BASE_URL}
base_url=${base_url%/}
st=${SCHEMATHESIS:-$here/../../target/schemathesis-venv/bin/schemathesis}
seed=${SCHEMATHESIS_SEED:-1}
examples=${SCHEMATHESIS_EXAMPLES:-100}
reports=${SCHEMATHESIS_REPORT_DIR:-$here/../../target/schemathesis-report}
mkdir -p "$reports"
reports=$(cd "$reports" && pwd)
api_bin=${SCHEMATHESIS_API_BIN:?the api binary, for the administrator of the moderation operations}
database_url=${SCHEMATHESIS_DATABASE_URL:?the database of the service, for the administrator of the moderation operations}

# Registers a fresh account, gives it the role `$3` if any (`api admin grant`, from an empty
# folder so that no config.toml or .env of the developer's applies), logs it in `$2` times
# (once by default) and prints the token of the last login.
token() {
  local email password body logins=${2:-1} role=${3:-} access
  email="fuzz-$1-$RANDOM$RANDOM@example.org"
  password="fuzz-password-$RANDOM$RANDOM"
  body=$(printf '{"email": "%s", "password": "%s"}' "$email" "$password")
  curl -fsS "$base_url/users" -H 'content-type: application/json' -d "$body" >/dev/null
  if [ -n "$role" ]; then
    (cd "$(mktemp -d)" && env -i PATH="$PATH" DATABASE_URL="$database_url" RUST_LOG=warn \
      "$api_bin" admin grant "$email" "$role" >/dev/null)
  fi
  for _ in $(seq "$logins"); do
    access=$(curl -fsS "$base_url/login" --data-urlencode "username=$email" --data-urlencode "password=$password" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
  done
  echo "$access"
}

# Writes `$2` posts as the caller whose token is `$1`.
write_posts() {
  local i
  for i in $(seq "$2"); do
    curl -fsS -o /dev/null "$base_url/posts" -H "Authorization: Bearer $1" \
      -H 'content-type: application/json' \
      -d "{\"title\": \"Post $i of the run\", \"content\": \"Written before the run.\"}"
  done
}

run() {
  local token=$1 har=$2
  shift 2
  # From this folder, so that schemathesis reads schemathesis.toml (warnings).
  (cd "$here" && "$st" run "$base_url/openapi.json" --url "$base_url" \
    --checks all \
    -H "Authorization: Bearer $token" \
    --seed "$seed" \
    --max-examples "$examples" \
    --generation-database none \
    --workers 1 \
    --no-color \
    --report har --report-har-path "$reports/$har.har" \
    "$@")
}

# The operations that end the caller's session (deleting the account, logging out, ending
# a session by id, the caller's own among them) would leave the rest of a run with a dead
# token, on which every operation only answers 401: each runs on its own, with an account of
# its own, after every other operation has run.
enders=(deleteMe logout endSession)
excluded=()
for op in "${enders[@]}"; do excluded+=(--exclude-operation-id "$op"); done
# GET /events (streamEvents) answers an endless text/event-stream. schemathesis reads such a
# stream until `max-stream-events` events or its `request-timeout` (1 s for this operation,
# schemathesis.toml) and then judges what it read, so the operation is fuzzed like any other
# (statuses, headers, content type, 401 without credentials, 422 for bad ids, 405s), but on
# its own, without one check: response_schema_conformance. Before OpenAPI 3.2 schemathesis
# reads the `schema` of a text/event-stream response as the schema of each event's envelope
# ({event, data, id}), while our spec (as poem-openapi writes it) declares the stream as
# `type: array` of the events' data (EventData), so every event would be reported as "not of
# type array" (ST108). A per-operation `enabled = false` in schemathesis.toml does not help:
# `--checks all` on the command line wins. Instead events.py checks every event schemathesis
# read (from its HAR file) against the schema its name maps to in EventData's discriminator,
# with `type` its name, and against EventData, with ids that grow; tests/tests/events.rs and the
# TypeScript SDK suite (tests/typescript/test/events.test.ts) check what the events say.
excluded+=(--exclude-operation-id streamEvents)
# A mailed token (verifyEmail, resetPassword) is issued by the service: any string a client
# makes up is refused (422 naming `token`), which the validation-mismatch warning reads as a
# spec looser than the service. No schema can tell an issued token from a made-up one. These
# run on their own, with every other warning on (the config's warnings are the run's, not an
# operation's).
mailed=(verifyEmail resetPassword)
for op in "${mailed[@]}"; do excluded+=(--exclude-operation-id "$op"); done
# Moderation answers a member 403 and nothing else, which the authentication warning reads as
# a run without credentials: these run on their own, as an administrator, last (a suspension
# ends the sessions of whomever it names).
moderation=(setRole hidePost restorePost suspendUser liftSuspension listHiddenPosts readModerationLog)
for op in "${moderation[@]}"; do excluded+=(--exclude-operation-id "$op"); done
every_warning_but_validation_mismatch=missing_auth,missing_test_data,base_url_mismatch,missing_deserializer,unused_openapi_auth,unsupported_regex,method_not_allowed,constants_extraction,unmatched_filter,unresolvable_reference,rate_limited,dictionary_mismatch,timeout_units

# A page is full, and carries the `Link` that the stateful phase follows (listPosts'
# `nextPage` link), only when there are more posts than its `limit` (at most 100): the run
# starts with more than that, whatever it deletes on the way. Data, not a narrowing: every
# request is still generated from the spec.
# endSession's example ends session 1, the first login of the examples' history: its account
# logs in first, twice, so that session 1 (the database is new) is its other session.
end_session_token=$(token endSession 2)
main_token=$(token main)
write_posts "$main_token" 150
echo "== schemathesis: every operation but ${enders[*]}, at $base_url"
run "$main_token" main "${excluded[@]}"

# One operation alone has no link to follow: no stateful phase (which would find the spec's
# links all filtered out and call that an error).
hars=("$reports/main.har")
for op in "${enders[@]}"; do
  echo "== schemathesis: $op, at $base_url"
  if [ "$op" = endSession ]; then op_token=$end_session_token; else op_token=$(token "$op"); fi
  run "$op_token" "$op" --include-operation-id "$op" --phases examples,coverage,fuzzing
  hars+=("$reports/$op.har")
done

for op in "${mailed[@]}"; do
  echo "== schemathesis: $op (without the validation-mismatch warning), at $base_url"
  run "$main_token" "$op" --include-operation-id "$op" --phases examples,coverage,fuzzing \
    --warnings "$every_warning_but_validation_mismatch"
  hars+=("$reports/$op.har")
done

# A replay leaves out what happened before the caller's account existed, so the stream's
# account writes posts of its own first: replays then carry events for events.py to check.
events_token=$(token events)
write_posts "$events_token" 30
echo "== schemathesis: streamEvents (without response_schema_conformance), at $base_url"
run "$events_token" streamEvents --include-operation-id streamEvents \
  --phases examples,coverage,fuzzing --exclude-checks response_schema_conformance
hars+=("$reports/streamEvents.har")
# jsonschema_rs comes with schemathesis: the Python beside it (SCHEMATHESIS_PYTHON to change).
"${SCHEMATHESIS_PYTHON:-$(dirname "$st")/python}" "$here/events.py" "$base_url/openapi.json" "$reports/streamEvents.har"

admin_token=$(token admin 1 admin)
write_posts "$admin_token" 30
echo "== schemathesis: ${moderation[*]}, as an administrator, at $base_url"
included=()
for op in "${moderation[@]}"; do included+=(--include-operation-id "$op"); done
run "$admin_token" moderation "${included[@]}"
hars+=("$reports/moderation.har")

echo "== schemathesis: requests per operation (HAR files in $reports)"
python3 "$here/coverage.py" "$base_url/openapi.json" "${hars[@]}"

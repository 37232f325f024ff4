#!/usr/bin/env bash
# The TypeScript client check (examples/typescript/; versions pinned by its package-lock.json):
#   1. codegen   regenerates src/gql/ from schema.graphql and examples/*.graphql; fails when the committed
#                files differ (run `npm run codegen` in examples/typescript and commit src/gql/)
#   2. tsc       `tsc --noEmit --strict`: a schema change that breaks an example operation or the client fails
#   3. flow      starts the debug server on a throw-away SQLite file and a free port and runs src/flow.ts
#                (urql, typed documents) through the whole examples/ flow against it
#   4. diff      graphql-inspector diff of HEAD~1's schema.graphql against the current one; breaking and
#                dangerous changes are printed, not failed on (tests/ guard the public names)
# Runs every step, then prints `typescript check: N passed, M failed` (`, 1 skipped` when there is no previous
# schema to diff against) and exits non-zero when a step failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ts="$root/examples/typescript"
started=$SECONDS

work=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
skipped=0
step_started=$SECONDS
begin() { step_started=$SECONDS; }
pass() { passed=$((passed + 1)); echo "typescript check: $1 ok ($((SECONDS - step_started))s)"; }
fail() { failed=$((failed + 1)); echo "typescript check: $1 FAILED ($((SECONDS - step_started))s)" >&2; }

echo "typescript check: npm ci in examples/typescript"
t=$SECONDS
(cd "$ts" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
echo "typescript check: npm ci took $((SECONDS - t))s"

# 1. Generated types up to date.
codegen_step() {
  cp -a "$ts/src/gql" "$work/gql.committed" || return 1
  if ! (cd "$ts" && npx --no-install graphql-codegen --config codegen.ts) >"$work/codegen.log" 2>&1; then
    cat "$work/codegen.log" >&2
    return 1
  fi
  if ! diff -ru "$work/gql.committed" "$ts/src/gql" >"$work/gql.diff"; then
    echo "examples/typescript/src/gql is out of date with schema.graphql and examples/*.graphql:" >&2
    head -n 80 "$work/gql.diff" >&2
    echo "run 'npm run codegen' in examples/typescript and commit src/gql/" >&2
    return 1
  fi
}
begin
if codegen_step; then pass "codegen up to date"; else fail "codegen up to date"; fi

# 2. Strict type check of the generated types, the flow script and the codegen config.
begin
if (cd "$ts" && npx --no-install tsc --noEmit --strict); then pass "tsc --noEmit --strict"; else fail "tsc --noEmit --strict"; fi

# 3. The whole flow against a real server.
flow_step() {
  cargo build --quiet --bin medgraph || return 1
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  DATABASE_URL="sqlite://$work/flow.db?mode=rwc" BIND_ADDR="127.0.0.1:$port" \
    "${CARGO_TARGET_DIR:-target}/debug/medgraph" serve >"$work/server.log" 2>&1 &
  server=$!
  local ready=
  for _ in $(seq 1 100); do
    if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ready=1; break; fi
    if ! kill -0 "$server" 2>/dev/null; then break; fi
    sleep 0.1
  done
  local status=0
  if [ -z "$ready" ]; then
    echo "medgraph did not become ready on port $port" >&2
    status=1
  else
    (cd "$ts" && npx --no-install tsx src/flow.ts "http://127.0.0.1:$port/graphql") || status=$?
  fi
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
  if [ "$status" -ne 0 ]; then
    echo "--- server log (tail) ---" >&2
    tail -n 40 "$work/server.log" >&2
  fi
  return "$status"
}
begin
if flow_step; then pass "flow"; else fail "flow"; fi

# 4. Schema diff against the previous commit (printed only).
if git rev-parse --verify --quiet HEAD~1 >/dev/null && git cat-file -e HEAD~1:schema.graphql 2>/dev/null; then
  begin
  git show HEAD~1:schema.graphql >"$work/previous.graphql"
  echo "typescript check: schema diff, HEAD~1 ($(git rev-parse --short HEAD~1)) -> working tree schema.graphql"
  status=0
  (cd "$ts" && npx --no-install graphql-inspector diff "$work/previous.graphql" "$root/schema.graphql") \
    >"$work/diff.out" 2>&1 || status=$?
  cat "$work/diff.out"
  if [ "$status" -eq 0 ]; then
    pass "schema diff (no breaking changes)"
  elif grep -Eq 'Detected [0-9]+ breaking change' "$work/diff.out"; then
    echo "typescript check: schema diff found breaking changes (printed, not failed on: tests/ guard the public names)"
    pass "schema diff (breaking changes printed above)"
  else
    fail "schema diff (graphql-inspector exited $status)"
  fi
else
  echo "typescript check: schema diff skipped (no HEAD~1:schema.graphql)"
  skipped=1
fi

echo "typescript check: took $((SECONDS - started))s"
summary="typescript check: $passed passed, $failed failed"
if [ "$skipped" -gt 0 ]; then summary="$summary, $skipped skipped"; fi
echo "$summary"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Starts the debug server on a throw-away SQLite file and a free port, then runs graphql-http's
# GraphQL-over-HTTP server audits against it (scripts/graphql-http-audit/audit.mjs; versions pinned by
# its package-lock.json). Exits non-zero when a MUST, or a SHOULD/MAY not listed in accepted-shoulds.txt, fails.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin medgraph
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
DATABASE_URL="sqlite://$work/audit.db?mode=rwc" BIND_ADDR="127.0.0.1:$port" \
  "${CARGO_TARGET_DIR:-target}/debug/medgraph" serve >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
(cd scripts/graphql-http-audit && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
ready=
for _ in $(seq 1 100); do
  if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ready=1; break; fi
  if ! kill -0 "$server" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "medgraph did not become ready on port $port; server log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
status=0
node scripts/graphql-http-audit/audit.mjs "http://127.0.0.1:$port/graphql" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log (tail) ---" >&2
  tail -n 40 "$work/server.log" >&2
fi
exit "$status"

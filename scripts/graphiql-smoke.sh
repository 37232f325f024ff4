#!/usr/bin/env bash
# Starts the debug server on a throw-away SQLite file and a free port, then runs the headless-Chromium
# GraphiQL check against it (installs Chromium and the check's npm packages when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin medgraph
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
DATABASE_URL="sqlite://$work/graphiql.db?mode=rwc" BIND_ADDR="127.0.0.1:$port" \
  "${CARGO_TARGET_DIR:-target}/debug/medgraph" serve >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
bash scripts/check-graphiql.sh "http://127.0.0.1:$port"

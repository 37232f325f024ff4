#!/usr/bin/env bash
# Headless browser check of the offline GraphiQL page served by a running medgraph.
#   scripts/check-graphiql.sh [BASE_URL]      (default http://127.0.0.1:8080)
#   SCREENSHOT=/tmp/graphiql.png scripts/check-graphiql.sh http://127.0.0.1:8080
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/check-graphiql" && pwd)"
BASE_URL="${1:-http://127.0.0.1:8080}"

if ! command -v chromium >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

command -v node >/dev/null || { echo "node (>= 20) is required" >&2; exit 1; }

# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core never downloads, but be explicit.
(cd "$DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

exec node "$DIR/check.mjs" "$BASE_URL"

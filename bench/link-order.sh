#!/usr/bin/env bash
# Regenerates bench/link-order.txt, the order in which the linker lays out the release server's
# functions (src/build.rs; README, performance section).
#
# It runs the benchmark's quick mode on SQLite and PostgreSQL with each server under callgrind, which
# records every function the server executes (start-up included), and lists those functions.
# Run it after changing dependencies or the toolchain (their symbol names change, and a name the
# binary no longer has is skipped); a change to medgraph's own code keeps most names.
#
# Needs valgrind (callgrind_control), python3, nm and a PostgreSQL role that may create databases
# (BENCH_DATABASE_URL, as for the benchmark). Takes about 10 minutes: two release builds and the
# quick run.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'kill "${dumper:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

for tool in valgrind callgrind_control python3 nm; do
  command -v "$tool" >/dev/null || { echo "link-order.sh: $tool is missing" >&2; exit 1; }
done

# The server is built on its own, as the Dockerfile and the benchmark build it: built together with
# the benchmark, shared dependencies get other features, hence other symbol names. It is profiled
# without a link order, so the list keeps the compiler's own layout (see link-order.py).
cargo build --release -p medgraph-bench
MEDGRAPH_LINK_ORDER=off cargo build --release -p medgraph
binary="$root/target/release/medgraph"

# The benchmark starts `medgraph serve` (and `medgraph seed`) from the binary it is given: this one
# runs the servers under callgrind and everything else as it is.
cat > "$work/medgraph" <<EOF
#!/bin/sh
if [ "\$1" = serve ]; then
  exec valgrind --tool=callgrind --demangle=no --dump-instr=no --compress-strings=no \\
    --compress-pos=no --callgrind-out-file="$work/server.%p" "$binary" "\$@" 2>>"$work/valgrind.log"
fi
exec "$binary" "\$@"
EOF
chmod +x "$work/medgraph"

# The benchmark kills its servers, and callgrind writes a profile only at exit or when asked: ask
# every two seconds (each dump holds what ran since the one before).
( while true; do callgrind_control --dump >/dev/null 2>&1 || true; sleep 2; done ) &
dumper=$!

"$root/target/release/medgraph-bench" --quick --db both --server-bin "$work/medgraph" \
  --json "$work/results.json" >"$work/bench.log" 2>&1 || {
  echo "link-order.sh: the benchmark failed; its output:" >&2
  cat "$work/bench.log" >&2
  exit 1
}
kill "$dumper"
wait "$dumper" 2>/dev/null || true

python3 bench/link-order.py "$binary" bench/link-order.txt "$work"/server.*

# The order takes effect at the next link, and the names stay as they were: check that they do.
cargo build --release -p medgraph
python3 bench/link-order.py --check "$binary" bench/link-order.txt

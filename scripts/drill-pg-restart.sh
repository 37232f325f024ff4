#!/usr/bin/env bash
# drill-pg-restart.sh — fault drill: restart PostgreSQL under load and check that medgraph survives it.
#
# What it does (bounded: about 30 s plus the build; loopback only):
#   1. builds medgraph (`cargo build --release --bin medgraph`; `--debug` for a debug build);
#   2. creates a throw-away database `medgraph_drill_<random>` on the local PostgreSQL (base URL from
#      $PG_BASE_URL, else from ../shared/tools/pg-ensure.sh) and starts medgraph on it, on 127.0.0.1:<free port>;
#   3. registers a user and runs a write+read load (createPatient and a patients list, 4 client threads,
#      every request bounded by a 12 s client timeout) for --duration seconds (default 20), recording which
#      createPatient calls were acknowledged;
#   4. runs `pg_ctlcluster $PG_VERSION $PG_CLUSTER restart` (default 15 main) --restart-at seconds into the
#      load (default 8), and polls /readyz until it is 200 again;
#   5. checks: every request got an HTTP answer within the timeout (no hang, no refused connection), every
#      failed answer is a GraphQL error with an extensions.code, /readyz recovered, and every acknowledged
#      patient id exists in the database afterwards (read with psql, not through medgraph);
#   6. prints a summary (requests, failures during the outage, recovery time) and exits 1 if any check
#      failed — in particular on any lost acknowledged write. The database is dropped at the end.
#
# Usage:  sudo scripts/drill-pg-restart.sh [--debug] [--duration SECONDS] [--restart-at SECONDS] [--keep-logs]
# Needs:  root (pg_ctlcluster), a local PostgreSQL cluster, cargo, python3, psql, curl.
#
# NOT FOR CI: restarting the cluster interrupts every other client of it (other test runs included).
set -euo pipefail

profile=release
duration=20
restart_at=8
keep_logs=false
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) profile=debug ;;
    --release) profile=release ;;
    --duration) duration=$2; shift ;;
    --restart-at) restart_at=$2; shift ;;
    --keep-logs) keep_logs=true ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "drill: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$duration" =~ ^[0-9]+$ ]] && [ "$duration" -ge 5 ] && [ "$duration" -le 120 ] \
  || { echo "drill: --duration must be 5..120 seconds" >&2; exit 2; }
[[ "$restart_at" =~ ^[0-9]+$ ]] && [ "$restart_at" -ge 1 ] && [ "$restart_at" -lt "$duration" ] \
  || { echo "drill: --restart-at must be 1..duration-1 seconds" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "drill: run as root (pg_ctlcluster restarts the cluster)" >&2; exit 2; }
for tool in cargo python3 psql curl pg_ctlcluster; do
  command -v "$tool" >/dev/null || { echo "drill: $tool is required" >&2; exit 2; }
done
pg_version=${PG_VERSION:-15}
pg_cluster=${PG_CLUSTER:-main}

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

echo "drill: building medgraph ($profile)" >&2
if [ "$profile" = release ]; then
  cargo build --quiet --release --bin medgraph
else
  cargo build --quiet --bin medgraph
fi
binary="${CARGO_TARGET_DIR:-$repo/target}/$profile/medgraph"
[ -x "$binary" ] || { echo "drill: no binary at $binary" >&2; exit 2; }

if [ -z "${PG_BASE_URL:-}" ]; then
  PG_BASE_URL=$(bash "$repo/../shared/tools/pg-ensure.sh" | tail -1)
fi
PG_BASE_URL=${PG_BASE_URL%/}
case "$PG_BASE_URL" in
  postgres://*@127.0.0.1:*|postgres://*@localhost:*|postgresql://*@127.0.0.1:*|postgresql://*@localhost:*) ;;
  *) echo "drill: PG_BASE_URL must be a loopback postgres://user:pass@127.0.0.1:PORT URL" >&2; exit 2 ;;
esac

work=$(mktemp -d /tmp/medgraph-drill.XXXXXX)
db="medgraph_drill_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
db_url="$PG_BASE_URL/$db"
server=""
cleanup() {
  local status=$?
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server" 2>/dev/null || true
  fi
  psql -X -q "$PG_BASE_URL/postgres" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 \
    || echo "drill: warning: could not drop database $db" >&2
  if [ "$keep_logs" = true ]; then
    echo "drill: logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PostgreSQL must be up before the drill starts (a previous run may have left it restarting).
for _ in $(seq 1 60); do psql -X -q "$PG_BASE_URL/postgres" -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
psql -X -q -v ON_ERROR_STOP=1 "$PG_BASE_URL/postgres" -c "CREATE DATABASE \"$db\"" >/dev/null

env -i PATH="$PATH" \
  DATABASE_URL="$db_url" \
  BIND_ADDR=127.0.0.1:0 \
  JWT_SECRET="drill-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" \
  LOG_FORMAT=json \
  RUST_LOG=medgraph=info,tower_http=warn \
  AUTH_RATE_LIMIT_PER_MINUTE=100000 \
  AUTH_RATE_LIMIT_BURST=100000 \
  "$binary" serve >"$work/stdout" 2>"$work/server.log" </dev/null &
server=$!

base=""
for _ in $(seq 1 300); do
  line=$(head -n1 "$work/stdout" 2>/dev/null || true)
  if [[ "$line" == *"http://"* ]]; then
    base=${line##* at }
    base=${base%/graphql}
    break
  fi
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
[ -n "$base" ] || { echo "drill: medgraph did not start; its log:" >&2; cat "$work/server.log" >&2; exit 1; }
curl -fsS --max-time 5 "$base/readyz" >/dev/null || { echo "drill: /readyz is not 200 before the drill" >&2; exit 1; }
echo "drill: medgraph at $base on database $db; ${duration}s of load, PostgreSQL $pg_version/$pg_cluster restart at ${restart_at}s" >&2

set +e
python3 - "$base" "$duration" "$restart_at" "$pg_version" "$pg_cluster" "$db_url" "$profile" <<'PY'
import json, subprocess, sys, threading, time, urllib.error, urllib.request, uuid

base, duration, restart_at, pg_version, pg_cluster, db_url, profile = sys.argv[1:8]
duration, restart_at = float(duration), float(restart_at)
TIMEOUT = 12.0          # client bound on every request (the server's own request timeout is 10 s)
THREADS = 4

def post(query, variables, token=None):
    """One GraphQL request: (answered, reply-or-error, seconds)."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(base + "/graphql", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", "Bearer " + token)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            text = response.read()
            status = response.status
    except urllib.error.HTTPError as error:          # an answer, with a non-200 status
        text, status = error.read(), error.code
    except Exception as error:                       # no answer: refused, reset or timed out
        return False, repr(error), time.monotonic() - started
    try:
        reply = json.loads(text)
    except ValueError:
        reply = {"status": status, "raw": text[:200].decode(errors="replace")}
    reply["_status"] = status
    return True, reply, time.monotonic() - started

def ok(reply):
    return reply.get("_status") == 200 and not reply.get("errors") and isinstance(reply.get("data"), dict)

email = "drill-%s@example.com" % uuid.uuid4().hex
answered, reply, _ = post(
    "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
    {"i": {"name": "Drill Operator", "email": email, "password": "restart drill passphrase " + uuid.uuid4().hex[:8]}})
if not (answered and ok(reply)):
    print("drill: could not register: %r" % (reply,), file=sys.stderr)
    sys.exit(1)
token = reply["data"]["register"]["accessToken"]

lock = threading.Lock()
records = []            # (start offset s, kind, answered, ok, seconds, code-or-error)
acknowledged = []
t0 = time.monotonic()
events = {}

def worker(n):
    i = 0
    while time.monotonic() - t0 < duration:
        i += 1
        start = time.monotonic() - t0
        a, r, s = post("mutation($i: CreatePatientInput!) { createPatient(input: $i) { id } }",
                       {"i": {"firstName": "Drill", "lastName": "W%d-%d" % (n, i), "age": 40, "gender": "UNKNOWN"}},
                       token)
        with lock:
            records.append((start, "write", a, a and ok(r), s, detail(a, r)))
            if a and ok(r):
                acknowledged.append(r["data"]["createPatient"]["id"])
        start = time.monotonic() - t0
        a, r, s = post("query { patients(first: 20) { nodes { id } } }", {}, token)
        with lock:
            records.append((start, "read", a, a and ok(r), s, detail(a, r)))
        time.sleep(0.02)

def detail(a, r):
    if not a:
        return "NO ANSWER: " + r
    if ok(r):
        return ""
    errors = r.get("errors") or []
    code = errors[0].get("extensions", {}).get("code") if errors and isinstance(errors[0], dict) else None
    return code or ("UNCLEAR HTTP %s %s" % (r.get("_status"), json.dumps(r)[:200]))

def restart():
    time.sleep(max(0.0, restart_at - (time.monotonic() - t0)))
    events["restart_start"] = time.monotonic() - t0
    done = subprocess.run(["pg_ctlcluster", pg_version, pg_cluster, "restart"], capture_output=True, text=True)
    events["restart_end"] = time.monotonic() - t0
    events["restart_rc"] = done.returncode
    events["restart_output"] = (done.stdout + done.stderr).strip()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5) as response:
                if response.status == 200:
                    events["ready_again"] = time.monotonic() - t0
                    return
        except Exception:
            pass
        time.sleep(0.1)

threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
restarter = threading.Thread(target=restart)
for thread in threads + [restarter]:
    thread.start()
for thread in threads + [restarter]:
    thread.join()

# The acknowledged writes, checked in the database itself.
for _ in range(60):
    found = subprocess.run(["psql", "-X", "-At", db_url, "-c", "SELECT id FROM patients"],
                           capture_output=True, text=True)
    if found.returncode == 0:
        break
    time.sleep(0.5)
stored = set(found.stdout.split()) if found.returncode == 0 else set()
lost = [pid for pid in acknowledged if pid not in stored]

failures = [r for r in records if not r[3]]
unanswered = [r for r in records if not r[2]]
unclear = [r for r in failures if r[2] and r[5].startswith("UNCLEAR")]
codes = {}
for r in failures:
    key = r[5] if r[2] else "no answer"
    codes[key] = codes.get(key, 0) + 1
slowest = max((r[4] for r in records), default=0.0)
rs = events.get("restart_start")
last_failure = max((r[0] + r[4] for r in failures), default=None)
first_success_after = None
if rs is not None:
    after = [r[0] + r[4] for r in records if r[3] and r[1] == "write" and r[0] >= (last_failure if last_failure is not None else rs)]
    first_success_after = min(after) if after else None

print("drill summary (%s build, %d client threads, %.0f s of load)" % (profile, THREADS, duration))
print("  restart:   pg_ctlcluster %s %s restart at %.1f s, took %.1f s (exit %s)"
      % (pg_version, pg_cluster, rs or -1, (events.get("restart_end", 0) - (rs or 0)), events.get("restart_rc")))
if events.get("restart_rc"):
    print("             " + events.get("restart_output", ""))
print("  requests:  %d (%d writes, %d reads); answered %d; slowest %.2f s (client bound %.0f s)"
      % (len(records), sum(r[1] == "write" for r in records), sum(r[1] == "read" for r in records),
         len(records) - len(unanswered), slowest, TIMEOUT))
if failures:
    print("  failures:  %d, between %.2f s and %.2f s: %s"
          % (len(failures), min(r[0] for r in failures), last_failure,
             ", ".join("%s x%d" % kv for kv in sorted(codes.items()))))
else:
    print("  failures:  none (the pool reconnected without a failed request)")
if rs is not None and first_success_after is not None:
    print("  recovery:  first acknowledged write %.2f s after the restart began" % (first_success_after - rs))
if "ready_again" in events:
    print("  readyz:    200 again %.2f s after the restart began" % (events["ready_again"] - rs))
else:
    print("  readyz:    NOT 200 within 60 s of the restart")
print("  writes:    %d acknowledged, %d found in the database, %d lost" % (len(acknowledged), len(acknowledged) - len(lost), len(lost)))

problems = []
if events.get("restart_rc") != 0:
    problems.append("pg_ctlcluster restart failed")
if unanswered:
    problems.append("%d requests got no answer within %.0f s (first: %s)" % (len(unanswered), TIMEOUT, unanswered[0][5]))
if unclear:
    problems.append("%d failed answers carry no extensions.code (first: %s)" % (len(unclear), unclear[0][5]))
if "ready_again" not in events:
    problems.append("/readyz did not recover")
if found.returncode != 0:
    problems.append("could not read the patients back: " + found.stderr.strip())
if lost:
    problems.append("%d acknowledged writes are LOST, e.g. %s" % (len(lost), lost[:3]))
if not acknowledged:
    problems.append("no write was acknowledged at all")
for problem in problems:
    print("  FAILED:    " + problem)
print("drill: %s" % ("FAILED" if problems else "passed"))
sys.exit(1 if problems else 0)
PY
result=$?
set -e

errors=$(grep -c '"level":"ERROR"' "$work/server.log" || true)
warnings=$(grep -c '"level":"WARN"' "$work/server.log" || true)
echo "  server log: $errors ERROR and $warnings WARN lines"
if kill -0 "$server" 2>/dev/null; then
  kill -TERM "$server"
  for _ in $(seq 1 150); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server" 2>/dev/null; then
    echo "  FAILED:    medgraph did not exit within 15 s of SIGTERM" >&2
    result=1
  else
    wait "$server" && echo "  shutdown:  medgraph exited 0 on SIGTERM" || { echo "  FAILED:    medgraph exited non-zero on SIGTERM" >&2; result=1; }
  fi
else
  echo "  FAILED:    medgraph is no longer running" >&2
  result=1
fi
server=""
exit "$result"

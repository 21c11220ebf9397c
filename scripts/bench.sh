#!/usr/bin/env bash
# The benchmark (SPEC §8): builds release, starts Keyward on a fresh data
# directory, seeds it through the CLI and the admin API, and drives each
# case with wrk over loopback at 64 connections, alternating cases over
# several rounds; the mTLS case (HTTPS with a client certificate, which
# wrk cannot present) runs with the workspace's own load generator
# (server/examples/loadgen.rs) against an HTTPS baseline measured by the
# same tool. Prints a table and writes target/bench/results.json.
# Last, a logout storm (N sessions opened and logged out, 1,000,000 by
# default) prints the server's memory before and after: logged-out tokens
# must take a fixed amount of it.
# Usage: scripts/bench.sh [--postgres] [--seconds N] [--rounds N] [--only CASE,...] [--logouts N] [--users N] [--bin PATH]
# (--only runs the named cases and the baselines they compare with;
# --logouts 0 skips the storm; --users N stores N users before the run,
# 1,000,000 by default, for the at-scale cases: 0 skips them; --bin
# measures another build of keyward, such as a copy of the last commit's,
# for a before-and-after on the same day).
HERE="$PWD"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

SECONDS_PER_CASE=8
ROUNDS=3
DB_URL=""
ONLY=""
LOGOUTS=1000000
USERS=1000000
BIN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --postgres) DB_URL="postgres://postgres@127.0.0.1:5432/keyward_bench" ;;
    --seconds) SECONDS_PER_CASE="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --only) ONLY=",$2," ; shift ;;
    --logouts) LOGOUTS="$2"; shift ;;
    --users) USERS="$2"; shift ;;
    --bin) BIN="$(cd "$HERE" && realpath -e -- "$2")" && [ -x "$BIN" ] || { echo "--bin: no program at $2" >&2; exit 2; }; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

apt_install wrk curl openssl
say "building release"
cargo build --release -p server --bin keyward --example loadgen --example logout_storm
BIN="${BIN:-$ROOT/target/release/keyward}"
say "measuring $BIN"
LOADGEN="$ROOT/target/release/examples/loadgen"

DATA="$(mktemp -d)"
PORT=3900
TLS_PORT=3943
BASE="http://127.0.0.1:$PORT"
TLS_BASE="https://127.0.0.1:$TLS_PORT"
export KEYWARD_DATA_DIR="$DATA" KEYWARD_HTTP_ADDR="127.0.0.1:$PORT" KEYWARD_HTTPS_ADDR="127.0.0.1:$TLS_PORT" KEYWARD_LOG="${KEYWARD_LOG:-warn}"
if [ -n "$DB_URL" ]; then
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS keyward_bench WITH (FORCE)" -c "CREATE DATABASE keyward_bench" postgres
  export DATABASE_URL="$DB_URL"
else
  unset DATABASE_URL
fi
# The server's log is kept in target/bench/serve.log (KEYWARD_LOG sets its level).
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null
  [ -n "${PID2:-}" ] && kill "$PID2" 2>/dev/null
  wait 2>/dev/null
  mkdir -p "$ROOT/target/bench" && cp "$DATA/serve.log" "$ROOT/target/bench/serve.log" 2>/dev/null
  rm -rf "$DATA" "${DATA2:-}"
}
trap cleanup EXIT

say "seeding through the CLI"
echo "bench super password" | "$BIN" init --app-name Bench --region eu --admin-username root --admin-password-stdin >/dev/null
echo "bench admin password" | "$BIN" admin create --username bench --password-stdin >/dev/null
KW_ADMIN_TOKEN="$("$BIN" admin issue-token --username bench)"

# Stored users for the at-scale cases (user-0 … user-N-1), written in one
# statement straight into the migrated database: the same rows a session
# stores, a million in seconds rather than through a million requests.
SEEDED=""
if [ "$USERS" -gt 0 ]; then
  say "storing $USERS users"
  seed_started=$(date +%s.%N)
  now_ms=$(( $(date +%s) * 1000 ))
  if [ -n "$DB_URL" ]; then
    psql -q -v ON_ERROR_STOP=1 "$DB_URL" -c "INSERT INTO end_users (id, user_id, display_name, created_at, updated_at)
      SELECT lpad(to_hex($now_ms), 12, '0') || lpad(to_hex(i), 20, '0'), 'user-' || i, 'user-' || i, $now_ms, $now_ms
      FROM generate_series(0, $USERS - 1) AS i" -c "ANALYZE end_users"
  else
    python3 - "$DATA/keyward.db" "$USERS" "$now_ms" <<'PY'
import sqlite3, sys
db, users, now = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
con = sqlite3.connect(db)
with con:
    con.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?) "
        "INSERT INTO end_users (id, user_id, display_name, created_at, updated_at) "
        "SELECT printf('%012x%020x', ?, i), 'user-' || i, 'user-' || i, ?, ? FROM n",
        (users, now, now, now),
    )
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
con.close()
PY
  fi
  SEEDED="stored users: $USERS in $(python3 -c "print(round($(date +%s.%N) - $seed_started, 1))")s (one INSERT … SELECT)"
  say "$SEEDED"
fi
export KW_USERS="$USERS"

"$BIN" serve >"$DATA/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "$BASE/readyz" >/dev/null || { tail -20 "$DATA/serve.log"; say "the server did not become ready in 60 s"; exit 1; }

say "seeding through the admin API"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
KW_API_KEY="$(curl -sf "$BASE/api/v1/settings" -H "Authorization: Bearer $KW_ADMIN_TOKEN" | json apiKey)"
KW_SERVER_KEY="$(curl -sf -X POST "$BASE/api/v1/server-keys" -H "Authorization: Bearer $KW_ADMIN_TOKEN" | json serverKey)"
export KW_API_KEY KW_SERVER_KEY KW_ADMIN_TOKEN
for i in $(seq 0 999); do
  printf '{"userId":"known-%d","deviceId":"seed"}' "$i"
  echo
done | while read -r body; do
  curl -sf -o /dev/null -X POST "$BASE/api/v3/sessions" -H "X-API-Key: $KW_API_KEY" -H 'Content-Type: application/json' -d "$body"
done

say "seeding a client certificate for the mTLS case"
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=bench \
  -keyout "$DATA/client.key" -out "$DATA/client.csr" 2>/dev/null
python3 -c 'import json,sys; print(json.dumps({"name": "bench", "csr": open(sys.argv[1]).read()}))' "$DATA/client.csr" |
  curl -sf -X POST "$BASE/api/v1/certificates" -H "Authorization: Bearer $KW_ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d @- | json pem >"$DATA/client.pem"
MTLS=(--ca "$DATA/tls-cert.pem" --cert "$DATA/client.pem" --key "$DATA/client.key")
mtls_switch() {
  curl -sf -o /dev/null --cacert "$DATA/tls-cert.pem" --cert "$DATA/client.pem" --key "$DATA/client.key" \
    -X PATCH "$TLS_BASE/api/v1/settings" -H "Authorization: Bearer $KW_ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d "$1"
}

mkdir -p "$ROOT/target/bench"
RESULTS="$ROOT/target/bench/raw.txt"
COMMITS="$ROOT/target/bench/commits.txt"
LOOKUPS="$ROOT/target/bench/lookups.txt"
: >"$RESULTS"
: >"$COMMITS"
: >"$LOOKUPS"
wanted() {
  case "$1" in
    baseline) return 0 ;;
    https_baseline) set -- admin_token_get_mtls ;;
  esac
  [ -z "$ONLY" ] || [[ "$ONLY" == *",$1,"* ]]
}

# The batching writer's commit-time histogram from /metrics, as
# "bound=cumulative" pairs: sampled around each case, it shows how much of
# the tail is the database's commit (a slow flush holds every write in it).
commits() {
  curl -sf "$BASE/metrics" | awk '/^keyward_writer_commit_seconds_bucket/ {
    match($0, /le="[^"]+"/); printf "%s=%s,", substr($0, RSTART + 4, RLENGTH - 5), $2 }'
}

# The known-user cache's lookups from /metrics, as "hits,misses,new"
# (a miss reads the database; a new user, certainly not stored, does not).
lookups() {
  curl -sf "$BASE/metrics" | awk '/^keyward_known_user_lookups_total/ {
    if ($0 ~ /result="hit"/) h = $2; else if ($0 ~ /result="miss"/) m = $2; else if ($0 ~ /result="new"/) n = $2 }
    END { printf "%d,%d,%d", h, m, n }'
}

run_case() {
  local name="$1" script="$2"
  wanted "$name" || return 0
  local out before seen
  before="$(commits)"
  seen="$(lookups)"
  out="$(wrk -t2 -c64 -d"${SECONDS_PER_CASE}s" --latency -s "$script" "$BASE" 2>&1)"
  echo "$name $before $(commits)" >>"$COMMITS"
  echo "$name $seen $(lookups)" >>"$LOOKUPS"
  local rps p50 p99 non2xx sock
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  non2xx="$(awk '/Non-2xx/ {print $5}' <<<"$out")"
  sock="$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' <<<"$out")"
  echo "$name ${rps:-0} ${p50:-?} ${p99:-?} $(( ${non2xx:-0} + ${sock:-0} ))" >>"$RESULTS"
}

run_loadgen() {
  local name="$1" path="$2"; shift 2
  wanted "$name" || return 0
  echo "$name $("$LOADGEN" --url "$TLS_BASE$path" --connections 64 --seconds "$SECONDS_PER_CASE" "${MTLS[@]}" "$@")" >>"$RESULTS"
}

if [ "$USERS" -gt 0 ] && { wanted stored_users_80_20 || wanted stored_users_uniform; }; then
  # A server that has run a while holds its regulars: 30 s of the skewed
  # load first (not measured), as a day of traffic would.
  say "warming the known-user cache: 30s of the 80/20 load"
  wrk -t2 -c64 -d30s -s bench/session_hot.lua "$BASE" >/dev/null 2>&1
fi
# New users skip their read once the filter of stored user ids has loaded
# (beside the traffic, at start): measured from then on. A build without
# the filter has no such gauge.
if curl -sf "$BASE/metrics" | grep -q '^keyward_stored_user_filter_bytes'; then
  for _ in $(seq 1 300); do grep -q "stored user ids loaded" "$DATA/serve.log" && break; sleep 0.2; done
  grep -q "stored user ids loaded" "$DATA/serve.log" || say "the stored user ids did not load in 60 s: new users are read first"
fi
say "measuring: $ROUNDS rounds × ${ONLY:-all cases} × ${SECONDS_PER_CASE}s at 64 connections"
for round in $(seq 1 "$ROUNDS"); do
  curl -sf -o /dev/null -X PATCH "$BASE/api/v1/settings" -H "Authorization: Bearer $KW_ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d '{"secureMode":false}'
  run_case baseline bench/baseline.lua
  run_case session_known_user bench/session_known.lua
  run_case session_new_user bench/session_new.lua
  if [ "$USERS" -gt 0 ]; then
    run_case stored_users_uniform bench/session_uniform.lua
    run_case stored_users_80_20 bench/session_hot.lua
  fi
  run_case auth_token_mint_v4 bench/mint.lua
  run_case admin_token_get bench/admin_get.lua
  # The trivial handler is the noisiest figure on a shared host (it is
  # mostly wrk and the kernel): sampled twice a round, the ratios lean on
  # the mean of both.
  run_case baseline bench/baseline.lua
  curl -sf -o /dev/null -X PATCH "$BASE/api/v1/settings" -H "Authorization: Bearer $KW_ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d '{"secureMode":true}'
  run_case secure_mint_and_redeem bench/secure_redeem.lua
  mtls_switch '{"mtls":true}'
  run_loadgen https_baseline /healthz
  run_loadgen admin_token_get_mtls /api/v1/admins/me --header "Authorization: Bearer $KW_ADMIN_TOKEN"
  mtls_switch '{"mtls":false}'
done
RSS_KB="$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")"

# On PostgreSQL: a second instance on the same database (its own data
# directory, the same master key), for how fast a change on one is in
# force on the other, and for the throughput of two instances together.
MULTI=""
if [ -n "$DB_URL" ]; then
  say "a second instance on the same database"
  DATA2="$(mktemp -d)"
  BASE2="http://127.0.0.1:$(( PORT + 1 ))"
  KEYWARD_DATA_DIR="$DATA2" KEYWARD_MASTER_KEY_FILE="$DATA/master.key" KEYWARD_HTTP_ADDR="127.0.0.1:$(( PORT + 1 ))" \
    KEYWARD_HTTPS_ADDR="127.0.0.1:$(( TLS_PORT + 1 ))" "$BIN" serve >"$DATA2/serve.log" 2>&1 &
  PID2=$!
  for _ in $(seq 1 50); do curl -sf "$BASE2/readyz" >/dev/null && break; sleep 0.2; done
  curl -sf -o /dev/null -X PATCH "$BASE/api/v1/settings" -H "Authorization: Bearer $KW_ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d '{"secureMode":false}'
  read -r changes p50 p90 p99 worst < <(python3 bench/propagation.py "$BASE" "$BASE2" 100)
  MULTI="propagation to the other instance, $changes changes (logouts and server-key rotations): p50 ${p50} ms, p90 ${p90} ms, p99 ${p99} ms, worst ${worst} ms"
  # Known-user sessions: one instance at 64 connections, then both at
  # once, 32 connections each (what a load balancer alternating between
  # them sees), one after the other in each round.
  rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
  one=0; two=0
  for round in $(seq 1 "$ROUNDS"); do
    wrk -t2 -c64 -d"${SECONDS_PER_CASE}s" -s bench/session_known.lua "$BASE" >"$DATA/one.txt" 2>&1
    wrk -t1 -c32 -d"${SECONDS_PER_CASE}s" -s bench/session_known.lua "$BASE" >"$DATA/two_a.txt" 2>&1 &
    first=$!
    wrk -t1 -c32 -d"${SECONDS_PER_CASE}s" -s bench/session_known.lua "$BASE2" >"$DATA/two_b.txt" 2>&1
    wait "$first"
    one="$(python3 -c "print($one + $(rps "$DATA/one.txt"))")"
    two="$(python3 -c "print($two + $(rps "$DATA/two_a.txt") + $(rps "$DATA/two_b.txt"))")"
  done
  MULTI="$MULTI
known-user sessions, mean of $ROUNDS rounds: one instance $(python3 -c "print(round($one / $ROUNDS))") req/s, two instances together $(python3 -c "print(round($two / $ROUNDS))") req/s ($(python3 -c "print(round($two / $one, 2))")×)"
fi

STORM=""
if [ "$LOGOUTS" -gt 0 ]; then
  say "logout storm: $LOGOUTS sessions opened and logged out"
  # Sessions without an auth token: secure mode off (the rounds end with it on).
  curl -sf -o /dev/null -X PATCH "$BASE/api/v1/settings" -H "Authorization: Bearer $KW_ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d '{"secureMode":false}'
  rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$PID/status"; }
  filter() { curl -sf "$BASE/metrics" | awk '/^keyward_revocation_filter_bytes/ {printf "%.0f", $2/1048576}'; }
  # In two halves: memory that is bounded stops growing in the second.
  half=$(( LOGOUTS / 2 ))
  before="$(rss)"
  read -r n1 secs1 _ errors1 < <("$ROOT/target/release/examples/logout_storm" --base "$BASE" --api-key "$KW_API_KEY" --tokens "$half")
  middle="$(rss)"
  read -r n2 secs2 _ errors2 < <("$ROOT/target/release/examples/logout_storm" --base "$BASE" --api-key "$KW_API_KEY" --tokens "$(( LOGOUTS - half ))")
  secs="$(python3 -c "print(round($secs1 + $secs2, 1))")"
  STORM="logout storm: $(( n1 + n2 )) logouts in ${secs}s ($(( errors1 + errors2 )) errors); server RSS $before MiB before, $middle MiB after half, $(rss) MiB after all; logout filter $(filter) MiB"
fi

STORM="$STORM" SEEDED="$SEEDED" MULTI="$MULTI" python3 - "$RESULTS" "$RSS_KB" "$ROOT/target/bench/results.json" "${DB_URL:+postgres}" "$COMMITS" "$LOOKUPS" <<'PY'
import json, sys, statistics, platform, os
raw, rss_kb, out, backend, commits_raw, lookups_raw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] or "sqlite", sys.argv[5], sys.argv[6]
cases = {}
for line in open(raw):
    name, rps, p50, p99, errors = line.split()
    cases.setdefault(name, []).append((float(rps), p50, p99, int(errors)))
# Writer commits per case: the histogram's growth while the case ran.
def histogram(text):
    pairs = (p.split("=") for p in text.split(",") if p)
    return {bound: int(n) for bound, n in pairs}
commits = {}
for line in open(commits_raw):
    parts = line.split()
    if len(parts) != 3:
        continue
    name, before, after = parts[0], histogram(parts[1]), histogram(parts[2])
    grown = {b: after[b] - before.get(b, 0) for b in after}
    total = grown.get("+Inf", 0)
    if total == 0:
        continue
    c = commits.setdefault(name, {"commits": 0, "over_10ms": 0, "slowest_at_most_ms": 0.0})
    c["commits"] += total
    c["over_10ms"] += total - grown.get("0.01", total)
    # The smallest bound that holds every commit of the case.
    bounds = sorted((float(b), n) for b, n in grown.items() if b != "+Inf")
    slowest = next((b for b, n in bounds if n == total), float("inf"))
    c["slowest_at_most_ms"] = max(c["slowest_at_most_ms"], slowest * 1000)
# Known-user lookups per case, over all its rounds (the cases that open
# sessions): hits, misses (each a read) and certainly new users.
hits = {}
for line in open(lookups_raw):
    parts = line.split()
    if len(parts) != 3:
        continue
    (h0, m0, n0), (h1, m1, n1) = (map(int, p.split(",")) for p in parts[1:])
    h, m, n = hits.get(parts[0], (0, 0, 0))
    hits[parts[0]] = (h + h1 - h0, m + m1 - m0, n + n1 - n0)
base = statistics.mean(r[0] for r in cases["baseline"])
# Cases measured by the workspace's load generator over HTTPS compare with
# the HTTPS baseline it measured, not with wrk's.
tls_base = statistics.mean(r[0] for r in cases.get("https_baseline", [(0,)]))
rows = []
print(f"\nKeyward benchmark — {backend}, 64 connections, wrk on the same machine ({os.cpu_count()} cores)")
print(f"{'case':28} {'req/s':>10} {'p50':>9} {'p99':>9} {'errors':>7} {'ratio':>6}  {'db commits >10ms':>22} {'cache hits':>10} {'user reads':>10}")
def ms(latency):
    # wrk and loadgen print latencies with a unit: 850.00us, 2.31ms, 1.02s
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if latency.endswith(unit):
            return float(latency[: -len(unit)]) * scale
    return float("nan")
for name, runs in cases.items():
    rps = statistics.mean(r[0] for r in runs)
    # The median round's p50 and the worst round's p99: no flattering.
    p50 = f"{statistics.median(ms(r[1]) for r in runs):.2f}ms"
    p99 = f"{max(ms(r[2]) for r in runs):.2f}ms"
    errors = sum(r[3] for r in runs)
    against = tls_base if name in ("https_baseline", "admin_token_get_mtls") else base
    ratio = rps / against if against else 0
    row = {"case": name, "requests_per_second": round(rps), "p50": p50, "p99": p99, "errors": errors, "ratio_to_baseline": round(ratio, 3)}
    slow = ""
    if name in commits:
        c = commits[name]
        # JSON has no infinity: null means "above the last bucket" (2.5 s).
        row["writer_commits"] = {**c, "slowest_at_most_ms": None if c["slowest_at_most_ms"] == float("inf") else c["slowest_at_most_ms"]}
        worst = c["slowest_at_most_ms"]
        worst = f"all ≤{worst:g}ms" if worst != float("inf") else "some >2.5s"
        slow = f"{c['over_10ms']}/{c['commits']} ({worst})"
    hit = read = ""
    if sum(hits.get(name, (0, 0, 0))) > 0:
        h, m, n = hits[name]
        row["cache_hit_rate"] = round(h / (h + m + n), 3)
        row["user_read_rate"] = round(m / (h + m + n), 3)
        hit = f"{100 * h / (h + m + n):.1f}%"
        read = f"{100 * m / (h + m + n):.1f}%"
    rows.append(row)
    print(f"{name:28} {rps:10.0f} {p50:>9} {p99:>9} {errors:7d} {ratio:6.2f}  {slow:>22} {hit:>10} {read:>10}")
spread = [r[0] for r in cases["baseline"]]
print(f"baseline samples: {min(spread):.0f}–{max(spread):.0f} req/s ({len(spread)}); the host's noise shows there")
print(f"server peak RSS: {rss_kb/1024:.1f} MiB")
if commits:
    print("db commits >10ms: the batching writer's commits slower than 10 ms, of all in the case (its /metrics histogram);")
    print("  a slow commit holds every request in its batch, so these are the database's share of the p99")
for extra in ("SEEDED", "MULTI", "STORM"):
    if os.environ.get(extra):
        print(os.environ[extra])
json.dump({"backend": backend, "connections": 64, "peak_rss_kib": rss_kb, "baseline_samples": spread, "machine": platform.platform(), "cases": rows}, open(out, "w"), indent=2)
print(f"written: {out}")
PY

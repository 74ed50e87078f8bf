#!/usr/bin/env bash
# The load benchmark of wsoauth: loopback only, bounded in time and count. See bench/README.md.
#
#   bash bench/run.sh                     # SQLite (and PostgreSQL when WSOAUTH_BENCH_POSTGRES_URL is set)
#   BENCH_SECONDS=5 BENCH_BIG_TOKENS=0 bash bench/run.sh     # a quicker run without the 1,000,000-token phase
#
# Settings (environment): BENCH_SECONDS (10, each measured run), BENCH_CONCURRENCY (16 connections),
# BENCH_THREADS (1 wrk thread), BENCH_STARTUP_RUNS (5), BENCH_BIG_TOKENS (1000000; 0 skips that phase),
# BENCH_SIGN_SECONDS (5), BENCH_KEEP=1 keeps the work folder, WSOAUTH_BENCH_POSTGRES_URL (an empty database),
# BENCH_ONLY (a space-separated subset of: healthz resource me tasks refresh exchange; the ceilings always run, one
# start-up, no 1,000,000-token phase unless BENCH_BIG_TOKENS is set), for quick comparisons while changing one path.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/wsoauth-target}
export BENCH_SECONDS=${BENCH_SECONDS:-10}
export BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-16}
export BENCH_THREADS=${BENCH_THREADS:-1}
export BENCH_LUA=$ROOT/bench/lua
STARTUP_RUNS=${BENCH_STARTUP_RUNS:-5}
BIG_TOKENS=${BENCH_BIG_TOKENS:-1000000}
SIGN_SECONDS=${BENCH_SIGN_SECONDS:-5}
HELPER=(python3 "$ROOT/bench/helper.py")
BIN=${BENCH_BIN:-$CARGO_TARGET_DIR/release/wsoauth} # BENCH_BIN: another build of the server, to compare two
SIGN=$CARGO_TARGET_DIR/release/sign
TRIVIAL=$CARGO_TARGET_DIR/release/trivial

say() { printf '\n== %s\n' "$*"; }
# Measures refresh as NAME: chains of refresh tokens, each from its own grant; twice as many as connections (wrk
# asks its script for one request at start that it never sends: spares keep every connection busy). First a 2 s
# warm-up with chains of its own, not counted (like the read scenarios' warm-up): connections, caches, and the
# database pages a rotation touches (with 1,000,000 tokens, PostgreSQL reads the digest index into its shared
# buffers for seconds after a restart or a bulk load; a database in use has them). Uses the caller's `dir`, `pid`
# and `results`.
measure_refresh() {
    "${HELPER[@]}" tokens "$BASE" $((2 * BENCH_CONCURRENCY)) "$dir/warm-up-access" "$dir/warm-up-chains"
    BENCH_SECONDS=2 BENCH_REFRESH_TOKENS=$dir/warm-up-chains "${HELPER[@]}" measure warm-up "$pid" "$BASE/" \
        refresh.lua "$dir/warm-up.jsonl" >/dev/null
    "${HELPER[@]}" tokens "$BASE" $((2 * BENCH_CONCURRENCY)) "$dir/chain-access" "$dir/chains"
    BENCH_REFRESH_TOKENS=$dir/chains "${HELPER[@]}" measure "$1" "$pid" "$BASE/" refresh.lua "$results"
}
# Measures code exchange as NAME: enough fresh codes for two cores signing flat out for the whole run, minted just
# before. Uses the caller's `dir`, `pid`, `results` and `sign_rate`.
measure_exchange() {
    local codes
    codes=$(python3 -c "import math; print(math.ceil(2 * $sign_rate * $BENCH_SECONDS * 1.1))")
    echo "  minting $codes codes ..."
    "${HELPER[@]}" codes "$BASE" "$codes" "$dir/codes"
    BENCH_CODES=$dir/codes "${HELPER[@]}" measure "$1" "$pid" "$BASE/" exchange.lua "$results"
}
wanted() { # SCENARIO: whether BENCH_ONLY (empty: everything) names it
    [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]
}
if [ -n "${BENCH_ONLY:-}" ]; then STARTUP_RUNS=1 BIG_TOKENS=${BENCH_BIG_TOKENS:-0}; fi

# ---- tools ---------------------------------------------------------------------------------------------------
# wrk (Debian's package): installs in seconds instead of a multi-minute `cargo install oha` on 2 cores, its C event
# loop costs the shared CPU less than the server it measures, and its Lua hooks can vary each request (a fresh
# code per exchange, the next refresh token of a chain), so one tool measures every scenario and the ceiling.
if ! command -v wrk >/dev/null; then
    say "installing wrk (apt-get)"
    if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq wrk >/dev/null
fi
command -v python3 >/dev/null || { echo "bench/run.sh: python3 is needed" >&2; exit 1; }

say "building (release): the server, and bench/'s trivial route and signing loop"
cargo build --release -p wsoauth-server --bin wsoauth
cargo build --release --locked --manifest-path bench/Cargo.toml

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wsoauth-bench.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

export BENCH_EMAIL=owner@bench.test BENCH_PASSWORD=bench-owner-password
export BENCH_REDIRECT=http://127.0.0.1:9/cb BENCH_REDIRECT_FORM=http%3A%2F%2F127.0.0.1%3A9%2Fcb
export BENCH_SCOPE=users_read,projects_read,tasks_read
export WSOAUTH_BOOTSTRAP_EMAIL=$BENCH_EMAIL WSOAUTH_BOOTSTRAP_PASSWORD=$BENCH_PASSWORD
unset WSOAUTH_CONFIG WSOAUTH_LISTEN WSOAUTH_PUBLIC_URL WSOAUTH_DATABASE_URL

echo "machine: $(nproc) cores, $(uptime | sed 's/.*load average/load average/')"
echo "runs: ${BENCH_SECONDS} s each, ${BENCH_CONCURRENCY} connections, ${BENCH_THREADS} wrk thread(s)"

SERVER_PID=
start_server() { # URL LOG PORT: the server for the load; sets SERVER_PID and BASE
    BASE=http://127.0.0.1:$3
    # the default log level (info): the access line of every request is part of what is measured
    "$BIN" serve --listen "127.0.0.1:$3" --database-url "$1" >"$2.out" 2>"$2" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    "${HELPER[@]}" wait "$BASE" "$SERVER_PID"
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}
memory() { # PID: "VmRSS kB VmHWM kB"
    awk '/^VmRSS|^VmHWM/ {printf "%s %s kB  ", $1, $2}' "/proc/$1/status"
}
requests() { # FILE PATH TOKENS_FILE: one GET a line, each with the next token
    awk -v path="$2" '{print path "\t" $0}' "$3" >"$1"
}

bench_backend() { # LABEL DATABASE_URL SQLITE_FILE (empty for a server database)
    local label=$1 url=$2 file=$3 results=$WORK/$1.jsonl dir=$WORK/$1
    mkdir -p "$dir"
    : >"$results"
    say "$label: start-up (process start → first 200 on /.well-known/oauth-authorization-server)"
    local first
    if ! first=$("${HELPER[@]}" startup "$BIN" "$url" 1 2>"$dir/first-start.err"); then
        echo "skipped: the server refused $label ($(grep -m1 -i 'wsoauth:\|error' "$dir/first-start.err" || tail -1 "$dir/first-start.err"))"
        return 0
    fi
    local warm
    warm=$("${HELPER[@]}" startup "$BIN" "$url" "$STARTUP_RUNS")
    "${HELPER[@]}" record "$results" "$(python3 -c '
import json, statistics, sys
first, warm = json.loads(sys.argv[1])[0], json.loads(sys.argv[2])
ms = [r["ms"] for r in warm]; rss = [r["rss_kb"] for r in warm]
print(json.dumps({"name": "start-up", "kind": "info", "first_ms": first["ms"], "ms": ms,
    "median_ms": statistics.median(ms), "idle_rss_kb": statistics.median(rss),
    "start_hwm_kb": max(r["hwm_kb"] for r in warm),
    "text": "first start (empty database: schema, key generation, bootstrap) %.0f ms; then %s ms (median %.0f); "
            "idle RSS %.1f MB (1 s after start), peak during start %.1f MB" % (first["ms"], ms,
            statistics.median(ms), statistics.median(rss) / 1024, max(r["hwm_kb"] for r in warm) / 1024)}))
' "$first" "$warm")"
    tail -1 "$results" | python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])'

    say "$label: preparing (admin CLI: app, demo data; pages: sign-in, consent, codes, tokens)"
    local app
    app=$(WSOAUTH_LOG=warn "$BIN" app create --database-url "$url" --name "Bench" \
        --redirect-uri "$BENCH_REDIRECT" --json)
    BENCH_CLIENT_ID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$app")
    BENCH_CLIENT_SECRET=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$app")
    export BENCH_CLIENT_ID BENCH_CLIENT_SECRET
    local seeded
    seeded=$(WSOAUTH_LOG=warn "$BIN" demo seed --database-url "$url")
    echo "${seeded%%$'\n'*}"
    # one port for every start of this database: the issuer (and so every token) is tied to it
    local port
    port=$("${HELPER[@]}" port)
    start_server "$url" "$dir/server.log" "$port"
    local pid=$SERVER_PID
    echo "server pid $pid on $BASE; idle: $(memory "$pid")"
    "${HELPER[@]}" tokens "$BASE" 200 "$dir/access" "$dir/refresh"
    local project
    project=$("${HELPER[@]}" project "$BASE" "$(head -1 "$dir/access")")
    project=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id_project"])' "$project")
    requests "$dir/resource.txt" "/oauth2/resource" "$dir/access"
    requests "$dir/me.txt" "/api/oauth2?action=me" "$dir/access"
    requests "$dir/tasks.txt" "/api/oauth2?action=get_tasks&id_project=$project" "$dir/access"
    printf '/healthz\n' >"$dir/healthz.txt"
    printf '/\n' >"$dir/trivial.txt"
    echo "200 grants (their access tokens are used in turn), project $project for get_tasks"

    say "$label: ceilings"
    local key=$dir/key.der sign_rate
    if [ -n "$file" ]; then
        "${HELPER[@]}" key "$file" "$key"
        local signed
        signed=$("$SIGN" "$key" "$(head -1 "$dir/access")" "$SIGN_SECONDS")
        sign_rate=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sign_per_s"])' "$signed")
        "${HELPER[@]}" record "$results" "$(python3 -c '
import json, sys
s = json.loads(sys.argv[1])
print(json.dumps({"name": "ceiling: RS256 sign/core", "kind": "ceiling", "rps": s["sign_per_s"],
    "sign_us": s["sign_us"], "verify_per_s": s["verify_per_s"], "sign_us_all_cores": s["sign_us_all_cores"],
    "server_cores": 1.0}))' "$signed")"
        echo "  RS256 on one core: $signed"
    else
        local ceiling # SQLite's, measured on the same machine minutes before
        ceiling=$(grep -m1 '"ceiling: RS256 sign/core"' "$WORK/sqlite.jsonl")
        sign_rate=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["rps"])' "$ceiling")
        "${HELPER[@]}" record "$results" "$ceiling"
    fi
    local tport
    tport=$("${HELPER[@]}" port)
    "$TRIVIAL" "127.0.0.1:$tport" >/dev/null &
    local tpid=$!
    PIDS+=("$tpid")
    "${HELPER[@]}" wait "http://127.0.0.1:$tport" "$tpid" 2>/dev/null || sleep 0.5
    BENCH_REQUESTS=$dir/trivial.txt "${HELPER[@]}" measure "ceiling: trivial axum" "$tpid" "http://127.0.0.1:$tport/" get.lua "$results"
    kill "$tpid"; wait "$tpid" 2>/dev/null || true

    say "$label: scenarios"
    local name
    for name in healthz resource me tasks; do # a short warm-up first: connections, caches
        wanted "$name" || continue
        BENCH_SECONDS=2 BENCH_REQUESTS=$dir/$name.txt "${HELPER[@]}" measure warm-up "$pid" "$BASE/" get.lua "$dir/warm-up.jsonl" >/dev/null
    done
    wanted healthz && BENCH_REQUESTS=$dir/healthz.txt "${HELPER[@]}" measure "/healthz (reference)" "$pid" "$BASE/" get.lua "$results"
    wanted resource && BENCH_REQUESTS=$dir/resource.txt "${HELPER[@]}" measure "/oauth2/resource" "$pid" "$BASE/" get.lua "$results"
    wanted me && BENCH_REQUESTS=$dir/me.txt "${HELPER[@]}" measure "api me" "$pid" "$BASE/" get.lua "$results"
    wanted tasks && BENCH_REQUESTS=$dir/tasks.txt "${HELPER[@]}" measure "api get_tasks" "$pid" "$BASE/" get.lua "$results"
    if wanted refresh; then # (not `&&`: set -e would not apply inside the function)
        measure_refresh "refresh"
    fi
    if wanted exchange; then
        measure_exchange "code exchange"
    fi
    echo "  server memory after the load: $(memory "$pid")"
    "${HELPER[@]}" record "$results" "$(awk '/^VmRSS|^VmHWM/ {v[$1]=$2} END {printf "{\"name\": \"memory\", \"kind\": \"info\", \"rss_kb\": %d, \"hwm_kb\": %d, \"text\": \"after the load: RSS %.1f MB, peak (VmHWM) %.1f MB\"}", v["VmRSS:"], v["VmHWM:"], v["VmRSS:"]/1024, v["VmHWM:"]/1024}' "/proc/$pid/status")"

    if [ "$BIG_TOKENS" -gt 0 ]; then
        stop_server
        say "$label: $BIG_TOKENS stored tokens"
        if [ -n "$file" ]; then
            "${HELPER[@]}" grow "$file" "$BIG_TOKENS"
        else
            "${HELPER[@]}" grow-postgres "$url" "$BIG_TOKENS"
        fi
        local big_start
        big_start=$("${HELPER[@]}" startup "$BIN" "$url" 3)
        echo "  start-up with them: $big_start"
        "${HELPER[@]}" record "$results" "$(python3 -c '
import json, statistics, sys
runs = json.loads(sys.argv[1]); ms = [r["ms"] for r in runs]
print(json.dumps({"name": "start-up (1M tokens)", "kind": "info", "ms": ms, "median_ms": statistics.median(ms),
    "text": "%s ms (median %.0f)" % (ms, statistics.median(ms))}))' "$big_start")"
        start_server "$url" "$dir/server-big.log" "$port"
        pid=$SERVER_PID
        for name in resource me; do
            BENCH_SECONDS=2 BENCH_REQUESTS=$dir/$name.txt "${HELPER[@]}" measure warm-up "$pid" "$BASE/" get.lua "$dir/warm-up.jsonl" >/dev/null
        done
        BENCH_REQUESTS=$dir/resource.txt "${HELPER[@]}" measure "/oauth2/resource (1M tokens)" "$pid" "$BASE/" get.lua "$results"
        BENCH_REQUESTS=$dir/me.txt "${HELPER[@]}" measure "api me (1M tokens)" "$pid" "$BASE/" get.lua "$results"
        if wanted refresh; then
            measure_refresh "refresh (1M tokens)"
        fi
        if wanted exchange; then
            measure_exchange "code exchange (1M tokens)"
        fi
    fi
    stop_server
    say "$label: results"
    "${HELPER[@]}" report "$results"
}

bench_backend sqlite "sqlite://$WORK/sqlite/wsoauth.db" "$WORK/sqlite/wsoauth.db"
if [ -n "${WSOAUTH_BENCH_POSTGRES_URL:-}" ]; then
    bench_backend postgres "$WSOAUTH_BENCH_POSTGRES_URL" ""
else
    say "postgres: skipped (set WSOAUTH_BENCH_POSTGRES_URL to an empty database to measure it too)"
fi
echo
echo "machine at the end: $(uptime | sed 's/.*load average/load average/')"

#!/usr/bin/env bash
# Where a running server's CPU goes: samples it with `perf record -e cpu-clock` (a software clock: this machine's
# virtual CPUs expose no hardware counters) for SECONDS and prints the share of each part of the stack, from the
# symbols of the release binary (no debug info or frame pointers needed).
#
#   bash bench/profile.sh PID [SECONDS]        # while a load runs, e.g. a wrk run from bench/run.sh
#
# Leaves the raw profile in $TMPDIR/wsoauth-profile.data for `perf report -i ...`.
set -euo pipefail
pid=$1
seconds=${2:-5}
data=${TMPDIR:-/tmp}/wsoauth-profile.data
command -v perf >/dev/null || { echo "bench/profile.sh: perf is needed (Debian: linux-perf)" >&2; exit 1; }
perf record -q -e cpu-clock -F 2000 -p "$pid" -o "$data" -- sleep "$seconds" 2>/dev/null
perf report -i "$data" --no-children --sort dso,sym -g none --percent-limit 0 2>/dev/null | python3 -c '
import re, sys
# first match wins
parts = [
    ("RS256 signing/verifying (aws-lc bignum)", r"aws_lc|bn_|mulx4x|sqrx8x|__bn_"),
    ("thread hand-offs (scheduler, futex, wake-ups)", r"\[k\] (finish_task_switch|_raw_spin_unlock_irq|__schedule|schedule|futex|try_to_wake_up|wake_up|irqentry_exit|exit_to_user_mode|__rseq|switch_)|\] syscall$|pthread_cond|park"),
    ("TCP over loopback (kernel)", r"\[k\] (tcp_|__tcp|ip_|__ip|__dev_queue|net_rx|__netif|process_backlog|sock_|__inet|skb|__skb|kfree_skb|inet_|loopback|__napi|napi|validate_xmit|dev_hard|sk_|release_sock|lock_sock)"),
    ("other kernel (syscalls, files, memory)", r"\[k\]"),
    ("SQLite", r"sqlite3|pcache|wal[A-Z]|btree|Btree|vdbe|Vdbe|yy_|unix[A-Z]|pager|Pager|sqlite"),
    ("sqlx driver and its channels", r"sqlx|flume"),
    ("allocator (malloc/free)", r"malloc|_int_free|cfree|unlink_chunk|realloc|\] free$|tcache"),
    ("logging (tracing, fmt, ANSI)", r"tracing|nu_ansi_term|core::fmt|sharded_slab|fmt::"),
    ("HTTP (hyper, axum, tower, http)", r"hyper|axum|tower|http::|httparse|matchit"),
    ("JSON (serde_json)", r"serde_json|serde::"),
    ("tokio runtime", r"tokio|mio::|epoll"),
    ("memcpy/memcmp/memset", r"mem(move|cpy|cmp|set)"),
    ("metrics", r"metrics"),
]
totals = {name: 0.0 for name, _ in parts}
totals["other (the server\x27s own code, libc, ...)"] = 0.0
for line in sys.stdin:
    m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+(.*)$", line)
    if not m:
        continue
    share, dso, sym = float(m.group(1)), m.group(2), m.group(3).strip()
    text = f"{dso} {sym}"
    for name, pattern in parts:
        if re.search(pattern, text):
            totals[name] += share
            break
    else:
        totals["other (the server\x27s own code, libc, ...)"] += share
for name, share in sorted(totals.items(), key=lambda kv: -kv[1]):
    if share >= 0.5:
        print(f"{share:5.1f}%  {name}")
'
echo "($(perf report -i "$data" --stdio 2>/dev/null | awk '/^# Samples/ {print $3; exit}') samples at 2 kHz over $seconds s)"

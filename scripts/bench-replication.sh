#!/usr/bin/env bash
# Replication to PostgreSQL, ROUNDS rounds (default 3), in one run on this machine: a PostgreSQL
# 15 cluster of its own (initdb/pg_ctl as the postgres user, 127.0.0.1, fsync on), then each
# round: PostgreSQL's one-row commit latency; a local-only daemon (1 client for 3 s, 64 clients
# for 5 s); a daemon shipping to PostgreSQL with a standby following it (the same loads, the
# standby's lag sampled from its getinfo during the 64-client load).
# Usage: scripts/bench-replication.sh [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
ensure_system_packages postgresql
build_release "$root"
rounds=${1:-3}
bin="$root/target/release"
pgbin=/usr/lib/postgresql/15/bin
work=$(mktemp -d /tmp/bench-replication.XXXXXX)
chown postgres:postgres "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
    pkill -TERM -f "invoiced .*--data-dir $work" || true
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/db" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
runuser -u postgres -- "$pgbin/initdb" -D "$work/db" -A trust -U postgres >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/db" -o "-p $port -k $work -c listen_addresses=127.0.0.1" -l "$work/pg.log" -w start >/dev/null
url="postgres://postgres@127.0.0.1:$port/postgres"
results="$work/results.jsonl"
row() { sed "s/^/{\"kind\":\"$1\",\"data\":/; s/\$/}/" >> "$results"; }
start() { # start NAME COMMAND ARGS...: a daemon on $work/NAME, waits for its socket, prints its pid
    local name=$1; shift
    rm -f "$work/$name/lightning-rpc"
    "$bin/invoiced" "$@" --data-dir "$work/$name" --network regtest --log-level warn >/dev/null 2>"$work/$name.log" &
    for _ in $(seq 1 400); do [ -S "$work/$name/lightning-rpc" ] && break; sleep 0.05; done
    echo $!
}
for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds" >&2
    "$bin/invoiced-bench" pg-commit --url "$url" --count 2000 | row pg
    rm -rf "$work/local" "$work/primary" "$work/standby"
    runuser -u postgres -- psql -q -h 127.0.0.1 -p "$port" -U postgres -c "DROP TABLE IF EXISTS invoiced_log, invoiced_lease" >/dev/null
    mkdir -p "$work/local" "$work/primary" "$work/standby"
    head -c 32 /dev/urandom > "$work/primary/hsm_secret"; cp "$work/primary/hsm_secret" "$work/standby/hsm_secret"
    pid=$(start local serve)
    "$bin/invoiced-bench" load --rpc-file "$work/local/lightning-rpc" --clients 1 --seconds 3 | row local1
    "$bin/invoiced-bench" load --rpc-file "$work/local/lightning-rpc" --clients 64 --seconds 5 --daemon-pid "$pid" | row local64
    kill -TERM "$pid"; wait "$pid" || true
    pid=$(start primary serve --replicate-to "$url")
    spid=$(start standby standby --replicate-from "$url")
    "$bin/invoiced-bench" load --rpc-file "$work/primary/lightning-rpc" --clients 1 --seconds 3 | row ship1
    "$bin/invoiced-bench" lag --rpc-file "$work/standby/lightning-rpc" --seconds 5 > "$work/lag.json" &
    lagpid=$!
    "$bin/invoiced-bench" load --rpc-file "$work/primary/lightning-rpc" --clients 64 --seconds 5 --daemon-pid "$pid" | row ship64
    wait "$lagpid"; row lag < "$work/lag.json"
    kill -TERM "$pid" "$spid"; wait "$pid" || true; wait "$spid" || true
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def fig(kind, key):
    v = [r["data"][key] for r in rows if r["kind"] == kind]
    return statistics.median(v), min(v), max(v)
def cell(kind, key, fmt):
    m, lo, hi = fig(kind, key)
    return f"{fmt.format(m)} ({fmt.format(lo)} - {fmt.format(hi)})"
print(f"rounds: {len([r for r in rows if r['kind']=='pg'])}\n")
print("| figure | median (min - max) |\n| --- | --- |")
print(f"| PostgreSQL one-row commit p50 (ms) | {cell('pg', 'commit_p50_ms', '{:.3f}')} |")
print(f"| 1 client p50, local only (ms) | {cell('local1', 'p50_ms', '{:.3f}')} |")
print(f"| 1 client p50, shipping (ms) | {cell('ship1', 'p50_ms', '{:.3f}')} |")
print(f"| 64 clients, local only (invoices/s) | {cell('local64', 'invoices_per_s', '{:,.0f}')} |")
print(f"| 64 clients, shipping, a standby following (invoices/s) | {cell('ship64', 'invoices_per_s', '{:,.0f}')} |")
print(f"| 64 clients p99, local / shipping (ms) | {cell('local64', 'p99_ms', '{:.2f}')} / {cell('ship64', 'p99_ms', '{:.2f}')} |")
print(f"| standby lag under the 64-client load, p50 / p99 / max (ms) | {cell('lag', 'lag_p50_ms', '{:.0f}')} / {cell('lag', 'lag_p99_ms', '{:.0f}')} / {cell('lag', 'lag_max_ms', '{:.0f}')} |")
l64, s64 = fig('local64', 'invoices_per_s')[0], fig('ship64', 'invoices_per_s')[0]
l1, s1, c1 = fig('local1', 'p50_ms')[0], fig('ship1', 'p50_ms')[0], fig('pg', 'commit_p50_ms')[0]
print(f"\n- shipping / local-only at 64 clients: {s64 / l64:.0%} (goal >= 50%)")
print(f"- 1-client p50 {s1:.3f} ms vs local {l1:.3f} + commit {c1:.3f} + 0.3 = {l1 + c1 + 0.3:.3f} ms")
PY

#!/usr/bin/env bash
# Measures invoiced against this machine's limits, in one run: ROUNDS rounds (default 5) of
#   limits (raw sign+encode on 1 and 2 threads, raw fdatasync, RocksDB sync put) on this disk,
#   then the real daemon over its socket with 1 client and with 64 clients,
# and prints the median and min-max of each figure. Usage: scripts/bench.sh [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
build_release "$root"
rounds=${1:-5}
bin="$root/target/release"
work=$(mktemp -d "${BENCH_DIR:-$root/target}/bench.XXXXXX")
trap 'pkill -TERM -f "invoiced serve --data-dir $work" || true; rm -rf "$work"' EXIT
results="$work/results.jsonl"
for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds" >&2
    "$bin/invoiced-bench" limits --dir "$work/probe" --seconds 2 | sed 's/^/{"kind":"limits","data":/; s/$/}/' >> "$results"
    rm -rf "$work/data"
    "$bin/invoiced" serve --data-dir "$work/data" --network regtest --log-level warn &
    pid=$!
    for _ in $(seq 1 200); do [ -S "$work/data/lightning-rpc" ] && break; sleep 0.05; done
    "$bin/invoiced-bench" load --rpc-file "$work/data/lightning-rpc" --clients 1 --seconds 3 | sed 's/^/{"kind":"load1","data":/; s/$/}/' >> "$results"
    "$bin/invoiced-bench" load --rpc-file "$work/data/lightning-rpc" --clients 64 --seconds 5 --daemon-pid "$pid" | sed 's/^/{"kind":"load64","data":/; s/$/}/' >> "$results"
    kill -TERM "$pid"; wait "$pid"
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def fig(kind, key):
    v = [r["data"][key] for r in rows if r["kind"] == kind]
    return statistics.median(v), min(v), max(v)
def show(label, kind, key, fmt="{:,.0f}"):
    m, lo, hi = fig(kind, key)
    print(f"| {label} | {fmt.format(m)} | {fmt.format(lo)} - {fmt.format(hi)} |")
    return m
print(f"rounds: {len([r for r in rows if r['kind']=='limits'])}\n")
print("| figure | median | min - max |\n| --- | --- | --- |")
s1 = show("raw build+sign+encode, 1 thread (/s)", "limits", "raw_sign_encode_1_thread_per_s")
s2 = show("raw build+sign+encode, 2 threads (/s)", "limits", "raw_sign_encode_2_threads_per_s")
f50 = show("raw fdatasync p50 (ms)", "limits", "fdatasync_p50_ms", "{:.3f}")
show("raw fdatasync p99 (ms)", "limits", "fdatasync_p99_ms", "{:.3f}")
show("RocksDB sync put p50 (ms)", "limits", "rocksdb_sync_put_p50_ms", "{:.3f}")
r1 = show("daemon, 1 client: invoices/s", "load1", "invoices_per_s")
l1 = show("daemon, 1 client: p50 latency (ms)", "load1", "p50_ms", "{:.3f}")
show("daemon, 1 client: p99 latency (ms)", "load1", "p99_ms", "{:.3f}")
r64 = show("daemon, 64 clients: invoices/s", "load64", "invoices_per_s")
show("daemon, 64 clients: p50 latency (ms)", "load64", "p50_ms", "{:.3f}")
show("daemon, 64 clients: p99 latency (ms)", "load64", "p99_ms", "{:.3f}")
show("daemon, 64 clients: max latency (ms)", "load64", "max_ms", "{:.3f}")
def cpu(label, pick):
    v = [pick(r["data"]["cpu"]) for r in rows if r["kind"] == "load64"]
    print(f"| {label} | {statistics.median(v):.1f} | {min(v):.1f} - {max(v):.1f} |")
cpu("64 clients: daemon CPU per invoice (us)", lambda c: c["daemon_us_per_invoice"])
by = rows[-1]["data"]["cpu"]["daemon_us_per_invoice_by_thread"] if rows else {}
for name in sorted(by):
    cpu(f"64 clients: thread {name}, CPU per invoice (us)", lambda c, n=name: c["daemon_us_per_invoice_by_thread"].get(n, 0.0))
cpu("64 clients: load tool CPU per invoice (us)", lambda c: c["load_tool_us_per_invoice"])
print()
print(f"- 64 clients / raw 2-thread sign rate: {r64 / s2:.0%}")
print(f"- 64 clients / Core Lightning's 66 invoices/s: {r64 / 66:,.0f}x")
print(f"- 1 client p50 minus raw fdatasync p50: {l1 - f50:+.3f} ms")
PY

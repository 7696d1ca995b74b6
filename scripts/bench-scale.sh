#!/usr/bin/env bash
# Measures invoiced at scale, ROUNDS rounds (default 5), and prints the median and min-max:
#   - 10,000 invoices: `listinvoices` of all of them over the socket;
#   - 1,000,000 invoices: lookups by label and by payment hash, start-up with the checkpoint
#     (time until the socket accepts, peak and steady RSS), start-up replaying the whole log,
#     the daemon's replay in process against a raw RocksDB iterate + decode of the same log.
# The data dirs are filled once (real signed invoices through the log's group commit) under
# BENCH_DIR (default target/bench-scale) and kept for the next run.
# Usage: scripts/bench-scale.sh [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
build_release "$root"
rounds=${1:-5}
bin="$root/target/release"
work=${BENCH_DIR:-$root/target/bench-scale}
mkdir -p "$work"
k10="$work/k10" m1="$work/m1"
trap 'pkill -TERM -f "invoiced serve --data-dir $work" || true' EXIT
[ -d "$k10/events" ] || "$bin/invoiced-bench" fill --data-dir "$k10" --count 10000 >&2
[ -d "$m1/events" ] || "$bin/invoiced-bench" fill --data-dir "$m1" --count 1000000 >&2
results=$(mktemp)

serve() { # serve DIR: starts the daemon and waits for its socket
    rm -f "$1/lightning-rpc"
    "$bin/invoiced" serve --data-dir "$1" --network regtest --log-level warn &
    for _ in $(seq 1 500); do [ -S "$1/lightning-rpc" ] && return; sleep 0.02; done
    echo "daemon did not start" >&2; exit 1
}
stop() { pkill -TERM -f "invoiced serve --data-dir $1" || true; wait || true; }
row() { sed "s/^/{\"kind\":\"$1\",\"data\":/; s/\$/}/" >> "$results"; }

for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds" >&2
    serve "$k10"
    "$bin/invoiced-bench" list --rpc-file "$k10/lightning-rpc" --repeat 5 | row list10k
    stop "$k10"
    serve "$m1"
    "$bin/invoiced-bench" list --rpc-file "$m1/lightning-rpc" --lookups-only | row lookups1m
    stop "$m1"
    "$bin/invoiced-bench" startup --data-dir "$m1" | row startup_checkpoint
    "$bin/invoiced-bench" raw-replay --data-dir "$m1" | row raw_replay
    "$bin/invoiced-bench" replay --data-dir "$m1" | row replay
    "$bin/invoiced-bench" startup --data-dir "$m1" --drop-checkpoint | row startup_full
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def fig(kind, key):
    v = [r["data"][key] for r in rows if r["kind"] == kind]
    return statistics.median(v), min(v), max(v)
def show(label, kind, key, fmt="{:,.3f}"):
    m, lo, hi = fig(kind, key)
    print(f"| {label} | {fmt.format(m)} | {fmt.format(lo)} - {fmt.format(hi)} |")
    return m
print(f"rounds: {len([r for r in rows if r['kind']=='replay'])}\n")
print("| figure | median | min - max |\n| --- | --- | --- |")
show("listinvoices, 10,000 invoices (ms)", "list10k", "listinvoices_p50_ms")
show("lookup by label at 1M, p50 of 200 (ms)", "lookups1m", "lookup_label_p50_ms")
show("lookup by payment hash at 1M, p50 of 200 (ms)", "lookups1m", "lookup_hash_p50_ms")
show("start-up with checkpoint, 1M (s)", "startup_checkpoint", "startup_s")
show("peak RSS, start-up with checkpoint (MiB)", "startup_checkpoint", "peak_rss_mib", "{:,.0f}")
show("RSS once serving 1M (MiB)", "startup_checkpoint", "rss_mib", "{:,.0f}")
show("clean shutdown, writes the checkpoint (s)", "startup_checkpoint", "shutdown_s")
show("start-up replaying the whole log, 1M (s)", "startup_full", "startup_s")
show("peak RSS, start-up replaying (MiB)", "startup_full", "peak_rss_mib", "{:,.0f}")
raw = show("raw iterate + decode (records/s)", "raw_replay", "records_per_s", "{:,.0f}")
rep = show("daemon replay in process (records/s)", "replay", "records_per_s", "{:,.0f}")
print(f"\n- replay / raw iterate+decode: {rep / raw:.0%}")
PY

#!/usr/bin/env bash
# What the metrics cost on the invoice path, in one run: ROUNDS rounds (default 6) of 64 clients
# for 5 s against this tree's release daemon, alternately without metrics and with
# `--metrics-listen` while a scraper reads /metrics every 100 ms (150 times Prometheus' usual
# rate). Prints each run, then the medians and min-max of invoices/s and of the daemon's CPU per
# invoice. Usage: scripts/bench-metrics.sh [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
build_release "$root"
rounds=${1:-6}
bin="$root/target/release"
work=$(mktemp -d "${BENCH_DIR:-$root/target}/bench-metrics.XXXXXX")
cleanup() { kill -TERM "${pid:-}" "${scraper:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
results="$work/results.jsonl"
for r in $(seq 1 "$rounds"); do
    for mode in off on; do
        rm -rf "$work/data"
        extra=()
        [ "$mode" = on ] && extra=(--metrics-listen "127.0.0.1:$port")
        "$bin/invoiced" serve --data-dir "$work/data" --network regtest --log-level warn "${extra[@]}" & pid=$!
        for _ in $(seq 1 500); do [ -S "$work/data/lightning-rpc" ] && break; sleep 0.02; done
        scraper=""
        if [ "$mode" = on ]; then
            (while true; do curl -s -o /dev/null "http://127.0.0.1:$port/metrics" || true; sleep 0.1; done) & scraper=$!
        fi
        out=$("$bin/invoiced-bench" load --rpc-file "$work/data/lightning-rpc" --clients 64 --seconds 5 --cpu "invoiced=$pid")
        [ -n "$scraper" ] && { kill "$scraper"; wait "$scraper" 2>/dev/null || true; }
        kill -TERM "$pid"; wait "$pid" || true
        echo "{\"mode\":\"$mode\",\"data\":$out}" >> "$results"
        echo "round $r metrics $mode: $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["invoices_per_s"]), "/s,", round(d["cpu_us_per_call_by_process"]["invoiced"], 1), "us of daemon CPU per invoice")')" >&2
    done
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| metrics | invoices/s, median [min-max] | daemon CPU per invoice (us), median [min-max] |\n| --- | --- | --- |")
for mode in ("off", "on"):
    rate = [r["data"]["invoices_per_s"] for r in rows if r["mode"] == mode]
    cpu = [r["data"]["cpu_us_per_call_by_process"]["invoiced"] for r in rows if r["mode"] == mode]
    print(f"| {mode} | {statistics.median(rate):,.0f} [{min(rate):,.0f}-{max(rate):,.0f}] | {statistics.median(cpu):.1f} [{min(cpu):.1f}-{max(cpu):.1f}] |")
PY

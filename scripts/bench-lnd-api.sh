#!/usr/bin/env bash
# LND's AddInvoice over gRPC through `invoiced lnd-api`, against invoiced's own `invoice` over
# its socket, alternated in one run on one daemon: ROUNDS rounds (default 3) of 64 clients for
# 5 s each way. Prints medians and min-max, the rate through the API as a share of the direct
# one, and the CPU per invoice of invoiced, of lnd-api and of each load tool. Each round also
# loads `invoiced-bench lnd-floor`, the same gRPC serving with no invoice behind it, to show
# what speaking LND's gRPC alone costs on these cores.
# Usage: scripts/bench-lnd-api.sh [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
build_release "$root"
rounds=${1:-3}
bin="$root/target/release"
work=$(mktemp -d "${BENCH_DIR:-$root/target}/bench-lnd-api.XXXXXX")
cleanup() { kill -TERM "${api:-}" "${daemon:-}" "${floor:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$bin/invoiced" serve --data-dir "$work/data" --network regtest --log-level warn & daemon=$!
for _ in $(seq 1 500); do [ -S "$work/data/lightning-rpc" ] && break; sleep 0.02; done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rest=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn "$bin/invoiced" lnd-api --invoiced-rpc-file "$work/data/lightning-rpc" --node-rpc-file "$work/none" \
    --grpc-listen "127.0.0.1:$port" --rest-listen "127.0.0.1:$rest" --lnd-dir "$work/lnd" & api=$!
for _ in $(seq 1 500); do [ -f "$work/lnd/invoice.macaroon" ] && break; sleep 0.02; done
floor_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/invoiced-bench" lnd-floor --grpc-listen "127.0.0.1:$floor_port" --lnd-dir "$work/floor" & floor=$!
for _ in $(seq 1 500); do [ -f "$work/floor/invoice.macaroon" ] && break; sleep 0.02; done
sleep 0.5
results="$work/results.jsonl"
for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds" >&2
    "$bin/invoiced-bench" load --rpc-file "$work/data/lightning-rpc" --clients 64 --seconds 5 \
        --cpu "invoiced=$daemon" | sed 's/^/{"kind":"direct","data":/; s/$/}/' >> "$results"
    "$bin/invoiced-bench" lnd-load --grpc "127.0.0.1:$port" --lnd-dir "$work/lnd" --clients 64 --seconds 5 \
        --cpu "invoiced=$daemon" --cpu "lnd-api=$api" | sed 's/^/{"kind":"lnd","data":/; s/$/}/' >> "$results"
    "$bin/invoiced-bench" lnd-load --grpc "127.0.0.1:$floor_port" --lnd-dir "$work/floor" --clients 64 --seconds 5 \
        --cpu "floor=$floor" | sed 's/^/{"kind":"floor","data":/; s/$/}/' >> "$results"
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def vals(kind, pick):
    return [pick(r["data"]) for r in rows if r["kind"] == kind]
def show(label, xs, fmt="{:,.1f}"):
    print(f"| {label} | {fmt.format(statistics.median(xs))} | {fmt.format(min(xs))} - {fmt.format(max(xs))} |")
    return statistics.median(xs)
print(f"rounds: {len(vals('direct', lambda d: 0))}\n\n| figure | median | min - max |\n| --- | --- | --- |")
rate = lambda d: d.get("calls_per_s", d.get("invoices_per_s", 0))
direct = show("invoiced's `invoice` over its socket, 64 clients (/s)", vals("direct", rate), "{:,.0f}")
lnd = show("LND's AddInvoice over gRPC through lnd-api, 64 clients (/s)", vals("lnd", rate), "{:,.0f}")
show("lnd-api: p50 (ms)", vals("lnd", lambda d: d["p50_ms"]), "{:.3f}")
show("lnd-api: p99 (ms)", vals("lnd", lambda d: d["p99_ms"]), "{:.3f}")
show("direct: invoiced CPU per invoice (us)", vals("direct", lambda d: d["cpu_us_per_call_by_process"]["invoiced"]))
show("direct: socket load tool CPU per invoice (us)", vals("direct", lambda d: d["cpu_us_per_call_by_process"]["load tool"]))
show("lnd-api: invoiced CPU per invoice (us)", vals("lnd", lambda d: d["cpu_us_per_call"]["invoiced"]))
show("lnd-api: lnd-api CPU per invoice (us)", vals("lnd", lambda d: d["cpu_us_per_call"]["lnd-api"]))
show("lnd-api: gRPC load tool CPU per invoice (us)", vals("lnd", lambda d: d["load_tool_cpu_us_per_call"]))
floor_server = show("floor (gRPC, no invoice): server CPU per call (us)", vals("floor", lambda d: d["cpu_us_per_call"]["floor"]))
floor_client = show("floor (gRPC, no invoice): gRPC load tool CPU per call (us)", vals("floor", lambda d: d["load_tool_cpu_us_per_call"]))
show("floor (gRPC, no invoice): calls/s", vals("floor", rate), "{:,.0f}")
direct_cpu = statistics.median(vals("direct", lambda d: d["cpu_us_per_call_by_process"]["invoiced"] + d["cpu_us_per_call_by_process"]["load tool"]))
print(f"\n- through lnd-api / direct: {lnd / direct:.0%} of the rate (the API layer costs {1 - lnd / direct:.0%})")
print(f"- the floor: an API that did nothing but speak gRPC would add {floor_server + floor_client:.1f} us of CPU to the direct path's {direct_cpu:.1f} us per invoice on these shared cores: at best {direct_cpu / (direct_cpu + floor_server + floor_client):.0%} of the direct rate")
PY

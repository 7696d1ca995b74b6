#!/usr/bin/env bash
# Measures invoices through a real Core Lightning node with invoiced-cln, in one run, against
# lightningd's own `invoice` and against lightningd answering a trivial built-in command (the
# ceiling of the path): ROUNDS rounds (default 3) of 1, 16 and 64 clients each, on this disk,
# with CPU per call of every process. Prints medians and min-max. Usage: scripts/bench-cln.sh [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
build_release "$root"
[ -x "$root/target/cln/bin/lightningd" ] || bash "$root/../shared/tools/cln/install.sh" "$root/target/cln" >&2
rounds=${1:-3}
bin="$root/target/release"
cln="$root/target/cln/bin"
fake="$root/../shared/tools/cln/fake_bitcoind.py"
work=$(mktemp -d "${BENCH_DIR:-$root/target}/bench-cln.XXXXXX")
cleanup() {
    for d in "$work"/ln-*; do [ -d "$d" ] && "$cln/lightning-cli" --network=regtest --lightning-dir="$d" stop >/dev/null 2>&1 || true; done
    pkill -TERM -f "invoiced serve --data-dir $work" || true
    rm -rf "$work"
}
trap cleanup EXIT
results="$work/results.jsonl"

start_node() { # DIR [extra lightningd args...]; prints its pid
    local dir=$1; shift
    "$cln/lightningd" --network=regtest --lightning-dir="$dir" --offline --disable-plugin=bcli --plugin="$fake" \
        --log-file="$dir/log" --daemon "$@" >/dev/null
    for _ in $(seq 1 200); do "$cln/lightning-cli" --network=regtest --lightning-dir="$dir" getinfo >/dev/null 2>&1 && break; sleep 0.1; done
    cat "$dir/regtest/lightningd-regtest.pid" 2>/dev/null || pgrep -f -n "lightningd --network=regtest --lightning-dir=$dir"
}
hsmd_of() { pgrep -P "$1" -f lightning_hsmd | head -n1; }
load() { # KIND SOCKET CLIENTS [extra load args...]
    local kind=$1 sock=$2 clients=$3; shift 3
    "$bin/invoiced-bench" load --rpc-file "$sock" --clients "$clients" --seconds 3 "$@" \
        | sed "s/^/{\"kind\":\"$kind\",\"clients\":$clients,\"data\":/; s/\$/}/" >> "$results"
}

for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds" >&2
    rm -rf "$work"/ln-* "$work/inv" "$work/probe"
    "$bin/invoiced-bench" limits --dir "$work/probe" --seconds 1 | sed 's/^/{"kind":"limits","data":/; s/$/}/' >> "$results"
    mkdir -p "$work/ln-plugin/regtest" "$work/ln-own/regtest" "$work/inv"
    head -c 32 /dev/urandom > "$work/inv/hsm_secret"
    cp "$work/inv/hsm_secret" "$work/ln-plugin/regtest/hsm_secret"
    "$bin/invoiced" serve --data-dir "$work/inv" --network regtest --log-level warn &
    inv_pid=$!
    for _ in $(seq 1 200); do [ -S "$work/inv/lightning-rpc" ] && break; sleep 0.05; done
    own=$(start_node "$work/ln-own")
    plug=$(start_node "$work/ln-plugin" --plugin="$bin/invoiced-cln" --invoiced-rpc-file="$work/inv/lightning-rpc")
    plugin_pid=$(pgrep -P "$plug" -f invoiced-cln | head -n1)
    for c in 1 16 64; do
        load plugin "$work/ln-plugin/regtest/lightning-rpc" "$c" --cpu "lightningd=$plug" --cpu "plugin=$plugin_pid" --cpu "invoiced=$inv_pid"
        load own "$work/ln-own/regtest/lightning-rpc" "$c" --cpu "lightningd=$own" --cpu "hsmd=$(hsmd_of "$own")"
        load trivial "$work/ln-own/regtest/lightning-rpc" "$c" --method getinfo --cpu "lightningd=$own"
        load direct "$work/inv/lightning-rpc" "$c" --cpu "invoiced=$inv_pid"
    done
    "$cln/lightning-cli" --network=regtest --lightning-dir="$work/ln-plugin" stop >/dev/null
    "$cln/lightning-cli" --network=regtest --lightning-dir="$work/ln-own" stop >/dev/null
    kill -TERM "$inv_pid"; wait "$inv_pid"
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def vals(kind, clients, pick):
    return [pick(r["data"]) for r in rows if r["kind"] == kind and r.get("clients") == clients]
def med(v):
    return statistics.median(v) if v else float("nan")
f50 = med([r["data"]["fdatasync_p50_ms"] for r in rows if r["kind"] == "limits"])
print(f"rounds: {len([r for r in rows if r['kind']=='limits'])}; raw fdatasync p50 {f50:.3f} ms\n")
print("| clients | path | calls/s (median, min-max) | p50 ms | p99 ms | errors | CPU per call (us) by process |")
print("| --- | --- | --- | --- | --- | --- | --- |")
names = {"plugin": "lightningd + invoiced-cln + invoiced: `invoice`", "own": "lightningd's own `invoice`",
         "trivial": "lightningd: `getinfo` (ceiling)", "direct": "invoiced's socket: `invoice`"}
summary = {}
for c in (1, 16, 64):
    for kind in ("plugin", "own", "trivial", "direct"):
        rate = vals(kind, c, lambda d: d["invoices_per_s"])
        if not rate:
            continue
        summary[(kind, c)] = (med(rate), med(vals(kind, c, lambda d: d["p50_ms"])))
        cpu = {}
        for d in vals(kind, c, lambda d: d["cpu_us_per_call_by_process"]):
            for k, v in d.items():
                cpu.setdefault(k, []).append(v)
        cpu_text = ", ".join(f"{k} {med(v):.0f}" for k, v in cpu.items())
        print(f"| {c} | {names[kind]} | {med(rate):,.0f} ({min(rate):,.0f}-{max(rate):,.0f}) | "
              f"{med(vals(kind, c, lambda d: d['p50_ms'])):.3f} | {med(vals(kind, c, lambda d: d['p99_ms'])):.3f} | "
              f"{sum(vals(kind, c, lambda d: d['errors']))} | {cpu_text} |")
print()
for c in (16, 64):
    p, o, t = summary[("plugin", c)][0], summary[("own", c)][0], summary[("trivial", c)][0]
    print(f"- {c} clients: plugin path / lightningd's own invoice = {p / o:.1f}x; / trivial-command ceiling = {p / t:.0%}")
hop = summary[("plugin", 1)][1] - summary[("direct", 1)][1]
print(f"- 1 client: p50 through lightningd + plugin minus p50 on invoiced's socket = {hop:+.3f} ms")
PY

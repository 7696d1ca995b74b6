#!/usr/bin/env bash
# Measures how the invoice path uses the cores, in one run: ROUNDS rounds (default 3) of
#   limits (raw sign+encode on 1 and 2 threads, raw fdatasync) on this disk;
#   the daemon with 1 client, and 64 clients from the epoll load tool and from a
#   thread-per-client one (CPU per invoice by thread);
#   the daemon pinned to core 0 with the load tool on core 1, for the 1 -> 2 core ratio;
#   Core Lightning's own `invoice` (../shared/tools/cln) with 64 clients;
#   with OLD_REV, the same socket figures for that revision's daemon, alternated with this one.
# Prints medians and min-max. Usage: scripts/bench-cores.sh [ROUNDS] [OLD_REV]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
build_release "$root"
rounds=${1:-3}
old_rev=${2:-}
bin="$root/target/release"
work=$(mktemp -d "${BENCH_DIR:-$root/target}/bench-cores.XXXXXX")
versions="new"
if [ -n "$old_rev" ]; then
    # The old revision in a worktree of its own, built into a target dir of its own.
    old_src="$root/target/bench-old-src"
    rm -rf "$old_src"; git -C "$root" worktree prune
    git -C "$root" worktree add -f --detach "$old_src" "$old_rev" >&2
    CARGO_TARGET_DIR="$root/target/bench-old" cargo build --release --manifest-path "$old_src/Cargo.toml" --bins >&2
    versions="old new"
fi
bin_of() { if [ "$1" = old ]; then echo "$root/target/bench-old/release"; else echo "$bin"; fi; }
cln="$root/target/cln/bin"
[ -x "$cln/lightningd" ] || bash "$root/../shared/tools/cln/install.sh" "$root/target/cln" >&2
cleanup() {
    [ -d "$work/ln" ] && "$cln/lightning-cli" --network=regtest --lightning-dir="$work/ln" stop >/dev/null 2>&1 || true
    pkill -TERM -f "invoiced serve --data-dir $work" || true
    [ -n "$old_rev" ] && git -C "$root" worktree remove --force "$old_src" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
results="$work/results.jsonl"

start_daemon() { # BIN_DIR CPUS; sets pid
    rm -rf "$work/data"
    taskset -c "$2" "$1/invoiced" serve --data-dir "$work/data" --network regtest --log-level warn &
    pid=$!
    for _ in $(seq 1 200); do [ -S "$work/data/lightning-rpc" ] && break; sleep 0.05; done
}
load() { # KIND CPUS SOCKET [load args...]
    local kind=$1 cpus=$2 sock=$3; shift 3
    taskset -c "$cpus" "$bin/invoiced-bench" load --rpc-file "$sock" "$@" | sed "s/^/{\"kind\":\"$kind\",\"data\":/; s/\$/}/" >> "$results"
}

for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds" >&2
    "$bin/invoiced-bench" limits --dir "$work/probe" --seconds 2 | sed 's/^/{"kind":"limits","data":/; s/$/}/' >> "$results"
    for v in $versions; do
        start_daemon "$(bin_of "$v")" 0,1
        sock="$work/data/lightning-rpc"
        load "$v-1" 0,1 "$sock" --clients 1 --seconds 3
        load "$v-64" 0,1 "$sock" --clients 64 --seconds 5 --daemon-pid "$pid"
        load "$v-64-threads" 0,1 "$sock" --clients 64 --seconds 5 --daemon-pid "$pid" --threads
        kill -TERM "$pid"; wait "$pid"
    done
    start_daemon "$bin" 0
    load "new-64-core0" 1 "$work/data/lightning-rpc" --clients 64 --seconds 5 --daemon-pid "$pid"
    kill -TERM "$pid"; wait "$pid"
    rm -rf "$work/ln"; mkdir -p "$work/ln"
    "$cln/lightningd" --network=regtest --lightning-dir="$work/ln" --offline --disable-plugin=bcli \
        --plugin="$root/../shared/tools/cln/fake_bitcoind.py" --log-file="$work/ln/log" --daemon >/dev/null
    for _ in $(seq 1 200); do "$cln/lightning-cli" --network=regtest --lightning-dir="$work/ln" getinfo >/dev/null 2>&1 && break; sleep 0.1; done
    load "cln-64" 0,1 "$work/ln/regtest/lightning-rpc" --clients 64 --seconds 5
    "$cln/lightning-cli" --network=regtest --lightning-dir="$work/ln" stop >/dev/null
    sleep 1
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def vals(kind, pick):
    out = []
    for r in rows:
        if r["kind"] == kind:
            try:
                out.append(pick(r["data"]))
            except (KeyError, TypeError):
                pass
    return out
def med(v):
    return statistics.median(v) if v else float("nan")
def show(label, kind, pick, fmt="{:,.0f}"):
    v = vals(kind, pick)
    if v:
        print(f"| {label} | {fmt.format(med(v))} | {fmt.format(min(v))} - {fmt.format(max(v))} |")
    return med(v)
print(f"rounds: {len(vals('limits', lambda d: 1))}\n")
print("| figure | median | min - max |\n| --- | --- | --- |")
s1 = show("raw build+sign+encode, 1 thread (/s)", "limits", lambda d: d["raw_sign_encode_1_thread_per_s"])
s2 = show("raw build+sign+encode, 2 threads (/s)", "limits", lambda d: d["raw_sign_encode_2_threads_per_s"])
f50 = show("raw fdatasync p50 (ms)", "limits", lambda d: d["fdatasync_p50_ms"], "{:.3f}")
figures = {}
for v in ("old", "new"):
    if not vals(f"{v}-64", lambda d: 1):
        continue
    figures[(v, "p50")] = show(f"{v}: 1 client p50 (ms)", f"{v}-1", lambda d: d["p50_ms"], "{:.3f}")
    for kind, name in ((f"{v}-64", "epoll"), (f"{v}-64-threads", "thread-per-client")):
        figures[(v, name)] = show(f"{v}: 64 clients, {name} load tool (/s)", kind, lambda d: d["invoices_per_s"])
        show(f"{v}: 64 clients, {name}: p99 (ms)", kind, lambda d: d["p99_ms"], "{:.3f}")
        show(f"{v}: 64 clients, {name}: daemon CPU per invoice (us)", kind, lambda d: d["cpu"]["daemon_us_per_invoice"], "{:.1f}")
        names = sorted({n for d in vals(kind, lambda d: d["cpu"]["daemon_us_per_invoice_by_thread"]) for n in d})
        for n in names:
            if med(vals(kind, lambda d: d["cpu"]["daemon_us_per_invoice_by_thread"].get(n, 0.0))) >= 0.05:
                show(f"{v}: 64 clients, {name}: thread {n} (us)", kind, lambda d: d["cpu"]["daemon_us_per_invoice_by_thread"].get(n, 0.0), "{:.1f}")
        show(f"{v}: 64 clients, {name}: load tool CPU per invoice (us)", kind, lambda d: d["cpu"]["load_tool_us_per_invoice"], "{:.1f}")
one = show("new, pinned to core 0 (load tool on core 1): 64 clients (/s)", "new-64-core0", lambda d: d["invoices_per_s"])
show("new, pinned to core 0: daemon CPU per invoice (us)", "new-64-core0", lambda d: d["cpu"]["daemon_us_per_invoice"], "{:.1f}")
cln = show("Core Lightning's own invoice, 64 clients (/s)", "cln-64", lambda d: d["invoices_per_s"])
print()
for name in ("epoll", "thread-per-client"):
    if ("new", name) in figures:
        print(f"- new, 64 clients ({name}) / raw 2-thread rate: {figures[('new', name)] / s2:.0%}; / Core Lightning: {figures[('new', name)] / cln:,.0f}x")
    if ("old", name) in figures:
        print(f"- old, 64 clients ({name}) / raw 2-thread rate: {figures[('old', name)] / s2:.0%}")
print(f"- 2 cores / 1 core (epoll, 64 clients): {figures[('new', 'epoll')] / one:.2f}x")
print(f"- new 1-client p50 minus raw fdatasync p50: {figures[('new', 'p50')] - f50:+.3f} ms")
PY

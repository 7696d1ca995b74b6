#!/usr/bin/env bash
# Webhooks under load, ROUNDS rounds (default 3), in one run: 64 clients creating invoices for
# 5 s against a fresh daemon without a webhook, with a webhook to a dead receiver (nothing
# listens: every delivery fails and is retried), and with a webhook to a local receiver
# (invoiced-bench webhook-sink, keep-alive, answers 200 at once, on the same two cores). Reports
# invoices/s each way, how long after the load the receiver had every event (the backlog's
# drain), and the delivery rate from the load's start to the last delivery.
# Usage: scripts/bench-webhooks.sh [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
build_release "$root"
rounds=${1:-3}
bin="$root/target/release"
work=$(mktemp -d "${BENCH_DIR:-$root/target}/bench-webhooks.XXXXXX")
trap 'pkill -TERM -f "invoiced serve --data-dir $work" || true; pkill -f "webhook-sink --port" || true; rm -rf "$work"' EXIT
results="$work/results.jsonl"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port) dead=$(free_port)
now_ms() { python3 -c 'import time; print(int(time.time()*1000))'; }
for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds" >&2
    for mode in none dead hook; do
        rm -rf "$work/data" "$work/count.json"
        extra=()
        if [ "$mode" = hook ]; then
            "$bin/invoiced-bench" webhook-sink --port "$port" --count-file "$work/count.json" &
            sink=$!
            extra=(--webhook-url "http://127.0.0.1:$port/hook")
        elif [ "$mode" = dead ]; then
            extra=(--webhook-url "http://127.0.0.1:$dead/hook")
        fi
        "$bin/invoiced" serve --data-dir "$work/data" --network regtest --log-level warn "${extra[@]}" &
        pid=$!
        for _ in $(seq 1 200); do [ -S "$work/data/lightning-rpc" ] && break; sleep 0.05; done
        start=$(now_ms)
        "$bin/invoiced-bench" load --rpc-file "$work/data/lightning-rpc" --clients 64 --seconds 5 --daemon-pid "$pid" > "$work/load.json"
        end=$(now_ms)
        if [ "$mode" = hook ]; then
            head=$("$bin/invoiced-cli" --rpc-file "$work/data/lightning-rpc" getinfo | python3 -c 'import json,sys; print(json.load(sys.stdin)["log_head_seq"])')
            for _ in $(seq 1 6000); do
                got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["received"])' "$work/count.json" 2>/dev/null || echo 0)
                [ "$got" -ge "$head" ] && break
                sleep 0.05
            done
            last=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["last_ms"])' "$work/count.json")
            python3 - "$work/load.json" "$head" "$got" "$start" "$end" "$last" >> "$results" <<'PY'
import json, sys
load = json.load(open(sys.argv[1]))
head, got, start, end, last = map(int, sys.argv[2:])
print(json.dumps({"kind": "hook", "invoices_per_s": load["invoices_per_s"], "p99_ms": load["p99_ms"],
                  "events": head, "delivered": got, "drain_s": max(0, last - end) / 1000,
                  "delivered_per_s": got / ((last - start) / 1000)}))
PY
            kill "$sink"; wait "$sink" 2>/dev/null || true
        else
            python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); print(json.dumps({"kind":sys.argv[2],"invoices_per_s":l["invoices_per_s"],"p99_ms":l["p99_ms"]}))' "$work/load.json" "$mode" >> "$results"
        fi
        kill -TERM "$pid"; wait "$pid"
    done
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def fig(kind, key):
    v = [r[key] for r in rows if r["kind"] == kind]
    return f"{statistics.median(v):,.2f} ({min(v):,.2f} - {max(v):,.2f})"
print(f"rounds: {len([r for r in rows if r['kind']=='hook'])}\n")
print("| figure | median (min - max) |\n| --- | --- |")
print(f"| 64 clients, no webhook (invoices/s) | {fig('none', 'invoices_per_s')} |")
print(f"| 64 clients, a webhook to a dead receiver (invoices/s) | {fig('dead', 'invoices_per_s')} |")
print(f"| 64 clients, a webhook to a live receiver on the same cores (invoices/s) | {fig('hook', 'invoices_per_s')} |")
print(f"| p99: none / dead / live (ms) | {fig('none', 'p99_ms')} / {fig('dead', 'p99_ms')} / {fig('hook', 'p99_ms')} |")
print(f"| events delivered of events logged | {fig('hook', 'delivered')} of {fig('hook', 'events')} |")
print(f"| backlog drained after the load (s) | {fig('hook', 'drain_s')} |")
print(f"| delivery rate, load start to last delivery (events/s) | {fig('hook', 'delivered_per_s')} |")
PY

#!/bin/bash
# The invoice path at 64 clients (epoll load tool), ROUNDS rounds of 5 s alternating the daemon
# of target/bench-old/release (built by bench-cores.sh or bench-replay.sh for an OLD_REV) and
# this tree's release build: one line per run. Usage: scripts/bench-ab64.sh [ROUNDS]
root=$(cd "$(dirname "$0")/.." && pwd); N=${1:-6}
work=$(mktemp -d "$root/target/ab64.XXXX")
for r in $(seq 1 $N); do
  for v in old new; do
    if [ $v = old ]; then bin=$root/target/bench-old/release; else bin=$root/target/release; fi
    rm -rf $work/data; mkdir -p $work/data; head -c 32 /dev/urandom > $work/data/hsm_secret
    $bin/invoiced serve --data-dir $work/data --network regtest --log-level warn & pid=$!
    for i in $(seq 1 200); do [ -S $work/data/lightning-rpc ] && break; sleep 0.05; done
    out=$($root/target/release/invoiced-bench load --rpc-file $work/data/lightning-rpc --clients 64 --seconds 5 --daemon-pid $pid)
    kill -TERM $pid; wait $pid
    echo "$v $(echo "$out" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(round(d.get("rate", d.get("invoices_per_s", 0))), d.get("daemon_cpu_us_per_invoice", ""))')"
  done
done
rm -rf $work

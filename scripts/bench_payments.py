#!/usr/bin/env python3
"""Real payments into invoiced against payments into Core Lightning's own table, in one run.

On the real test network (tests/interop/network.py: lightningd v26.06.6 nodes on one regtest
chain), A pays B (invoiced-cln in front of invoiced) and C (no plugin) alternately with `xpay`:
per round, N sequential payments to each (latency), then 8 and 32 concurrent payers to each
(payments per second). B's plugin logs how long each payment spent in the plugin, from reading
its HTLC to the verdict, and in invoiced's settle (its commit); invoiced's `checkpart` (the
hook's first call) is timed directly. Prints medians of the rounds with min-max, as markdown.

Usage: scripts/bench-payments.sh [ROUNDS] [N]  (INVOICED_BIN must point at a release build)."""

import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
from network import Network  # noqa: E402

AMOUNT = 10_000  # msat


def invoices(node, tag, n):
    return [node.rpc().invoice(amount_msat=AMOUNT, label=f"{tag}-{i}", description="bench")["bolt11"] for i in range(n)]


def timed_pay(rpc, bolt11):
    t = time.perf_counter()
    rpc.call("xpay", {"invstring": bolt11})
    return time.perf_counter() - t


def sequential(net, node, tag, n):
    a = net.a.rpc()
    return [timed_pay(a, b) for b in invoices(node, tag, n)]


def concurrent(net, node, tag, payers, each):
    bolts = invoices(node, tag, payers * each)
    errors = []

    def run(k):
        a = net.a.rpc()
        for b in bolts[k::payers]:
            try:
                a.call("xpay", {"invstring": b})
            except Exception as e:  # noqa: BLE001 - counted, shown
                errors.append(str(e))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(payers)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    assert not errors, errors[:3]
    return len(bolts) / elapsed


def check_ms(net, n=200):
    """invoiced's verdict on one HTLC (the hook's first call), timed directly: an HTLC replayed
    for a paid invoice, the same lookups as a new one's."""
    rpc = net.invoiced.rpc()
    h = rpc.listinvoices()["invoices"][-1]["payment_hash"]
    part = {"htlc": "1x1x1/1", "amount_msat": AMOUNT, "cltv_expiry": 500}
    out = []
    for _ in range(n):
        t = time.perf_counter()
        rpc.call("checkpart", {"payment_hash": h, "part": part, "cltv_expiry_relative": 100, "total_msat": AMOUNT})
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


def plugin_times(net):
    pattern = re.compile(r"settled: .*\(in the plugin ([0-9.]+) ms, of which invoiced's settle ([0-9.]+) ms\)")
    found = [tuple(map(float, m.groups())) for m in pattern.finditer(net.b.log())]
    return [d for d, _ in found], [i for _, i in found]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    root = tempfile.mkdtemp(prefix="bench-pay-")
    # The product alone: no webhook receiver in this process, no subscriber plugin on B.
    net = Network(root, observers=os.environ.get("BENCH_OBSERVERS") == "1")
    rows = {}

    def add(key, value):
        rows.setdefault(key, []).append(value)

    try:
        net.start()
        # Warm both paths (connections, gossip, first-payment costs).
        sequential(net, net.b, "warm-b", 5)
        sequential(net, net.c, "warm-c", 5)
        for r in range(rounds):
            print(f"round {r + 1}/{rounds}", file=sys.stderr)
            for name, node in (("B (invoiced)", net.b), ("C (lightningd)", net.c)):
                lat = sequential(net, node, f"seq{r}-{node.name}", n)
                add((name, "sequential p50 (ms)"), statistics.median(lat) * 1000)
                add((name, "sequential p90 (ms)"), statistics.quantiles(lat, n=10)[8] * 1000)
            for payers in (8, 32):
                for name, node in (("B (invoiced)", net.b), ("C (lightningd)", net.c)):
                    add((name, f"{payers} payers (payments/s)"), concurrent(net, node, f"c{payers}-{r}-{node.name}", payers, max(2, 160 // payers)))
        in_plugin, commit = plugin_times(net)
        print(f"rounds: {rounds}, {n} sequential payments per node per round, {AMOUNT} msat each\n")
        print("| figure | median | min - max |\n| --- | --- | --- |")
        for (name, what), v in rows.items():
            print(f"| {name}: {what} | {statistics.median(v):,.1f} | {min(v):,.1f} - {max(v):,.1f} |")
        print()
        b = {w: statistics.median(v) for (nm, w), v in rows.items() if nm.startswith("B")}
        c = {w: statistics.median(v) for (nm, w), v in rows.items() if nm.startswith("C")}
        print(f"- sequential p50: B - C = {b['sequential p50 (ms)'] - c['sequential p50 (ms)']:+.1f} ms")
        for payers in (8, 32):
            k = f"{payers} payers (payments/s)"
            print(f"- {payers} payers: B / C = {b[k] / c[k]:.2f}x")
        print(f"- where B's time goes, per payment (medians of {len(in_plugin)} payments): from the plugin reading the HTLC "
              f"to its verdict {statistics.median(in_plugin):.2f} ms, of which invoiced's settle (its commit) "
              f"{statistics.median(commit):.2f} ms; invoiced's checkpart of one HTLC {check_ms(net):.2f} ms")
    finally:
        net.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

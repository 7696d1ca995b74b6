#!/usr/bin/env bash
# Retention at scale, ROUNDS rounds (default 3): start-up time and memory of a data dir with
# 1,000,000 live invoices against one with 1,000,000 of which 900,000 were paid and then cleaned
# (their events stay in the log; the projection keeps only their payment hashes), alternated in
# one run. The 1M data dir is bench-scale.sh's (filled once under BENCH_DIR, default
# target/bench-scale); the cleaned one is a copy of it, retired once and kept.
# Usage: scripts/bench-retention.sh [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
build_release "$root"
rounds=${1:-3}
bin="$root/target/release"
work=${BENCH_DIR:-$root/target/bench-scale}
mkdir -p "$work"
m1="$work/m1" m1c="$work/m1-cleaned"
[ -d "$m1/events" ] || "$bin/invoiced-bench" fill --data-dir "$m1" --count 1000000 >&2
if [ ! -d "$m1c/events" ]; then
    cp -a "$m1" "$m1c.tmp"
    "$bin/invoiced-bench" retire --data-dir "$m1c.tmp" --count 900000 >&2
    mv "$m1c.tmp" "$m1c"
fi
results=$(mktemp)
row() { sed "s/^/{\"kind\":\"$1\",\"data\":/; s/\$/}/" >> "$results"; }
for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds" >&2
    for d in m1 m1c; do
        dir=$m1; [ "$d" = m1c ] && dir=$m1c
        "$bin/invoiced-bench" startup --data-dir "$dir" | row "${d}_checkpoint"
        "$bin/invoiced-bench" startup --data-dir "$dir" --drop-checkpoint | row "${d}_full"
    done
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(kind, key):
    v = [r["data"][key] for r in rows if r["kind"] == kind]
    return statistics.median(v), min(v), max(v)
print("| figure | 1M live | 1M, 900k cleaned |\n| --- | --- | --- |")
for label, key, fmt in [("start-up with checkpoint (s)", ("checkpoint", "startup_s"), "{:.2f}"),
                        ("RSS once serving (MiB)", ("checkpoint", "rss_mib"), "{:.0f}"),
                        ("peak RSS, start-up with checkpoint (MiB)", ("checkpoint", "peak_rss_mib"), "{:.0f}"),
                        ("start-up replaying the whole log (s)", ("full", "startup_s"), "{:.2f}"),
                        ("peak RSS, start-up replaying (MiB)", ("full", "peak_rss_mib"), "{:.0f}"),
                        ("RSS once serving after a replay (MiB)", ("full", "rss_mib"), "{:.0f}")]:
    cells = []
    for d in ("m1", "m1c"):
        m, lo, hi = med(f"{d}_{key[0]}", key[1])
        cells.append(f"{fmt.format(m)} ({fmt.format(lo)}-{fmt.format(hi)})")
    print(f"| {label} | {cells[0]} | {cells[1]} |")
PY

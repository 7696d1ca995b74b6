#!/usr/bin/env bash
# Replay, old revision against this one, alternated in one run on the same log of 1,000,000
# invoices (target/bench-scale/m1, filled once as bench-scale.sh fills it): each round runs
# raw iterate + decode (the floor), the daemon's replay in process, and a start-up replaying the
# whole log (checkpoint dropped), for OLD_REV's binaries and then this tree's.
# Prints medians and min-max. Usage: scripts/bench-replay.sh [ROUNDS] OLD_REV
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
build_release "$root"
rounds=${1:-3}
old_rev=${2:?usage: scripts/bench-replay.sh [ROUNDS] OLD_REV}
old_src="$root/target/bench-old-src"
rm -rf "$old_src"; git -C "$root" worktree prune
git -C "$root" worktree add -f --detach "$old_src" "$old_rev" >&2
trap 'git -C "$root" worktree remove --force "$old_src" >/dev/null 2>&1 || true' EXIT
CARGO_TARGET_DIR="$root/target/bench-old" cargo build --release --manifest-path "$old_src/Cargo.toml" --bins >&2
work=${BENCH_DIR:-$root/target/bench-scale}
m1="$work/m1"
mkdir -p "$work"
[ -d "$m1/events" ] || "$root/target/release/invoiced-bench" fill --data-dir "$m1" --count 1000000 >&2
results=$(mktemp)
row() { sed "s/^/{\"kind\":\"$1\",\"data\":/; s/\$/}/" >> "$results"; }
for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds" >&2
    for v in old new; do
        if [ "$v" = old ]; then bin="$root/target/bench-old/release"; else bin="$root/target/release"; fi
        "$bin/invoiced-bench" raw-replay --data-dir "$m1" | row "$v-raw"
        "$bin/invoiced-bench" replay --data-dir "$m1" | row "$v-replay"
        "$bin/invoiced-bench" startup --data-dir "$m1" --drop-checkpoint | row "$v-startup"
    done
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def show(label, kind, key, fmt="{:,.3f}"):
    for v in ("old", "new"):
        xs = [r["data"][key] for r in rows if r["kind"] == f"{v}-{kind}"]
        print(f"{label:45} {v}: {fmt.format(statistics.median(xs))} [{fmt.format(min(xs))}-{fmt.format(max(xs))}]")
show("raw iterate + decode (records/s)", "raw", "records_per_s", "{:,.0f}")
show("daemon replay in process (records/s)", "replay", "records_per_s", "{:,.0f}")
show("start-up replaying the whole log (s)", "startup", "startup_s")
show("peak RSS, start-up replaying (MiB)", "startup", "peak_rss_mib", "{:,.0f}")
PY

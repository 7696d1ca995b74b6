#!/usr/bin/env bash
# Real payments into invoiced (B, with invoiced-cln) against payments into Core Lightning's own
# table (C), alternately in one run, on the real test network: sequential latency and 8 and 32
# concurrent payers, with where B's time goes. Usage: scripts/bench-payments.sh [ROUNDS] [N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
build_release "$root"
ensure_python_venv "$root"
[ -x "$root/target/cln/bin/lightningd" ] || bash "$root/../shared/tools/cln/install.sh" "$root/target/cln" >&2
INVOICED_BIN="$root/target/release/invoiced" exec "$root/.venv/bin/python" "$root/scripts/bench_payments.py" "$@"

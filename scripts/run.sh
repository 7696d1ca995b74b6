#!/usr/bin/env bash
# Builds and runs the daemon: scripts/run.sh [serve options], e.g.
#   scripts/run.sh --data-dir ~/.invoiced --network regtest
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
build_release "$root"
exec "$root/target/release/invoiced" serve "$@"

#!/usr/bin/env bash
# Builds and runs the daemon: scripts/run.sh [serve options], e.g.
#   scripts/run.sh --data-dir ~/.invoiced --network regtest
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
ensure_system_packages librocksdb-dev libclang-dev
export_rocksdb_env
cargo build --release --manifest-path "$root/Cargo.toml" --bins >&2
exec "$root/target/release/invoiced" serve "$@"

#!/usr/bin/env bash
# Runs every test: unit, property and golden tests, the integration tests against the real
# daemon, and the interop tests with Core Lightning's Python client and foreign decoders.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/setup.sh
ensure_system_packages librocksdb-dev libclang-dev
export_rocksdb_env
ensure_python_venv "$root"
cargo build --workspace --bins
cargo test --workspace
INVOICED_BIN="$root/target/debug/invoiced" .venv/bin/python -m pytest -q tests/interop

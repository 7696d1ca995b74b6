#!/usr/bin/env bash
# Runs every test: unit, property and golden tests, the integration tests against the real
# daemon, and the interop tests with Core Lightning's Python client and foreign decoders.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/setup.sh
ensure_system_packages librocksdb-dev libclang-dev postgresql
export_rocksdb_env
ensure_python_venv "$root"
ensure_python_venv "$root" "$root/tests/interop/requirements-lnbits.txt" "$root/.venv-lnbits"
cargo build --workspace --bins
cargo test --workspace
export INVOICED_BIN="$root/target/debug/invoiced"
.venv/bin/python -m pytest -q tests/interop --ignore=tests/interop/test_lnbits.py
.venv-lnbits/bin/python -m pytest -q tests/interop/test_lnbits.py

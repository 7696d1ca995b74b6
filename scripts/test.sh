#!/usr/bin/env bash
# Runs every test: the format and lint checks, unit, property and golden tests, the integration
# tests against the real daemon, and the interop tests with Core Lightning's Python client and
# foreign decoders.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/setup.sh
ensure_system_packages librocksdb-dev libclang-dev postgresql prometheus
# The release's tests (tests/interop/test_package.py, which runs scripts/package.sh): systemd's
# systemd-analyze checks the units; adduser is a dependency of the .deb it installs with dpkg -i.
ensure_system_packages systemd adduser
export_rocksdb_env
ensure_python_venv "$root"
ensure_python_venv "$root" "$root/tests/interop/requirements-lnbits.txt" "$root/.venv-lnbits"
# The ecosystem's habits: one format, no clippy warning (rustup's default profile has both).
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features invoiced/dev-hooks -- -D warnings
# The tests' binaries carry the test hooks (`dev-hooks`); scripts/run.sh builds without them.
cargo build --workspace --bins --features invoiced/dev-hooks
cargo test --workspace --features invoiced/dev-hooks
export INVOICED_BIN="$root/target/debug/invoiced"
.venv/bin/python -m pytest -q tests/interop --ignore=tests/interop/test_lnbits.py --ignore=tests/interop/test_lnd_api.py
.venv-lnbits/bin/python -m pytest -q tests/interop/test_lnbits.py tests/interop/test_lnd_api.py

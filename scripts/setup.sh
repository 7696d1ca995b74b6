#!/usr/bin/env bash
# Installs what invoiced needs on a fresh Debian machine with a Rust toolchain, and nothing twice.
# Sourced by scripts/run.sh and scripts/test.sh.
#  - librocksdb-dev: RocksDB 7.8.3, linked instead of compiling RocksDB (~20 s instead of ~20 min)
#  - libclang-dev:   bindgen in librocksdb-sys needs it even when linking a system RocksDB
#  - python3-venv:   the interop tests' virtual environments (tests only)
#  - postgresql:     PostgreSQL 15, whose clusters the replication tests start and stop in
#                    temporary directories (tests only; a primary only needs a reachable server)
#  - prometheus:     the server and promtool, which scrape and check invoiced's /metrics (tests only)
#  - dpkg-dev, binutils: dpkg-shlibdeps and strip, for the .deb of scripts/package.sh
#  - systemd, adduser: systemd-analyze and the .deb's dependency, for the release's tests

ensure_system_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "setup: installing ${missing[*]}" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install ${missing[*]}" >&2; return 1; }
        sudo="sudo"
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Points the rocksdb crate at Debian's shared library, wherever this architecture keeps it.
export_rocksdb_env() {
    local lib
    lib=$(dpkg -L librocksdb-dev 2>/dev/null | grep '/librocksdb\.so$' | head -n1)
    if [ -n "$lib" ]; then
        export ROCKSDB_LIB_DIR
        ROCKSDB_LIB_DIR=$(dirname "$lib")
    fi
}

# Installs what the build needs and builds every binary in release mode (progress on stderr).
build_release() {
    ensure_system_packages librocksdb-dev libclang-dev
    export_rocksdb_env
    cargo build --release --manifest-path "$1/Cargo.toml" --bins >&2
}

# Creates the virtual environment VENV (default ROOT/.venv) with the requirements file REQ
# (default ROOT/tests/interop/requirements.txt), re-installed when the list changes.
ensure_python_venv() {
    local root=$1 req=${2:-$1/tests/interop/requirements.txt} venv=${3:-$1/.venv}
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        ensure_system_packages python3-venv
    fi
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    local stamp="$venv/.requirements.sha256" want
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
        echo "$want" > "$stamp"
    fi
}

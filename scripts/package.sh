#!/usr/bin/env bash
# Builds a release an operator installs without Rust: scripts/package.sh [DIST_DIR]
# (default dist/), from release binaries (scripts/setup.sh's build_release), into
#   DIST_DIR/invoiced-VERSION-x86_64-linux-gnu.tar.gz   a prefix to unpack as /opt/invoiced:
#       invoiced-VERSION/bin/{invoiced,invoiced-cli,invoiced-cln}
#       invoiced-VERSION/README.md, docs/
#       invoiced-VERSION/share/invoiced/invoiced.conf.example
#       invoiced-VERSION/lib/systemd/system/{invoiced,invoiced-standby}.service
#           (ExecStart=/opt/invoiced/bin/invoiced)
#       invoiced-VERSION/SHA256SUMS                     every other file of the archive
#   DIST_DIR/invoiced_VERSION_amd64.deb                  /usr/bin, /lib/systemd/system,
#       /etc/invoiced/invoiced.conf (conffile), /usr/share/doc/invoiced; Depends computed by
#       dpkg-shlibdeps from what the binaries link (Debian's RocksDB, libc6, ...), and adduser
#   DIST_DIR/SHA256SUMS                                  the archive and the .deb
# VERSION is Cargo.toml's; the binaries' --version names the commit (INVOICED_GIT_COMMIT, set
# here from git: HEAD, "-dirty" if tracked files changed, "unknown" outside a checkout).
# The .deb's Maintainer field is INVOICED_MAINTAINER when set.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dist=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
cd "$root"
source scripts/setup.sh
ensure_system_packages dpkg-dev binutils

version=$(cargo pkgid --manifest-path "$root/Cargo.toml" -p invoiced | sed -E 's/.*[#@]//')
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || { echo "package: no version in Cargo.toml ($version)" >&2; exit 1; }

# The commit, exactly as build.rs would name it, given to the build so that no cached build
# script output can be stale about it.
if [ -z "${INVOICED_GIT_COMMIT:-}" ]; then
    INVOICED_GIT_COMMIT=unknown
    top=$(git -C "$root" rev-parse --show-toplevel 2>/dev/null || true)
    if [ -n "$top" ] && [ "$(cd "$top" && pwd -P)" = "$(pwd -P)" ]; then
        INVOICED_GIT_COMMIT=$(git -C "$root" rev-parse --short=12 HEAD)
        if [ -n "$(git -C "$root" --no-optional-locks status --porcelain --untracked-files=no)" ]; then
            INVOICED_GIT_COMMIT+=-dirty
        fi
    fi
fi
export INVOICED_GIT_COMMIT
build_release "$root"
release=${CARGO_TARGET_DIR:-$root/target}/release
bins=(invoiced invoiced-cli invoiced-cln)
for b in "${bins[@]}"; do
    got=$("$release/$b" --version)
    want="$b $version ($INVOICED_GIT_COMMIT)"
    [ "$got" = "$want" ] || { echo "package: $b --version says '$got', not '$want'" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The archives' file times: the commit's, not the build's.
epoch=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH=$epoch

# The package that ships the file PATH, wherever /usr-merge and symlinks put it.
owner_of() {
    local p alt out
    for p in "$1" "$(readlink -f "$1")"; do
        for alt in "$p" "${p#/usr}" "/usr$p"; do
            if out=$(dpkg -S "$alt" 2>/dev/null); then
                echo "${out%%:*}"
                return 0
            fi
        done
    done
    return 1
}

# The files both forms carry.
install_bins() { # DIR: the three binaries, stripped
    install -d -m 0755 "$1"
    for b in "${bins[@]}"; do
        install -m 0755 "$release/$b" "$1/$b"
        strip --strip-unneeded "$1/$b"
    done
}
install_docs() { # DIR: README.md, docs/ and LICENSE if there is one
    install -d -m 0755 "$1/docs"
    install -m 0644 README.md "$1/README.md"
    install -m 0644 docs/*.md "$1/docs/"
    if [ -f LICENSE ]; then install -m 0644 LICENSE "$1/LICENSE"; fi
}

# The archive: a prefix, run in place.
name=invoiced-$version
tree=$work/tar/$name
install_bins "$tree/bin"
install_docs "$tree"
install -D -m 0644 packaging/invoiced.conf.example "$tree/share/invoiced/invoiced.conf.example"
for unit in invoiced.service invoiced-standby.service; do
    install -d -m 0755 "$tree/lib/systemd/system"
    sed -e 's#/usr/bin/invoiced#/opt/invoiced/bin/invoiced#g' \
        -e 's#file:///usr/share/doc/invoiced/#file:///opt/invoiced/#g' \
        "packaging/$unit" > "$tree/lib/systemd/system/$unit"
    chmod 0644 "$tree/lib/systemd/system/$unit"
    if grep -q '/usr/' "$tree/lib/systemd/system/$unit"; then
        echo "package: $unit still names a path of the .deb" >&2
        exit 1
    fi
done
(cd "$tree" && find . -type f ! -name SHA256SUMS -printf '%P\0' | sort -z | xargs -0 sha256sum > SHA256SUMS)
tarball=$name-x86_64-linux-gnu.tar.gz
rm -f "$dist/$tarball"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$work/tar" -cf - "$name" \
    | gzip -n -9 > "$dist/$tarball"

# The .deb.
stage=$work/deb
install_bins "$stage/usr/bin"
install_docs "$stage/usr/share/doc/invoiced"
install -D -m 0644 packaging/invoiced.conf.example "$stage/usr/share/doc/invoiced/examples/invoiced.conf.example"
install -D -m 0644 packaging/invoiced.conf.example "$stage/etc/invoiced/invoiced.conf"
install -D -m 0644 -t "$stage/lib/systemd/system" packaging/invoiced.service packaging/invoiced-standby.service
install -d -m 0755 "$stage/DEBIAN"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$stage/DEBIAN/"
echo /etc/invoiced/invoiced.conf > "$stage/DEBIAN/conffiles"

# Depends: the packages of the libraries the binaries link, at the versions their symbols need
# (dpkg-shlibdeps reads a source package's debian/control: a minimal one stands in for it).
mkdir -p "$work/src/debian"
printf 'Source: invoiced\n\nPackage: invoiced\nArchitecture: amd64\n' > "$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "${bins[@]/#/-e$stage/usr/bin/}")
shlibs=${shlibs#shlibs:Depends=}
[ -n "$shlibs" ] || { echo "package: dpkg-shlibdeps found no dependency" >&2; exit 1; }
# dpkg-shlibdeps fails on a library that no package ships; the RocksDB one must be named: the
# daemon cannot start without it.
rocksdb_so=$(ldd "$stage/usr/bin/invoiced" | awk '/librocksdb/ { print $3 }')
[ -n "$rocksdb_so" ] || { echo "package: invoiced does not link librocksdb" >&2; exit 1; }
rocksdb_pkg=$(owner_of "$rocksdb_so") || { echo "package: no package ships $rocksdb_so" >&2; exit 1; }
[[ ", $shlibs" == *", $rocksdb_pkg "* || ", $shlibs," == *", $rocksdb_pkg,"* ]] \
    || { echo "package: Depends ($shlibs) lacks $rocksdb_pkg" >&2; exit 1; }
depends="adduser, $shlibs"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@DEPENDS@|$depends|" -e "s|@INSTALLED_SIZE@|$size|" \
    -e "s|@MAINTAINER@|${INVOICED_MAINTAINER:-invoiced maintainers <maintainers@invoiced.invalid>}|" \
    packaging/deb/control.in > "$stage/DEBIAN/control"
deb=invoiced_${version}_amd64.deb
rm -f "$dist/$deb"
dpkg-deb --build --root-owner-group "$stage" "$dist/$deb" >&2
if command -v lintian >/dev/null; then
    lintian "$dist/$deb" >&2 || echo "package: lintian has remarks (above)" >&2
fi

(cd "$dist" && sha256sum "$tarball" "$deb" > SHA256SUMS)
echo "package: $dist/$tarball" >&2
echo "package: $dist/$deb (Depends: $depends)" >&2

"""The release an operator installs without Rust (scripts/package.sh): the archive, unpacked
into an empty prefix, runs the daemon, its client and the plugin under a real lightningd; the
.deb installs with dpkg, declares the packages of the libraries its binaries link, runs as its
system user, and purges clean; systemd-analyze accepts the units of both.

The .deb test installs on this machine: it needs root (or sudo without a password) and a machine
without invoiced installed. In CI (CI=true) what it needs is required; elsewhere its absence
skips it with a message."""

import fcntl
import grp
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tarfile
import time
import tomllib

import pytest

from conftest import Invoiced, Lightningd, ROOT

BINARIES = ("invoiced", "invoiced-cli", "invoiced-cln")
UNITS = ("invoiced.service", "invoiced-standby.service")
# systemd-analyze security's exposure (0-100, printed as 0.0-10.0) the units stay within: what
# the hardening options give (3.0 with systemd 252); dropping one raises it.
MAX_EXPOSURE = 30


def required(condition, message):
    """Fails in CI, skips elsewhere, when `condition` does not hold."""
    if not condition:
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must run this test)")
        pytest.skip(message)


def git(*args):
    return subprocess.run(["git", "-C", ROOT, *args], check=True, capture_output=True, text=True).stdout.strip()


def expected_commit():
    """The commit as build.rs names it: HEAD's 12 digits, "-dirty" when tracked files changed,
    "unknown" outside this project's own checkout."""
    try:
        if os.path.realpath(git("rev-parse", "--show-toplevel")) != os.path.realpath(ROOT):
            return "unknown"
        commit = git("rev-parse", "--short=12", "HEAD")
        return commit + "-dirty" if git("status", "--porcelain", "--untracked-files=no") else commit
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """scripts/package.sh into a fresh dist dir: (dist, version, commit)."""
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        version = tomllib.load(f)["workspace"]["package"]["version"]
    commit = os.environ.get("INVOICED_GIT_COMMIT") or expected_commit()
    dist = tmp_path_factory.mktemp("dist")
    out = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "package.sh"), str(dist)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-8000:]
    return dist, version, commit


@pytest.fixture(scope="module")
def prefix(release, tmp_path_factory):
    """The archive unpacked into an empty directory: its one top directory."""
    dist, version, _ = release
    into = tmp_path_factory.mktemp("prefix")
    assert not os.listdir(into)
    subprocess.run(["tar", "-xzf", str(dist / f"invoiced-{version}-x86_64-linux-gnu.tar.gz"), "-C", str(into)], check=True)
    assert os.listdir(into) == [f"invoiced-{version}"], "one top directory, named for the version"
    return into / f"invoiced-{version}"


def version_line(binary, name, release):
    _, version, commit = release
    out = subprocess.run([str(binary), "--version"], check=True, capture_output=True, text=True, timeout=30)
    assert out.stdout == f"{name} {version} ({commit})\n"
    assert commit == "unknown" or re.fullmatch(r"[0-9a-f]{12}(-dirty)?", commit)


def verify_units(paths):
    """systemd-analyze verify accepts the units (it warns about an unknown key or a binary that
    is not there on stderr, and still exits 0 on some: both must be empty and 0), and their
    hardening keeps the exposure within MAX_EXPOSURE."""
    out = subprocess.run(["systemd-analyze", "verify", *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", ""), out
    for path in paths:
        out = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", f"--threshold={MAX_EXPOSURE}", str(path)],
            capture_output=True, text=True, timeout=120,
        )
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr


def test_dist_holds_the_archive_and_the_deb_with_their_checksums(release):
    dist, version, _ = release
    tarball = f"invoiced-{version}-x86_64-linux-gnu.tar.gz"
    deb = f"invoiced_{version}_amd64.deb"
    assert sorted(os.listdir(dist)) == sorted([tarball, deb, "SHA256SUMS"])
    out = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=dist, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(line.split()[1] for line in (dist / "SHA256SUMS").read_text().splitlines()) == sorted([tarball, deb])
    with tarfile.open(dist / tarball) as t:
        assert all(m.uid == 0 and m.gid == 0 for m in t.getmembers()), "owned by root, not by the builder"


def test_archive_is_a_prefix_every_file_of_which_is_checksummed(prefix, release):
    _, version, _ = release
    out = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=prefix, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    files = sorted(
        os.path.relpath(os.path.join(d, f), prefix) for d, _, fs in os.walk(prefix) for f in fs
    )
    summed = sorted(line.split(None, 1)[1] for line in (prefix / "SHA256SUMS").read_text().splitlines())
    assert summed == [f for f in files if f != "SHA256SUMS"]
    docs = sorted(f"docs/{d}" for d in os.listdir(os.path.join(ROOT, "docs")) if d.endswith(".md"))
    licence = ["LICENSE"] if os.path.exists(os.path.join(ROOT, "LICENSE")) else []
    assert files == sorted(
        [f"bin/{b}" for b in BINARIES] + ["README.md", "SHA256SUMS"] + docs + licence
        + ["share/invoiced/invoiced.conf.example"] + [f"lib/systemd/system/{u}" for u in UNITS]
    )
    for b in BINARIES:
        assert os.stat(prefix / "bin" / b).st_mode & 0o777 == 0o755
    # Its units run it from /opt/invoiced, where README.md has it unpacked.
    for u in UNITS:
        text = (prefix / "lib/systemd/system" / u).read_text()
        assert re.search(r"^ExecStart=/opt/invoiced/bin/invoiced (serve|standby) --conf /etc/invoiced/invoiced.conf --data-dir /var/lib/invoiced$", text, re.M)
        assert "/usr/" not in text


def test_archive_units_verify(prefix, tmp_path):
    """The archive's units as systemd reads them, with their binary where they name it: here,
    the unpacked prefix stands for /opt/invoiced."""
    paths = []
    for u in UNITS:
        text = (prefix / "lib/systemd/system" / u).read_text().replace("/opt/invoiced/", f"{prefix}/")
        (tmp_path / u).write_text(text)
        paths.append(tmp_path / u)
    verify_units(paths)


def test_archive_runs_the_daemon_and_its_client(prefix, release, tmpdir_short):
    for b in BINARIES:
        version_line(prefix / "bin" / b, b, release)
    inv = Invoiced(os.path.join(tmpdir_short, "inv"), binary=str(prefix / "bin" / "invoiced")).start()
    try:
        out = subprocess.run(
            [str(prefix / "bin" / "invoiced-cli"), "--data-dir", inv.data_dir, "invoice", "1000", "from-cli", "made by the unpacked client"],
            capture_output=True, text=True, timeout=30,
        )
        assert out.returncode == 0, out.stderr
        made = json.loads(out.stdout)
        assert made["bolt11"].startswith("lnbcrt10n1")
        assert [i["bolt11"] for i in inv.rpc().listinvoices("from-cli")["invoices"]] == [made["bolt11"]]
        inv.stop()
    finally:
        inv.kill()


def test_archive_runs_the_plugin_under_lightningd(prefix, release, tmpdir_short):
    version_line(prefix / "bin" / "invoiced-cln", "invoiced-cln", release)
    secret = os.urandom(32)
    inv = Invoiced(os.path.join(tmpdir_short, "inv"), secret, binary=str(prefix / "bin" / "invoiced")).start()
    node = Lightningd(os.path.join(tmpdir_short, "ln"), secret)
    try:
        node.with_plugin(inv.socket, plugin=str(prefix / "bin" / "invoiced-cln"))
        assert f"--plugin={prefix}/bin/invoiced-cln" in " ".join(node.proc.args)
        rpc = node.rpc()
        made = rpc.invoice(amount_msat="250sat", label="through-the-node", description="from the unpacked plugin")
        assert [i["bolt11"] for i in inv.rpc().listinvoices("through-the-node")["invoices"]] == [made["bolt11"]]
        assert rpc.getinfo()["id"] == inv.rpc().getinfo()["id"]
    finally:
        node.stop()
        inv.kill()


def as_root():
    """The prefix that runs a command as root: none for root, `sudo -n` if it needs no password."""
    if os.geteuid() == 0:
        return []
    ok = shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
    required(ok, "installing the .deb needs root or sudo without a password")
    return ["sudo", "-n"]


def installed():
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "invoiced"], capture_output=True, text=True)
    return out.returncode == 0 and "installed" in out.stdout.split()[-1:]


def exists_user(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def exists_group(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def owner_of(path):
    """The package that ships the file `path`, wherever /usr-merge and symlinks put it."""
    for p in (path, os.path.realpath(path)):
        for alt in (p, p.removeprefix("/usr"), "/usr" + p):
            out = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True)
            if out.returncode == 0:
                return out.stdout.split(":")[0]
    raise AssertionError(f"no package ships {path}")


def run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert out.returncode == 0, f"{cmd}: {out.stdout}{out.stderr}"
    return out


@pytest.fixture
def machine_lock():
    """One installing test at a time on this machine (another checkout's test run may be
    installing the package too)."""
    with open("/tmp/invoiced-package-test.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def test_deb_installs_declares_its_libraries_runs_and_purges(release, tmp_path, machine_lock):
    dist, version, _ = release
    deb = str(dist / f"invoiced_{version}_amd64.deb")
    sudo = as_root()
    # Never touch a real installation.
    assert not installed(), "invoiced is installed on this machine: the test would replace it"
    for path in ("/var/lib/invoiced", "/etc/invoiced", "/usr/bin/invoiced"):
        assert not os.path.lexists(path), f"{path} exists: the test would overwrite it"
    assert not exists_user("invoiced") and not exists_group("invoiced"), "an invoiced user or group exists already"
    daemon = None
    try:
        run([*sudo, "dpkg", "-i", deb])
        assert installed()
        for b in BINARIES:
            version_line(f"/usr/bin/{b}", b, release)

        # Depends names the package of every library the binaries link (Debian's RocksDB among
        # them), and adduser, which the postinst uses.
        fields = run(["dpkg-query", "-W", "-f=${Depends}\n${Conffiles}\n", "invoiced"]).stdout
        depends = {d.split()[0] for d in fields.splitlines()[0].split(", ")}
        assert "/etc/invoiced/invoiced.conf" in fields, "the config is a conffile"
        assert {"adduser", "libc6"} <= depends
        linked = set()
        for b in BINARIES:
            path = f"/usr/bin/{b}"
            # What it links itself (its NEEDED entries), where the loader finds each (ldd also
            # lists its libraries' own libraries: those are their packages' dependencies).
            needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", run(["readelf", "-d", path]).stdout)
            found = {}
            for line in run(["ldd", path]).stdout.splitlines():
                m = re.match(r"\s*(\S+) => (/\S+)", line) or re.match(r"\s*((/\S+))", line)
                if m:
                    found[os.path.basename(m.group(1))] = m.group(2)
            for soname in needed:
                assert soname in found, f"{b} links {soname}, which the loader does not find"
                linked.add(owner_of(found[soname]))
        assert any(p.startswith("librocksdb") for p in linked), linked
        assert linked <= depends, f"linked {linked}, declared {depends}"

        # The system user, its data dir, the config for its group only.
        user = pwd.getpwnam("invoiced")
        assert user.pw_uid < 1000 and user.pw_shell.endswith("nologin")
        st = os.stat("/var/lib/invoiced")
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (user.pw_uid, 0o700)
        st = os.stat("/etc/invoiced/invoiced.conf")
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, grp.getgrnam("invoiced").gr_gid, 0o640)

        verify_units([f"/lib/systemd/system/{u}" for u in UNITS])
        for u in UNITS:
            assert "ExecStart=/usr/bin/invoiced " in open(f"/lib/systemd/system/{u}").read()

        # The installed daemon runs as its unit runs it (its command line, as its user, reading the
        # conffile), on its data dir (regtest: a flag over the file's network), and its client
        # reaches it.
        as_invoiced = [*sudo, "setpriv", "--reuid=invoiced", "--regid=invoiced", "--init-groups", "--"]
        log = tmp_path / "invoiced.log"
        exec_start = re.search(r"^ExecStart=(.*)$", open("/lib/systemd/system/invoiced.service").read(), re.M)
        assert "--conf /etc/invoiced/invoiced.conf" in exec_start.group(1)
        daemon = subprocess.Popen(
            [*as_invoiced, *exec_start.group(1).split(), "--network", "regtest"],
            stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
        )
        deadline = time.time() + 30
        while subprocess.run([*sudo, "test", "-S", "/var/lib/invoiced/lightning-rpc"]).returncode != 0:
            assert daemon.poll() is None, log.read_text(errors="replace")
            assert time.time() < deadline, "the installed invoiced did not start: " + log.read_text(errors="replace")
            time.sleep(0.1)
        made = run([*as_invoiced, "/usr/bin/invoiced-cli", "--data-dir", "/var/lib/invoiced", "invoice", "1000", "deb", "from the .deb"])
        assert '"bolt11": "lnbcrt10n1' in made.stdout
        assert "options read from /etc/invoiced/invoiced.conf" in log.read_text(errors="replace")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
        daemon = None

        # A purge keeps a data dir with a node key and a log in it, and the user owning it.
        out = run([*sudo, "dpkg", "--purge", "invoiced"])
        assert "not empty" in out.stderr
        assert not installed()
        for path in ("/usr/bin/invoiced", "/etc/invoiced/invoiced.conf", "/lib/systemd/system/invoiced.service"):
            assert not os.path.lexists(path), f"{path} left behind"
        assert exists_user("invoiced")
        assert subprocess.run([*sudo, "test", "-f", "/var/lib/invoiced/hsm_secret"]).returncode == 0
        assert subprocess.run(["dpkg-statoverride", "--list", "/etc/invoiced/invoiced.conf"], capture_output=True).returncode != 0

        # Without them, a purge leaves nothing: no data dir, no user, no group.
        run([*sudo, "rm", "-rf", "/var/lib/invoiced"])
        run([*sudo, "dpkg", "-i", deb])
        run([*sudo, "dpkg", "--purge", "invoiced"])
        assert not installed()
        assert not exists_user("invoiced") and not exists_group("invoiced")
        for path in ("/var/lib/invoiced", "/etc/invoiced", "/usr/share/doc/invoiced"):
            assert not os.path.lexists(path), f"{path} left behind"
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        if installed():
            subprocess.run([*sudo, "dpkg", "--purge", "invoiced"], capture_output=True)
        subprocess.run([*sudo, "rm", "-rf", "/var/lib/invoiced", "/etc/invoiced"])
        if exists_user("invoiced"):
            subprocess.run([*sudo, "userdel", "invoiced"], capture_output=True)
        if exists_group("invoiced"):
            subprocess.run([*sudo, "groupdel", "invoiced"], capture_output=True)

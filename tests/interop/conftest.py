"""Shared harness for the interop tests: a real invoiced, a real Core Lightning `lightningd`
(v26.06.6 from ../shared/tools/cln, offline, with the stand-in bitcoin backend), and the
`invoiced-cln` plugin driven either by lightningd or directly over its stdin/stdout protocol.

Tests that need lightningd run wherever ../shared is present; in CI (CI=true) its absence is a
failure, elsewhere they are skipped with a message saying why."""

import json
import select
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
from pyln.client import LightningRpc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("INVOICED_BIN", os.path.join(ROOT, "target", "debug", "invoiced"))
PLUGIN = os.path.join(os.path.dirname(BIN), "invoiced-cln")
SHARED_CLN = os.path.join(os.path.dirname(ROOT), "shared", "tools", "cln")
CLN_DIR = os.path.join(ROOT, "target", "cln")
# LNbits writes a data folder (./data by default) when its settings are imported.
os.environ.setdefault("LNBITS_DATA_FOLDER", tempfile.mkdtemp(prefix="lnbits-"))


def wait_for_socket(path, proc, what, timeout=30):
    deadline = time.time() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.close()
            return
        except OSError:
            assert proc is None or proc.poll() is None, f"{what} exited"
            assert time.time() < deadline, f"{what} did not start"
            time.sleep(0.05)


class Invoiced:
    """The real daemon on a data dir of its own (the build's, or the binary `binary`)."""

    def __init__(self, data_dir, hsm_secret=None, network="regtest", binary=BIN):
        self.data_dir = data_dir
        self.network = network
        self.bin = binary
        self.proc = None
        os.makedirs(data_dir, 0o700, exist_ok=True)
        if hsm_secret is not None:
            with open(os.path.join(data_dir, "hsm_secret"), "wb") as f:
                f.write(hsm_secret)

    @property
    def socket(self):
        return os.path.join(self.data_dir, "lightning-rpc")

    def start(self, extra=(), check=True):
        self.proc = subprocess.Popen(
            [self.bin, "serve", "--data-dir", self.data_dir, "--network", self.network, "--log-level", "warn", *extra],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.data_dir, "stderr.log"), "ab"),
        )
        if check:
            wait_for_socket(self.socket, self.proc, "invoiced")
        return self

    def stderr(self):
        with open(os.path.join(self.data_dir, "stderr.log"), errors="replace") as f:
            return f.read()

    def rpc(self):
        return LightningRpc(self.socket)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=30) == 0
        self.proc = None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def cln_bin():
    """lightningd's bin directory, installed from ../shared once; skipped (or failed in CI)
    without ../shared. The skip is decided by ../shared itself, not by a copy unpacked into
    target/ earlier: the nodes need its chain backends too."""
    install = os.path.join(SHARED_CLN, "install.sh")
    if not os.path.exists(install):
        message = f"needs the real lightningd and its chain backends from {SHARED_CLN}, which is absent"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must run these tests)")
        pytest.skip(message)
    lightningd = os.path.join(CLN_DIR, "bin", "lightningd")
    if not os.path.exists(lightningd):
        subprocess.run(["bash", install, CLN_DIR], check=True, stdout=subprocess.DEVNULL)
    return os.path.dirname(lightningd)


class Lightningd:
    """A real lightningd in regtest, offline, with fake_bitcoind.py as its chain backend."""

    def __init__(self, lightning_dir, hsm_secret=None):
        self.bin = cln_bin()
        self.dir = lightning_dir
        self.net_dir = os.path.join(lightning_dir, "regtest")
        os.makedirs(self.net_dir, exist_ok=True)
        if hsm_secret is not None:
            path = os.path.join(self.net_dir, "hsm_secret")
            with open(path, "wb") as f:
                f.write(hsm_secret)
            os.chmod(path, 0o400)
        self.proc = None

    @property
    def socket(self):
        return os.path.join(self.net_dir, "lightning-rpc")

    @property
    def log_path(self):
        return os.path.join(self.dir, "log")

    def args(self, extra=()):
        return [
            os.path.join(self.bin, "lightningd"), "--network=regtest", f"--lightning-dir={self.dir}", "--offline",
            "--disable-plugin=bcli", f"--plugin={os.path.join(SHARED_CLN, 'fake_bitcoind.py')}",
            f"--log-file={self.log_path}", "--log-level=debug", *extra,
        ]

    def start(self, extra=(), passphrase=None):
        """Starts it; a `passphrase` is typed on its stdin, as at its --hsm-passphrase prompt."""
        stdin = subprocess.PIPE if passphrase is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.args(extra), stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if passphrase is not None:
            self.proc.stdin.write(passphrase.encode() + b"\n")
            self.proc.stdin.close()
        wait_for_socket(self.socket, self.proc, "lightningd")
        # The socket listens before plugins are initialised: wait until getinfo answers.
        deadline = time.time() + 30
        while True:
            try:
                self.rpc().getinfo()
                return self
            except Exception:
                assert time.time() < deadline, "lightningd never answered getinfo"
                time.sleep(0.1)

    def hsm_secret(self):
        with open(os.path.join(self.net_dir, "hsm_secret"), "rb") as f:
            return f.read()

    def with_plugin(self, invoiced_socket, extra=(), plugin=PLUGIN):
        """Starts it with invoiced-cln (the build's, or the binary `plugin`), and waits until the
        plugin has checked invoiced and taken over (lightningd answers other commands while a
        plugin is still initialising)."""
        self.start([f"--plugin={plugin}", f"--invoiced-rpc-file={invoiced_socket}", *extra])
        deadline = time.time() + 30
        while "invoices on this node are served by invoiced" not in self.log():
            assert time.time() < deadline, "invoiced-cln never finished its start-up"
            time.sleep(0.05)
        return self

    def rpc(self):
        return LightningRpc(self.socket)

    def cli(self, *args):
        out = subprocess.run(
            [os.path.join(self.bin, "lightning-cli"), "--network=regtest", f"--lightning-dir={self.dir}", *args],
            capture_output=True, text=True, timeout=60,
        )
        return out.returncode, out.stdout

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.rpc().stop()
            except Exception:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class PluginProcess:
    """invoiced-cln run the way lightningd runs it: JSON-RPC over its stdin and stdout."""

    def __init__(self, node_dir, invoiced_socket, options=None):
        self.proc = subprocess.Popen([PLUGIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.buf = b""
        self.next_id = 100
        self.logs = []
        self.notifications = []
        self.answers = {}
        self.manifest = self.request("getmanifest", {"allow-deprecated-apis": False})
        opts = {"invoiced-rpc-file": invoiced_socket, **(options or {})}
        config = {
            "lightning-dir": node_dir, "rpc-file": "lightning-rpc", "startup": True, "network": "regtest",
            "feature_set": {"init": "", "node": "", "channel": "", "invoice": ""},
        }
        self.init = self.request("init", {"options": opts, "configuration": config})

    def send(self, method, params):
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n\n")
        self.proc.stdin.flush()
        return self.next_id

    def notify(self, method, params):
        msg = {"jsonrpc": "2.0", "method": method, "params": params}
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n\n")
        self.proc.stdin.flush()

    def pump(self, timeout=30):
        """Reads until one more message has come, and files it: a log line in self.logs, a
        notification in self.notifications, an answer in self.answers by its id."""
        deadline = time.time() + timeout
        while b"\n\n" not in self.buf:
            remaining = deadline - time.time()
            assert remaining > 0, "no answer from the plugin in time"
            ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, "the plugin closed its stdout"
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\n\n", 1)
        if not raw.strip():
            return
        msg = json.loads(raw)
        if msg.get("method") == "log":
            self.logs.append(msg["params"].get("message", ""))
        elif "id" in msg:
            self.answers[msg["id"]] = msg
        elif "method" in msg:
            self.notifications.append(msg)

    def answer(self, want, timeout=30):
        """The answer to request `want`. The plugin answers in any order (a held HTLC is
        resolved when the call that settles it is answered, or before), so answers to other
        requests read meanwhile are kept for their own callers."""
        deadline = time.time() + timeout
        while want not in self.answers:
            self.pump(deadline - time.time())
        return self.answers.pop(want)

    def request(self, method, params, timeout=30):
        msg = self.answer(self.send(method, params), timeout)
        return msg.get("result", msg.get("error"))

    def read_all(self, ids, timeout=30):
        """Answers to the requests `ids`, as {id: result}."""
        deadline = time.time() + timeout
        return {i: self.answer(i, deadline - time.time())["result"] for i in ids}

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def tmpdir_short():
    """A short temporary path: unix socket paths must stay under 108 bytes."""
    d = tempfile.mkdtemp(prefix="inv-")
    yield d
    shutil.rmtree(d, ignore_errors=True)

"""A real Lightning network on this machine for the interop tests: real lightningd v26.06.6
nodes sharing one regtest chain (../shared/tools/cln/regtest_chain.py), on loopback addresses.

    A (payer) ==2== B (invoiced-cln in front of invoiced; 4,000,000 and 2,000,000 sat)
    A --public-- R --private-- B            (a payment through R needs B's route hint)
    A -- C                                   (a plain node: what a node does without the plugin)

Every node polls the chain every second (`--developer --dev-bitcoind-poll=1`). `Network.start`
funds the wallets, opens the channels and waits until every one is CHANNELD_NORMAL on both
sides and invoiced has learnt B's channels."""

import contextlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from conftest import SHARED_CLN, Invoiced, Lightningd, PLUGIN, cln_bin

sys.path.insert(0, SHARED_CLN)
try:
    import regtest_chain  # noqa: E402  (../shared/tools/cln, stdlib only)
except ImportError:  # without ../shared the tests skip (or fail in CI) in their fixture, not here
    regtest_chain = None

CHAIN_PLUGIN = os.path.join(SHARED_CLN, "regtest_chain.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, timeout=120, every=0.2):
    """Polls `check` until it returns something true, and returns it."""
    deadline = time.time() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.time() < deadline, f"not within {timeout} s: {what}"
        time.sleep(every)


class ChainNode(Lightningd):
    """A lightningd on the shared regtest chain, listening on a loopback port."""

    def __init__(self, lightning_dir, chain_dir, name, hsm_secret=None):
        super().__init__(lightning_dir, hsm_secret)
        self.chain_dir = chain_dir
        self.name = name
        self.port = free_port()
        self.id = None

    def args(self, extra=()):
        return [
            os.path.join(self.bin, "lightningd"), "--network=regtest", f"--lightning-dir={self.dir}",
            "--disable-plugin=bcli", f"--plugin={CHAIN_PLUGIN}", f"--regtest-chain-dir={self.chain_dir}",
            "--developer", "--dev-bitcoind-poll=1", f"--bind-addr=127.0.0.1:{self.port}", f"--alias={self.name}",
            f"--log-file={self.log_path}", "--log-level=debug", *extra,
        ]

    def start(self, extra=(), passphrase=None):
        super().start(extra, passphrase)
        self.id = self.rpc().getinfo()["id"]
        return self

    def address(self):
        return self.rpc().newaddr("bech32")["bech32"]

    def confirmed_outputs(self):
        return [o for o in self.rpc().listfunds()["outputs"] if o["status"] == "confirmed"]

    def channels(self, peer=None):
        return self.rpc().listpeerchannels(peer)["channels"] if peer else self.rpc().listpeerchannels()["channels"]

    def normal(self, peer, n):
        return len([c for c in self.channels(peer.id) if c["state"] == "CHANNELD_NORMAL"]) == n


def node_table(node):
    """The invoices in lightningd's own table, as (label, state), read from its database: the
    node's `listinvoices` is invoiced's."""
    import sqlite3
    db = sqlite3.connect(f"file:{os.path.join(node.net_dir, 'lightningd.sqlite3')}?mode=ro", uri=True)
    try:
        return db.execute("SELECT label, state FROM invoices").fetchall()
    finally:
        db.close()


# A plugin beside invoiced-cln on B that logs every payment invoiced-cln announces.
SUBSCRIBER = """#!{python}
import json
from pyln.client import Plugin

plugin = Plugin()


@plugin.subscribe("invoiced_invoice_payment")
def on_payment(plugin, **kwargs):
    plugin.log("subscriber got invoiced_invoice_payment " + json.dumps(kwargs.get("payload", kwargs), sort_keys=True))


plugin.run()
"""


class WebhookReceiver:
    """An HTTP receiver on a loopback port, keeping every webhook body invoiced POSTs."""

    def __init__(self):
        self.bodies = []
        received = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/invoiced"

    def of(self, payment_hash, kind):
        return [b for b in list(self.bodies) if b["type"] == kind and b["invoice"].get("payment_hash") == payment_hash]

    def stop(self):
        self.server.shutdown()


class Network:
    """The nodes, the chain and invoiced (whose webhooks `hooks` receives); `stop` ends every
    process it started. With `observers=False`, invoiced sends no webhooks and B runs no
    subscriber plugin: the product alone, as the payment benchmark measures it."""

    def __init__(self, root, observers=True):
        self.root = root
        self.observers = observers
        self.chain = os.path.join(root, "chain")
        os.makedirs(self.chain)
        secret = os.urandom(32)
        self.invoiced = Invoiced(os.path.join(root, "inv"), secret)
        self.a = ChainNode(os.path.join(root, "a"), self.chain, "A")
        self.r = ChainNode(os.path.join(root, "r"), self.chain, "R")
        self.b = ChainNode(os.path.join(root, "b"), self.chain, "B", secret)
        self.c = ChainNode(os.path.join(root, "c"), self.chain, "C")
        self.nodes = [self.a, self.r, self.b, self.c]
        self.hooks = WebhookReceiver()

    def mine(self, n=1):
        return regtest_chain.mine(self.chain, n)

    def start(self):
        self.invoiced.start(["--webhook-url", self.hooks.url] if self.observers else [])
        for node in (self.a, self.r, self.c):
            node.start()
        self.start_b()
        # Coins: A opens A-B twice, A-R and A-C; R opens R-B.
        for _ in range(4):
            regtest_chain.fund(self.chain, self.a.address(), 10_000_000)
        regtest_chain.fund(self.chain, self.r.address(), 3_000_000)
        self.mine(1)
        wait_for("A's coins", lambda: len(self.a.confirmed_outputs()) == 4)
        wait_for("R's coin", lambda: len(self.r.confirmed_outputs()) == 1)
        for src, dst in ((self.a, self.b), (self.a, self.r), (self.a, self.c), (self.r, self.b)):
            src.rpc().connect(dst.id, "127.0.0.1", dst.port)
        self.a.rpc().fundchannel(self.b.id, 4_000_000)
        self.a.rpc().fundchannel(self.b.id, 2_000_000)
        self.a.rpc().fundchannel(self.r.id, 1_000_000)
        self.a.rpc().fundchannel(self.c.id, 1_000_000)
        self.r.rpc().fundchannel(self.b.id, 1_000_000, announce=False)
        self.mine(6)
        for x, y, n in ((self.a, self.b, 2), (self.b, self.a, 2), (self.a, self.r, 1), (self.r, self.a, 1),
                        (self.a, self.c, 1), (self.c, self.a, 1), (self.r, self.b, 1), (self.b, self.r, 1)):
            wait_for(f"{x.name}'s channels with {y.name} in CHANNELD_NORMAL", lambda: x.normal(y, n))
        inv = self.invoiced.rpc()

        def learnt():
            channels = inv.call("listincoming")["channels"]
            return len(channels) == 3 and all(c["state"] == "CHANNELD_NORMAL" and c.get("reason") != "no_peer_update" for c in channels)
        # A peer's channel_update comes without a notification: the plugin's next sync (a new
        # block, or its one-minute period) brings it, so a block is mined while it is awaited.
        deadline = time.time() + 90
        while not learnt():
            assert time.time() < deadline, "invoiced never learnt B's three channels as usable"
            self.mine(1)
            time.sleep(2)
        return self

    def start_b(self):
        """Starts B with invoiced-cln (and a plugin that logs its payment announcements), and
        waits until invoiced-cln has taken over."""
        taken = "invoices on this node are served by invoiced"
        before = self.b.log().count(taken) if os.path.exists(self.b.log_path) else 0
        subscriber = os.path.join(self.root, "subscriber.py")
        with open(subscriber, "w") as f:
            f.write(SUBSCRIBER.format(python=sys.executable))
        os.chmod(subscriber, 0o755)
        extra = [f"--plugin={subscriber}"] if self.observers else []
        self.b.start([f"--plugin={PLUGIN}", f"--invoiced-rpc-file={self.invoiced.socket}", *extra])
        wait_for("invoiced-cln to take over B's invoices", lambda: self.b.log().count(taken) > before, 30)

    def announced(self, label):
        """The `invoiced_invoice_payment` announcements B's other plugins heard for `label`."""
        lines = [l.split("subscriber got invoiced_invoice_payment ", 1)[1] for l in self.b.log().splitlines() if "subscriber got invoiced_invoice_payment" in l]
        return [a for a in map(json.loads, lines) if a.get("label") == label]

    def scid(self, x, y, announced=True):
        """The short channel id of a channel between `x` and `y`."""
        for ch in x.channels(y.id):
            if ch["state"] == "CHANNELD_NORMAL" and ch.get("private", False) != announced:
                return ch["short_channel_id"]
        raise AssertionError(f"no channel {x.name}-{y.name}")

    def fund_b(self, label, amount_msat, spendable_msat):
        """A pays B `amount_msat` so B can spend above its channel reserve, then waits until one of
        B's channels to A can send `spendable_msat`: xpay returns at A's preimage, before B's side
        of the commitment is signed, and until then B's spendable amount still reads 0."""
        made = self.b.rpc().invoice(amount_msat=amount_msat, label=label, description="liquidity for B")
        self.a.rpc().call("xpay", {"invstring": made["bolt11"]})
        wait_for(f"B able to send {spendable_msat} msat to A",
                 lambda: max(c["spendable_msat"] for c in self.b.channels(self.a.id)) >= spendable_msat, 30)

    def every_channel_normal(self):
        """Whether every channel of every node is still CHANNELD_NORMAL."""
        bad = [(n.name, c.get("short_channel_id"), c["state"]) for n in self.nodes for c in n.channels() if c["state"] != "CHANNELD_NORMAL"]
        assert not bad, f"channels left CHANNELD_NORMAL: {bad}"
        return True

    def audit(self):
        """`invoiced audit` on invoiced's data dir (it reads the log while the daemon runs)."""
        out = subprocess.run([os.path.join(os.path.dirname(PLUGIN), "invoiced"), "audit", "--data-dir", self.invoiced.data_dir],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"audit failed: {out.stdout}{out.stderr}"
        return out.stdout

    def stop(self):
        for node in self.nodes:
            try:
                node.stop()
            except Exception:
                pass
        self.invoiced.kill()
        self.hooks.stop()


@contextlib.contextmanager
def running(prefix):
    """A started network in a temporary directory, stopped and removed afterwards; skipped (or
    failed in CI) without ../shared."""
    cln_bin()
    root = tempfile.mkdtemp(prefix=prefix)
    network = Network(root)
    try:
        yield network.start()
    finally:
        network.stop()
        shutil.rmtree(root, ignore_errors=True)

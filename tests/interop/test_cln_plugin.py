"""invoiced-cln in front of a real Core Lightning node (v26.06.6): the node's clients
(pyln-client, lightning-cli) get their invoices from invoiced, and payments to them are checked
and settled through the plugin's htlc_accepted hook, driven over its real stdin/stdout protocol
(no HTLC can reach an offline node without channels)."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

import bolt11
import pytest
from pyln.client import RpcError

from conftest import Invoiced, Lightningd, PluginProcess, PLUGIN

INCORRECT_DETAILS = "400f"
MPP_TIMEOUT = "0017"


@pytest.fixture
def pair(tmpdir_short):
    """invoiced and lightningd sharing one hsm_secret; lightningd not yet started."""
    secret = os.urandom(32)
    inv = Invoiced(os.path.join(tmpdir_short, "inv"), secret).start()
    node = Lightningd(os.path.join(tmpdir_short, "ln"), secret)
    yield inv, node
    node.stop()
    inv.kill()


def test_node_clients_get_invoices_from_invoiced(pair):
    inv, node = pair
    node.with_plugin(inv.socket)
    rpc = node.rpc()
    info = rpc.getinfo()
    assert info["id"] == inv.rpc().getinfo()["id"]
    assert "alias" in info and "blockheight" in info, "getinfo must still be the node's"

    made = rpc.invoice(amount_msat="250sat", label="coffee", description="one espresso", expiry=3600)
    assert made["created_index"] == 1 and made["expires_at"] == made["expiry_time"]
    dec = bolt11.decode(made["bolt11"])
    assert dec.payee == info["id"] and dec.amount_msat == 250000
    assert rpc.decode(made["bolt11"])["payee"] == info["id"], "the node's own decode accepts it"

    listed = rpc.listinvoices("coffee")["invoices"]
    assert [i["bolt11"] for i in listed] == [made["bolt11"]]
    assert inv.rpc().listinvoices("coffee")["invoices"] == listed, "the node's listing is invoiced's"

    code, out = node.cli("invoice", "1000", "tea", "green tea")
    assert code == 0, out
    assert bolt11.decode(json.loads(out)["bolt11"]).payee == info["id"]
    code, out = node.cli("-k", "listinvoices", "label=tea")
    assert json.loads(out)["invoices"][0]["description"] == "green tea"

    with pytest.raises(RpcError) as e:
        rpc.invoice(amount_msat=1, label="coffee", description="again")
    assert e.value.error == {"code": 900, "message": "Duplicate label 'coffee'"}
    with pytest.raises(RpcError) as e:
        rpc.waitanyinvoice(0, 0)
    assert e.value.error["code"] == 904
    assert rpc.call("wait", {"subsystem": "invoices", "indexname": "created", "nextvalue": 2})["created"] == 2
    assert rpc.delinvoice("tea", "unpaid")["label"] == "tea"
    assert [i["label"] for i in rpc.listinvoices()["invoices"]] == ["coffee"]

    # Everything else is still the node's.
    assert rpc.listfunds() == {"outputs": [], "channels": []}
    code, out = node.cli("help", "invoice")
    assert code == 0 and "invoice amount_msat label description" in out
    assert "served by invoiced" in node.log()


def test_unreachable_invoiced_is_an_error_never_the_nodes_own_invoices(pair):
    inv, node = pair
    node.with_plugin(inv.socket)
    inv.stop()
    with pytest.raises(RpcError) as e:
        node.rpc().invoice(amount_msat=1000, label="lost", description="x")
    assert e.value.error["code"] == -1
    assert e.value.error["message"].startswith(f"invoiced is unreachable at {inv.socket}")
    inv.start()
    assert node.rpc().invoice(amount_msat=1000, label="back", description="x")["created_index"] == 1
    assert [i["label"] for i in node.rpc().listinvoices()["invoices"]] == ["back"]


@pytest.mark.parametrize("mismatch", ["node id", "network"])
def test_plugin_refuses_another_node_id_or_network(tmpdir_short, mismatch):
    secret = os.urandom(32)
    if mismatch == "node id":
        inv = Invoiced(os.path.join(tmpdir_short, "inv"), os.urandom(32)).start()
        expected = "its invoices would be unpayable"
    else:
        inv = Invoiced(os.path.join(tmpdir_short, "inv"), secret, network="testnet").start()
        expected = 'invoiced runs on "testnet" but this node on "regtest"'
    node = Lightningd(os.path.join(tmpdir_short, "ln"), secret)
    try:
        # As an important plugin, its refusal stops the node instead of leaving it half-served.
        proc = subprocess.run(
            node.args([f"--important-plugin={PLUGIN}", f"--invoiced-rpc-file={inv.socket}"]),
            capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode != 0
        assert "invoiced-cln refuses to start" in node.log() and expected in node.log()
    finally:
        node.stop()
        inv.kill()


# ---------------------------------------------------------------- htlc_accepted, over stdin/stdout


@pytest.fixture
def hook(pair):
    """The plugin run by hand beside a real lightningd (its datastore and getinfo) and invoiced."""
    inv, node = pair
    node.start()
    state = {"plugin": None}

    def start(**options):
        if state["plugin"]:
            state["plugin"].close()
        opts = {"invoiced-mpp-timeout": 3, **options}
        state["plugin"] = PluginProcess(node.net_dir, inv.socket, opts)
        assert state["plugin"].init == {}, state["plugin"].init
        return state["plugin"]

    yield inv, node, start
    if state["plugin"]:
        state["plugin"].close()


def htlc(made, amount, scid="103x1x0", htlc_id=0, total=None, secret=None, rel=40, height=100):
    onion = {"payload": "00", "type": "tlv", "next_onion": "00" * 32, "shared_secret": "11" * 32,
             "payment_secret": secret or made["payment_secret"], "forward_msat": amount,
             "outgoing_cltv_value": height + rel}
    if total is not None:
        onion["total_msat"] = total
    return {"peer_id": "02" + "33" * 32, "onion": onion,
            "htlc": {"short_channel_id": scid, "id": htlc_id, "amount_msat": amount, "cltv_expiry": height + rel,
                     "cltv_expiry_relative": rel, "payment_hash": made["payment_hash"]}}


def incorrect(amount, height=100):
    return {"result": "fail", "failure_message": INCORRECT_DETAILS + f"{amount:016x}{height:08x}"}


def resolved(made):
    r = {"result": "resolve"}
    return r


def assert_resolves(answer, made):
    assert answer["result"] == "resolve", answer
    assert hashlib.sha256(bytes.fromhex(answer["payment_key"])).hexdigest() == made["payment_hash"]


def wait_notification(p, method, timeout=10):
    deadline = time.time() + timeout
    while True:
        found = [n for n in p.notifications if n["method"] == method]
        if found:
            p.notifications.remove(found[0])
            return found[0]
        assert time.time() < deadline, f"no {method} notification: {p.notifications}"
        try:
            p.pump(timeout=0.2)
        except AssertionError:
            pass


def test_single_part_is_settled_in_invoiced_and_resolved(hook):
    inv, node, start = hook
    p = start()
    made = inv.rpc().invoice(amount_msat=5000, label="single", description="one part")
    answer = p.request("htlc_accepted", htlc(made, 5000))
    assert_resolves(answer, made)
    paid = inv.rpc().listinvoices("single")["invoices"][0]
    assert paid["status"] == "paid" and paid["amount_received_msat"] == 5000
    assert paid["payment_preimage"] == answer["payment_key"]
    # Announced with invoice_payment's fields, under the plugin's own topic (lightningd refuses a
    # plugin that announces its native one).
    assert {"method": "invoiced_invoice_payment"} in p.manifest["notifications"]
    note = wait_notification(p, "invoiced_invoice_payment")
    assert note["params"]["invoiced_invoice_payment"] == {"msat": 5000, "preimage": answer["payment_key"], "label": "single"}
    # A hash that is not invoiced's is left to lightningd.
    other = dict(made, payment_hash="ab" * 32)
    assert p.request("htlc_accepted", htlc(other, 5000)) == {"result": "continue"}
    # A forward is never ours to decide.
    fwd = htlc(made, 5000)
    fwd["onion"]["short_channel_id"] = "1x2x3"
    assert p.request("htlc_accepted", fwd) == {"result": "continue"}


def test_multi_part_in_any_order_is_held_until_complete(hook):
    inv, node, start = hook
    p = start()
    made = inv.rpc().invoice(amount_msat=9000, label="mpp", description="three parts")
    ids = [p.send("htlc_accepted", htlc(made, a, scid=f"10{i}x1x0", htlc_id=i, total=9000))
           for i, a in [(2, 4000), (0, 1000)]]
    time.sleep(0.5)
    assert inv.rpc().listinvoices("mpp")["invoices"][0]["status"] == "unpaid", "held, not settled"
    ids.append(p.send("htlc_accepted", htlc(made, 4000, scid="101x1x0", htlc_id=1, total=9000)))
    answers = p.read_all(ids)
    for a in answers.values():
        assert_resolves(a, made)
    assert len({a["payment_key"] for a in answers.values()}) == 1
    paid = inv.rpc().listinvoices("mpp")["invoices"][0]
    assert paid["status"] == "paid" and paid["amount_received_msat"] == 9000


def test_incomplete_set_times_out_with_mpp_timeout(hook):
    inv, node, start = hook
    p = start(**{"invoiced-mpp-timeout": 2})
    made = inv.rpc().invoice(amount_msat=9000, label="slow", description="never completes")
    t = time.time()
    answer = p.request("htlc_accepted", htlc(made, 4000, total=9000), timeout=20)
    assert answer == {"result": "fail", "failure_message": MPP_TIMEOUT}
    assert time.time() - t >= 1.9
    assert inv.rpc().listinvoices("slow")["invoices"][0]["status"] == "unpaid"


def test_every_refusal_is_incorrect_or_unknown_payment_details(hook):
    inv, node, start = hook
    p = start()
    rpc = inv.rpc()
    made = rpc.invoice(amount_msat=5000, label="checks", description="refusals", cltv=20)
    assert p.request("htlc_accepted", htlc(made, 5000, secret="00" * 32)) == incorrect(5000)
    assert p.request("htlc_accepted", htlc(made, 4999)) == incorrect(4999)
    assert p.request("htlc_accepted", htlc(made, 10001)) == incorrect(10001)
    assert p.request("htlc_accepted", htlc(made, 5000, rel=19)) == incorrect(5000)
    other_total = [p.send("htlc_accepted", htlc(made, 2000, htlc_id=1, total=6000)),
                   p.send("htlc_accepted", htlc(made, 2000, htlc_id=2, total=7000))]
    answers = p.read_all(other_total, timeout=20)
    assert answers[other_total[1]] == incorrect(2000), "a part with another total_msat"
    assert answers[other_total[0]] == {"result": "fail", "failure_message": MPP_TIMEOUT}
    assert rpc.listinvoices("checks")["invoices"][0]["status"] == "unpaid"
    # Twice the amount is still accepted, as Core Lightning accepts it.
    assert_resolves(p.request("htlc_accepted", htlc(made, 10000, htlc_id=3)), made)
    # Paid: a new HTLC is refused.
    assert p.request("htlc_accepted", htlc(made, 5000, htlc_id=4)) == incorrect(5000)
    # Expired.
    short = rpc.invoice(amount_msat=1000, label="short", description="expires", expiry=1)
    time.sleep(2.2)
    assert p.request("htlc_accepted", htlc(short, 1000)) == incorrect(1000)
    # Any amount.
    anyinv = rpc.invoice(amount_msat="any", label="any", description="tips")
    assert_resolves(p.request("htlc_accepted", htlc(anyinv, 123)), anyinv)
    assert rpc.listinvoices("any")["invoices"][0]["amount_received_msat"] == 123


def test_replays_after_restarts_of_the_plugin_and_of_invoiced(hook):
    inv, node, start = hook
    p = start()
    made = inv.rpc().invoice(amount_msat=6000, label="replay", description="idempotent")
    parts = [htlc(made, 3000, scid="104x1x0", htlc_id=i, total=6000) for i in range(2)]
    first = p.read_all([p.send("htlc_accepted", h) for h in parts])
    preimage = {a["payment_key"] for a in first.values()}.pop()
    # lightningd restarts (and with it the plugin) before it recorded the resolutions: it replays.
    p = start()
    for h in parts:
        again = p.request("htlc_accepted", h)
        assert again == {"result": "resolve", "payment_key": preimage}
    # An HTLC that was not part of that payment is refused.
    assert p.request("htlc_accepted", htlc(made, 6000, scid="105x1x0", htlc_id=9)) == incorrect(6000)
    # And after invoiced restarts too.
    inv.stop()
    inv.start()
    p = start()
    assert p.request("htlc_accepted", parts[0]) == {"result": "resolve", "payment_key": preimage}
    assert inv.rpc().listinvoices("replay")["invoices"][0]["pay_index"] == 1


def test_invoiced_down_then_up_holds_the_htlc(hook):
    inv, node, start = hook
    p = start()
    made = inv.rpc().invoice(amount_msat=7000, label="outage", description="held through it")
    inv.stop()
    waiting = p.send("htlc_accepted", htlc(made, 7000))
    time.sleep(2)
    inv.start()
    answer = p.read_all([waiting], timeout=30)[waiting]
    assert_resolves(answer, made)
    assert inv.rpc().listinvoices("outage")["invoices"][0]["status"] == "paid"
    # Too close to its expiry while invoiced is down: failed rather than held.
    made2 = inv.rpc().invoice(amount_msat=7000, label="outage2", description="too close")
    inv.stop()
    answer = p.request("htlc_accepted", htlc(made2, 7000, rel=5, height=100), timeout=30)
    assert answer == incorrect(7000)


# ---------------------------------------------------------------- hold invoices


# Hold invoices ask a cltv of 144 (holdinvoice's default): the parts carry more.
HOLD_REL = 150


def lookup(inv, made):
    return inv.rpc().call("holdinvoicelookup", {"payment_hash": made["payment_hash"]})["holdinvoices"][0]


def wait_state(inv, made, state, timeout=10):
    deadline = time.time() + timeout
    while lookup(inv, made)["state"] != state:
        assert time.time() < deadline, f"not {state}: {lookup(inv, made)}"
        time.sleep(0.05)


def test_hold_invoice_parts_are_held_until_settled_through_the_plugins_methods(hook):
    inv, node, start = hook
    p = start()
    # holdinvoice's commands are the plugin's own methods on the node.
    assert p.request("holdinvoice-version", {})["version"] == "5.0.0"
    made = p.request("holdinvoice", {"amount_msat": 9000, "description": "swap"})
    assert made["state"] == "OPEN" and bolt11.decode(made["bolt11"]).payment_hash == made["payment_hash"]
    error = p.request("holdinvoicesettle", {"payment_hash": made["payment_hash"]})
    assert (error["code"], error["message"]) == (-32602, "Holdinvoice is in wrong state: `OPEN`"), "invoiced's error passes through"
    ids = [p.send("htlc_accepted", htlc(made, a, scid=f"10{i}x1x0", htlc_id=i, total=9000, rel=HOLD_REL)) for i, a in [(0, 5000), (1, 4000)]]
    wait_state(inv, made, "ACCEPTED")
    held = lookup(inv, made)
    assert held["htlc_expiry"] == 100 + HOLD_REL
    time.sleep(0.5)
    assert inv.rpc().listinvoices(payment_hash=made["payment_hash"])["invoices"][0]["status"] == "unpaid"
    # Settled: every held part is resolved with the preimage.
    assert p.request("holdinvoicesettle", {"payment_hash": made["payment_hash"]}) == {"state": "SETTLED"}
    answers = p.read_all(ids, timeout=40)
    for a in answers.values():
        assert_resolves(a, made)
    paid = inv.rpc().listinvoices(payment_hash=made["payment_hash"])["invoices"][0]
    assert paid["status"] == "paid" and paid["amount_received_msat"] == 9000 and paid["hold_state"] == "SETTLED"
    # Created through the plugin's method and paid through the node: both announced.
    created = wait_notification(p, "invoiced_invoice_creation")["params"]["invoiced_invoice_creation"]
    assert created == {"msat": 9000, "label": made["label"]}
    note = wait_notification(p, "invoiced_invoice_payment")["params"]["invoiced_invoice_payment"]
    assert note == {"msat": 9000, "preimage": made["preimage"], "label": made["label"]}
    # lightningd replays a settled part after a restart: resolved again; a stranger is failed.
    p = start()
    again = p.request("htlc_accepted", htlc(made, 5000, scid="100x1x0", htlc_id=0, total=9000, rel=HOLD_REL))
    assert again == {"result": "resolve", "payment_key": made["preimage"]}
    assert p.request("htlc_accepted", htlc(made, 9000, scid="109x1x0", htlc_id=9, rel=HOLD_REL)) == incorrect(9000)


def test_hold_invoice_canceled_or_forgotten_fails_its_parts_and_survives_a_plugin_restart(hook):
    inv, node, start = hook
    p = start()
    rpc = inv.rpc()
    secret = "63e67a1d4b428024e60b262b2573ee17adf2d4e645128713d73c88d4fa086c4e"
    payment_hash = hashlib.sha256(bytes.fromhex(secret)).hexdigest()
    made = rpc.call("holdinvoice", {"amount_msat": 3000, "description": "escrow", "payment_hash": payment_hash})
    first = p.send("htlc_accepted", htlc(made, 3000, htlc_id=1, rel=HOLD_REL))
    wait_state(inv, made, "ACCEPTED")
    # lightningd restarts with the HTLC undecided: the new plugin holds the replayed part again.
    p = start()
    head = rpc.getinfo()["log_head_seq"]
    again = p.send("htlc_accepted", htlc(made, 3000, htlc_id=1, rel=HOLD_REL))
    time.sleep(1)
    assert rpc.getinfo()["log_head_seq"] == head, "a replayed part is recognised, not recorded twice"
    assert p.request("holdinvoicesettle", {"preimage": secret}) == {"state": "SETTLED"}
    assert_resolves(p.read_all([again], timeout=40)[again], made)
    del first  # the first plugin's answer died with it: lightningd replays the HTLC instead

    canceled = rpc.call("holdinvoice", {"amount_msat": 2000, "description": "refund"})
    waiting = p.send("htlc_accepted", htlc(canceled, 2000, htlc_id=2, rel=HOLD_REL))
    wait_state(inv, canceled, "ACCEPTED")
    assert p.request("holdinvoicecancel", {"payment_hash": canceled["payment_hash"]}) == {"state": "CANCELED"}
    assert p.read_all([waiting], timeout=40)[waiting] == incorrect(2000)

    # Forgotten: the node's height, passed with the channels, reaches 6 blocks before the part's
    # expiry (250): invoiced cancels and the plugin fails the part, before any force-close.
    forgotten = rpc.call("holdinvoice", {"amount_msat": 1000, "description": "forgotten"})
    waiting = p.send("htlc_accepted", htlc(forgotten, 1000, htlc_id=3, rel=HOLD_REL))
    wait_state(inv, forgotten, "ACCEPTED")
    rpc.call("syncchannels", {"channels": [], "blockheight": 100 + HOLD_REL - 6})
    answer = p.read_all([waiting], timeout=40)[waiting]
    assert answer["result"] == "fail" and answer["failure_message"].startswith(INCORRECT_DETAILS)
    assert lookup(inv, forgotten)["state"] == "CANCELED"


def test_hold_commands_on_the_nodes_socket(pair):
    inv, node = pair
    node.with_plugin(inv.socket)
    code, out = node.cli("-k", "holdinvoice", "amount_msat=1000", "description=held by lightning-cli")
    assert code == 0 and json.loads(out)["state"] == "OPEN", out
    made = node.rpc().call("holdinvoice", {"amount_msat": 1000, "description": "held on the node"})
    assert node.rpc().decode(made["bolt11"])["payee"] == node.rpc().getinfo()["id"]
    listed = node.rpc().call("holdinvoicelookup", {})["holdinvoices"]
    assert [h["payment_hash"] for h in listed][-1] == made["payment_hash"] and len(listed) == 2
    code, out = node.cli("-k", "holdinvoicecancel", f"payment_hash={made['payment_hash']}")
    assert code == 0 and json.loads(out) == {"state": "CANCELED"}, out
    with pytest.raises(RpcError) as e:
        node.rpc().call("holdinvoicesettle", {"payment_hash": made["payment_hash"]})
    assert e.value.error["message"] == "Holdinvoice is in wrong state: `CANCELED`"


SUBSCRIBER = """#!{python}
import json
from pyln.client import Plugin

plugin = Plugin()


@plugin.subscribe("invoiced_invoice_creation")
def on_creation(plugin, **kwargs):
    plugin.log("subscriber got invoiced_invoice_creation " + json.dumps(kwargs, sort_keys=True))


plugin.run()
"""


def test_plugins_on_the_node_hear_of_invoices_created_through_it(pair, tmpdir_short):
    inv, node = pair
    path = os.path.join(tmpdir_short, "subscriber.py")
    with open(path, "w") as f:
        f.write(SUBSCRIBER.format(python=sys.executable))
    os.chmod(path, 0o755)
    node.with_plugin(inv.socket, extra=[f"--plugin={path}"])
    node.rpc().invoice(amount_msat=4242, label="announced", description="to other plugins")
    deadline = time.time() + 20
    while "subscriber got invoiced_invoice_creation" not in node.log():
        assert time.time() < deadline, node.log()[-3000:]
        time.sleep(0.1)
    line = [l for l in node.log().splitlines() if "subscriber got invoiced_invoice_creation" in l][0]
    assert '"label": "announced"' in line and "4242" in line, line


# ---------------------------------------------------------------- the channel feed


class FakeNode:
    """A stand-in for lightningd's socket that answers getinfo with invoiced's id and
    listpeerchannels with a real node's answer (tests/data/listpeerchannels.json): lightningd here
    cannot have channels."""

    def __init__(self, path, node_id, channels):
        self.path, self.node_id, self.channels = path, node_id, channels
        self.calls = []
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(16)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        buf = b""
        dec = json.JSONDecoder()
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk
            text = buf.decode()
            try:
                req, end = dec.raw_decode(text.lstrip())
            except ValueError:
                continue
            buf = text.lstrip()[end:].encode()
            self.calls.append(req["method"])
            if req["method"] == "getinfo":
                result = {"id": self.node_id, "network": "regtest", "blockheight": 120}
            elif req["method"] == "listpeerchannels":
                result = {"channels": self.channels}
            else:
                result = {}
            conn.sendall(json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": result}).encode() + b"\n\n")


def test_channels_are_fed_to_invoiced_at_start_and_on_notifications(tmpdir_short):
    inv = Invoiced(os.path.join(tmpdir_short, "inv"), os.urandom(32)).start()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "data", "listpeerchannels.json")) as f:
        channels = json.load(f)["channels"]
    node_dir = os.path.join(tmpdir_short, "node")
    os.mkdir(node_dir)
    fake = FakeNode(os.path.join(node_dir, "lightning-rpc"), inv.rpc().getinfo()["id"], channels)
    p = PluginProcess(node_dir, inv.socket)
    try:
        assert p.init == {}
        deadline = time.time() + 10
        while inv.rpc().getinfo()["num_channels"] != len(channels):
            assert time.time() < deadline, "channels never reached invoiced"
            time.sleep(0.1)
        incoming = inv.rpc().call("listincoming")
        assert len(incoming["channels"]) == len(channels)
        # A channel closes: the notification makes the plugin sync again.
        fake.channels = channels[1:]
        before = fake.calls.count("listpeerchannels")
        p.notify("channel_state_changed", {"channel_state_changed": {"peer_id": channels[0]["peer_id"]}})
        deadline = time.time() + 10
        while inv.rpc().getinfo()["num_channels"] != len(channels) - 1:
            assert time.time() < deadline, "the change never reached invoiced"
            time.sleep(0.1)
        assert fake.calls.count("listpeerchannels") == before + 1
    finally:
        p.close()
        inv.kill()

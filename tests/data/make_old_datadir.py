#!/usr/bin/env python3
"""Writes tests/data/datadir-v4/: a data dir made by an older invoiced, kept so that every later
invoiced is shown to replay it identically (tests/daemon/compat.rs).

It was made with the invoiced of commit 570f2d3 (before the events crate's newtypes), as
    python3 tests/data/make_old_datadir.py OLD_BIN_DIR
and is never rewritten: a new one is made only for a new format version, beside it.

Every kind of record a node makes through the socket is in it: invoices (fixed amount, any,
description hash only, a given preimage, fallbacks, route hints), channels opened, updated and
closed, payments with and without their HTLCs, an expiry, a deletion, a removed description, a
clean by autoclean, hold invoices accepted, settled and canceled (one made from its hash alone).
What the old invoiced answered for `listinvoices`, `listincoming` and `invoiced events --json`
is kept beside it, to compare with.
"""
import json, os, shutil, subprocess, sys, time

from pyln.client import LightningRpc

old = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "datadir-v4")
work = "/tmp/make-old-datadir"
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work, 0o700)
with open(os.path.join(work, "hsm_secret"), "wb") as f:
    f.write(bytes([0x11] * 32))
proc = subprocess.Popen([os.path.join(old, "invoiced"), "serve", "--data-dir", work, "--network",
                         "regtest", "--log-level", "warn"])
sock = os.path.join(work, "lightning-rpc")
for _ in range(200):
    if os.path.exists(sock):
        break
    time.sleep(0.05)
rpc = LightningRpc(sock)

# The invoices left unpaid never expire while the fixture is in use: a daemon started on it
# later must come up with the same listings.
FAR = 100 * 365 * 86_400
PEER_B = "0266e4598d1d3c415f572a8488830b60f7e744ed9235eb0b1ba93283b315c03518"
PEER_C = "03864ef025fde8fb587d989186ce6a4a186895ee44a926bfc370e2c366597a3f8f"


def entry(n, peer, receivable, **patch):
    e = {
        "peer_id": peer, "peer_connected": True, "state": "CHANNELD_NORMAL",
        "short_channel_id": f"{100 + n}x1x0", "channel_id": f"{n:02x}" * 32, "private": False,
        "alias": {"local": f"9{n}x9x9", "remote": f"8{n}x8x8"},
        "total_msat": 200_000_000, "to_us_msat": 200_000_000 - receivable - 2_000_000,
        "receivable_msat": receivable, "our_reserve_msat": 2_000_000, "their_reserve_msat": 2_000_000,
        "updates": {"remote": {"fee_base_msat": 1, "fee_proportional_millionths": 10,
                               "cltv_expiry_delta": 6, "htlc_minimum_msat": 0,
                               "htlc_maximum_msat": 198_000_000}},
        "incoming_capacity_msat": 1_000_000_000,
    }
    e.update(patch)
    return e


rpc.call("syncchannels", {"channels": [entry(1, PEER_B, 50_000_000), entry(2, PEER_C, 90_000_000, private=True)],
                          "blockheight": 120})
a = rpc.call("invoice", {"amount_msat": 1000, "label": "a", "description": "tea",
                         "fallbacks": ["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"]})
b = rpc.call("invoice", {"amount_msat": "any", "label": "b", "description": "coffee", "deschashonly": True})
c = rpc.call("invoice", {"amount_msat": "2sat", "label": "c", "description": "soon gone", "expiry": 1,
                         "preimage": "22" * 32})
d = rpc.call("invoice", {"amount_msat": 5000, "label": "d", "description": "kept, then not",
                         "exposeprivatechannels": True, "expiry": FAR})
rpc.call("syncchannels", {"channels": [entry(1, PEER_B, 40_000_000, peer_connected=False)], "blockheight": 121})
f = rpc.call("invoice", {"amount_msat": 4000, "label": "f", "description": "cleaned"})
rpc.call("settleinvoice", {"payment_hash": f["payment_hash"], "payment_secret": f["payment_secret"],
                           "amount_msat": 4000})
time.sleep(2.5)  # c expires
for _ in range(100):
    if rpc.call("listinvoices", {"label": "c"})["invoices"][0]["status"] == "expired":
        break
    time.sleep(0.1)
rpc.call("autoclean-once", ["paidinvoices", 1])  # f, paid more than a second ago
rpc.call("delinvoice", {"label": "c", "status": "expired"})
rpc.call("settleinvoice", {"payment_hash": a["payment_hash"], "payment_secret": a["payment_secret"],
                           "amount_msat": 1000,
                           "parts": [{"htlc": "101x1x0/7", "amount_msat": 600, "cltv_expiry": 200},
                                     {"htlc": "101x1x0/8", "amount_msat": 400, "cltv_expiry": 201}]})
rpc.call("settleinvoice", {"payment_hash": b["payment_hash"], "payment_secret": b["payment_secret"],
                           "amount_msat": 777})
rpc.call("delinvoice", {"label": "d", "status": "unpaid", "desconly": True})
h1 = rpc.call("holdinvoice", {"amount_msat": 10_000, "description": "held", "label": "h1"})
rpc.call("holdaccept", {"payment_hash": h1["payment_hash"], "payment_secret": h1["payment_secret"],
                        "parts": [{"htlc": "102x1x0/1", "amount_msat": 10_000, "cltv_expiry": 300}],
                        "blockheight": 130})
rpc.call("holdinvoicesettle", {"payment_hash": h1["payment_hash"]})
h2 = rpc.call("holdinvoice", {"amount_msat": 3000, "description": "from its hash", "payment_hash": "33" * 32})
rpc.call("holdinvoicecancel", {"payment_hash": h2["payment_hash"]})
e = rpc.call("invoice", {"amount_msat": 1234, "label": "e", "description": "last", "expiry": FAR})

expected = {
    "listinvoices": rpc.call("listinvoices", {}),
    "listincoming": rpc.call("listincoming", {}),
    "holdinvoicelookup": rpc.call("holdinvoicelookup", {}),
}
proc.terminate()
assert proc.wait(30) == 0
events = subprocess.run([os.path.join(old, "invoiced"), "events", "--json", "--data-dir", work],
                        check=True, capture_output=True, text=True).stdout
expected["replay"] = json.loads(subprocess.run([os.path.join(old, "invoiced"), "replay", "--data-dir", work],
                                               check=True, capture_output=True, text=True).stdout)
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
shutil.copytree(os.path.join(work, "events"), os.path.join(out, "events"))
for f in os.listdir(os.path.join(out, "events")):
    if f.startswith("LOG"):
        os.remove(os.path.join(out, "events", f))
shutil.copy(os.path.join(work, "hsm_secret"), out)
with open(os.path.join(here, "datadir-v4.expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
with open(os.path.join(here, "datadir-v4.events.jsonl"), "w") as f:
    f.write(events)
print(f"{len(events.splitlines())} records")

"""The same `listinvoices` requests to a real lightningd (v26.06.6, its own invoices) and to
invoiced, after the same history: the same invoices in the same order, and the same error codes
(and texts, where they are not Core Lightning's developer-mode token echo)."""

import os

import pytest
from pyln.client import RpcError

from conftest import Invoiced, Lightningd


def answer(rpc, params):
    try:
        return {"labels": [i["label"] for i in rpc.call("listinvoices", params)["invoices"]]}
    except RpcError as e:
        return {"code": e.error["code"], "message": e.error["message"]}


REQUESTS = [
    {},
    {"index": "created", "start": 2},
    {"index": "created", "start": 1, "limit": 1},
    {"index": "deleted"},
    {"index": "deleted", "start": 2},
    {"index": "deleted", "start": 1, "limit": 2},
    {"index": "updated"},
    {"index": "updated", "start": 1},
    {"label": "c"},
    {"label": "b"},
    {"invstring": "lightnin€xyz"},
    {"invstring": "€€€€€€€€€€€€"},
    {"invstring": "lnbc1garbage"},
    {"index": "nosuch"},
    {"start": 1},
    {"limit": 1},
    {"label": "a", "payment_hash": "00" * 32},
]
SAME_MESSAGE = ("Invalid invstring", "Can only specify")


def test_listinvoices_pages_and_refuses_as_lightningd_does(tmpdir_short):
    inv = Invoiced(os.path.join(tmpdir_short, "inv"), os.urandom(32)).start()
    node = Lightningd(os.path.join(tmpdir_short, "ln"))
    node.start()
    try:
        for rpc in (node.rpc(), inv.rpc()):
            for label in ["a", "b", "c", "d"]:
                rpc.invoice(amount_msat=1000, label=label, description=f"invoice {label}")
            rpc.delinvoice("b", "unpaid")
            rpc.delinvoice("d", "unpaid", desconly=True)
        for params in REQUESTS:
            theirs, ours = answer(node.rpc(), params), answer(inv.rpc(), params)
            if "labels" in theirs:
                assert ours == theirs, params
            else:
                assert ours.get("code") == theirs["code"], (params, theirs, ours)
                if theirs["message"].startswith(SAME_MESSAGE):
                    assert ours["message"] == theirs["message"], params
    finally:
        node.stop()
        inv.stop()

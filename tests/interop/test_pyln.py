"""Interop: drive invoiced with Core Lightning's own Python client (pyln-client) and check every
invoice with two decoders we did not write (PyPI `bolt11` and `pyln-proto`), both of which
verify the signature by recovering the payee key."""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import bolt11
from bolt11.models.tags import TagChar
import pytest
from pyln.client import LightningRpc, RpcError
from pyln.proto.invoice import Invoice

NODE_ID = "037d8d1109836a88daf2b86d6e52e12351f9c274f597b78eca941525b309096ca8"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("INVOICED_BIN", os.path.join(ROOT, "target", "debug", "invoiced"))


class Daemon:
    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.proc = None

    @property
    def socket(self):
        return os.path.join(self.data_dir, "lightning-rpc")

    def start(self):
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data-dir", self.data_dir, "--network", "regtest", "--log-level", "warn"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 20
        while True:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.socket)
                s.close()
                return
            except OSError:
                assert self.proc.poll() is None, "daemon exited"
                assert time.time() < deadline, "daemon did not start"
                time.sleep(0.02)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=20) == 0


@pytest.fixture
def daemon():
    tmp = tempfile.mkdtemp()
    data = os.path.join(tmp, "data")
    os.mkdir(data, 0o700)
    with open(os.path.join(data, "hsm_secret"), "wb") as f:
        f.write(bytes(range(1, 33)))
    d = Daemon(data)
    d.start()
    yield d
    if d.proc.poll() is None:
        d.proc.kill()
        d.proc.wait()
    shutil.rmtree(tmp)


def check_with_foreign_decoders(b11, amount_msat, description=None, payment_hash=None):
    """Decode with PyPI bolt11 and with pyln-proto; both recover the payee from the signature."""
    dec = bolt11.decode(b11)
    assert dec.payee == NODE_ID
    assert dec.amount_msat == amount_msat
    if description is not None:
        assert dec.description == description
    if payment_hash is not None:
        assert dec.payment_hash == payment_hash
    proto = Invoice.decode(b11)
    assert proto.pubkey.format().hex() == NODE_ID
    if payment_hash is not None:
        assert proto.paymenthash.hex() == payment_hash
    return dec


def test_pyln_client_creates_and_lists(daemon):
    rpc = LightningRpc(daemon.socket)
    assert rpc.getinfo()["id"] == NODE_ID
    cases = [
        dict(amount_msat=1000, label="a", description="tea"),
        dict(amount_msat="250sat", label="b", description="sandwich", expiry=7200),
        dict(amount_msat="0.001btc", label="c", description="monthly plan", cltv=40),
        dict(amount_msat="any", label="d", description="tips welcome", expiry=3600),
        dict(amount_msat=99999, label="e", description="with fallbacks",
             fallbacks=["mngSebah93kkVhSZzmVHFkyKo3D9QPKKzZ",
                        "bcrt1qyxszwzmlv6s7fsjex0cn58j6rwa5w46hspefxryp3yf3l8r24tssv2wwjf"]),
        dict(amount_msat=7, label="f", description="only its hash " * 60, deschashonly=True),
        dict(amount_msat="10.001sat", label=25, description="Ünïcödé ✓ 漢字",
             preimage="16fd9a1c0f1d912205dd8a2f23d380399416585efc9a04f296682c974e8b5e94"),
    ]
    expected_msat = [1000, 250000, 100000000, None, 99999, 7, 10001]
    made = []
    for params, msat in zip(cases, expected_msat):
        r = rpc.invoice(**params)
        assert r["expires_at"] == r["expiry_time"]
        assert "warning_capacity" in r
        dec = check_with_foreign_decoders(r["bolt11"], msat, payment_hash=r["payment_hash"])
        if params.get("deschashonly"):
            assert dec.description_hash == hashlib.sha256(params["description"].encode()).hexdigest()
        else:
            assert dec.description == params["description"]
        if "cltv" in params:
            assert dec.min_final_cltv_expiry == params["cltv"]
        if "fallbacks" in params:
            assert dec.tags.has(TagChar.fallback)
        if "preimage" in params:
            assert r["payment_hash"] == hashlib.sha256(bytes.fromhex(params["preimage"])).hexdigest()
        made.append(r)

    listed = rpc.listinvoices()["invoices"]
    assert [i["bolt11"] for i in listed] == [r["bolt11"] for r in made]
    assert rpc.listinvoices(label=25)["invoices"][0]["label"] == "25"
    assert rpc.listinvoices(payment_hash=made[0]["payment_hash"])["invoices"][0]["label"] == "a"
    assert rpc.listinvoices(invstring=made[1]["bolt11"])["invoices"][0]["label"] == "b"
    decoded = rpc.decode(made[4]["bolt11"])
    assert [f["type"] for f in decoded["fallbacks"]] == ["P2PKH", "P2WSH"]

    with pytest.raises(RpcError) as e:
        rpc.invoice(amount_msat=1000, label="a", description="again")
    assert e.value.error["code"] == 900
    assert e.value.error["message"] == "Duplicate label 'a'"
    with pytest.raises(RpcError) as e:
        rpc.invoice(amount_msat="10sats", label="z", description="x")
    assert e.value.error["code"] == -32602

    daemon.stop()
    daemon.start()
    rpc = LightningRpc(daemon.socket)
    assert rpc.listinvoices()["invoices"] == listed


def test_pyln_client_many_calls_one_connection_each(daemon):
    rpc = LightningRpc(daemon.socket)
    for i in range(200):
        r = rpc.invoice(amount_msat=i + 1, label=f"bulk{i}", description=f"n{i}")
        assert r["created_index"] == i + 1
        check_with_foreign_decoders(r["bolt11"], i + 1)


def test_pyln_client_lifecycle(daemon):
    rpc = LightningRpc(daemon.socket)
    preimage = "77" * 32
    inv = rpc.invoice(amount_msat=5000, label="life", description="lifecycle", preimage=preimage)
    paid = rpc.call("settleinvoice", {"payment_hash": inv["payment_hash"], "amount_msat": 5000,
                                      "payment_secret": inv["payment_secret"]})
    assert paid["status"] == "paid" and paid["payment_preimage"] == preimage
    got = rpc.waitanyinvoice(0)
    assert got["label"] == "life" and got["pay_index"] == 1
    assert rpc.waitinvoice("life")["status"] == "paid"
    with pytest.raises(RpcError) as e:
        rpc.waitanyinvoice(1, 0)
    assert e.value.error["code"] == 904
    assert rpc.delinvoice("life", "paid")["label"] == "life"
    with pytest.raises(RpcError) as e:
        rpc.delinvoice("life", "paid")
    assert e.value.error["code"] == 905
    assert rpc.listinvoices("life")["invoices"] == []

"""LNbits 1.6.2's own Core Lightning funding source (`CoreLightningWallet`, unmodified) against
invoiced's socket, and against a real lightningd's socket with invoiced-cln in front: it starts
(its constructor asks `help invoice` whether `deschashonly` exists), creates invoices, also with
`unhashed_description`, reports their status, and its paid-invoices stream sees a settle."""

import asyncio
import hashlib
import os

import bolt11
import pytest

from conftest import Invoiced, Lightningd


@pytest.fixture
def lnbits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # LNbits writes its data folder into the working directory
    from lnbits.settings import settings
    from lnbits.wallets.corelightning import CoreLightningWallet

    def wallet(socket_path):
        settings.corelightning_rpc = socket_path
        settings.lnbits_running = True
        return CoreLightningWallet()

    yield wallet
    settings.lnbits_running = False


async def exercise(wallet, settle, node_id):
    assert wallet.supports_description_hash, "help invoice must show deschashonly"
    made = await wallet.create_invoice(21, memo="coffee")
    assert made.ok, made.error_message
    dec = bolt11.decode(made.payment_request)
    assert dec.amount_msat == 21000 and dec.description == "coffee" and dec.payee == node_id
    assert dec.payment_hash == made.checking_id == hashlib.sha256(bytes.fromhex(made.preimage)).hexdigest()

    text = b"A long description that only travels as its hash " * 20
    hashed = await wallet.create_invoice(5, unhashed_description=text)
    assert hashed.ok, hashed.error_message
    assert bolt11.decode(hashed.payment_request).description_hash == hashlib.sha256(text).hexdigest()

    assert (await wallet.get_invoice_status(made.checking_id)).pending
    stream = wallet.paid_invoices_stream()
    first = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0.5)
    assert not first.done()
    settle(made)
    assert await asyncio.wait_for(first, 20) == made.checking_id
    assert (await wallet.get_invoice_status(made.checking_id)).success
    assert (await wallet.get_invoice_status(hashed.checking_id)).pending
    await stream.aclose()


def settler(inv):
    def settle(made):
        listed = inv.rpc().listinvoices(payment_hash=made.checking_id)["invoices"][0]
        secret = bolt11.decode(listed["bolt11"]).payment_secret
        inv.rpc().call("settleinvoice", {"payment_hash": made.checking_id, "amount_msat": listed["amount_msat"],
                                         "payment_secret": secret})
    return settle


def test_lnbits_on_invoiceds_socket(lnbits, tmpdir_short):
    inv = Invoiced(os.path.join(tmpdir_short, "inv"), os.urandom(32)).start()
    try:
        wallet = lnbits(inv.socket)
        asyncio.run(exercise(wallet, settler(inv), inv.rpc().getinfo()["id"]))
    finally:
        inv.stop()


def test_lnbits_on_a_node_with_the_plugin(lnbits, tmpdir_short):
    secret = os.urandom(32)
    inv = Invoiced(os.path.join(tmpdir_short, "inv"), secret).start()
    node = Lightningd(os.path.join(tmpdir_short, "ln"), secret).with_plugin(inv.socket)
    try:
        wallet = lnbits(node.socket)
        status = asyncio.run(wallet.status())
        assert status.error_message is None and status.balance_msat == 0, "listfunds is the node's"
        asyncio.run(exercise(wallet, settler(inv), node.rpc().getinfo()["id"]))
        assert len(inv.rpc().listinvoices()["invoices"]) == 2, "both were made by invoiced"
    finally:
        node.stop()
        inv.stop()


def test_lnbits_sees_real_payments_on_the_network(lnbits, tmp_path):
    """On the real test network (network.py): LNbits on B's socket makes invoices that A pays
    with real HTLCs, its stream sees each payment, and it pays C's invoice through B's node."""
    from network import running

    with running("lnbits-net-") as net:
        wallet = lnbits(net.b.socket)
        pay_from_a = lambda made: net.a.rpc().call("xpay", {"invstring": made.payment_request})  # noqa: E731
        asyncio.run(exercise(wallet, pay_from_a, net.b.id))
        assert net.invoiced.rpc().listinvoices()["invoices"][0]["status"] == "paid", "LNbits' first invoice, paid by A"

        # B can spend only above its channel reserve (1% of each channel): A pays it that first.
        net.fund_b("reserve", 600_000_000, 20_000)

        async def pay_c():
            c_invoice = net.c.rpc().invoice(amount_msat=5_000, label="from-lnbits", description="B pays C via A")
            paid = await wallet.pay_invoice(c_invoice["bolt11"], fee_limit_msat=10_000)
            assert paid.ok, paid.error_message
            return paid

        paid = asyncio.run(pay_c())
        assert hashlib.sha256(bytes.fromhex(paid.preimage)).hexdigest() == bolt11.decode(net.c.rpc().listinvoices("from-lnbits")["invoices"][0]["bolt11"]).payment_hash
        assert net.c.rpc().listinvoices("from-lnbits")["invoices"][0]["status"] == "paid"
        net.every_channel_normal()

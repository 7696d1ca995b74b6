"""`invoiced lnd-api`: LND's invoice API over invoiced, checked with clients we did not write —
LND's own generated gRPC stubs (as LNbits 1.6.2 ships them), LNbits' `LndRestWallet`
(unmodified) and plain HTTPS — against the real daemon, and for `GetInfo` a real lightningd.
The gRPC and the REST surface must answer the same for the same call; the macaroons allow what
LND's allow and are refused in LND's words."""

import asyncio
import base64
import hashlib
import os
import socket
import subprocess
import time

import bolt11
import grpc
import httpx
import pytest
from google.protobuf.json_format import MessageToDict
from lnbits.wallets.lnd_grpc_files import lightning_pb2 as ln
from lnbits.wallets.lnd_grpc_files import lightning_pb2_grpc as lnrpc

from conftest import BIN, Invoiced, Lightningd


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LndApi:
    def __init__(self, lnd_dir, invoiced_socket, node_socket):
        self.dir = lnd_dir
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.proc = subprocess.Popen(
            [BIN, "lnd-api", "--invoiced-rpc-file", invoiced_socket, "--node-rpc-file", node_socket,
             "--grpc-listen", f"127.0.0.1:{self.grpc_port}", "--rest-listen", f"127.0.0.1:{self.rest_port}",
             "--lnd-dir", lnd_dir],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(os.path.dirname(lnd_dir), "lnd-api.log"), "ab"))
        deadline = time.time() + 30
        while True:
            assert self.proc.poll() is None, "lnd-api exited at start"
            try:
                socket.create_connection(("127.0.0.1", self.rest_port), 0.2).close()
                socket.create_connection(("127.0.0.1", self.grpc_port), 0.2).close()
                break
            except OSError:
                assert time.time() < deadline, "lnd-api did not start"
                time.sleep(0.05)
        with open(os.path.join(lnd_dir, "tls.cert"), "rb") as f:
            self.cert = f.read()

    def macaroon(self, name="admin"):
        with open(os.path.join(self.dir, f"{name}.macaroon"), "rb") as f:
            return f.read().hex()

    def stub(self, macaroon):
        creds = grpc.ssl_channel_credentials(self.cert)
        channel = grpc.secure_channel(f"localhost:{self.grpc_port}", creds)
        return lnrpc.LightningStub(channel), [("macaroon", macaroon)] if macaroon else []

    def rest(self, macaroon):
        headers = {"Grpc-Metadata-macaroon": macaroon} if macaroon else {}
        return httpx.Client(base_url=f"https://localhost:{self.rest_port}", headers=headers,
                            verify=os.path.join(self.dir, "tls.cert"))

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(10) == 0


@pytest.fixture
def api(tmp_path):
    inv = Invoiced(str(tmp_path / "invoiced")).start()
    lnd = LndApi(str(tmp_path / "lnd"), inv.socket, str(tmp_path / "no-node-here"))
    yield inv, lnd
    lnd.stop()
    inv.stop()


def settle(inv, payment_hash_hex):
    listed = inv.rpc().listinvoices(payment_hash=payment_hash_hex)["invoices"][0]
    secret = bolt11.decode(listed["bolt11"]).payment_secret
    inv.rpc().call("settleinvoice", {"payment_hash": payment_hash_hex, "amount_msat": listed["amount_msat"],
                                     "payment_secret": secret})


def as_rest(message):
    """A message as LND's REST gateway writes it (its names, 64-bit integers as strings, bytes
    in base64, fields at their defaults included)."""
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def test_grpc_and_rest_add_and_look_up_the_same_invoices(api):
    inv, lnd = api
    stub, md = lnd.stub(lnd.macaroon())
    added = stub.AddInvoice(ln.Invoice(memo="coffee", value=21), metadata=md)
    assert len(added.r_hash) == 32 and added.add_index == 1
    dec = bolt11.decode(added.payment_request)
    assert dec.amount_msat == 21000 and dec.description == "coffee"
    assert dec.payment_hash == added.r_hash.hex()
    assert dec.payment_secret == added.payment_addr.hex()
    listed = inv.rpc().listinvoices(payment_hash=added.r_hash.hex())["invoices"][0]
    assert listed["label"] == "lnd-" + added.r_hash.hex(), "made through LND's API, seen by CLN's"

    looked = stub.LookupInvoice(ln.PaymentHash(r_hash=added.r_hash), metadata=md)
    assert (looked.state, looked.memo, looked.value, looked.value_msat, looked.add_index) == (ln.Invoice.OPEN, "coffee", 21, 21000, 1)
    assert looked.payment_request == added.payment_request and looked.expiry == 86400
    with lnd.rest(lnd.macaroon()) as rest:
        r = rest.get(f"/v1/invoice/{added.r_hash.hex()}")
        assert r.status_code == 200, r.text
        assert r.json() == as_rest(looked), "REST answers what gRPC answers"

        # Made through REST (bytes in base64, as LNbits sends them), seen through gRPC.
        preimage = os.urandom(32)
        made = rest.post("/v1/invoices", json={"value_msat": "5000", "memo": "tea",
                                               "r_preimage": base64.b64encode(preimage).decode()}).json()
        assert base64.b64decode(made["r_hash"]) == hashlib.sha256(preimage).digest() and made["add_index"] == "2"
    seen = stub.LookupInvoice(ln.PaymentHash(r_hash=hashlib.sha256(preimage).digest()), metadata=md)
    assert (seen.memo, seen.value_msat, seen.payment_request) == ("tea", 5000, made["payment_request"])

    # An invoice of a Core Lightning client is seen through LND's API too, and a payment moves it.
    cln = inv.rpc().invoice(7000, "a-cln-label", "made by CLN's API")
    settle(inv, cln["payment_hash"])
    paid = stub.LookupInvoice(ln.PaymentHash(r_hash=bytes.fromhex(cln["payment_hash"])), metadata=md)
    assert (paid.state, paid.settled, paid.amt_paid_msat, paid.settle_index, paid.memo) == (ln.Invoice.SETTLED, True, 7000, 1, "made by CLN's API")
    assert hashlib.sha256(paid.r_preimage).digest() == bytes.fromhex(cln["payment_hash"]), "the preimage once paid"


def test_macaroons_allow_what_lnds_allow_and_are_refused_as_lnd_refuses_them(api, tmp_path):
    inv, lnd = api
    for name in ("admin", "invoice", "readonly", "macaroons.key"):
        path = os.path.join(lnd.dir, name if "." in name else f"{name}.macaroon")
        assert os.stat(path).st_mode & 0o777 == 0o600, path
    stub, md = lnd.stub(lnd.macaroon("invoice"))
    stub.AddInvoice(ln.Invoice(memo="by the invoice macaroon", value=1), metadata=md)
    with pytest.raises(grpc.RpcError) as e:
        stub.GetInfo(ln.GetInfoRequest(), metadata=md)
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNKNOWN, "permission denied")
    ro, md = lnd.stub(lnd.macaroon("readonly"))
    with pytest.raises(grpc.RpcError) as e:
        ro.AddInvoice(ln.Invoice(memo="no", value=1), metadata=md)
    assert e.value.details() == "permission denied"
    none, md = lnd.stub(None)
    with pytest.raises(grpc.RpcError) as e:
        none.AddInvoice(ln.Invoice(memo="no", value=1), metadata=md)
    assert e.value.details() == "expected 1 macaroon, got 0"
    # A macaroon of another root key (another lnd-api's directory).
    other = LndApi(str(tmp_path / "other"), inv.socket, "/nonexistent")
    try:
        forged, md = lnd.stub(other.macaroon())
        with pytest.raises(grpc.RpcError) as e:
            forged.AddInvoice(ln.Invoice(memo="no", value=1), metadata=md)
        assert e.value.details().startswith("verification failed: signature mismatch")
    finally:
        other.stop()
    with lnd.rest(lnd.macaroon("readonly")) as rest:
        r = rest.post("/v1/invoices", json={"value": "1", "memo": "no"})
        assert (r.status_code, r.json()) == (500, {"code": 2, "message": "permission denied", "details": []})
    with lnd.rest(None) as rest:
        r = rest.get("/v1/invoice/" + "00" * 32)
        assert r.json()["message"] == "expected 1 macaroon, got 0"
    with lnd.rest(lnd.macaroon()) as rest:
        r = rest.get("/v1/invoice/" + "00" * 32)
        assert (r.status_code, r.json()["code"], r.json()["message"]) == (404, 5, "unable to locate invoice")
        r = rest.post("/v1/invoices", json={"value": "1", "value_msat": "1000"})
        assert (r.status_code, r.json()["message"]) == (400, "value and value_msat are mutually exclusive")
    # A restart keeps the root key: the macaroons given out stay good.
    lnd.stop()
    again = LndApi(lnd.dir, inv.socket, "/nonexistent")
    stub, md = again.stub(lnd.macaroon("invoice"))
    stub.AddInvoice(ln.Invoice(memo="after a restart", value=1), metadata=md)
    lnd.proc = again.proc


def test_get_info_is_the_nodes(tmp_path):
    node = Lightningd(str(tmp_path / "ln")).start()
    inv = Invoiced(str(tmp_path / "invoiced")).start()
    lnd = LndApi(str(tmp_path / "lnd"), inv.socket, node.socket)
    try:
        stub, md = lnd.stub(lnd.macaroon("readonly"))
        info = stub.GetInfo(ln.GetInfoRequest(), metadata=md)
        cln = node.rpc().getinfo()
        assert (info.identity_pubkey, info.alias, info.block_height) == (cln["id"], cln["alias"], cln["blockheight"])
        assert [(c.chain, c.network) for c in info.chains] == [("bitcoin", "regtest")]
        with lnd.rest(lnd.macaroon("readonly")) as rest:
            assert rest.get("/v1/getinfo").json() == as_rest(info)
    finally:
        lnd.stop()
        inv.stop()
        node.stop()


def test_lnbits_lnd_rest_wallet_creates_and_follows_an_invoice(api, tmp_path, monkeypatch):
    inv, lnd = api
    monkeypatch.chdir(tmp_path)
    from lnbits.settings import settings
    from lnbits.wallets.lndrest import LndRestWallet
    settings.lnd_rest_endpoint = f"https://localhost:{lnd.rest_port}"
    settings.lnd_rest_cert = os.path.join(lnd.dir, "tls.cert")
    settings.lnd_rest_macaroon = lnd.macaroon("invoice")

    async def run():
        wallet = LndRestWallet()
        made = await wallet.create_invoice(21, memo="coffee")
        assert made.ok, made.error_message
        dec = bolt11.decode(made.payment_request)
        assert dec.amount_msat == 21000 and dec.description == "coffee"
        assert made.checking_id == dec.payment_hash == hashlib.sha256(bytes.fromhex(made.preimage)).hexdigest()
        assert (await wallet.get_invoice_status(made.checking_id)).pending
        settle(inv, made.checking_id)
        assert (await wallet.get_invoice_status(made.checking_id)).success
        await wallet.cleanup()

    asyncio.run(run())


def test_list_invoices_pages_as_lnd_pages_and_both_surfaces_agree(api):
    inv, lnd = api
    stub, md = lnd.stub(lnd.macaroon("readonly"))
    hashes = [inv.rpc().invoice(1000 * (i + 1), f"l{i}", f"d{i}")["payment_hash"] for i in range(7)]
    inv.rpc().delinvoice("l2", "unpaid")
    settle(inv, hashes[4])
    idx = lambda r: [i.add_index for i in r.invoices]
    r = stub.ListInvoices(ln.ListInvoiceRequest(), metadata=md)
    assert idx(r) == [1, 2, 4, 5, 6, 7] and (r.first_index_offset, r.last_index_offset) == (1, 7)
    assert idx(stub.ListInvoices(ln.ListInvoiceRequest(index_offset=2, num_max_invoices=2), metadata=md)) == [4, 5]
    back = stub.ListInvoices(ln.ListInvoiceRequest(reversed=True, num_max_invoices=3), metadata=md)
    assert idx(back) == [5, 6, 7] and (back.first_index_offset, back.last_index_offset) == (5, 7)
    assert idx(stub.ListInvoices(ln.ListInvoiceRequest(reversed=True, index_offset=5, num_max_invoices=2), metadata=md)) == [2, 4]
    assert 5 not in idx(stub.ListInvoices(ln.ListInvoiceRequest(pending_only=True), metadata=md)), "paid: not pending"
    with lnd.rest(lnd.macaroon("readonly")) as rest:
        for q, req in [("", ln.ListInvoiceRequest()),
                       ("?index_offset=2&num_max_invoices=2", ln.ListInvoiceRequest(index_offset=2, num_max_invoices=2)),
                       ("?reversed=true&num_max_invoices=3", ln.ListInvoiceRequest(reversed=True, num_max_invoices=3)),
                       ("?pending_only=true", ln.ListInvoiceRequest(pending_only=True))]:
            assert rest.get("/v1/invoices" + q).json() == as_rest(stub.ListInvoices(req, metadata=md)), q
        r = rest.get("/v1/invoices?creation_date_start=9&creation_date_end=8")
        assert r.json()["message"] == "start date(9) must be before end date(8)"


def test_subscribe_invoices_replays_from_its_indexes_then_follows_with_no_gap_and_nothing_twice(api):
    inv, lnd = api
    stub, md = lnd.stub(lnd.macaroon("invoice"))
    first = [stub.AddInvoice(ln.Invoice(memo=f"m{i}", value=1 + i), metadata=md) for i in range(3)]
    settle(inv, first[0].r_hash.hex())
    settle(inv, first[2].r_hash.hex())

    def take(stream, n):
        return [(e.add_index, e.settle_index, e.state) for e in (next(stream) for _ in range(n))]

    # From add_index 1 and settle_index 1: invoices 2 and 3 added, invoice 3 settled (pay_index 2).
    stream = stub.SubscribeInvoices(ln.InvoiceSubscription(add_index=1, settle_index=1), metadata=md)
    got = take(stream, 3)
    # Invoice 2 as it is (open), invoice 3 as it is (settled) for its add, and again for its
    # settle: the add and the settle events of LND, each once.
    assert sorted(got) == sorted([(2, 0, ln.Invoice.OPEN), (3, 2, ln.Invoice.SETTLED), (3, 2, ln.Invoice.SETTLED)])
    # Live: a new invoice, then its payment, each once.
    fourth = stub.AddInvoice(ln.Invoice(memo="live", value=9), metadata=md)
    assert take(stream, 1) == [(4, 0, ln.Invoice.OPEN)]
    settle(inv, fourth.r_hash.hex())
    assert take(stream, 1) == [(4, 3, ln.Invoice.SETTLED)]
    stream.cancel()
    # Reconnecting with the last indexes seen: nothing again, the next ones only.
    again = stub.SubscribeInvoices(ln.InvoiceSubscription(add_index=4, settle_index=3), metadata=md)
    fifth = stub.AddInvoice(ln.Invoice(memo="after", value=5), metadata=md)
    assert take(again, 1) == [(5, 0, ln.Invoice.OPEN)]
    again.cancel()
    # From nothing (0, 0): only what comes next; the REST stream sees the same as JSON lines.
    with lnd.rest(lnd.macaroon("invoice")) as rest:
        with rest.stream("GET", "/v1/invoices/subscribe", timeout=30) as r:
            lines = r.iter_lines()
            time.sleep(0.5)
            settle(inv, fifth.r_hash.hex())
            event = __import__("json").loads(next(lines))["result"]
            assert (event["add_index"], event["settle_index"], event["state"]) == ("5", "4", "SETTLED")
            assert base64.b64decode(event["r_hash"]) == fifth.r_hash


def test_lnbits_lnd_rest_wallet_status_and_paid_invoices_stream(tmp_path, monkeypatch):
    node = Lightningd(str(tmp_path / "ln")).start()
    inv = Invoiced(str(tmp_path / "invoiced")).start()
    lnd = LndApi(str(tmp_path / "lnd"), inv.socket, node.socket)
    monkeypatch.chdir(tmp_path)
    from lnbits.settings import settings
    from lnbits.wallets.lndrest import LndRestWallet
    settings.lnd_rest_endpoint = f"https://localhost:{lnd.rest_port}"
    settings.lnd_rest_cert = os.path.join(lnd.dir, "tls.cert")
    settings.lnd_rest_macaroon = lnd.macaroon("admin")
    settings.lnbits_running = True

    async def run():
        wallet = LndRestWallet()
        status = await wallet.status()
        assert status.error_message is None and status.balance_msat == 0, status
        made = await wallet.create_invoice(21, memo="coffee")
        stream = wallet.paid_invoices_stream()
        first = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0.5)
        assert not first.done()
        settle(inv, made.checking_id)
        assert await asyncio.wait_for(first, 20) == made.checking_id
        await stream.aclose()
        await wallet.cleanup()

    try:
        asyncio.run(run())
    finally:
        settings.lnbits_running = False
        lnd.stop()
        inv.stop()
        node.stop()


def accept_held(inv, payment_hash_hex):
    """The node's side of a hold invoice: HTLCs reaching its amount are held (invoiced's
    `holdaccept`, as invoiced-cln reports them)."""
    listed = inv.rpc().listinvoices(payment_hash=payment_hash_hex)["invoices"][0]
    secret = bolt11.decode(listed["bolt11"]).payment_secret
    inv.rpc().call("holdaccept", {"payment_hash": payment_hash_hex, "payment_secret": secret,
                                  "parts": [{"htlc": "103x1x0/1", "amount_msat": listed["amount_msat"], "cltv_expiry": 900}],
                                  "blockheight": 100})


def lnbits_wallets(lnd, macaroon):
    from lnbits.settings import settings
    settings.lnd_rest_endpoint = f"https://localhost:{lnd.rest_port}"
    settings.lnd_rest_cert = os.path.join(lnd.dir, "tls.cert")
    settings.lnd_rest_macaroon = macaroon
    settings.lnd_grpc_endpoint = "localhost"
    settings.lnd_grpc_port = lnd.grpc_port
    settings.lnd_grpc_cert = os.path.join(lnd.dir, "tls.cert")
    settings.lnd_grpc_macaroon = macaroon
    settings.lnbits_running = True


def test_lnbits_both_lnd_funding_sources_unmodified(tmp_path, monkeypatch):
    """LNbits' `LndWallet` (gRPC) and `LndRestWallet` (REST): status, invoices and their status,
    the paid-invoices stream, hold invoices created, held, settled and canceled, and invoices
    with a description hash (LNURL's `unhashed_description`, a raw `description_hash`)."""
    node = Lightningd(str(tmp_path / "ln")).start()
    inv = Invoiced(str(tmp_path / "invoiced")).start()
    lnd = LndApi(str(tmp_path / "lnd"), inv.socket, node.socket)
    monkeypatch.chdir(tmp_path)
    from lnbits.settings import settings
    from lnbits.wallets.lndgrpc import LndWallet
    from lnbits.wallets.lndrest import LndRestWallet
    lnbits_wallets(lnd, lnd.macaroon("admin"))

    async def exercise(make):
        wallet = make()  # in the loop: LndWallet's channel belongs to it
        status = await wallet.status()
        assert status.error_message is None and status.balance_msat == 0, status
        made = await wallet.create_invoice(21, memo="coffee")
        assert made.ok, made.error_message
        assert bolt11.decode(made.payment_request).amount_msat == 21000
        assert (await wallet.get_invoice_status(made.checking_id)).pending
        stream = wallet.paid_invoices_stream()
        first = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0.5)
        assert not first.done()
        settle(inv, made.checking_id)
        assert await asyncio.wait_for(first, 20) == made.checking_id
        await stream.aclose()
        assert (await wallet.get_invoice_status(made.checking_id)).success

        preimage = os.urandom(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        held = await wallet.create_hold_invoice(30, payment_hash, memo="held")
        assert held.ok, held.error_message
        assert bolt11.decode(held.payment_request).payment_hash == payment_hash
        assert (await wallet.get_invoice_status(payment_hash)).pending
        accept_held(inv, payment_hash)
        settled = await wallet.settle_hold_invoice(preimage.hex())
        assert settled.ok, settled.error_message
        assert (await wallet.get_invoice_status(payment_hash)).success

        other = hashlib.sha256(os.urandom(32)).hexdigest()
        assert (await wallet.create_hold_invoice(40, other, memo="not wanted")).ok
        canceled = await wallet.cancel_hold_invoice(other)
        assert canceled.ok, canceled.error_message
        assert (await wallet.get_invoice_status(other)).failed

        # Descriptions given as a hash only: LNURL's metadata (LNbits hashes it) and a raw hash.
        metadata = b'[["text/plain","a coffee at the corner"]]'
        wanted = hashlib.sha256(metadata).hexdigest()
        lnurl = await wallet.create_invoice(22, memo="lnurl-pay", unhashed_description=metadata)
        assert lnurl.ok, lnurl.error_message
        given = os.urandom(32)
        by_hash = await wallet.create_invoice(23, memo="", description_hash=given)
        assert by_hash.ok, by_hash.error_message
        held_hash = hashlib.sha256(os.urandom(32)).hexdigest()
        held_lnurl = await wallet.create_hold_invoice(24, held_hash, memo="", unhashed_description=metadata)
        assert held_lnurl.ok, held_lnurl.error_message
        for made_, h in [(lnurl, wanted), (by_hash, given.hex()), (held_lnurl, wanted)]:
            decoded = bolt11.decode(made_.payment_request)
            assert (decoded.description_hash, decoded.description) == (h, None)
        listed = {i["payment_hash"]: i for i in inv.rpc().listinvoices()["invoices"]}
        assert listed[lnurl.checking_id]["description_hash"] == wanted
        assert listed[by_hash.checking_id]["description_hash"] == given.hex()
        assert "description" not in listed[by_hash.checking_id]
        assert listed[held_hash]["hold_state"] == "OPEN"
        assert (await wallet.get_invoice_status(lnurl.checking_id)).pending
        await wallet.cleanup()

    try:
        asyncio.run(exercise(LndWallet))
        asyncio.run(exercise(LndRestWallet))
    finally:
        settings.lnbits_running = False
        lnd.stop()
        inv.stop()
        node.stop()


def test_single_invoice_subscription_follows_a_hold_invoice_to_its_end(api):
    from lnbits.wallets.lnd_grpc_files import invoices_pb2 as inv_pb
    from lnbits.wallets.lnd_grpc_files import invoices_pb2_grpc as invrpc
    inv, lnd = api
    creds = grpc.ssl_channel_credentials(lnd.cert)
    stub = invrpc.InvoicesStub(grpc.secure_channel(f"localhost:{lnd.grpc_port}", creds))
    md = [("macaroon", lnd.macaroon("invoice"))]
    preimage = os.urandom(32)
    h = hashlib.sha256(preimage).digest()
    made = stub.AddHoldInvoice(inv_pb.AddHoldInvoiceRequest(hash=h, value=7, memo="hold"), metadata=md)
    assert bolt11.decode(made.payment_request).payment_hash == h.hex() and made.add_index == 1
    events = stub.SubscribeSingleInvoice(inv_pb.SubscribeSingleInvoiceRequest(r_hash=h), metadata=md)
    assert next(events).state == ln.Invoice.OPEN
    accept_held(inv, h.hex())
    assert next(events).state == ln.Invoice.ACCEPTED
    stub.SettleInvoice(inv_pb.SettleInvoiceMsg(preimage=preimage), metadata=md)
    last = next(events)
    assert (last.state, last.amt_paid_msat, last.r_preimage) == (ln.Invoice.SETTLED, 7000, preimage)
    with pytest.raises(StopIteration):
        next(events)
    looked = stub.LookupInvoiceV2(inv_pb.LookupInvoiceMsg(payment_hash=h), metadata=md)
    with lnd.rest(lnd.macaroon("invoice")) as rest:
        q = base64.urlsafe_b64encode(h).decode()
        assert rest.get(f"/v2/invoices/lookup?payment_hash={q}").json() == as_rest(looked)
        with pytest.raises(grpc.RpcError) as e:
            stub.CancelInvoice(inv_pb.CancelInvoiceMsg(payment_hash=h), metadata=md)
        r = rest.post("/v2/invoices/cancel", json={"payment_hash": base64.b64encode(h).decode()})
        assert r.json()["message"] == e.value.details(), "the same refusal on both surfaces"


def test_real_payments_through_lnds_api_on_the_network(tmp_path, monkeypatch):
    """On the real test network (network.py): B's node pays C's invoices through LND's Router
    (gRPC, REST, and LNbits' two LND wallets), and A pays an invoice made through LND's API
    with only a description hash, which its subscription sees settled."""
    from network import running
    from lnbits.wallets.lnd_grpc_files import router_pb2 as router
    from lnbits.wallets.lnd_grpc_files import router_pb2_grpc as routerrpc
    with running("invoiced-lnd-api-") as net:
        lnd = LndApi(str(tmp_path / "lnd"), net.invoiced.socket, net.b.socket)
        try:
            net.fund_b("liquidity", 600_000_000, 300_000_000)
            creds = grpc.ssl_channel_credentials(lnd.cert)
            channel = grpc.secure_channel(f"localhost:{lnd.grpc_port}", creds)
            pay, md = routerrpc.RouterStub(channel), [("macaroon", lnd.macaroon("admin"))]

            c_inv = net.c.rpc().invoice(amount_msat=50_000, label="for-lnd-api", description="pay me")
            updates = list(pay.SendPaymentV2(router.SendPaymentRequest(payment_request=c_inv["bolt11"], timeout_seconds=60, fee_limit_sat=100), metadata=md))
            assert [u.status for u in updates] == [ln.Payment.IN_FLIGHT, ln.Payment.SUCCEEDED], updates
            done = updates[-1]
            assert done.payment_hash == c_inv["payment_hash"] and done.value_msat == 50_000
            assert hashlib.sha256(bytes.fromhex(done.payment_preimage)).hexdigest() == c_inv["payment_hash"]
            tracked = list(pay.TrackPaymentV2(router.TrackPaymentRequest(payment_hash=bytes.fromhex(c_inv["payment_hash"])), metadata=md))
            assert tracked[-1].status == ln.Payment.SUCCEEDED and tracked[-1].payment_preimage == done.payment_preimage
            with pytest.raises(grpc.RpcError) as e:
                list(pay.SendPaymentV2(router.SendPaymentRequest(payment_request="lnbcrt1garbage"), metadata=md))
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, "refused before anything is sent"
            inv_md = [("macaroon", lnd.macaroon("invoice"))]
            with pytest.raises(grpc.RpcError) as e:
                list(pay.SendPaymentV2(router.SendPaymentRequest(payment_request=c_inv["bolt11"]), metadata=inv_md))
            assert e.value.details() == "permission denied", "the invoice macaroon cannot pay"

            monkeypatch.chdir(tmp_path)
            from lnbits.settings import settings
            from lnbits.wallets.lndgrpc import LndWallet
            from lnbits.wallets.lndrest import LndRestWallet
            lnbits_wallets(lnd, lnd.macaroon("admin"))

            async def pays(make, label):
                wallet = make()
                bill = net.c.rpc().invoice(amount_msat=21_000, label=label, description="lnbits pays")
                paid = await wallet.pay_invoice(bill["bolt11"], 5_000)
                assert paid.ok, paid.error_message
                assert hashlib.sha256(bytes.fromhex(paid.preimage)).hexdigest() == bill["payment_hash"]
                assert (await wallet.get_payment_status(bill["payment_hash"])).success
                await wallet.cleanup()

            asyncio.run(pays(LndWallet, "lnbits-grpc"))
            asyncio.run(pays(LndRestWallet, "lnbits-rest"))

            # A pays an invoice made through LND's API on B, with only a description hash (as an
            # LNURL invoice): the subscription sees it settled.
            stub, md = lnd.stub(lnd.macaroon("invoice"))
            events = stub.SubscribeInvoices(ln.InvoiceSubscription(), metadata=md)
            metadata = hashlib.sha256(b'[["text/plain","from A"]]').digest()
            made = stub.AddInvoice(ln.Invoice(memo="from A", value=777, description_hash=metadata), metadata=md)
            assert bolt11.decode(made.payment_request).description_hash == metadata.hex()
            assert next(events).state == ln.Invoice.OPEN
            net.a.rpc().call("xpay", {"invstring": made.payment_request})
            settled = next(events)
            assert (settled.r_hash, settled.state, settled.amt_paid_msat) == (made.r_hash, ln.Invoice.SETTLED, 777_000)
            events.cancel()
            net.audit()
        finally:
            lnd.stop()

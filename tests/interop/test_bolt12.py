"""BOLT12 on a real network (network.py): B's offers are answered by its own offers plugin, whose
`createinvoice` invoiced-cln hands to invoiced, so every invoice B issues for an offer is one of
invoiced's — listed, waited on, paid over its blinded path, deleted and audited there, with
nothing in lightningd's own table. C, without the plugin, is the reference for every answer."""

import hashlib
import secrets
import threading

import pytest
from pyln.client import RpcError

from network import node_table, running, wait_for


@pytest.fixture(scope="module")
def net():
    with running("b12-") as network:
        yield network


def fetch_invoice(net, payer, issuer, offer, **params):
    """`payer`'s fetchinvoice of `issuer`'s offer. Onion messages are best-effort (a request or
    its reply through the offer's blinded path can be lost, as on any network), so a timed-out
    request is sent again, as wallets do; a failure shows what the issuer logged."""
    for attempt in range(3):
        try:
            return payer.rpc().call("fetchinvoice", {"offer": offer["bolt12"], "timeout": 20, **params})["invoice"]
        except RpcError as e:
            if e.error.get("code") == 1005 and attempt < 2:
                print(f"fetchinvoice timed out (attempt {attempt + 1}); sending it again")
                continue
            said = [l for l in issuer.log().splitlines()[-400:] if any(k in l for k in ("offers", "invoiced-cln", "BROKEN", "UNUSUAL", "onion"))]
            raise AssertionError(f"fetchinvoice failed: {e.error}; {issuer.name} logged:\n" + "\n".join(said[-60:])) from e


def pay_offer(net, node, offer, note, **fetch):
    """A fetches an invoice for `offer` (with payer note `note`) and pays it with xpay."""
    got = fetch_invoice(net, net.a, node, offer, payer_note=note, **fetch)
    if "recurrence_label" in fetch:
        # A recurring offer's next period is fetched only after a payment made with its label.
        paid = net.a.rpc().call("pay", {"bolt11": got, "label": fetch["recurrence_label"]})
    else:
        paid = net.a.rpc().call("xpay", {"invstring": got})
    assert hashlib.sha256(bytes.fromhex(paid["payment_preimage"])).hexdigest() == net.a.rpc().decode(got)["invoice_payment_hash"]
    return got, paid


def listed(node, **by):
    return node.rpc().call("listinvoices", by)["invoices"]


def test_an_offer_is_paid_into_invoiced_as_core_lightning_lists_it(net):
    offer = net.b.rpc().call("offer", {"amount": "5000msat", "description": "coffee", "label": "coffee-offer"})
    ref_offer = net.c.rpc().call("offer", {"amount": "5000msat", "description": "coffee", "label": "coffee-offer"})
    before = net.b.rpc().call("wait", {"subsystem": "invoices", "indexname": "updated", "nextvalue": 0})["updated"]

    bolt12, paid = pay_offer(net, net.b, offer, "for the morning")
    ref_bolt12, _ = pay_offer(net, net.c, ref_offer, "for the morning")

    inv, = listed(net.b, offer_id=offer["offer_id"])
    ref, = listed(net.c, offer_id=ref_offer["offer_id"])
    assert set(inv) == set(ref), "the same fields as Core Lightning lists"
    assert inv["bolt12"] == bolt12 and inv["status"] == "paid"
    assert inv["local_offer_id"] == offer["offer_id"]
    assert inv["invreq_payer_note"] == ref["invreq_payer_note"] == "for the morning"
    assert inv["description"] == ref["description"] == "coffee"
    assert inv["payment_preimage"] == paid["payment_preimage"]
    assert inv["amount_received_msat"] == inv["amount_msat"] == 5000
    assert inv["label"].startswith(offer["offer_id"] + "-"), "the offers plugin's label"
    assert listed(net.invoiced, offer_id=offer["offer_id"]) == [inv], "the node's listing is invoiced's"
    assert listed(net.b, invstring=bolt12) == [inv] and listed(net.b, label=inv["label"]) == [inv]
    assert node_table(net.b) == [], "nothing in lightningd's own table"
    assert [l for l, _ in node_table(net.c)] == [ref["label"]], "where C keeps it"

    # The signed invoice is the node's: A's decode checked it; the signature and path are B's.
    decoded = net.a.rpc().decode(bolt12)
    assert decoded["valid"] and decoded["invoice_node_id"] == net.b.id
    assert [p["first_node_id"] for p in decoded["invoice_paths"]] == [net.b.id]

    woke = net.b.rpc().waitanyinvoice(inv["pay_index"] - 1, 10)
    assert woke["label"] == inv["label"] and woke["bolt12"] == bolt12
    updated = net.b.rpc().call("wait", {"subsystem": "invoices", "indexname": "updated", "nextvalue": before + 1})
    assert updated["updated"] > before
    hooks = wait_for("the invoice_paid webhook", lambda: net.hooks.of(inv["payment_hash"], "invoice_paid"), 30)
    assert hooks[0]["invoice"]["bolt12"] == bolt12
    net.every_channel_normal()
    net.audit()

    # Deleted like any invoice.
    gone = net.b.rpc().delinvoice(inv["label"], "paid")
    assert gone["bolt12"] == bolt12
    assert listed(net.b, offer_id=offer["offer_id"]) == []


def test_createinvoice_answers_and_refuses_as_lightningd_does(net):
    """createinvoice through the plugin against a node without it, on the same unsigned invoice:
    the same fields when it is made, and the same refusals — -32602 for a wrong preimage or a
    signed invoice, 900 (with the existing invoice) for a used label, 907 for a disabled offer."""
    offers = {n.name: n.rpc().call("offer", {"amount": "7000msat", "description": "tea"}) for n in (net.b, net.c)}
    preimage = secrets.token_hex(32)
    ours = {}
    for n in (net.b, net.c):
        signed = fetch_invoice(net, net.a, n, offers[n.name])
        # The same invoice unsigned and without paths, for our own preimage: as the offers plugin
        # hands one over; createinvoice adds the stub path.
        bare = rewrite(signed, {168: hashlib.sha256(bytes.fromhex(preimage)).digest()})
        ours[n.name] = (signed, bare)

    def refusal(node, **params):
        with pytest.raises(RpcError) as e:
            node.rpc().call("createinvoice", params)
        return e.value.error

    made = {}
    for n in (net.b, net.c):
        signed, bare = ours[n.name]
        assert refusal(n, invstring=bare, label="t1", preimage=secrets.token_hex(32))["message"] == "Incorrect preimage", n.name
        assert refusal(n, invstring=signed, label="t2", preimage=preimage)["message"] == "invoice already signed", n.name
        made[n.name] = n.rpc().call("createinvoice", {"invstring": bare, "label": "tea-direct", "preimage": preimage})
        taken = refusal(n, invstring=bare, label="tea-direct", preimage=preimage)
        assert (taken["code"], taken["data"]["status"], taken["data"]["bolt12"]) == (900, "unpaid", made[n.name]["bolt12"]), n.name
    assert set(made["B"]) == set(made["C"]), "the same fields"
    assert made["B"]["local_offer_id"] == offers["B"]["offer_id"]
    assert net.a.rpc().decode(made["B"]["bolt12"])["valid"], "signed by B's key"
    paid = net.a.rpc().call("xpay", {"invstring": made["B"]["bolt12"]})
    assert paid["payment_preimage"] == preimage
    assert listed(net.b, label="tea-direct")[0]["status"] == "paid"
    for n in (net.b, net.c):
        n.rpc().call("disableoffer", {"offer_id": offers[n.name]["offer_id"]})
        e = refusal(n, invstring=ours[n.name][1], label="t3", preimage=preimage)
        assert (e["code"], e["message"]) == (907, "offer not active"), n.name


def put_bigsize(v):
    if v < 0xFD:
        return bytes([v])
    return b"\xfd" + v.to_bytes(2, "big") if v <= 0xFFFF else b"\xfe" + v.to_bytes(4, "big")


def rewrite(invstring, fields):
    """The BOLT12 string without its signature and blinded paths (types 240, 160, 162: the
    paths' `path_id` belongs to the old payment hash) and with `fields` (type -> bytes) set."""
    charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    hrp, data = invstring.lower().rsplit("1", 1)
    acc, bits, raw = 0, 0, bytearray()
    for c in data:
        acc, bits = (acc << 5) | charset.index(c), bits + 5
        if bits >= 8:
            bits -= 8
            raw.append((acc >> bits) & 0xFF)

    def bigsize(i):
        n = {0xFD: 2, 0xFE: 4, 0xFF: 8}.get(raw[i], 0)
        return (int.from_bytes(raw[i + 1:i + 1 + n], "big") if n else raw[i]), i + 1 + n

    out, i = bytearray(), 0
    while i < len(raw):
        t, i = bigsize(i)
        length, i = bigsize(i)
        value, i = raw[i:i + length], i + length
        if t in (160, 162, 240):
            continue
        value = fields.get(t, value)
        out += put_bigsize(t) + put_bigsize(len(value)) + value
    acc, bits, text = 0, 0, hrp + "1"
    for b in out:
        acc, bits = (acc << 8) | b, bits + 8
        while bits >= 5:
            bits -= 5
            text += charset[(acc >> bits) & 31]
    if bits:
        text += charset[(acc << (5 - bits)) & 31]
    return text


def test_a_recurring_offer_pays_its_second_period(net):
    """The offers plugin looks the previous period's invoice up by label (listinvoices, through
    the plugin, in invoiced) before it answers for the next one."""
    offer = net.b.rpc().call("offer", {"amount": "3000msat", "description": "weekly", "recurrence": "1weeks"})
    _, first = pay_offer(net, net.b, offer, "week 0", recurrence_counter=0, recurrence_label="weekly-a")
    bolt12, second = pay_offer(net, net.b, offer, "week 1", recurrence_counter=1, recurrence_label="weekly-a")
    got = listed(net.b, offer_id=offer["offer_id"])
    assert [i["label"].rsplit("-", 1)[1] for i in got] == ["0", "1"]
    assert [i["status"] for i in got] == ["paid", "paid"]
    assert got[1]["bolt12"] == bolt12 and got[1]["payment_preimage"] == second["payment_preimage"]
    assert node_table(net.b) == []
    net.audit()


@pytest.mark.parametrize("method", ["xpay", "pay"])
def test_the_node_pays_its_own_offer(net, method):
    """B fetches an invoice for its own offer and pays it, as a node without the plugin can:
    invoiced settles it (the blinded path's `path_id` read from the onion the node injects, or
    given by `pay`'s sendpay), then lightningd completes the payment on its twin."""
    outcomes = {}
    for n in (net.b, net.c):
        offer = n.rpc().call("offer", {"amount": "6000msat", "description": f"to myself by {method}"})
        got = fetch_invoice(net, n, n, offer)
        if method == "xpay":
            out = n.rpc().call("xpay", {"invstring": got})
        else:
            out = n.rpc().call("pay", {"bolt11": got})
            assert out["status"] == "complete"
        outcomes[n.name] = (offer, got, out)
    offer, got, out = outcomes["B"]
    assert set(out) == set(outcomes["C"][2]), "the payer's answer has the shape it has without the plugin"
    inv, = listed(net.b, offer_id=offer["offer_id"])
    assert inv["status"] == "paid" and inv["payment_preimage"] == out["payment_preimage"] and inv["bolt12"] == got
    wait_for("the twin deleted", lambda: node_table(net.b) == [], 30)
    net.audit()


def test_both_processes_restarted_mid_payment_lose_nothing_and_list_nothing_twice(net):
    """invoiced is down when A's payment for an offer's invoice reaches B (the plugin holds the
    HTLC), then B's lightningd restarts too, replaying it: once both are back the payment is
    complete, paid once in invoiced, listed once."""
    offer = net.b.rpc().call("offer", {"amount": "4000msat", "description": "restart"})
    got = fetch_invoice(net, net.a, net.b, offer)
    outcome = {}

    def pay():
        try:
            outcome["ok"] = net.a.rpc().call("xpay", {"invstring": got, "retry_for": 300})
        except RpcError as e:
            outcome["err"] = e.error

    net.invoiced.kill()
    t = threading.Thread(target=pay, daemon=True)
    t.start()
    wait_for("the HTLC held by the plugin", lambda: "holding an HTLC while a server is unreachable" in net.b.log(), 60)
    net.b.stop()
    net.invoiced.start(["--webhook-url", net.hooks.url])
    net.start_b()
    t.join(180)
    assert outcome.get("ok"), outcome
    inv, = listed(net.b, offer_id=offer["offer_id"])
    assert inv["status"] == "paid" and inv["payment_preimage"] == outcome["ok"]["payment_preimage"]
    assert [i["payment_hash"] for i in listed(net.invoiced)].count(inv["payment_hash"]) == 1
    wait_for("B's channels with A back to normal", lambda: net.b.normal(net.a, 2) and net.a.normal(net.b, 2), 120)
    net.every_channel_normal()
    net.audit()

"""Faults during real payments (network.py, a network of its own): invoiced killed with SIGKILL
while payers pay, and B's lightningd restarted while a hold invoice's HTLCs are held. What the
payer saw is the truth afterwards: complete means paid in invoiced with that preimage, failed
means unpaid, and nothing hangs once the killed process is back."""

import threading
import time

import pytest
from pyln.client import RpcError

from network import running, wait_for


@pytest.fixture(scope="module")
def net():
    with running("faults-") as network:
        yield network


def test_invoiced_killed_while_four_payers_pay_forty_invoices(net):
    invoices = [net.b.rpc().invoice(amount_msat=1_000_000 + i, label=f"kill-{i}", description="under fire") for i in range(40)]
    outcomes = {}
    started = threading.Event()

    def payer(k):
        rpc = net.a.rpc()
        for i in range(k, 40, 4):
            started.set()
            try:
                outcomes[i] = ("complete", rpc.call("xpay", {"invstring": invoices[i]["bolt11"], "retry_for": 120})["payment_preimage"])
            except RpcError as e:
                outcomes[i] = ("failed", e.error)

    threads = [threading.Thread(target=payer, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    started.wait(10)
    wait_for("a few payments through", lambda: len(outcomes) >= 6, 60, 0.05)
    net.invoiced.kill()
    time.sleep(2)  # payments arriving now are held by the plugin until invoiced is back
    net.invoiced.start(["--webhook-url", net.hooks.url])
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads), f"payments still hanging: {40 - len(outcomes)}"
    listed = {i["label"]: i for i in net.invoiced.rpc().listinvoices()["invoices"]}
    complete = 0
    for i, (outcome, detail) in sorted(outcomes.items()):
        inv = listed[f"kill-{i}"]
        if outcome == "complete":
            complete += 1
            assert (inv["status"], inv.get("payment_preimage")) == ("paid", detail), (i, inv)
        else:
            assert inv["status"] == "unpaid", (i, detail, inv)
    assert complete >= 34, f"only {complete} of 40 completed: {[o for o in outcomes.values() if o[0] != 'complete']}"
    # Webhooks (at least once, from a durable cursor) told of every payment, across the kill.
    for i, (outcome, _) in outcomes.items():
        if outcome == "complete":
            h = listed[f"kill-{i}"]["payment_hash"]
            wait_for(f"the invoice_paid webhook of kill-{i}", lambda: net.hooks.of(h, "invoice_paid"), 30)
    net.every_channel_normal()
    net.audit()


def test_held_htlcs_are_held_again_after_lightningd_restarts_and_a_settle_completes_them(net):
    held = net.b.rpc().call("holdinvoice", {"amount_msat": 30_000_000, "description": "across a restart", "label": "restart-hold"})
    outcome = {}

    def pay():
        try:
            outcome["ok"] = net.a.rpc().call("xpay", {"invstring": held["bolt11"], "retry_for": 300})
        except RpcError as e:
            outcome["err"] = e.error

    t = threading.Thread(target=pay, daemon=True)
    t.start()
    lookup = lambda: net.invoiced.rpc().call("holdinvoicelookup", {"payment_hash": held["payment_hash"]})["holdinvoices"][0]["state"]
    wait_for("the hold invoice ACCEPTED", lambda: lookup() == "ACCEPTED", 60)
    net.b.stop()
    net.start_b()
    wait_for("B's channels with A back to normal", lambda: net.b.normal(net.a, 2) and net.a.normal(net.b, 2), 120)
    assert lookup() == "ACCEPTED" and not outcome, f"the payment ended across the restart: {outcome}"
    # The replayed HTLC is held again by the new plugin: the settle resolves it.
    assert net.b.rpc().call("holdinvoicesettle", {"payment_hash": held["payment_hash"]})["state"] == "SETTLED"
    t.join(120)
    assert outcome.get("ok", {}).get("payment_preimage") == held["preimage"], outcome
    assert net.b.rpc().listinvoices("restart-hold")["invoices"][0]["status"] == "paid"
    net.every_channel_normal()

"""invoiced's real answers against Core Lightning v26.06.6's own JSON schemas for `invoice`,
`listinvoices`, `delinvoice`, `waitinvoice`, `waitanyinvoice` and `wait`: every field the schema
marks required (also those required only for a status, through its `allOf` if/then/else) is
present, and every field the schema knows has the schema's type and enum. Typed clients such as
cln-grpc parse these answers into structs. Fields the schemas do not know (our `expiry_time`,
SPEC §9) are allowed."""

import hashlib
import json
import os
import re
import threading
import time

import pytest
from pyln.client import RpcError

from conftest import Invoiced, ROOT

SCHEMAS = os.path.join(os.path.dirname(ROOT), "shared", "reference", "cln-v26.06.6", "schemas")

HEX = re.compile(r"^([0-9a-f]{2})*$")
CHECKS = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "u64": lambda v: isinstance(v, int) and 0 <= v < 2**64,
    "u32": lambda v: isinstance(v, int) and 0 <= v < 2**32,
    "u16": lambda v: isinstance(v, int) and 0 <= v < 2**16,
    "msat": lambda v: isinstance(v, int) and 0 <= v < 2**64,
    "hash": lambda v: isinstance(v, str) and len(v) == 64 and HEX.match(v) is not None,
    "secret": lambda v: isinstance(v, str) and len(v) == 64 and HEX.match(v) is not None,
    "txid": lambda v: isinstance(v, str) and len(v) == 64 and HEX.match(v) is not None,
    "hex": lambda v: isinstance(v, str) and HEX.match(v) is not None,
    "pubkey": lambda v: isinstance(v, str) and len(v) == 66 and HEX.match(v) is not None,
    "short_channel_id": lambda v: isinstance(v, str) and re.match(r"^\d+x\d+x\d+$", v) is not None,
}


def schema(name):
    path = os.path.join(SCHEMAS, name + ".json")
    if not os.path.exists(path):
        message = f"needs Core Lightning's schemas in {SCHEMAS}, which are absent"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with open(path) as f:
        return json.load(f)["response"]


def matches_if(cond, value):
    """Whether `value` satisfies an `if` clause (CLN's: enums on properties)."""
    for k, sub in cond.get("properties", {}).items():
        if k not in value:
            return False
        if "enum" in sub and value[k] not in sub["enum"]:
            return False
    return all(k in value for k in cond.get("required", []))


def validate(s, value, path="$"):
    """Every violation of schema `s` by `value`, as readable strings."""
    errors = []
    t = s.get("type")
    if t is not None:
        if t not in CHECKS:
            errors.append(f"{path}: schema type {t} unknown to this test")
        elif not CHECKS[t](value):
            return [f"{path}: {value!r} is not a {t}"]
    if "enum" in s and value not in s["enum"]:
        errors.append(f"{path}: {value!r} not in {s['enum']}")
    if isinstance(value, dict):
        for k in s.get("required", []):
            if k not in value:
                errors.append(f"{path}: required field {k} missing")
        for k, sub in s.get("properties", {}).items():
            if k in value and sub:
                errors += validate(sub, value[k], f"{path}.{k}")
        for clause in s.get("allOf", []):
            if "if" in clause:
                branch = clause.get("then") if matches_if(clause["if"], value) else clause.get("else")
                if branch:
                    errors += validate(branch, value, path)
            else:
                errors += validate(clause, value, path)
    if isinstance(value, list) and "items" in s:
        for i, item in enumerate(value):
            errors += validate(s["items"], item, f"{path}[{i}]")
    return errors


def conforms(name, answer):
    errors = validate(schema(name), answer)
    assert not errors, f"{name}: " + "; ".join(errors)


def test_the_validator_itself_catches_what_it_should():
    s = schema("listinvoices")
    good = {"invoices": [{"label": "a", "created_index": 1, "payment_hash": "00" * 32, "status": "unpaid", "expires_at": 5}]}
    assert validate(s, good) == []
    paid = json.loads(json.dumps(good))
    paid["invoices"][0]["status"] = "paid"
    assert any("pay_index missing" in e for e in validate(s, paid)), "a paid invoice needs its payment fields"
    bad = json.loads(json.dumps(good))
    bad["invoices"][0]["created_index"] = "1"
    assert validate(s, bad) == ["$.invoices[0].created_index: '1' is not a u64"]
    del bad["invoices"][0]["label"]
    assert any("label missing" in e for e in validate(s, bad))


def test_every_answer_conforms_to_core_lightnings_schemas(tmpdir_short):
    inv = Invoiced(os.path.join(tmpdir_short, "inv"), os.urandom(32)).start()
    try:
        rpc = inv.rpc()
        made = [
            rpc.invoice(amount_msat=1000, label="plain", description="tea"),
            rpc.invoice(amount_msat="any", label="any", description="tips", expiry=3600),
            rpc.invoice(amount_msat="5sat", label=7, description="hash only " * 80, deschashonly=True),
            rpc.invoice(amount_msat=2000, label="fb", description="fallback", preimage="42" * 32,
                        fallbacks=["bcrt1qyxszwzmlv6s7fsjex0cn58j6rwa5w46hspefxryp3yf3l8r24tssv2wwjf"]),
            rpc.invoice(amount_msat=3000, label="short", description="expires", expiry=1),
            rpc.invoice(amount_msat=4000, label="gone", description="deleted"),
        ]
        for m in made:
            conforms("invoice", m)
        assert made[3]["payment_hash"] == hashlib.sha256(bytes.fromhex("42" * 32)).hexdigest()

        settle = {"payment_hash": made[0]["payment_hash"], "amount_msat": 1000, "payment_secret": made[0]["payment_secret"]}
        rpc.call("settleinvoice", settle)
        rpc.call("settleinvoice", {"payment_hash": made[1]["payment_hash"], "amount_msat": 777,
                                   "payment_secret": made[1]["payment_secret"]})
        time.sleep(1.5)
        listed = rpc.listinvoices()
        conforms("listinvoices", listed)
        statuses = {i["label"]: i["status"] for i in listed["invoices"]}
        assert statuses["plain"] == "paid" and statuses["short"] == "expired" and statuses["fb"] == "unpaid"
        for lookup in [{"label": "plain"}, {"payment_hash": made[2]["payment_hash"]}, {"invstring": made[3]["bolt11"]},
                       {"index": "updated", "start": 1}, {"index": "created", "start": 2, "limit": 2}]:
            conforms("listinvoices", rpc.listinvoices(**lookup))

        conforms("waitinvoice", rpc.waitinvoice("plain"))
        conforms("waitanyinvoice", rpc.waitanyinvoice(0))
        conforms("waitanyinvoice", rpc.waitanyinvoice(1))
        with pytest.raises(RpcError) as e:
            rpc.waitinvoice("short")
        assert e.value.error["code"] == 903
        conforms("listinvoices", {"invoices": [e.value.error["data"]]})

        conforms("delinvoice", rpc.delinvoice("fb", "unpaid", desconly=True))
        conforms("delinvoice", rpc.delinvoice("gone", "unpaid"))
        conforms("delinvoice", rpc.delinvoice("plain", "paid"))
        conforms("delinvoice", rpc.delinvoice("short", "expired"))

        for index, n in [("created", 1), ("updated", 1), ("deleted", 1)]:
            conforms("wait", rpc.call("wait", {"subsystem": "invoices", "indexname": index, "nextvalue": n}))
        # A wait that is woken carries the invoice's details.
        woken = {}
        nxt = rpc.getinfo()["last_created_index"] + 1
        t = threading.Thread(target=lambda: woken.update(inv.rpc().call(
            "wait", {"subsystem": "invoices", "indexname": "created", "nextvalue": nxt})))
        t.start()
        time.sleep(0.3)
        rpc.invoice(amount_msat=1, label="late", description="wakes the wait")
        t.join(10)
        assert woken["invoices"]["label"] == "late" and woken["invoices"]["status"] == "unpaid"
        conforms("wait", woken)
    finally:
        inv.stop()

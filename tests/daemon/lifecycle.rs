//! After creation: settle, expire, delete, wait — every code, and a restart through it all.

use std::time::{Duration, Instant};

use bitcoin::hashes::{sha256, Hash as _};
use serde_json::{json, Value};

use crate::harness::{eventually, into_result, Client, Daemon};

fn create(d: &Daemon, label: &str, amount: Value, extra: Value) -> Value {
    let mut p =
        json!({"amount_msat": amount, "label": label, "description": format!("for {label}")});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    d.call("invoice", p).unwrap()
}

fn settle(d: &Daemon, inv: &Value, amount: u64) -> Result<Value, crate::harness::RpcErr> {
    d.call("settleinvoice", json!({"payment_hash": inv["payment_hash"], "amount_msat": amount, "payment_secret": inv["payment_secret"]}))
}

fn listed(d: &Daemon, label: &str) -> Value {
    d.call("listinvoices", json!({"label": label})).unwrap()["invoices"][0].clone()
}

#[test]
fn settle_checks_and_paid_fields() {
    let d = Daemon::start();
    let preimage = "33".repeat(32);
    let inv = create(&d, "p", json!(1000), json!({"preimage": preimage}));
    let head = d.head();
    // Every refusal names the failed check and changes nothing.
    let e = d.call("settleinvoice", json!({"payment_hash": "00".repeat(32), "amount_msat": 1000, "payment_secret": inv["payment_secret"]})).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (905, "Unknown invoice"));
    let e = d.call("settleinvoice", json!({"payment_hash": inv["payment_hash"], "amount_msat": 1000, "payment_secret": "11".repeat(32)})).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            -32602,
            "payment_secret: does not match the invoice's payment secret"
        )
    );
    let e = settle(&d, &inv, 999).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            -32602,
            "amount_msat: 999msat is less than the invoice's 1000msat"
        )
    );
    let e = settle(&d, &inv, 2001).unwrap_err();
    assert_eq!(e.code, -32602);
    let e = d.call("settleinvoice", json!({"payment_hash": inv["payment_hash"], "amount_msat": "any", "payment_secret": inv["payment_secret"]})).unwrap_err();
    assert_eq!(e.code, -32602);
    assert_eq!(
        d.call(
            "settleinvoice",
            json!({"payment_hash": inv["payment_hash"]})
        )
        .unwrap_err()
        .message,
        "missing required parameter: amount_msat"
    );
    assert_eq!(d.head(), head);
    assert_eq!(listed(&d, "p")["status"], json!("unpaid"));
    assert!(listed(&d, "p").get("payment_preimage").is_none());

    let paid = settle(&d, &inv, 1500).unwrap();
    assert_eq!(paid["status"], json!("paid"));
    assert_eq!(paid["payment_preimage"], json!(preimage));
    assert_eq!(paid["pay_index"], json!(1));
    assert_eq!(paid["amount_received_msat"], json!(1500));
    assert_eq!(paid["updated_index"], json!(1));
    let l = listed(&d, "p");
    assert_eq!(l, paid);
    let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "label",
            "bolt11",
            "payment_hash",
            "amount_msat",
            "status",
            "pay_index",
            "amount_received_msat",
            "paid_at",
            "payment_preimage",
            "description",
            "expires_at",
            "created_index",
            "updated_index"
        ]
    );
    // Paying twice is refused.
    let e = settle(&d, &inv, 1000).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (906, "Invoice status is paid not unpaid")
    );
    assert_eq!(
        e.data,
        Some(json!({"current_status": "paid", "expected_status": "unpaid"}))
    );

    // A generated preimage is revealed once paid, and matches the hash.
    let any = create(&d, "any", json!("any"), json!({}));
    let paid = settle(&d, &any, 1337).unwrap();
    assert_eq!(paid["amount_received_msat"], json!(1337));
    assert!(paid.get("amount_msat").is_none());
    let pre = hex::decode(paid["payment_preimage"].as_str().unwrap()).unwrap();
    assert_eq!(
        sha256::Hash::hash(&pre).to_string(),
        any["payment_hash"].as_str().unwrap()
    );
}

#[test]
fn expiry_delete_and_description() {
    let d = Daemon::start();
    let inv = create(&d, "exp", json!(123000), json!({"expiry": 1}));
    // The live timer (tested in virtual time in actors/tests/ledger_expiry.rs), wired for real.
    eventually(3, "exp expired by the timer", || {
        listed(&d, "exp")["status"] == json!("expired")
    });
    let l = listed(&d, "exp");
    assert_eq!(l["status"], json!("expired"));
    assert_eq!(l["updated_index"], json!(1));
    let e = settle(&d, &inv, 123000).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (906, "Invoice status is expired not unpaid")
    );
    let e = d.call("delinvoice", json!(["exp", "unpaid"])).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (906, "Invoice status is expired not unpaid")
    );
    assert_eq!(
        e.data,
        Some(json!({"current_status": "expired", "expected_status": "unpaid"}))
    );
    let e = d.call("delinvoice", json!(["exp", "paid"])).unwrap_err();
    assert_eq!(e.message, "Invoice status is expired not paid");
    let e = d
        .call("delinvoice", json!(["exp", "nonsense"]))
        .unwrap_err();
    assert_eq!(
        e.data,
        Some(json!({"current_status": "expired", "expected_status": "nonsense"}))
    );
    let deleted = d.call("delinvoice", json!(["exp", "expired"])).unwrap();
    assert_eq!(deleted["label"], json!("exp"));
    assert_eq!(deleted["status"], json!("expired"));
    let e = d.call("delinvoice", json!(["exp", "expired"])).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (905, "Unknown invoice"));
    assert_eq!(
        d.call("listinvoices", json!({"label": "exp"})).unwrap()["invoices"],
        json!([])
    );
    // created_index is not reused; the label is free again; the hash is not.
    let again = create(&d, "exp", json!(1000), json!({}));
    assert_eq!(again["created_index"], json!(2));
    let e = d.call(
        "invoice",
        json!({"amount_msat": 1, "label": "new", "description": "d", "preimage": "44".repeat(32)}),
    );
    assert!(e.is_ok());
    d.call("delinvoice", json!(["new", "unpaid"])).unwrap();
    let e = d.call("invoice", json!({"amount_msat": 1, "label": "new2", "description": "d", "preimage": "44".repeat(32)})).unwrap_err();
    assert_eq!(e.code, 901, "a deleted invoice's preimage stays used");

    // desconly
    let p = create(&d, "dp", json!(1000), json!({}));
    settle(&d, &p, 1000).unwrap();
    let before = listed(&d, "dp");
    let r = d
        .call(
            "delinvoice",
            json!({"label": "dp", "status": "paid", "desconly": true}),
        )
        .unwrap();
    assert!(r.get("description").is_none());
    assert_eq!(
        r["updated_index"], before["updated_index"],
        "Core Lightning answers with the previous updated_index"
    );
    let after = listed(&d, "dp");
    assert!(after.get("description").is_none());
    assert!(after["updated_index"].as_u64() > before["updated_index"].as_u64());
    let e = d
        .call(
            "delinvoice",
            json!({"label": "dp", "status": "paid", "desconly": true}),
        )
        .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (908, "Invoice description already removed")
    );
    assert_eq!(
        d.call("delinvoice", json!({"label": "nope", "status": "paid"}))
            .unwrap_err()
            .code,
        905
    );
}

#[test]
fn waits() {
    let d = Daemon::start();
    assert_eq!(
        d.call("waitinvoice", json!(["nosuch"])).unwrap_err(),
        crate::harness::RpcErr {
            code: -1,
            message: "Label not found".into(),
            data: None
        }
    );
    // A waiter woken by another client's settle.
    let inv = create(&d, "w1", json!(1000), json!({}));
    let mut waiter = d.client();
    waiter.send_raw(
        json!({"jsonrpc": "2.0", "id": 1, "method": "waitinvoice", "params": ["w1"]})
            .to_string()
            .as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(200));
    settle(&d, &inv, 1000).unwrap();
    let r = into_result(waiter.read_response().unwrap()).unwrap();
    assert_eq!(
        (r["label"].clone(), r["status"].clone()),
        (json!("w1"), json!("paid"))
    );
    // Already paid: at once.
    assert_eq!(
        d.call("waitinvoice", json!(["w1"])).unwrap()["status"],
        json!("paid")
    );

    // Three `any` invoices expiring at 2, 3 and 4 s: each waiter fails at its own expiry, not earlier.
    let mut waiters = Vec::new();
    for (label, expiry) in [("e2", 2u64), ("e3", 3), ("e4", 4)] {
        let r = create(&d, label, json!("any"), json!({"expiry": expiry}));
        let mut c = d.client();
        c.send_raw(
            json!({"jsonrpc": "2.0", "id": 1, "method": "waitinvoice", "params": [label]})
                .to_string()
                .as_bytes(),
        );
        waiters.push((c, r["expires_at"].as_u64().unwrap(), label));
    }
    for (mut c, expires_at, label) in waiters {
        let e = into_result(c.read_response().unwrap()).unwrap_err();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert_eq!(
            (e.code, e.message.as_str()),
            (903, "invoice expired during wait")
        );
        assert_eq!(e.data.as_ref().unwrap()["label"], json!(label));
        assert_eq!(e.data.as_ref().unwrap()["status"], json!("expired"));
        assert!(
            now >= expires_at as f64,
            "{label} failed at {now}, before its expiry {expires_at}"
        );
        assert!(
            now < expires_at as f64 + 3.0,
            "{label} failed late: {now} vs {expires_at}"
        );
    }
    // Deleted while waiting.
    create(&d, "del", json!(1000), json!({}));
    let mut c = d.client();
    c.send_raw(
        json!({"jsonrpc": "2.0", "id": 1, "method": "waitinvoice", "params": ["del"]})
            .to_string()
            .as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(200));
    d.call("delinvoice", json!(["del", "unpaid"])).unwrap();
    assert_eq!(
        into_result(c.read_response().unwrap()).unwrap_err().message,
        "Invoice deleted during wait"
    );

    // waitanyinvoice
    let a = create(&d, "a1", json!(1000), json!({}));
    let b = create(&d, "a2", json!(1000), json!({}));
    let e = d.call("waitanyinvoice", json!([1, 0])).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (904, "Timed out while waiting for invoice to be paid")
    );
    let t = Instant::now();
    let e = d
        .call("waitanyinvoice", json!({"lastpay_index": 1, "timeout": 1}))
        .unwrap_err();
    assert_eq!(e.code, 904);
    assert!(t.elapsed() >= Duration::from_millis(950));
    let mut any = d.client();
    any.send_raw(
        json!({"jsonrpc": "2.0", "id": 1, "method": "waitanyinvoice", "params": [1]})
            .to_string()
            .as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(100));
    settle(&d, &a, 1000).unwrap();
    settle(&d, &b, 1000).unwrap();
    let r = into_result(any.read_response().unwrap()).unwrap();
    assert_eq!(
        (r["label"].clone(), r["pay_index"].clone()),
        (json!("a1"), json!(2))
    );
    assert_eq!(
        d.call("waitanyinvoice", json!([2])).unwrap()["label"],
        json!("a2")
    );
    assert_eq!(
        d.call("waitanyinvoice", json!([0])).unwrap()["label"],
        json!("w1")
    );
    assert!(d
        .call("waitanyinvoice", json!(["non-number"]))
        .unwrap_err()
        .message
        .starts_with("lastpay_index: should be an unsigned 64 bit integer"));
}

#[test]
fn wait_indexes_with_details() {
    let d = Daemon::start();
    assert_eq!(
        d.call("wait", json!(["invoices", "created", 0])).unwrap(),
        json!({"subsystem": "invoices", "created": 0})
    );
    let mut w = d.client();
    w.send_raw(json!({"jsonrpc": "2.0", "id": 1, "method": "wait", "params": {"subsystem": "invoices", "indexname": "created", "nextvalue": 1}}).to_string().as_bytes());
    std::thread::sleep(Duration::from_millis(100));
    let inv = create(&d, "x", json!(1000), json!({}));
    let r = into_result(w.read_response().unwrap()).unwrap();
    assert_eq!(
        r,
        json!({"subsystem": "invoices", "created": 1, "invoices": {"status": "unpaid", "label": "x", "bolt11": inv["bolt11"]}})
    );

    let mut w = d.client();
    w.send_raw(
        json!({"jsonrpc": "2.0", "id": 1, "method": "wait", "params": ["invoices", "updated", 1]})
            .to_string()
            .as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(100));
    settle(&d, &inv, 1000).unwrap();
    let r = into_result(w.read_response().unwrap()).unwrap();
    assert_eq!(
        r,
        json!({"subsystem": "invoices", "updated": 1, "invoices": {"status": "paid", "label": "x"}})
    );

    let mut w = d.client();
    w.send_raw(
        json!({"jsonrpc": "2.0", "id": 1, "method": "wait", "params": ["invoices", "updated", 2]})
            .to_string()
            .as_bytes(),
    );
    create(&d, "short", json!(1000), json!({"expiry": 1}));
    let r = into_result(w.read_response().unwrap()).unwrap();
    assert_eq!(
        r,
        json!({"subsystem": "invoices", "updated": 2, "invoices": {"status": "expired"}})
    );

    let mut w = d.client();
    w.send_raw(
        json!({"jsonrpc": "2.0", "id": 1, "method": "wait", "params": ["invoices", "deleted", 1]})
            .to_string()
            .as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(100));
    d.call("delinvoice", json!(["x", "paid"])).unwrap();
    let r = into_result(w.read_response().unwrap()).unwrap();
    assert_eq!(
        r,
        json!({"subsystem": "invoices", "deleted": 1, "invoices": {"status": "paid", "label": "x", "bolt11": inv["bolt11"]}})
    );
    let next = create(&d, "y", json!(1000), json!({}));
    assert_eq!(next["created_index"], json!(3));
    let e = d
        .call("wait", json!(["payments", "created", 1]))
        .unwrap_err();
    assert_eq!(e.code, -32602);
}

#[test]
fn idempotent_invoice() {
    let d = Daemon::start();
    let p = json!({"amount_msat": 1000, "label": "idem", "description": "d", "expiry": 3600, "idempotent": true});
    let first = d.call("invoice", p.clone()).unwrap();
    let again = d.call("invoice", p.clone()).unwrap();
    assert_eq!(first, again);
    let mut other = p.clone();
    other["amount_msat"] = json!(1001);
    assert_eq!(d.call("invoice", other).unwrap_err().code, 900);
    let mut plain = p.clone();
    plain.as_object_mut().unwrap().remove("idempotent");
    assert_eq!(d.call("invoice", plain).unwrap_err().code, 900);
    // idempotent is by name only.
    assert!(d
        .call(
            "invoice",
            json!([1000, "pos", "d", 3600, [], null, null, null, false, true])
        )
        .unwrap_err()
        .message
        .starts_with("too many parameters"));
}

#[test]
#[cfg_attr(
    not(feature = "dev-hooks"),
    ignore = "needs the test hooks: --features invoiced/dev-hooks (scripts/test.sh)"
)]
fn paging_by_updated_index_and_restart_in_the_middle() {
    let d = Daemon::start();
    let mut invs = Vec::new();
    for i in 1..=99 {
        invs.push(create(&d, &i.to_string(), json!(1000), json!({})));
    }
    // Pay 70, 69, ..., 61 in that order.
    for i in (61..=70).rev() {
        settle(&d, &invs[i - 1], 1000).unwrap();
    }
    let labels = |v: Value| -> Vec<String> {
        v["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["label"].as_str().unwrap().to_owned())
            .collect()
    };
    let want: Vec<String> = (61..=70).rev().map(|i: i32| i.to_string()).collect();
    assert_eq!(
        labels(
            d.call("listinvoices", json!({"index": "updated", "start": 1}))
                .unwrap()
        ),
        want
    );
    assert_eq!(
        labels(
            d.call("listinvoices", json!({"index": "updated", "start": 11}))
                .unwrap()
        )
        .len(),
        0
    );
    for i in 1..=10u64 {
        let l = labels(
            d.call(
                "listinvoices",
                json!({"index": "updated", "start": i, "limit": 1}),
            )
            .unwrap(),
        );
        assert_eq!(l, [(71 - i).to_string()]);
    }
    assert_eq!(listed(&d, "70")["updated_index"], json!(1));
    assert_eq!(listed(&d, "61")["updated_index"], json!(10));
    // Mid-way through waits and expiries: a restart gives identical listings and counters.
    create(&d, "soon", json!(1000), json!({"expiry": 1}));
    create(&d, "later", json!(1000), json!({"expiry": 3600}));
    d.call("delinvoice", json!(["5", "unpaid"])).unwrap();
    // A minute on, "soon" is overdue: it expires at start-up, "later" does not.
    let mut d = d;
    d.restart_at_offset(60);
    eventually(5, "soon expired at start-up", || {
        listed(&d, "soon")["status"] == json!("expired")
    });
    assert_eq!(listed(&d, "later")["status"], json!("unpaid"));
    let all_before = d.call("listinvoices", json!({})).unwrap();
    let info_before = d.call("getinfo", json!({})).unwrap();
    d.restart();
    assert_eq!(d.call("listinvoices", json!({})).unwrap(), all_before);
    assert_eq!(d.call("getinfo", json!({})).unwrap(), info_before);
    assert_eq!(
        d.call("waitanyinvoice", json!([9])).unwrap()["label"],
        json!("61")
    );
    // An invoice that expired while the daemon was down is expired on start-up.
    let mut d2 = d;
    create(&d2, "while-down", json!(1000), json!({"expiry": 2}));
    d2.restart_at_offset(120);
    eventually(5, "while-down expired at start-up", || {
        listed(&d2, "while-down")["status"] == json!("expired")
    });
    let _ = Client::connect(&d2.socket());
}

#[test]
fn a_thousand_waitany_callers_and_a_thousand_settles() {
    let d = Daemon::start();
    const N: usize = 1000;
    let invs: Vec<Value> = (0..N)
        .map(|i| create(&d, &format!("n{i}"), json!(1000), json!({})))
        .collect();
    // Nothing is paid yet, so each waiter, whatever its lastpay_index (BTCPay's 99999999999
    // too), is woken by the next payment, as Core Lightning's any-waiters are.
    let mut waiters: Vec<Client> = (0..N)
        .map(|k| {
            let last = if k % 10 == 9 {
                99_999_999_999u64
            } else {
                k as u64
            };
            let mut c = d.client();
            c.send_raw(
                json!({"jsonrpc": "2.0", "id": k, "method": "waitanyinvoice", "params": [last]})
                    .to_string()
                    .as_bytes(),
            );
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let socket = d.socket();
    let settlers: Vec<_> = invs
        .chunks(N / 8)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&socket);
                for inv in chunk {
                    c.call("settleinvoice", json!({"payment_hash": inv["payment_hash"], "amount_msat": 1000, "payment_secret": inv["payment_secret"]})).unwrap();
                }
            })
        })
        .collect();
    for s in settlers {
        s.join().unwrap();
    }
    let first = d.call("waitanyinvoice", json!([0])).unwrap();
    assert_eq!(first["pay_index"], json!(1));
    for (k, w) in waiters.iter_mut().enumerate() {
        let r = into_result(w.read_response().expect("every waiter is answered")).unwrap();
        assert_eq!(
            r["label"], first["label"],
            "waiter {k} was not woken by the first payment"
        );
    }
    // Once paid, each lastpay_index gets exactly the payment after it, and none past the last.
    let mut labels = std::collections::HashSet::new();
    for k in 0..N {
        let r = d.call("waitanyinvoice", json!([k])).unwrap();
        assert_eq!(
            r["pay_index"],
            json!(k + 1),
            "lastpay_index {k} got the wrong payment"
        );
        assert!(
            labels.insert(r["label"].as_str().unwrap().to_owned()),
            "a payment was delivered twice"
        );
    }
    assert_eq!(labels.len(), N);
    assert_eq!(
        d.call("waitanyinvoice", json!([N, 0])).unwrap_err().code,
        904
    );
}

/// `selfpay`: the onion the node injects to pay itself, peeled with the node's key; a payment that
/// ends here is settled by `settleinvoice`'s rules, one that goes on is left alone.
#[test]
fn a_self_payment_is_peeled_and_settled_or_left_to_go_on() {
    use invoiced_actors::policy::onion::{wrap_hop, wrap_last_hop};
    let d = Daemon::start();
    let node_key =
        invoiced_actors::key_signer::derive_node_key(&crate::harness::fixture_secret()).unwrap();
    let node = secp256k1::PublicKey::from_secret_key(&secp256k1::Secp256k1::new(), &node_key);
    let session = secp256k1::SecretKey::from_slice(&[0x41; 32]).unwrap();
    let inv = create(&d, "own", json!(5000), json!({}));
    let hash: [u8; 32] = hex::decode(inv["payment_hash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let secret = hex::decode(inv["payment_secret"].as_str().unwrap()).unwrap();
    // amt_to_forward, outgoing_cltv_value, payment_data {secret, total}, as xpay writes them.
    let payload = |amount: u64, total: u64| {
        let tu = |n: u64| {
            n.to_be_bytes()
                .iter()
                .copied()
                .skip_while(|b| *b == 0)
                .collect::<Vec<u8>>()
        };
        let mut p = vec![2, tu(amount).len() as u8];
        p.extend(tu(amount));
        p.extend([4, 2, 0x01, 0x2c]);
        let mut data = secret.clone();
        data.extend(tu(total));
        p.extend([8, data.len() as u8]);
        p.extend(data);
        p
    };
    let ask = |onion: Vec<u8>| {
        d.call(
            "selfpay",
            json!({"onion": hex::encode(onion), "payment_hash": inv["payment_hash"]}),
        )
    };
    let head = d.head();

    let e = d
        .call(
            "selfpay",
            json!({"onion": "00", "payment_hash": inv["payment_hash"]}),
        )
        .unwrap_err();
    assert_eq!(
        e.message,
        "onion: should be 1366 bytes of hex: invalid token '\"00\"'"
    );
    let e = d.call("selfpay", json!({"onion": hex::encode(wrap_last_hop(&session, &node, &hash, &payload(5000, 5000))), "payment_hash": "00".repeat(32)})).unwrap_err();
    assert_eq!(e.code, 905, "not an invoice of ours: {}", e.message);
    let stranger = secp256k1::PublicKey::from_secret_key(&secp256k1::Secp256k1::new(), &session);
    let e = ask(wrap_last_hop(
        &session,
        &stranger,
        &hash,
        &payload(5000, 5000),
    ))
    .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            -32602,
            "onion: HMAC mismatch (not for this node, or altered)"
        )
    );
    let e = ask(wrap_last_hop(&session, &node, &hash, &payload(4999, 4999))).unwrap_err();
    assert_eq!(
        e.message,
        "amount_msat: 4999msat is less than the invoice's 5000msat"
    );
    let e = ask(wrap_last_hop(&session, &node, &hash, &payload(2500, 5000))).unwrap_err();
    assert!(
        e.message.contains("a part of a larger payment"),
        "{}",
        e.message
    );
    // A payment that leaves through a channel (and will come back as an HTLC) is not settled here.
    assert_eq!(
        ask(wrap_hop(
            &session,
            &node,
            &hash,
            &payload(5000, 5000),
            &[7; 32]
        ))
        .unwrap(),
        json!({"last_hop": false})
    );
    assert_eq!(d.head(), head, "nothing was recorded");

    let paid = ask(wrap_last_hop(&session, &node, &hash, &payload(5000, 5000))).unwrap();
    assert_eq!(
        (
            paid["status"].as_str(),
            paid["amount_received_msat"].as_u64(),
            paid["last_hop"].as_bool()
        ),
        (Some("paid"), Some(5000), Some(true))
    );
    assert_eq!(
        paid["payment_preimage"],
        listed(&d, "own")["payment_preimage"]
    );
    let e = ask(wrap_last_hop(&session, &node, &hash, &payload(5000, 5000))).unwrap_err();
    assert_eq!(e.code, 906, "paid once: {}", e.message);
}

/// The daemon decides each HTLC (`checkpart`), from what the onion and the HTLC say, as
/// lightningd's `invoice_check_payment` would; a payment settled with its HTLCs records them,
/// so that each of them replayed — after a restart, from the log or the checkpoint — is
/// resolved again with the preimage, another HTLC for the paid invoice fails, and a settle
/// retried with the same HTLCs is answered as the first was.
#[test]
fn each_htlc_is_decided_here_and_the_htlcs_that_paid_are_recorded() {
    let mut d = Daemon::start();
    let inv = create(&d, "mpp", json!(10_000), json!({}));
    let part = |id: u32, msat: u64| json!({"htlc": format!("103x1x0/{id}"), "amount_msat": msat, "cltv_expiry": 200});
    let check = |d: &Daemon, p: Value, total: u64, secret: &Value, rel: u32| {
        d.call("checkpart", json!({"payment_hash": inv["payment_hash"], "part": p, "cltv_expiry_relative": rel, "total_msat": total, "payment_secret": secret}))
            .unwrap()
    };
    let secret = inv["payment_secret"].clone();
    assert_eq!(
        check(&d, part(1, 6_000), 10_000, &secret, 100),
        json!({"verdict": "join", "hold": false})
    );
    let fail = |v: Value| {
        v["reason"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not a failure: {v}"))
    };
    assert_eq!(
        fail(check(
            &d,
            part(1, 6_000),
            10_000,
            &json!("11".repeat(32)),
            100
        )),
        "wrong payment_secret"
    );
    assert_eq!(
        fail(check(&d, part(1, 6_000), 9_999, &secret, 100)),
        "total_msat: 9999msat is less than the invoice's 10000msat"
    );
    assert_eq!(
        fail(check(&d, part(1, 6_000), 20_001, &secret, 100)),
        "total_msat: 20001msat is more than twice the invoice's 10000msat"
    );
    let cltv = d.call("decode", json!({"string": inv["bolt11"]})).unwrap()["min_final_cltv_expiry"]
        .as_u64()
        .unwrap() as u32;
    assert_eq!(
        check(&d, part(1, 6_000), 10_000, &secret, cltv)["verdict"],
        "join"
    );
    assert_eq!(
        fail(check(&d, part(1, 6_000), 10_000, &secret, cltv - 1)),
        format!(
            "cltv_expiry_relative {} < min_final_cltv_expiry {cltv}",
            cltv - 1
        )
    );
    let no_secret = d.call("checkpart", json!({"payment_hash": inv["payment_hash"], "part": part(1, 6_000), "cltv_expiry_relative": 100})).unwrap();
    assert_eq!(fail(no_secret), "no payment_secret");
    let unknown = d.call("checkpart", json!({"payment_hash": "44".repeat(32), "part": part(1, 1), "cltv_expiry_relative": 18})).unwrap();
    assert_eq!(unknown, json!({"verdict": "unknown"}));

    // Settled with its two HTLCs (they must add up to the amount).
    let paid_by = json!([part(1, 6_000), part(2, 4_000)]);
    let settle_with = |d: &Daemon, parts: &Value, amount: u64| {
        d.call("settleinvoice", json!({"payment_hash": inv["payment_hash"], "amount_msat": amount, "payment_secret": secret, "parts": parts}))
    };
    let e = settle_with(&d, &paid_by, 10_001).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            -32602,
            "parts: they sum to 10000msat, not amount_msat 10001msat"
        )
    );
    let first = settle_with(&d, &paid_by, 10_000).unwrap();
    assert_eq!(first["status"], "paid");
    let again = settle_with(&d, &paid_by, 10_000).unwrap();
    assert_eq!(
        again, first,
        "the same HTLCs again: the same answer, nothing recorded twice"
    );
    let e = settle_with(&d, &json!([part(3, 10_000)]), 10_000).unwrap_err();
    assert_eq!(e.code, 906, "other HTLCs for a paid invoice");
    let e = settle(&d, &inv, 10_000).unwrap_err();
    assert_eq!(e.code, 906, "a payment without HTLCs for a paid invoice");

    for restart in [false, true] {
        if restart {
            d.restart();
        }
        let resolved = check(&d, part(2, 4_000), 10_000, &secret, 100);
        assert_eq!(resolved["verdict"], "resolve", "restart {restart}");
        assert_eq!(resolved["payment_preimage"], first["payment_preimage"]);
        assert_eq!(
            fail(check(&d, part(3, 10_000), 10_000, &secret, 100)),
            "invoice already paid"
        );
    }
    // An invoice paid without its HTLCs (a self-payment, or an older plugin): the node's
    // datastore is asked.
    let plain = create(&d, "plain", json!(1_000), json!({}));
    settle(&d, &plain, 1_000).unwrap();
    let v = d.call("checkpart", json!({"payment_hash": plain["payment_hash"], "part": part(9, 1_000), "cltv_expiry_relative": 18})).unwrap();
    assert_eq!(v["verdict"], "paid_unrecorded");
}

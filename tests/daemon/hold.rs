//! Hold invoices over the socket: holdinvoice 5.x's methods, every transition and every refusal,
//! the node's side (`holdaccept`), the safety cancel by block height, and restarts in each state.

use bitcoin::hashes::{sha256, Hash as _};
use serde_json::{json, Value};

use crate::harness::{check_bolt11, eventually, Client, Daemon};

fn sha(hex_preimage: &str) -> String {
    hex::encode(sha256::Hash::hash(&hex::decode(hex_preimage).unwrap()).to_byte_array())
}

fn lookup(d: &Daemon, hash: &Value) -> Value {
    let all = d
        .call("holdinvoicelookup", json!({"payment_hash": hash}))
        .unwrap();
    assert_eq!(all["holdinvoices"].as_array().unwrap().len(), 1);
    all["holdinvoices"][0].clone()
}

fn part(id: u32, amount: u64, cltv: u32) -> Value {
    json!({"htlc": format!("103x1x0/{id}"), "amount_msat": amount, "cltv_expiry": cltv})
}

fn accept(
    d: &Daemon,
    inv: &Value,
    parts: Value,
    height: u32,
) -> Result<Value, crate::harness::RpcErr> {
    d.call("holdaccept", json!({"payment_hash": inv["payment_hash"], "payment_secret": inv["payment_secret"], "parts": parts, "blockheight": height}))
}

fn wrong_state(e: crate::harness::RpcErr, state: &str) {
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            -32602,
            format!("Holdinvoice is in wrong state: `{state}`").as_str()
        )
    );
}

fn listed(d: &Daemon, hash: &Value) -> Value {
    d.call("listinvoices", json!({"payment_hash": hash}))
        .unwrap()["invoices"][0]
        .clone()
}

#[test]
fn every_transition_and_refusal_as_holdinvoice_answers_them() {
    let d = Daemon::start();
    let node_id = d.call("getinfo", json!({})).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let version = d.call("holdinvoice-version", json!({})).unwrap();
    assert_eq!(version["version"], json!("5.0.0"));

    // Three ways to make one: a generated preimage, the caller's, or only the caller's hash.
    let generated = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 10_000, "description": "swap"}),
        )
        .unwrap();
    assert_eq!(generated["state"], json!("OPEN"));
    let preimage = generated["preimage"].as_str().unwrap();
    assert_eq!(sha(preimage), generated["payment_hash"].as_str().unwrap());
    assert_eq!(
        generated["label"].as_str().unwrap(),
        format!("hold-{}", generated["payment_hash"].as_str().unwrap()),
        "as when the hash is given"
    );
    assert!(generated.get("description_hash").is_none() && generated.get("htlc_expiry").is_none());
    let decoded = check_bolt11(generated["bolt11"].as_str().unwrap(), &node_id);
    assert_eq!(
        decoded.min_final_cltv_expiry_delta(),
        144,
        "holdinvoice's default cltv"
    );
    assert_eq!(
        hex::encode(decoded.payment_hash().to_byte_array()),
        generated["payment_hash"].as_str().unwrap()
    );

    let secret_preimage = "17a670173e3da757bdfd0748d935b509b25ddc199c933b6bd843fc26c74ca9b8";
    let hash_only = d
        .call("holdinvoice", json!({"amount_msat": 5_000, "description": "escrow", "payment_hash": sha(secret_preimage), "deschashonly": true, "cltv": 40}))
        .unwrap();
    assert_eq!(
        hash_only["payment_hash"].as_str().unwrap(),
        sha(secret_preimage)
    );
    assert!(
        hash_only.get("preimage").is_none(),
        "the preimage is the caller's secret until settle"
    );
    assert_eq!(
        hash_only["description_hash"].as_str().unwrap(),
        sha(&hex::encode("escrow"))
    );
    assert_eq!(
        hash_only["label"].as_str().unwrap(),
        format!("hold-{}", sha(secret_preimage))
    );
    let decoded = check_bolt11(hash_only["bolt11"].as_str().unwrap(), &node_id);
    assert_eq!(
        (
            decoded.min_final_cltv_expiry_delta(),
            hex::encode(decoded.payment_secret().0)
        ),
        (40, hash_only["payment_secret"].as_str().unwrap().to_owned())
    );

    let given = "2bdccc7dbfd7568ede039047cdd9ee1736031444ea3fb8c9884fc03192958f1e";
    let supplied = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 1_200, "description": "d", "preimage": given, "label": "mine"}),
        )
        .unwrap();
    assert_eq!(
        (
            supplied["payment_hash"].as_str().unwrap(),
            supplied["preimage"].as_str().unwrap()
        ),
        (sha(given).as_str(), given)
    );

    // Refusals at creation, in holdinvoice's words.
    let e = d.call("holdinvoice", json!({"amount_msat": 1, "description": "d", "payment_hash": "2a".repeat(32), "preimage": "2a".repeat(32)})).unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "payment_hash: `{}` does not match preimage: `{}`",
            "2a".repeat(32),
            "2a".repeat(32)
        )
    );
    let e = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 1, "description": "d", "payment_hash": "2a2a"}),
        )
        .unwrap_err();
    assert!(
        e.message
            .starts_with("payment_hash: should be a 32 byte hex value"),
        "{}",
        e.message
    );
    let e = d
        .call("holdinvoice", json!({"description": "d"}))
        .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (-32602, "missing required parameter: amount_msat")
    );
    let e = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 1, "description": "d", "preimage": given}),
        )
        .unwrap_err();
    assert_eq!(e.code, 901, "a hash is never used twice: {}", e.message);
    let e = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 1, "description": "d", "label": "mine"}),
        )
        .unwrap_err();
    assert_eq!(e.code, 900);

    // Listed by listinvoices too, with a status Core Lightning clients read.
    let l = listed(&d, &generated["payment_hash"]);
    assert_eq!(
        (l["status"].clone(), l["hold_state"].clone()),
        (json!("unpaid"), json!("OPEN"))
    );

    // OPEN: nothing to settle; the plain payment path refuses a hold invoice.
    wrong_state(
        d.call(
            "holdinvoicesettle",
            json!({"payment_hash": generated["payment_hash"]}),
        )
        .unwrap_err(),
        "OPEN",
    );
    let e = d.call("settleinvoice", json!({"payment_hash": generated["payment_hash"], "amount_msat": 10_000, "payment_secret": generated["payment_secret"]})).unwrap_err();
    assert_eq!(e.code, -32602);
    assert!(e.message.contains("hold invoice"), "{}", e.message);

    // The node's side: parts that do not pay it, or carry another secret, are refused.
    let e = accept(&d, &generated, json!([part(0, 4_000, 200)]), 150).unwrap_err();
    assert!(
        e.message.starts_with("parts: 4000msat does not pay"),
        "{}",
        e.message
    );
    let mut wrong = generated.clone();
    wrong["payment_secret"] = json!("00".repeat(32));
    assert_eq!(
        accept(&d, &wrong, json!([part(0, 10_000, 200)]), 150)
            .unwrap_err()
            .message,
        "payment_secret: does not match the invoice's payment secret"
    );
    let e = accept(
        &d,
        &generated,
        json!([{"htlc": "1x1x1/0", "amount_msat": "lots", "cltv_expiry": 1}]),
        150,
    )
    .unwrap_err();
    assert!(
        e.message.starts_with("parts[0].amount_msat"),
        "{}",
        e.message
    );

    // Two parts reach it: ACCEPTED, held until the earliest part's expiry.
    let mut waiter = Client::connect(&d.socket());
    let label = generated["label"].clone();
    let wait = std::thread::spawn(move || waiter.call("waitinvoice", json!({"label": label})));
    let accepted = accept(
        &d,
        &generated,
        json!([part(0, 6_000, 210), part(1, 4_000, 200)]),
        150,
    )
    .unwrap();
    assert_eq!(
        (accepted["state"].clone(), accepted["htlc_expiry"].clone()),
        (json!("ACCEPTED"), json!(200))
    );
    assert_eq!(
        listed(&d, &generated["payment_hash"])["status"],
        json!("unpaid"),
        "held, not paid"
    );
    // lightningd replays the same parts after a restart: accepted again, nothing new recorded.
    let head = d.head();
    assert_eq!(
        accept(&d, &generated, json!([part(1, 4_000, 200)]), 151).unwrap()["state"],
        json!("ACCEPTED")
    );
    assert_eq!(d.head(), head);
    // Another payment's part is refused.
    wrong_state(
        accept(&d, &generated, json!([part(9, 10_000, 220)]), 151).unwrap_err(),
        "ACCEPTED",
    );

    // Settle: SETTLED, paid with the preimage, the waiter woken; then no second settle, no cancel.
    assert_eq!(
        d.call(
            "holdinvoicesettle",
            json!({"payment_hash": generated["payment_hash"]})
        )
        .unwrap(),
        json!({"state": "SETTLED"})
    );
    let woken = wait.join().unwrap().unwrap();
    assert_eq!(
        (woken["status"].clone(), woken["payment_preimage"].clone()),
        (json!("paid"), json!(preimage))
    );
    let paid = listed(&d, &generated["payment_hash"]);
    assert_eq!(
        (
            paid["amount_received_msat"].clone(),
            paid["pay_index"].clone(),
            paid["hold_state"].clone()
        ),
        (json!(10_000), json!(1), json!("SETTLED"))
    );
    let settled = lookup(&d, &generated["payment_hash"]);
    assert!(settled.get("htlc_expiry").is_none() && settled["paid_at"].is_u64());
    wrong_state(
        d.call(
            "holdinvoicesettle",
            json!({"payment_hash": generated["payment_hash"]}),
        )
        .unwrap_err(),
        "SETTLED",
    );
    wrong_state(
        d.call(
            "holdinvoicecancel",
            json!({"payment_hash": generated["payment_hash"]}),
        )
        .unwrap_err(),
        "SETTLED",
    );
    assert_eq!(
        accept(&d, &generated, json!([part(0, 6_000, 210)]), 152).unwrap()["preimage"],
        json!(preimage),
        "a replayed part after the settle learns the preimage"
    );

    // Made from its hash: the settle must reveal the right preimage, and may name only it.
    accept(&d, &hash_only, json!([part(2, 5_000, 300)]), 150).unwrap();
    let e = d
        .call(
            "holdinvoicesettle",
            json!({"payment_hash": hash_only["payment_hash"]}),
        )
        .unwrap_err();
    assert_eq!(
        e.message,
        "preimage: required, the hold invoice was created from its payment_hash alone"
    );
    let e = d
        .call(
            "holdinvoicesettle",
            json!({"payment_hash": hash_only["payment_hash"], "preimage": given}),
        )
        .unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "payment_hash: `{}` does not match preimage: `{given}`",
            sha(secret_preimage)
        )
    );
    assert_eq!(
        d.call("holdinvoicesettle", json!({"preimage": secret_preimage}))
            .unwrap()["state"],
        json!("SETTLED")
    );
    assert_eq!(
        lookup(&d, &hash_only["payment_hash"])["preimage"],
        json!(secret_preimage)
    );
    assert_eq!(
        listed(&d, &hash_only["payment_hash"])["payment_preimage"],
        json!(secret_preimage)
    );

    // Cancel while OPEN: CANCELED, listed as expired; nothing moves it again.
    assert_eq!(
        d.call("holdinvoicecancel", json!([supplied["payment_hash"]]))
            .unwrap(),
        json!({"state": "CANCELED"})
    );
    assert_eq!(
        listed(&d, &supplied["payment_hash"])["status"],
        json!("expired")
    );
    wrong_state(
        d.call(
            "holdinvoicesettle",
            json!({"payment_hash": supplied["payment_hash"]}),
        )
        .unwrap_err(),
        "CANCELED",
    );
    wrong_state(
        d.call(
            "holdinvoicecancel",
            json!({"payment_hash": supplied["payment_hash"]}),
        )
        .unwrap_err(),
        "CANCELED",
    );
    wrong_state(
        accept(&d, &supplied, json!([part(3, 1_200, 300)]), 150).unwrap_err(),
        "CANCELED",
    );

    // The safety cancel: the node's height comes with the channel feed; 6 blocks before the
    // earliest held part's expiry a forgotten hold is canceled.
    let forgotten = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 2_000, "description": "forgotten"}),
        )
        .unwrap();
    accept(
        &d,
        &forgotten,
        json!([part(4, 1_000, 260), part(5, 1_000, 250)]),
        200,
    )
    .unwrap();
    d.call("syncchannels", json!({"channels": [], "blockheight": 243}))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        lookup(&d, &forgotten["payment_hash"])["state"],
        json!("ACCEPTED"),
        "243 + 6 < 250"
    );
    d.call("syncchannels", json!({"channels": [], "blockheight": 244}))
        .unwrap();
    eventually(5, "the forgotten hold canceled at 244", || {
        lookup(&d, &forgotten["payment_hash"])["state"] == json!("CANCELED")
    });
    wrong_state(
        d.call(
            "holdinvoicesettle",
            json!({"payment_hash": forgotten["payment_hash"]}),
        )
        .unwrap_err(),
        "CANCELED",
    );
    let events = std::process::Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["events", "--json", "--data-dir"])
        .arg(&d.dir)
        .output()
        .unwrap();
    let events = String::from_utf8(events.stdout).unwrap();
    assert!(
        events.contains("\"HtlcExpiry\":{\"height\":244,\"blocks_before\":6}"),
        "the rule is in the log: {events}"
    );

    // Lookup: all of them, or one; an unknown hash in holdinvoice's words.
    let all = d.call("holdinvoicelookup", json!({})).unwrap();
    assert_eq!(all["holdinvoices"].as_array().unwrap().len(), 4);
    let e = d
        .call(
            "holdinvoicelookup",
            json!({"payment_hash": "ab".repeat(32)}),
        )
        .unwrap_err();
    assert_eq!(
        e.message,
        format!("payment_hash `{}` not found", "ab".repeat(32))
    );
    let e = d
        .call(
            "holdinvoicecancel",
            json!({"payment_hash": "ab".repeat(32)}),
        )
        .unwrap_err();
    assert_eq!(
        e.message,
        format!("payment_hash `{}` not found", "ab".repeat(32))
    );
}

#[test]
#[cfg_attr(
    not(feature = "dev-hooks"),
    ignore = "needs the test hooks: --features invoiced/dev-hooks (scripts/test.sh)"
)]
fn held_state_survives_restarts_and_an_accepted_hold_outlives_its_expiry() {
    let mut d = Daemon::start();
    let open = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 1_000, "description": "open", "expiry": 60}),
        )
        .unwrap();
    let held = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 1_000, "description": "held", "expiry": 60}),
        )
        .unwrap();
    let withheld_preimage = "63e67a1d4b428024e60b262b2573ee17adf2d4e645128713d73c88d4fa086c4e";
    let withheld = d.call("holdinvoice", json!({"amount_msat": 1_000, "description": "w", "payment_hash": sha(withheld_preimage)})).unwrap();
    accept(&d, &held, json!([part(0, 1_000, 900)]), 100).unwrap();
    accept(&d, &withheld, json!([part(1, 1_000, 900)]), 100).unwrap();

    // kill -9, then on again: every state as it was.
    d.kill();
    d.spawn();
    assert_eq!(lookup(&d, &open["payment_hash"])["state"], json!("OPEN"));
    assert_eq!(
        lookup(&d, &held["payment_hash"])["state"],
        json!("ACCEPTED")
    );
    assert_eq!(lookup(&d, &held["payment_hash"])["htlc_expiry"], json!(900));

    // Two hours later: the open one expired (and takes no payment: CANCELED); the accepted one
    // is bound by its parts' CLTV, not by the invoice's expiry.
    d.restart_at_offset(7200);
    eventually(5, "the open hold invoice expired", || {
        lookup(&d, &open["payment_hash"])["state"] == json!("CANCELED")
    });
    assert_eq!(
        listed(&d, &open["payment_hash"])["status"],
        json!("expired")
    );
    assert_eq!(listed(&d, &held["payment_hash"])["status"], json!("unpaid"));
    wrong_state(
        accept(&d, &open, json!([part(2, 1_000, 900)]), 100).unwrap_err(),
        "CANCELED",
    );
    assert_eq!(
        d.call(
            "holdinvoicesettle",
            json!({"payment_hash": held["payment_hash"]})
        )
        .unwrap()["state"],
        json!("SETTLED")
    );
    assert_eq!(
        d.call(
            "holdinvoicesettle",
            json!([withheld["payment_hash"], withheld_preimage])
        )
        .unwrap()["state"],
        json!("SETTLED")
    );

    // After another restart the revealed preimage is still known, sealed in the log.
    d.restart();
    assert_eq!(
        listed(&d, &withheld["payment_hash"])["payment_preimage"],
        json!(withheld_preimage)
    );
    assert_eq!(lookup(&d, &held["payment_hash"])["state"], json!("SETTLED"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["audit", "--data-dir"])
        .arg(&d.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // No plaintext preimage in the data dir (SPEC §6): the revealed one is sealed.
    let needle = hex::decode(withheld_preimage).unwrap();
    for entry in walk(&d.dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes.windows(32).any(|w| w == needle.as_slice()),
            "{} holds the preimage in plaintext",
            entry.display()
        );
    }
}

#[test]
fn each_htlc_counts_once_and_the_height_is_the_nodes_latest_real_report() {
    let d = Daemon::start();
    let inv = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 10_000, "description": "half"}),
        )
        .unwrap();

    // One HTLC listed twice is one part: 5,000 msat do not pay 10,000.
    let e = accept(
        &d,
        &inv,
        json!([part(1, 5_000, 900), part(1, 5_000, 900)]),
        100,
    )
    .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            -32602,
            "parts: 5000msat does not pay the invoice's 10000msat (at least it, at most twice it)"
        )
    );
    let e = accept(
        &d,
        &inv,
        json!([part(1, 5_000, 900), part(1, 6_000, 900)]),
        100,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "parts: HTLC 103x1x0/1 is listed twice with different amounts or expiries"
    );
    assert_eq!(lookup(&d, &inv["payment_hash"])["state"], json!("OPEN"));

    // Heights that cannot be real are refused, naming the parameter; nothing changes.
    for h in [2_147_483_648u64, 4_294_967_295, 500_000_000] {
        let e = d
            .call("syncchannels", json!({"channels": [], "blockheight": h}))
            .unwrap_err();
        assert_eq!(
            e.message,
            format!("blockheight: should be a block height below 500000000: invalid token '{h}'")
        );
        let e = d.call("holdaccept", json!({"payment_hash": inv["payment_hash"], "payment_secret": inv["payment_secret"], "parts": [part(1, 10_000, 900)], "blockheight": h})).unwrap_err();
        assert!(
            e.message
                .starts_with("blockheight: should be a block height below 500000000"),
            "{}",
            e.message
        );
    }
    let e = accept(&d, &inv, json!([part(1, 10_000, 500_000_000)]), 100).unwrap_err();
    assert!(
        e.message
            .starts_with("parts[0].cltv_expiry: should be a block height below 500000000"),
        "{}",
        e.message
    );

    // The latest report is the truth, lower too: a height far ahead, then the real one.
    d.call(
        "syncchannels",
        json!({"channels": [], "blockheight": 499_999_999}),
    )
    .unwrap();
    d.call("syncchannels", json!({"channels": [], "blockheight": 100}))
        .unwrap();

    // A part that expires at or within the cancel margin (6) of the height cannot be held: it is
    // refused and the invoice stays OPEN for a payer who gives it time.
    for cltv in [90, 100, 106] {
        let e = accept(&d, &inv, json!([part(2, 10_000, cltv)]), 100).unwrap_err();
        assert_eq!(e.message, format!("parts: HTLC 103x1x0/2 expires at block {cltv}, not more than 6 blocks after the node's height 100: too late to hold"));
    }
    assert_eq!(lookup(&d, &inv["payment_hash"])["state"], json!("OPEN"));

    // Two real parts (one listed twice) are held, and settle for what they carry.
    let held = accept(
        &d,
        &inv,
        json!([
            part(3, 5_000, 107),
            part(4, 5_000, 900),
            part(3, 5_000, 107)
        ]),
        100,
    )
    .unwrap();
    assert_eq!(
        (held["state"].as_str(), held["htlc_expiry"].as_u64()),
        (Some("ACCEPTED"), Some(107))
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        lookup(&d, &inv["payment_hash"])["state"],
        json!("ACCEPTED"),
        "not canceled by the height once reported"
    );
    assert_eq!(
        d.call(
            "holdinvoicesettle",
            json!({"payment_hash": inv["payment_hash"]})
        )
        .unwrap()["state"],
        json!("SETTLED")
    );
    assert_eq!(
        listed(&d, &inv["payment_hash"])["amount_received_msat"],
        json!(10_000)
    );
    let events = std::process::Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["events", "--json", "--data-dir"])
        .arg(&d.dir)
        .output()
        .unwrap();
    let events = String::from_utf8(events.stdout).unwrap();
    assert_eq!(
        events.matches("103x1x0/3").count(),
        1,
        "the part held once: {events}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

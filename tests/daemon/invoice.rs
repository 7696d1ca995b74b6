//! `invoice` over the socket: every parameter, error, warning and result field.

use bitcoin::hashes::{sha256, Hash as _};
use lightning_invoice::{RawTaggedField, TaggedField};
use serde_json::json;

use crate::harness::{check_bolt11, Daemon, FIXTURE_NODE_ID};

fn label(n: &str) -> String {
    format!("t-{n}")
}

#[test]
fn every_amount_form_is_accepted() {
    let d = Daemon::start();
    let cases = [
        (json!(1000), 1000u64),
        (json!("1000"), 1000),
        (json!("01000"), 1000),
        (json!("1000msat"), 1000),
        (json!("10sat"), 10_000),
        (json!("10.001sat"), 10_001),
        (json!("1.500sat"), 1_500),
        (json!("0.00000001btc"), 1000),
        (json!("0.00000000001btc"), 1),
        (json!("1.5btc"), 150_000_000_000),
        (json!("0.12345678901btc"), 12_345_678_901),
        (json!("1btc"), 100_000_000_000),
        (json!("18000000btc"), 1_800_000_000_000_000_000),
        (json!("1844674407370955161msat"), 1_844_674_407_370_955_161),
        (json!(123456), 123456),
    ];
    for (i, (amount, msat)) in cases.iter().enumerate() {
        let r = d
            .call("invoice", json!([amount, label(&i.to_string()), "d"]))
            .unwrap_or_else(|e| panic!("{amount}: {e:?}"));
        let bolt11 = r["bolt11"].as_str().unwrap();
        let inv = check_bolt11(bolt11, FIXTURE_NODE_ID);
        assert_eq!(inv.amount_milli_satoshis(), Some(*msat), "{amount}");
        let decoded = d.call("decode", json!([bolt11])).unwrap();
        assert_eq!(decoded["amount_msat"], json!(msat));
    }
    // hrp amounts as Core Lightning writes them
    let r = d.call("invoice", json!(["1.5btc", "hrp1", "d"])).unwrap();
    assert!(r["bolt11"].as_str().unwrap().starts_with("lnbcrt1500m1"));
    let r = d.call("invoice", json!([123456, "hrp2", "d"])).unwrap();
    assert!(r["bolt11"].as_str().unwrap().starts_with("lnbcrt1234560p1"));
    let r = d.call("invoice", json!(["any", "any1", "d"])).unwrap();
    let bolt11 = r["bolt11"].as_str().unwrap();
    assert!(bolt11.starts_with("lnbcrt1"));
    assert_eq!(
        check_bolt11(bolt11, FIXTURE_NODE_ID).amount_milli_satoshis(),
        None
    );
    assert_eq!(
        r["warning_capacity"],
        json!("Insufficient incoming channel capacity to pay invoice")
    );
}

#[test]
fn wrong_amounts_are_refused_and_nothing_is_appended() {
    let d = Daemon::start();
    let wrong = [
        json!(0),
        json!("0"),
        json!("0msat"),
        json!("0sat"),
        json!("0.00000000btc"),
        json!("0.00000000000btc"),
        json!(-1),
        json!("-1"),
        json!("10sats"),
        json!("1.5sat"),
        json!("1.0sat"),
        json!("0.1msat"),
        json!("1e3"),
        json!(1.5),
        json!("1.000000000000btc"),
        json!(".5btc"),
        json!("1."),
        json!("ANY"),
        json!(""),
        json!("1000 msat"),
        json!("1BTC"),
        json!("1SAT"),
        json!("0x10"),
        json!("1_000"),
        json!(true),
        json!({"a": 1}),
        json!([1]),
        json!("21000001btc"),
        json!("18446744073709551616"),
        json!(18446744073709551615u64),
        json!("5msatxyz"),
        json!("1btcfoo"),
    ];
    let too_big_for_bolt11 = [
        json!("21000000btc"),
        json!("1844674407370955162msat"),
        json!("18446744.07370955162btc"),
    ];
    assert!(wrong.len() >= 15);
    for (i, amount) in wrong.iter().enumerate() {
        let e = d
            .call("invoice", json!([amount, format!("w{i}"), "d"]))
            .unwrap_err();
        assert_eq!(e.code, -32602, "{amount}");
        assert!(
            e.message
                .starts_with("amount_msat: should be positive msat or 'any': invalid token '"),
            "{amount}: {}",
            e.message
        );
    }
    for amount in too_big_for_bolt11 {
        let e = d.call("invoice", json!([amount, "big", "d"])).unwrap_err();
        assert_eq!(e.code, -32602);
        assert!(
            e.message
                .starts_with("amount_msat: should be at most 1844674407370955161msat"),
            "{}",
            e.message
        );
    }
    let e = d.call("invoice", json!([0, "w", "d"])).unwrap_err();
    assert_eq!(
        e.message,
        "amount_msat: should be positive msat or 'any': invalid token '0'"
    );
    let e = d.call("invoice", json!(["0msat", "w", "d"])).unwrap_err();
    assert_eq!(
        e.message,
        "amount_msat: should be positive msat or 'any': invalid token '\"0msat\"'"
    );
    assert_eq!(d.head(), 0);
    assert_eq!(
        d.call("listinvoices", json!({})).unwrap()["invoices"],
        json!([])
    );
}

#[test]
fn duplicate_labels_and_preimages() {
    let d = Daemon::start();
    d.call("invoice", json!([1000, "dup", "d"])).unwrap();
    let e = d.call("invoice", json!([1000, "dup", "d"])).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (900, "Duplicate label 'dup'"));
    // A number label is its decimal text.
    d.call(
        "invoice",
        json!({"amount_msat": 1000, "label": 1, "description": "d"}),
    )
    .unwrap();
    let e = d
        .call(
            "invoice",
            json!({"amount_msat": 1000, "label": "1", "description": "d"}),
        )
        .unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (900, "Duplicate label '1'"));
    d.call("invoice", json!([1000, "2", "d"])).unwrap();
    assert_eq!(
        d.call("invoice", json!([1000, 2, "d"])).unwrap_err().code,
        900
    );
    // "01" is another label.
    d.call("invoice", json!([1000, "01", "d"])).unwrap();

    let p = "11".repeat(32);
    let r = d
        .call(
            "invoice",
            json!({"amount_msat": 1000, "label": "pre1", "description": "d", "preimage": p}),
        )
        .unwrap();
    let want = sha256::Hash::hash(&[0x11; 32]).to_string();
    assert_eq!(r["payment_hash"], json!(want));
    let e = d
        .call(
            "invoice",
            json!({"amount_msat": 1000, "label": "pre2", "description": "d", "preimage": p}),
        )
        .unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (901, "preimage already used"));
    // Both duplicated: the preimage wins.
    let e = d
        .call(
            "invoice",
            json!({"amount_msat": 1000, "label": "pre1", "description": "d", "preimage": p}),
        )
        .unwrap_err();
    assert_eq!(e.code, 901);
    let before = d.head();
    for bad in ["11".repeat(31), "11".repeat(33), "zz".repeat(32)] {
        let e = d
            .call(
                "invoice",
                json!({"amount_msat": 1000, "label": "p", "description": "d", "preimage": bad}),
            )
            .unwrap_err();
        assert_eq!(e.code, -32602);
        assert!(e
            .message
            .starts_with("preimage: should be 64 hex digits: invalid token"));
    }
    assert_eq!(d.head(), before);
    // No created_index is used up by failures.
    let r = d.call("invoice", json!([1000, "after", "d"])).unwrap();
    assert_eq!(r["created_index"], json!(before + 1));
}

#[test]
fn labels_and_descriptions() {
    let d = Daemon::start();
    d.call("invoice", json!([1000, "L".repeat(128), "d"]))
        .unwrap();
    let e = d
        .call("invoice", json!([1000, "M".repeat(129), "d"]))
        .unwrap_err();
    assert_eq!(
        (e.code, e.message),
        (
            -32602,
            format!("Label '{}' over 128 bytes", "M".repeat(129))
        )
    );
    for bad in [json!(true), json!(1.0), json!(-5), json!({"a": 1})] {
        let e = d.call("invoice", json!([1000, bad, "d"])).unwrap_err();
        assert!(
            e.message
                .starts_with("label: should be a string or number: invalid token"),
            "{}",
            e.message
        );
    }
    d.call("invoice", json!([1000, "", "empty label"])).unwrap();
    d.call("invoice", json!([1000, "d639", "x".repeat(639)]))
        .unwrap();
    let e = d
        .call("invoice", json!([1000, "d640", "x".repeat(640)]))
        .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            -32602,
            "Description greater than 639 bytes invalid (description length 640)"
        )
    );
    let e = d
        .call("invoice", json!([1000, "d640u", "é".repeat(320)]))
        .unwrap_err();
    assert_eq!(
        e.message,
        "Description greater than 639 bytes invalid (description length 640)"
    );
    let e = d.call("invoice", json!([1000, "d5", 5])).unwrap_err();
    assert!(e
        .message
        .starts_with("description: should be a string (without \\u): invalid token '5'"));
    // A \u escape in the raw JSON is refused.
    let mut c = d.client();
    c.send_raw(br#"{"jsonrpc":"2.0","id":7,"method":"invoice","params":{"amount_msat":1000,"label":"esc","description":"caf\u00e9"}}"#);
    let e = crate::harness::into_result(c.read_response().unwrap()).unwrap_err();
    assert_eq!(e.code, -32602);
    assert!(e
        .message
        .starts_with("description: should be a string (without \\u)"));
    // Quotes, backslashes, tabs and newlines round-trip in labels and descriptions.
    let odd = "a\"b\\c\td\ne";
    let r = d.call("invoice", json!([1000, odd, odd])).unwrap();
    let listed = d.call("listinvoices", json!({"label": odd})).unwrap();
    assert_eq!(listed["invoices"][0]["label"], json!(odd));
    assert_eq!(listed["invoices"][0]["description"], json!(odd));
    let decoded = d.call("decode", json!([r["bolt11"]])).unwrap();
    assert_eq!(decoded["description"], json!(odd));
}

#[test]
fn fallbacks() {
    let d = Daemon::start();
    let p2wpkh = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    let p2sh = "2MxqzNANJNAdMjHQq8ZLkwzooxAFiRzXvEz";
    let r = d
        .call(
            "invoice",
            json!([123000, "fb", "description", 3700, [p2wpkh, p2sh]]),
        )
        .unwrap();
    let decoded = d.call("decode", json!([r["bolt11"]])).unwrap();
    assert_eq!(decoded["fallbacks"][0]["type"], json!("P2WPKH"));
    assert_eq!(decoded["fallbacks"][0]["addr"], json!(p2wpkh));
    assert_eq!(decoded["fallbacks"][1]["type"], json!("P2SH"));
    assert_eq!(decoded["fallbacks"][1]["addr"], json!(p2sh));
    assert_eq!(decoded["expiry"], json!(3700));
    let inv = check_bolt11(r["bolt11"].as_str().unwrap(), FIXTURE_NODE_ID);
    assert_eq!(inv.fallbacks().len(), 2);

    let before = d.head();
    let cases = [
        (
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
            "Fallback address does not match our network regtest",
        ),
        (
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
            "Fallback address not valid",
        ),
        (
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",
            "Fallback address not valid",
        ),
        ("notanaddress", "Fallback address not valid"),
    ];
    for (addr, msg) in cases {
        let e = d.call("invoice", json!({"amount_msat": 1000, "label": "fbx", "description": "d", "fallbacks": [addr]})).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (-1, msg), "{addr}");
    }
    let e = d
        .call(
            "invoice",
            json!({"amount_msat": 1000, "label": "fbx", "description": "d", "fallbacks": [5]}),
        )
        .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (-1, "Fallback address not valid")
    );
    let e = d
        .call(
            "invoice",
            json!({"amount_msat": 1000, "label": "fbx", "description": "d", "fallbacks": p2wpkh}),
        )
        .unwrap_err();
    assert_eq!(e.code, -32602);
    assert!(e.message.starts_with("fallbacks: should be an array"));
    assert_eq!(d.head(), before);
    // The label was not used up by the failures.
    d.call(
        "invoice",
        json!({"amount_msat": 1000, "label": "fbx", "description": "d", "fallbacks": []}),
    )
    .unwrap();
}

fn has_expiry_field(bolt11: &str) -> bool {
    let inv: lightning_invoice::SignedRawBolt11Invoice = bolt11.parse().unwrap();
    inv.raw_invoice().data.tagged_fields.iter().any(|f| {
        matches!(
            f,
            RawTaggedField::KnownSemantics(TaggedField::ExpiryTime(_))
        )
    })
}

#[test]
fn expiry_cltv_and_deschashonly_fields() {
    let d = Daemon::start();
    let r = d
        .call(
            "invoice",
            json!({"amount_msat": 1000, "label": "x3600", "description": "d", "expiry": 3600}),
        )
        .unwrap();
    let bolt11 = r["bolt11"].as_str().unwrap();
    assert!(!has_expiry_field(bolt11));
    let decoded = d.call("decode", json!([bolt11])).unwrap();
    assert_eq!(decoded["expiry"], json!(3600));
    assert_eq!(
        r["expires_at"].as_u64().unwrap(),
        decoded["created_at"].as_u64().unwrap() + 3600
    );

    let r = d.call("invoice", json!([1000, "xdefault", "d"])).unwrap();
    assert!(has_expiry_field(r["bolt11"].as_str().unwrap()));
    assert!(r["bolt11"].as_str().unwrap().contains("xqyjw5q"));
    assert_eq!(
        d.call("decode", json!([r["bolt11"]])).unwrap()["expiry"],
        json!(604800)
    );

    let r = d
        .call(
            "invoice",
            json!({"amount_msat": 1000, "label": "c99", "description": "d", "cltv": 99}),
        )
        .unwrap();
    let inv = check_bolt11(r["bolt11"].as_str().unwrap(), FIXTURE_NODE_ID);
    assert_eq!(inv.min_final_cltv_expiry_delta(), 99);
    let r = d.call("invoice", json!([1000, "cdefault", "d"])).unwrap();
    assert_eq!(
        d.call("decode", json!([r["bolt11"]])).unwrap()["min_final_cltv_expiry"],
        json!(10)
    );

    let cake = "One piece of chocolate cake, one icecream cone, one pickle, one slice of swiss cheese, one slice of salami, one lollypop, one piece of cherry pie, one sausage, one cupcake, and one slice of watermelon";
    let r = d
        .call(
            "invoice",
            json!({"amount_msat": 42, "label": "cake", "description": cake, "deschashonly": true}),
        )
        .unwrap();
    let decoded = d.call("decode", json!([r["bolt11"]])).unwrap();
    assert_eq!(
        decoded["description_hash"],
        json!(sha256::Hash::hash(cake.as_bytes()).to_string())
    );
    assert!(decoded.get("description").is_none());
    assert_eq!(
        d.call("listinvoices", json!(["cake"])).unwrap()["invoices"][0]["description"],
        json!(cake)
    );
    // deschashonly lifts the length limit.
    d.call("invoice", json!({"amount_msat": 42, "label": "long", "description": "x".repeat(2000), "deschashonly": true})).unwrap();

    // The daemon's default is held to the same limit, at start: a usage error naming the option.
    let (status, out) = d.refused_start(&["--cltv-final=65536".into()]);
    assert!(
        status.code() == Some(2) && out.contains("--cltv-final") && out.contains("65536"),
        "{out}"
    );

    let before = d.head();
    let bad = [
        (json!({"expiry": -1}), "expiry: should be an unsigned 64 bit integer: invalid token '-1'"),
        (json!({"expiry": 1u64 << 60}), "expiry: should be at most 1152921504606846975 seconds: invalid token '1152921504606846976'"),
        (json!({"expiry": u64::MAX}), "expiry: should be at most 1152921504606846975 seconds: invalid token '18446744073709551615'"),
        (json!({"expiry": "2d"}), "expiry: should be an unsigned 64 bit integer: invalid token '\"2d\"'"),
        (json!({"cltv": -1}), "cltv: should be an integer: invalid token '-1'"),
        (json!({"cltv": 4294967296u64}), "cltv: should be an integer: invalid token '4294967296'"),
        (json!({"cltv": 65536}), "cltv: should be at most 65535: invalid token '65536'"),
        (json!({"deschashonly": "yes"}), "deschashonly: should be 'true' or 'false': invalid token '\"yes\"'"),
        (json!({"exposeprivatechannels": "nonsense"}), "exposeprivatechannels: should be a short_channel_id of form NxNxN: invalid token '\"nonsense\"'"),
        (json!({"exposeprivatechannels": ["1x1x1", "bad"]}), "exposeprivatechannels: should be a short channel id: invalid token '\"bad\"'"),
    ];
    for (extra, msg) in bad {
        let mut p = json!({"amount_msat": 1000, "label": "bad", "description": "d"});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        let e = d.call("invoice", p).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (-32602, msg));
    }
    let e = d.call("invoice", json!({"amount_msat": 1000, "label": "bad", "description": "d", "exposeprivatechannels": "999x1x0"})).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (902, "None of those hints were suitable local channels")
    );
    assert_eq!(d.head(), before);
    // Largest expiry is accepted and encodes.
    let r = d.call("invoice", json!({"amount_msat": 1000, "label": "maxexp", "description": "d", "expiry": (1u64 << 60) - 1})).unwrap();
    check_bolt11(r["bolt11"].as_str().unwrap(), FIXTURE_NODE_ID);
    // exposeprivatechannels true/false/[] are fine with no channels.
    for e in [json!(true), json!(false), json!([])] {
        let r = d.call("invoice", json!({"amount_msat": 1000, "label": format!("e{e}"), "description": "d", "exposeprivatechannels": e})).unwrap();
        assert!(r.get("warning_capacity").is_some());
    }
}

#[test]
fn result_fields_and_secrets() {
    let d = Daemon::start();
    let preimage = [0x01u8; 32];
    let r = d.call("invoice", json!({"msatoshi": 1000, "label": "res", "description": "d", "preimage": hex::encode(preimage)})).unwrap();
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "payment_hash",
            "expires_at",
            "expiry_time",
            "bolt11",
            "payment_secret",
            "created_index",
            "warning_capacity"
        ]
    );
    assert_eq!(r["expires_at"], r["expiry_time"]);
    assert!(r["payment_hash"].as_str().unwrap().starts_with("72cd6e84"));
    let mut tweaked = preimage;
    tweaked[0] ^= 1;
    assert_eq!(
        r["payment_secret"],
        json!(sha256::Hash::hash(&tweaked).to_string())
    );
    assert!(r["payment_secret"]
        .as_str()
        .unwrap()
        .starts_with("915c7594"));
    let inv = check_bolt11(r["bolt11"].as_str().unwrap(), FIXTURE_NODE_ID);
    assert_eq!(
        hex::encode(inv.payment_secret().0),
        r["payment_secret"].as_str().unwrap()
    );
    assert_eq!(
        inv.payment_hash().to_string(),
        r["payment_hash"].as_str().unwrap()
    );
    assert!(inv.payee_pub_key().is_none(), "no n field");
    let info = d.call("getinfo", json!({})).unwrap();
    assert_eq!(info["id"], json!(FIXTURE_NODE_ID));
    let decoded = d.call("decode", json!([r["bolt11"]])).unwrap();
    assert_eq!(decoded["features"], json!("02024100"));
    assert_eq!(decoded["payee"], json!(FIXTURE_NODE_ID));
    // missing parameters, named in declaration order
    for (p, name) in [
        (json!({"label": "x", "description": "d"}), "amount_msat"),
        (json!({"amount_msat": 1000}), "label"),
        (json!({"amount_msat": 1000, "label": "x"}), "description"),
    ] {
        let e = d.call("invoice", p).unwrap_err();
        assert_eq!(e.message, format!("missing required parameter: {name}"));
    }
}

/// Connections are spread over the RPC arbiters (four here), each with its own creator and
/// signer; the label authority they share lets exactly one of the requests that race for a label
/// or a preimage through, whichever arbiter it came from.
#[test]
fn contested_labels_and_preimages_across_arbiters() {
    let mut d = Daemon::start_with(&["--rpc-threads=4".into()]);
    let pid = d.pid();
    let arbiters = (0..4).filter(|i| {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .any(|t| {
                std::fs::read_to_string(t.unwrap().path().join("comm"))
                    .is_ok_and(|n| n.trim() == format!("rpc-{i}"))
            })
    });
    assert_eq!(arbiters.count(), 4, "one thread per RPC arbiter");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (sock, barrier) = (d.socket(), barrier.clone());
            std::thread::spawn(move || {
                let mut c = crate::harness::Client::connect(&sock);
                let mut outcomes = Vec::new();
                for round in 0..20 {
                    barrier.wait();
                    // Every client wants the round's label; pairs of clients share a preimage.
                    let label = c.call("invoice", json!([1000, format!("round-{round}"), "d"]));
                    let preimage = format!("{:02x}", round * 8 + t / 2).repeat(32);
                    let mine = json!({"amount_msat": 1000, "label": format!("p{round}-{t}"), "description": "d", "preimage": preimage});
                    outcomes.push((label.map_err(|e| e.code), c.call("invoice", mine).map_err(|e| e.code)));
                }
                outcomes
            })
        })
        .collect();
    let outcomes: Vec<Vec<_>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for round in 0..20 {
        let labels: Vec<_> = outcomes.iter().map(|o| &o[round].0).collect();
        assert_eq!(
            labels.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: one winner of the label"
        );
        assert!(
            labels.iter().all(|r| r.is_ok() || **r == Err(900)),
            "{labels:?}"
        );
        for pair in 0..8 {
            let shared: Vec<_> = (0..2).map(|k| &outcomes[pair * 2 + k][round].1).collect();
            assert_eq!(
                shared.iter().filter(|r| r.is_ok()).count(),
                1,
                "round {round}: one winner of the preimage"
            );
            assert!(
                shared.iter().all(|r| r.is_ok() || **r == Err(901)),
                "{shared:?}"
            );
        }
    }
    let listed = d.call("listinvoices", json!({})).unwrap()["invoices"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        (listed as u64, d.head()),
        (20 * 9, 20 * 9),
        "the winners and nothing else"
    );
    assert!(d.stop().success());
    let audit = std::process::Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["audit", "--data-dir"])
        .arg(&d.dir)
        .output()
        .unwrap();
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );
    // At least one arbiter: a usage error, as clap's own.
    let (status, out) = d.refused_start(&["--rpc-threads=0".into()]);
    assert!(
        status.code() == Some(2) && out.contains("--rpc-threads"),
        "{out}"
    );
}

/// `description_hash` (ours, by name): the invoice commits to a hash whose text it is not given
/// (LND's `description_hash`, LNURL's metadata); `description` becomes a note beside it. It is
/// recorded, listed, replayed and audited like any invoice, plain or hold.
#[test]
fn a_given_description_hash_is_signed_listed_replayed_and_audited() {
    let mut d = Daemon::start();
    let metadata = r#"[["text/plain","coffee at the corner"]]"#;
    let given = sha256::Hash::hash(metadata.as_bytes()).to_string();
    let r = d
        .call("invoice", json!({"amount_msat": 1000, "label": "lnurl", "description": "memo", "description_hash": given}))
        .unwrap();
    let decoded = d.call("decode", json!([r["bolt11"]])).unwrap();
    assert_eq!(decoded["description_hash"], json!(given));
    assert!(decoded.get("description").is_none());
    let inv = check_bolt11(r["bolt11"].as_str().unwrap(), FIXTURE_NODE_ID);
    assert_eq!(
        inv.description(),
        lightning_invoice::Bolt11InvoiceDescriptionRef::Hash(&lightning_invoice::Sha256(
            given.parse().unwrap()
        ))
    );
    // No note: no description; a hold invoice likewise.
    d.call(
        "invoice",
        json!({"amount_msat": 1000, "label": "bare", "description_hash": given}),
    )
    .unwrap();
    let held = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 5000, "description_hash": given, "label": "held"}),
        )
        .unwrap();
    assert_eq!(held["description_hash"], json!(given));
    // A hash of the description itself is `deschashonly`: an ordinary invoice, no extension.
    d.call("invoice", json!({"amount_msat": 1000, "label": "same", "description": metadata, "description_hash": given}))
        .unwrap();

    let shown = |d: &Daemon| {
        let all = d.call("listinvoices", json!({})).unwrap()["invoices"].clone();
        let by = |l: &str| {
            all.as_array()
                .unwrap()
                .iter()
                .find(|i| i["label"] == l)
                .unwrap()
                .clone()
        };
        (by("lnurl"), by("bare"), by("held"), by("same"))
    };
    let (lnurl, bare, held, same) = shown(&d);
    assert_eq!(
        (&lnurl["description"], &lnurl["description_hash"]),
        (&json!("memo"), &json!(given))
    );
    assert!(bare.get("description").is_none() && bare["description_hash"] == json!(given));
    assert_eq!(
        (&held["hold_state"], &held["description_hash"]),
        (&json!("OPEN"), &json!(given))
    );
    assert!(same.get("description_hash").is_none() && same["description"] == json!(metadata));
    let events = d.call("listinvoices", json!({})).unwrap();
    d.restart();
    assert_eq!(
        d.call("listinvoices", json!({})).unwrap(),
        events,
        "replayed identically"
    );
    assert_eq!(shown(&d).0, lnurl);

    let before = d.head();
    let bad = [
        (
            json!({"description_hash": "00"}),
            "description_hash: should be 64 hex digits: invalid token '\"00\"'",
        ),
        (
            json!({"description_hash": given, "deschashonly": false}),
            "description_hash: the invoice carries this hash, so deschashonly cannot be false",
        ),
        (json!({}), "missing required parameter: description"),
    ];
    for (extra, msg) in bad {
        let mut p = json!({"amount_msat": 1000, "label": "bad"});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        let e = d.call("invoice", p).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (-32602, msg));
    }
    assert_eq!(d.head(), before, "nothing written for a refusal");

    assert!(d.stop().success());
    let audit = std::process::Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["audit", "--data-dir"])
        .arg(&d.dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "{out}");
    let events = std::process::Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["events", "--json", "--data-dir"])
        .arg(&d.dir)
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&events.stdout);
    assert_eq!(
        events.matches("hashed_invoice_created").count(),
        3,
        "{events}"
    );
}

//! JSON-RPC framing and generic parameter handling, as Core Lightning's clients expect.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;

use serde_json::json;

use crate::harness::{into_result, Daemon};

#[test]
fn requests_split_and_joined_on_one_connection() {
    let d = Daemon::start();
    let mut c = d.client();
    let a = br#"{"jsonrpc":"2.0","id":"a","method":"getinfo","params":[]}"#;
    let b = br#"{"jsonrpc":"2.0","id":2,"method":"invoice","params":[1000,"split","d"]}"#;
    // Two requests in one write, the second split in the middle of a string.
    let mut both = a.to_vec();
    both.extend_from_slice(&b[..40]);
    c.send_raw(&both);
    std::thread::sleep(std::time::Duration::from_millis(50));
    c.send_raw(&b[40..]);
    let r1 = c.read_response().unwrap();
    assert_eq!(r1["id"], json!("a"));
    assert_eq!(r1["jsonrpc"], json!("2.0"));
    let r2 = c.read_response().unwrap();
    assert_eq!(r2["id"], json!(2));
    assert!(r2["result"]["bolt11"].is_string());
}

#[test]
fn protocol_errors() {
    let d = Daemon::start();
    let cases: [(&[u8], i64); 4] = [
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"nosuch","params":[]}"#,
            -32601,
        ),
        (br#"{"jsonrpc":"2.0","id":1,"params":[]}"#, -32600),
        (br#"["not","an","object"]"#, -32600),
        (br#"{"jsonrpc":"2.0","id":1,"method":5}"#, -32600),
    ];
    for (req, code) in cases {
        let mut c = d.client();
        c.send_raw(req);
        let e = into_result(c.read_response().unwrap()).unwrap_err();
        assert_eq!(e.code, code, "{}", String::from_utf8_lossy(req));
    }
    // Malformed JSON: -32700, then the connection closes.
    let mut c = d.client();
    c.send_raw(br#"{"jsonrpc":"2.0","id":1,"method":}"#);
    assert_eq!(
        into_result(c.read_response().unwrap()).unwrap_err().code,
        -32700
    );
    assert!(c.read_response().is_none());
    // Invalid UTF-8.
    let mut c = d.client();
    c.send_raw(b"{\"id\":1,\"method\":\"getinfo\",\"x\":\"\xff\"}");
    assert_eq!(
        into_result(c.read_response().unwrap()).unwrap_err().code,
        -32700
    );
    // Over 1 MiB: refused and closed.
    let mut c = d.client();
    let mut big = br#"{"id":1,"method":"invoice","params":["#.to_vec();
    big.extend(std::iter::repeat_n(b'1', 1_100_000));
    c.send_raw(&big);
    assert_eq!(
        into_result(c.read_response().unwrap()).unwrap_err().code,
        -32600
    );
    assert!(c.read_response().is_none());
    // The daemon still answers.
    assert!(d.call("getinfo", json!([])).is_ok());
}

#[test]
fn parameter_binding() {
    let d = Daemon::start();
    let e = d
        .call(
            "invoice",
            json!({"amount_msat": 1000, "label": "u", "description": "d", "foo": 1}),
        )
        .unwrap_err();
    assert_eq!(e.code, -32602);
    assert_eq!(e.message, "unknown parameter: foo, this may be caused by a failure to autodetect key=value-style parameters. Please try using the -k flag and explicit key=value pairs of parameters.");
    let e = d
        .call(
            "invoice",
            json!([1000, "u", "d", 1, [], null, null, null, false, "extra"]),
        )
        .unwrap_err();
    assert_eq!(e.message, "too many parameters: got 10, expected 9");
    let e = d.call("invoice", json!("x")).unwrap_err();
    assert_eq!(e.message, "Expected array or object for params");
    let mut c = d.client();
    c.send_raw(br#"{"id":1,"method":"invoice","params":{"label":"a","label":"b","amount_msat":1,"description":"d"}}"#);
    assert_eq!(
        into_result(c.read_response().unwrap()).unwrap_err().message,
        "duplicate json names: label"
    );
    // A named null means "not given".
    let r = d
        .call(
            "invoice",
            json!({"amount_msat": 1000, "label": "n", "description": "d", "expiry": null}),
        )
        .unwrap();
    assert!(r["bolt11"].is_string());
    // The first bad parameter in order of appearance wins.
    let e = d
        .call(
            "invoice",
            json!({"expiry": "x", "amount_msat": "x", "label": "o", "description": "d"}),
        )
        .unwrap_err();
    assert!(e.message.starts_with("expiry:"), "{}", e.message);
    assert_eq!(
        d.call("notifications", json!({"enable": true}))
            .unwrap_or(json!({})),
        json!({})
    );
    assert_eq!(d.call("notifications", json!([])).unwrap(), json!({}));
    // A string id is echoed; `filter` is accepted.
    let mut c = d.client();
    c.send_raw(
        br#"{"jsonrpc":"2.0","id":"x:y/1","method":"getinfo","params":{},"filter":{"id":true}}"#,
    );
    assert_eq!(c.read_response().unwrap()["id"], json!("x:y/1"));
}

#[test]
fn listinvoices_lookups_and_paging() {
    let d = Daemon::start();
    let mut made = vec![];
    for i in 0..10 {
        made.push(
            d.call("invoice", json!([1000 + i, format!("label{i}"), "d"]))
                .unwrap(),
        );
    }
    for (i, r) in made.iter().enumerate() {
        for (k, v) in [
            ("label", json!(format!("label{i}"))),
            ("payment_hash", r["payment_hash"].clone()),
            ("invstring", r["bolt11"].clone()),
        ] {
            let l = d.call("listinvoices", json!({k: v})).unwrap()["invoices"].clone();
            assert_eq!(l.as_array().unwrap().len(), 1, "{k}");
            assert_eq!(l[0]["label"], json!(format!("label{i}")));
            assert_eq!(l[0]["bolt11"], r["bolt11"]);
            assert_eq!(l[0]["status"], json!("unpaid"));
            assert_eq!(l[0]["amount_msat"], json!(1000 + i));
            assert!(l[0].get("payment_preimage").is_none());
            assert!(l[0].get("updated_index").is_none());
        }
    }
    let upper = format!(
        "LIGHTNING:{}",
        made[3]["bolt11"].as_str().unwrap().to_uppercase()
    );
    assert_eq!(
        d.call("listinvoices", json!({"invstring": upper})).unwrap()["invoices"][0]["label"],
        json!("label3")
    );
    let e = d
        .call(
            "listinvoices",
            json!({"payment_hash": made[0]["payment_hash"], "label": "label0"}),
        )
        .unwrap_err();
    assert_eq!(
        e.message,
        "Can only specify one of {label}, {invstring}, {payment_hash} or {offer_id}"
    );
    assert_eq!(
        d.call("listinvoices", json!({"start": 5}))
            .unwrap_err()
            .message,
        "Can only specify {start} with {index}"
    );
    assert_eq!(
        d.call("listinvoices", json!({"limit": 1}))
            .unwrap_err()
            .message,
        "Can only specify {limit} with {index}"
    );
    assert_eq!(
        d.call("listinvoices", json!({"invstring": "lnbcrt1garbage"}))
            .unwrap_err()
            .message,
        "Invalid invstring"
    );
    for (k, v) in [
        ("label", json!("doesnt exist")),
        ("payment_hash", json!("AA".repeat(32))),
        ("offer_id", json!("AA".repeat(32))),
    ] {
        assert_eq!(
            d.call("listinvoices", json!({k: v})).unwrap(),
            json!({"invoices": []})
        );
    }
    let labels = |v: serde_json::Value| -> Vec<String> {
        v["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["label"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(labels(d.call("listinvoices", json!({})).unwrap()).len(), 10);
    assert_eq!(
        labels(
            d.call(
                "listinvoices",
                json!({"index": "created", "start": 2, "limit": 3})
            )
            .unwrap()
        ),
        ["label1", "label2", "label3"]
    );
    assert_eq!(
        labels(
            d.call("listinvoices", json!({"index": "created", "start": 11}))
                .unwrap()
        )
        .len(),
        0
    );
    assert_eq!(
        labels(
            d.call("listinvoices", json!({"index": "updated", "start": 1}))
                .unwrap()
        )
        .len(),
        0
    );
    assert_eq!(
        labels(
            d.call("listinvoices", json!({"index": "updated", "start": 0}))
                .unwrap()
        )
        .len(),
        10
    );
    let e = d
        .call("listinvoices", json!({"index": "paid"}))
        .unwrap_err();
    assert_eq!(e.message, "index: unknown index: invalid token '\"paid\"'");
}

/// A listing longer than the inline limit (64) is read and encoded on the blocking pool: it must
/// give exactly what lookups of the same invoices give, in created order, paid ones with their
/// preimage, the description removed where it was.
#[test]
fn long_listings_equal_the_lookups_of_their_invoices() {
    let d = Daemon::start();
    let made: Vec<_> = (0..150)
        .map(|i| {
            d.call(
                "invoice",
                json!([1000 + i, format!("long{i}"), format!("desc {i}")]),
            )
            .unwrap()
        })
        .collect();
    let paid = &made[3];
    d.call("settleinvoice", json!({"payment_hash": paid["payment_hash"], "amount_msat": 1003, "payment_secret": paid["payment_secret"]})).unwrap();
    d.call(
        "delinvoice",
        json!({"label": "long7", "status": "unpaid", "desconly": true}),
    )
    .unwrap();
    d.call("delinvoice", json!({"label": "long9", "status": "unpaid"}))
        .unwrap();
    let all = d.call("listinvoices", json!({})).unwrap()["invoices"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(all.len(), 149);
    for (i, inv) in all.iter().enumerate() {
        let one = d
            .call("listinvoices", json!({"label": inv["label"]}))
            .unwrap()["invoices"][0]
            .clone();
        assert_eq!(inv, &one, "invoice {i}");
    }
    let created: Vec<u64> = all
        .iter()
        .map(|i| i["created_index"].as_u64().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] < w[1]));
    let long3 = all.iter().find(|i| i["label"] == "long3").unwrap();
    assert_eq!(long3["status"], json!("paid"));
    assert_eq!(long3["payment_preimage"].as_str().unwrap().len(), 64);
    assert!(all
        .iter()
        .find(|i| i["label"] == "long7")
        .unwrap()
        .get("description")
        .is_none());
    assert_eq!(
        all.iter().find(|i| i["label"] == "long8").unwrap()["description"],
        json!("desc 8")
    );
    // Paged by the updated index, past the inline limit too: the two updated ones come last.
    let upd = d
        .call("listinvoices", json!({"index": "updated", "start": 0}))
        .unwrap()["invoices"]
        .as_array()
        .unwrap()
        .clone();
    let tail: Vec<&str> = upd[147..]
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert_eq!(tail, ["long3", "long7"]);
}

#[test]
fn data_dir_modes() {
    let d = Daemon::start();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.socket()), 0o600);
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("new");
    let d2 = Daemon::start_in(fresh.clone());
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("hsm_secret")), 0o400);
    let mut secret = vec![];
    std::fs::File::open(fresh.join("hsm_secret"))
        .unwrap()
        .read_to_end(&mut secret)
        .unwrap();
    assert_eq!(secret.len(), 32);
    assert_ne!(
        d2.call("getinfo", json!([])).unwrap()["id"],
        d.call("getinfo", json!([])).unwrap()["id"]
    );
}

#[test]
fn help_lists_exactly_the_methods_that_answer() {
    let d = Daemon::start();
    let all = d.call("help", json!([])).unwrap();
    assert_eq!(all["format-hint"], json!("simple"));
    let listed = all["help"].as_array().unwrap();
    assert!(listed.len() >= 14);
    for entry in listed {
        let usage = entry["command"].as_str().unwrap();
        let method = usage.split(' ').next().unwrap();
        // `help METHOD` answers with the same usage line.
        let one = d.call("help", json!({ "command": method })).unwrap();
        assert_eq!(
            one,
            json!({ "help": [{ "command": usage }], "format-hint": "simple" })
        );
        // The method itself exists: too many parameters is a -32602, never -32601.
        if method != "updatechannel" && method != "notifications" {
            let e = d
                .call(method, json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))
                .unwrap_err();
            assert_eq!(e.code, -32602, "{method}: {}", e.message);
        }
    }
    let e = d.call("help", json!(["nosuch"])).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (-32601, "Unknown command nosuch")
    );
}

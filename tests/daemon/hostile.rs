//! Hostile input: malformed requests of every kind each get their specific code, nothing is
//! appended, and the daemon keeps answering other clients during and after.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::json;

use crate::harness::{into_result, Client, Daemon};

fn req(method: &str, params: serde_json::Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string()
        .into_bytes()
}

fn inv(extra: serde_json::Value) -> Vec<u8> {
    let mut p = json!({"amount_msat": 1000, "label": "bad", "description": "d"});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    req("invoice", p)
}

#[test]
fn sixty_plus_malformed_requests_get_their_codes_and_change_nothing() {
    let d = Daemon::start();
    // Something to settle, delete and wait on.
    let target = d.call("invoice", json!([1000, "target", "d"])).unwrap();
    let head = d.head();

    // A well-behaved client keeps working throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let good = Arc::new(AtomicU64::new(0));
    let bg = {
        let (stop, good, socket) = (stop.clone(), good.clone(), d.socket());
        std::thread::spawn(move || {
            let mut c = Client::connect(&socket);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                c.call("invoice", json!([1000, format!("good{i}"), "fine"]))
                    .unwrap();
                good.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };

    let deep = format!(
        "{{\"id\":1,\"method\":\"invoice\",\"params\":[{}1{}]}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let mut big = br#"{"id":1,"method":"invoice","params":[1000,"big",""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    big.extend_from_slice(br#""]}"#);
    let h = target["payment_hash"].clone();
    let s = target["payment_secret"].clone();
    let cases: Vec<(Vec<u8>, i64)> = vec![
        // framing and protocol
        (b"{".to_vec(), 0), // incomplete: no answer until more comes; checked separately below
        (br#"{"id":1,"method":"getinfo",}"#.to_vec(), -32700),
        (br#"{"id":1,"method":"getinfo","params":[1,]}"#.to_vec(), -32700),
        (b"{\"id\":1,\"method\":\"getinfo\",\"x\":\"\xff\xfe\"}".to_vec(), -32700),
        (b"{\"id\":1,\"method\":\"invoice\",\"params\":[1000,\"a\x00b\",\"d\"]}".to_vec(), -32700),
        // 5,000 levels inside params: parsed lazily, so the answer is about the parameter.
        (deep.into_bytes(), -32602),
        (big, -32600),
        (b"nonsense".to_vec(), -32700),
        (br#"{"id":1,"method":"nosuchmethod"}"#.to_vec(), -32601),
        (br#"{"id":1,"method":42}"#.to_vec(), -32600),
        (br#"{"id":1}"#.to_vec(), -32600),
        (br#"[1,2,3]"#.to_vec(), -32600),
        (req("invoice", json!("params as a string")), -32602),
        (req("invoice", json!(42)), -32602),
        // invoice: every parameter with a wrong value
        (inv(json!({"amount_msat": true})), -32602),
        (inv(json!({"amount_msat": []})), -32602),
        (inv(json!({"amount_msat": {}})), -32602),
        (inv(json!({"amount_msat": "1.5sat"})), -32602),
        (inv(json!({"amount_msat": -1})), -32602),
        (inv(json!({"amount_msat": 0})), -32602),
        (br#"{"id":1,"method":"invoice","params":{"amount_msat":18446744073709551616,"label":"x","description":"d"}}"#.to_vec(), -32602),
        (br#"{"id":1,"method":"invoice","params":{"amount_msat":1e400,"label":"x","description":"d"}}"#.to_vec(), -32602),
        (inv(json!({"amount_msat": "1.000000000001btc"})), -32602),
        (inv(json!({"amount_msat": "99999999999999999999btc"})), -32602),
        (inv(json!({"label": true})), -32602),
        (inv(json!({"label": 1.5})), -32602),
        (inv(json!({"label": [1]})), -32602),
        (inv(json!({"label": {"a": 1}})), -32602),
        (inv(json!({"label": -3})), -32602),
        (inv(json!({"label": "L".repeat(129)})), -32602),
        (inv(json!({"description": 5})), -32602),
        (inv(json!({"description": true})), -32602),
        (inv(json!({"description": ["d"]})), -32602),
        (inv(json!({"description": "x".repeat(640)})), -32602),
        (br#"{"id":1,"method":"invoice","params":{"amount_msat":1,"label":"x","description":"\u0041"}}"#.to_vec(), -32602),
        (inv(json!({"expiry": -1})), -32602),
        (inv(json!({"expiry": 1.5})), -32602),
        (inv(json!({"expiry": "abc"})), -32602),
        (inv(json!({"expiry": true})), -32602),
        (inv(json!({"expiry": 1u64 << 60})), -32602),
        (inv(json!({"expiry": u64::MAX})), -32602),
        (br#"{"id":1,"method":"invoice","params":{"amount_msat":1,"label":"x","description":"d","expiry":18446744073709551616}}"#.to_vec(), -32602),
        (inv(json!({"fallbacks": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"})), -32602),
        (inv(json!({"fallbacks": 5})), -32602),
        (inv(json!({"fallbacks": {}})), -32602),
        (inv(json!({"fallbacks": [5]})), -1),
        (inv(json!({"fallbacks": ["1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"]})), -1),
        (inv(json!({"preimage": 5})), -32602),
        (inv(json!({"preimage": "zz".repeat(32)})), -32602),
        (inv(json!({"preimage": "ab".repeat(33)})), -32602),
        (inv(json!({"exposeprivatechannels": "x"})), -32602),
        (inv(json!({"exposeprivatechannels": 5})), -32602),
        (inv(json!({"exposeprivatechannels": [5]})), -32602),
        (inv(json!({"exposeprivatechannels": ["1x1"]})), -32602),
        (inv(json!({"exposeprivatechannels": "16777216x0x0"})), -32602),
        (inv(json!({"exposeprivatechannels": "1x1x1"})), 902),
        (inv(json!({"cltv": -1})), -32602),
        (inv(json!({"cltv": 70000})), -32602),
        (inv(json!({"cltv": 4294967296u64})), -32602),
        (inv(json!({"cltv": "x"})), -32602),
        (inv(json!({"deschashonly": "true"})), -32602),
        (inv(json!({"deschashonly": 1})), -32602),
        (inv(json!({"idempotent": "yes"})), -32602),
        (inv(json!({"nosuchparam": 1})), -32602),
        (req("invoice", json!([1000, "x", "d", 1, [], null, null, null, false, 5])), -32602),
        (req("invoice", json!({"label": "x", "description": "d"})), -32602),
        (inv(json!({"label": "target"})), 900),
        // listinvoices
        (req("listinvoices", json!({"label": true})), -32602),
        (req("listinvoices", json!({"payment_hash": "zz"})), -32602),
        (req("listinvoices", json!({"invstring": "lnbc1garbage"})), -32602),
        // A 10th byte inside a character (a byte-index slice of it once panicked the task).
        (req("listinvoices", json!({"invstring": "lightnin€xyz"})), -32602),
        (req("listinvoices", json!({"invstring": "€€€€€€"})), -32602),
        (req("decode", json!(["€€€€€€€€€€€€"])), -32602),
        (req("decode", json!(["lightnin€xyz"])), -32602),
        (req("listinvoices", json!({"index": "foo"})), -32602),
        (req("listinvoices", json!({"index": "created", "start": -1})), -32602),
        (req("listinvoices", json!({"index": "created", "limit": 8589934592u64})), -32602),
        (req("listinvoices", json!({"label": "a", "payment_hash": "00".repeat(32)})), -32602),
        // decode
        (req("decode", json!([5])), -32602),
        (req("decode", json!(["lnbcrt1notaninvoice"])), -32602),
        (req("decode", json!([])), -32602),
        // syncchannels / updatechannel
        (req("syncchannels", json!({"channels": [{"peer_id": "02zz", "state": "CHANNELD_NORMAL", "total_msat": 1, "to_us_msat": 0, "short_channel_id": "1x1x1"}]})), -32602),
        (req("syncchannels", json!({"channels": [{"peer_id": "0266e4598d1d3c415f572a8488830b60f7e744ed9235eb0b1ba93283b315c03518", "state": "CHANNELD_NORMAL", "total_msat": 1, "to_us_msat": 0, "short_channel_id": "1x1"}]})), -32602),
        (req("syncchannels", json!({"channels": [{"peer_id": "0266e4598d1d3c415f572a8488830b60f7e744ed9235eb0b1ba93283b315c03518", "state": "CHANNELD_NORMAL", "total_msat": -1, "to_us_msat": 0, "short_channel_id": "1x1x1"}]})), -32602),
        (req("syncchannels", json!({"channels": [{"peer_id": "0266e4598d1d3c415f572a8488830b60f7e744ed9235eb0b1ba93283b315c03518", "state": "CHANNELD_NORMAL", "to_us_msat": 0, "short_channel_id": "1x1x1"}]})), -32602),
        (req("syncchannels", json!({"channels": "all of them"})), -32602),
        (req("updatechannel", json!(7)), -32602),
        // settleinvoice / delinvoice / waits
        (req("settleinvoice", json!({"payment_hash": "zz", "amount_msat": 1000, "payment_secret": s})), -32602),
        (req("settleinvoice", json!({"payment_hash": h, "amount_msat": 0, "payment_secret": s})), -32602),
        (req("settleinvoice", json!({"payment_hash": h, "amount_msat": 999, "payment_secret": s})), -32602),
        (req("settleinvoice", json!({"payment_hash": "00".repeat(32), "amount_msat": 1000, "payment_secret": s})), 905),
        (req("delinvoice", json!({"label": "target", "status": "unpaid", "desconly": "x"})), -32602),
        (req("delinvoice", json!({"label": "target"})), -32602),
        (req("delinvoice", json!({"label": "target", "status": "paid"})), 906),
        (req("delinvoice", json!({"label": "nosuch", "status": "paid"})), 905),
        (req("waitanyinvoice", json!({"lastpay_index": 0, "timeout": -1})), -32602),
        (req("waitanyinvoice", json!({"lastpay_index": 0, "timeout": 0})), 904),
        (req("wait", json!(["invoices", "foo", 1])), -32602),
        (req("wait", json!(["invoices", "created", "x"])), -32602),
        (req("waitinvoice", json!([{}])), -32602),
        (req("waitinvoice", json!(["nosuch"])), -1),
        (req("getinfo", json!([1])), -32602),
    ];
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for (i, (raw, code)) in cases.iter().enumerate() {
        if *code == 0 {
            continue;
        }
        let mut c = d.client();
        c.send_raw_lossy(raw);
        let resp = c
            .read_response()
            .unwrap_or_else(|| panic!("case {i}: no answer"));
        let e = into_result(resp).expect_err(&format!("case {i} succeeded"));
        assert_eq!(
            e.code,
            *code,
            "case {i} ({}): {}",
            String::from_utf8_lossy(&raw[..raw.len().min(120)]),
            e.message
        );
    }
    // An incomplete request is answered once it completes.
    let mut c = d.client();
    c.send_raw(b"{");
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.send_raw(br#""id":9,"method":"getinfo"}"#);
    assert!(into_result(c.read_response().unwrap()).is_ok());

    stop.store(true, Ordering::Relaxed);
    bg.join().unwrap();
    let good = good.load(Ordering::Relaxed);
    assert!(good > 0);
    assert_eq!(d.head(), head + good, "a bad request appended something");
    assert_eq!(
        d.call("listinvoices", json!(["target"])).unwrap()["invoices"][0]["status"],
        json!("unpaid")
    );
}

#[test]
fn secrets_stay_out_of_the_data_dir() {
    let mut d = Daemon::start();
    let supplied = "5a".repeat(32);
    d.call(
        "invoice",
        json!({"amount_msat": 1000, "label": "s", "description": "d", "preimage": supplied}),
    )
    .unwrap();
    let gen = d.call("invoice", json!([1000, "g", "d"])).unwrap();
    let paid = d.call("settleinvoice", json!({"payment_hash": gen["payment_hash"], "amount_msat": 1000, "payment_secret": gen["payment_secret"]})).unwrap();
    let generated = paid["payment_preimage"].as_str().unwrap().to_owned();
    assert!(d.stop().success());
    let needles: Vec<Vec<u8>> = [&supplied, &generated]
        .iter()
        .flat_map(|p| {
            let bin = hex::decode(p).unwrap();
            vec![bin, p.as_bytes().to_vec()]
        })
        .collect();
    let mut files = 0;
    let mut stack = vec![d.dir.clone()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_type().unwrap().is_file() {
                let bytes = std::fs::read(e.path()).unwrap();
                files += 1;
                for n in &needles {
                    assert!(
                        !bytes.windows(n.len()).any(|w| w == n.as_slice()),
                        "a preimage is in {}",
                        e.path().display()
                    );
                }
            }
        }
    }
    assert!(files > 3, "only {files} files searched");
}

#[test]
fn slow_senders_and_clients_that_never_read_stall_nobody() {
    let d = Daemon::start();
    for i in 0..300 {
        d.call(
            "invoice",
            json!([1000, format!("fill{i}"), "x".repeat(600)]),
        )
        .unwrap();
    }
    // Never reads: asks for big answers (300 invoices, ~400 KB each) again and again.
    let mut sink = d.client();
    for _ in 0..40 {
        sink.send_raw_lossy(&req("listinvoices", json!({})));
    }
    // Sends one byte at a time.
    let slow_socket = d.socket();
    let slow = std::thread::spawn(move || {
        let mut c = Client::connect(&slow_socket);
        for b in req("getinfo", json!([])) {
            c.send_raw(&[b]);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        into_result(c.read_response().unwrap()).unwrap();
    });
    // Meanwhile everyone else is served promptly.
    let t = std::time::Instant::now();
    for i in 0..50 {
        d.call("invoice", json!([1000, format!("meanwhile{i}"), "d"]))
            .unwrap();
    }
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "others were stalled: {:?}",
        t.elapsed()
    );
    slow.join().unwrap();
    drop(sink);
    assert_eq!(
        d.call("listinvoices", json!({"label": "meanwhile49"}))
            .unwrap()["invoices"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_stop_is_prompt_after_bad_requests_and_with_waits_open() {
    let mut d = Daemon::start();
    d.call("invoice", json!([1000, "pending", "d"])).unwrap();
    // Waits that would never end by themselves, and a request that never completes.
    let mut open: Vec<Client> = Vec::new();
    for r in [
        req("waitanyinvoice", json!([99_999_999_999u64])),
        req("waitinvoice", json!(["pending"])),
        req("wait", json!(["invoices", "created", 1_000_000])),
    ] {
        let mut c = d.client();
        c.send_raw(&r);
        open.push(c);
    }
    let mut partial = d.client();
    partial.send_raw(br#"{"jsonrpc":"2.0","id":1,"method":"getinfo""#);
    for r in [
        req("listinvoices", json!({"invstring": "lightnin€xyz"})),
        req("decode", json!(["€€€€€€€€€€€€"])),
        req(
            "invoice",
            json!({"amount_msat": "10sats", "label": "x", "description": "d"}),
        ),
        b"{not json".to_vec(),
        req("nosuch", json!([])),
    ] {
        let mut c = d.client();
        c.send_raw_lossy(&r);
        let _ = c.read_response();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let t = std::time::Instant::now();
    assert!(d.stop().success());
    assert!(
        t.elapsed() < std::time::Duration::from_secs(3),
        "stop took {:?}",
        t.elapsed()
    );
}

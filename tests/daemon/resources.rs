//! What hostile clients cost the daemon: answers bounded in time and size whatever the size of
//! a value, waits that end with their connections, a request limit that is exact, and after
//! 10,000 hostile requests the same descriptors, threads and (within the allocator's slack)
//! memory as before.

use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{eventually, into_result, Client, Daemon};

/// The largest request the daemon reads (`rpc::framing::MAX_REQUEST_BYTES`).
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// The most an answer to a refused request may weigh: a message, and at most 200 bytes of what
/// was sent.
const MAX_REFUSAL_BYTES: usize = 1024;

fn request(method: &str, params: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string()
        .into_bytes()
}

/// The start of `text`, for a failure's message.
fn start_of(text: &str) -> &str {
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One request on its own connection; the answer and its size on the wire.
fn answer_of(d: &Daemon, raw: &[u8]) -> (Value, usize) {
    let mut c = d.client();
    c.send_raw_lossy(raw);
    let answer = c.read_response().unwrap_or_else(|| {
        panic!(
            "no answer to {}...",
            start_of(&String::from_utf8_lossy(raw))
        )
    });
    let size = answer.to_string().len();
    (answer, size)
}

/// What `/proc` says of a process: open descriptors, threads, resident memory in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Footprint {
    fds: usize,
    /// Of `fds`, the sockets (connections): what a client that leaves must give back. The
    /// others (RocksDB's files) come and go with compactions.
    sockets: usize,
    threads: usize,
    rss_kib: u64,
}

fn footprint(pid: u32) -> Footprint {
    let links: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    let fds = links.len();
    let sockets = links.iter().filter(|l| l.starts_with("socket:")).count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    Footprint {
        fds,
        sockets,
        threads: usize::try_from(field("Threads:")).unwrap(),
        rss_kib: field("VmRSS:"),
    }
}

/// Every method's parameters, each given a string of base58 characters (whose decoding is
/// quadratic) of about a megabyte, an array and an object of 200 kB.
#[test]
fn a_megabyte_in_any_parameter_is_answered_at_once_and_echoed_cut() {
    let d = Daemon::start();
    let head = d.head();
    let methods: &[(&str, &[&str])] = &[
        (
            "invoice",
            &[
                "amount_msat",
                "label",
                "description",
                "expiry",
                "fallbacks",
                "preimage",
                "exposeprivatechannels",
                "cltv",
                "deschashonly",
                "idempotent",
            ],
        ),
        (
            "holdinvoice",
            &[
                "amount_msat",
                "description",
                "expiry",
                "payment_hash",
                "preimage",
                "cltv",
                "deschashonly",
                "exposeprivatechannels",
                "label",
            ],
        ),
        (
            "listinvoices",
            &[
                "label",
                "invstring",
                "payment_hash",
                "offer_id",
                "index",
                "start",
                "limit",
            ],
        ),
        ("delinvoice", &["label", "status", "desconly"]),
        ("waitinvoice", &["label"]),
        ("waitanyinvoice", &["lastpay_index", "timeout"]),
        ("wait", &["subsystem", "indexname", "nextvalue"]),
        ("decode", &["string"]),
        ("help", &["command"]),
        (
            "settleinvoice",
            &["payment_hash", "amount_msat", "payment_secret"],
        ),
        ("holdinvoicesettle", &["payment_hash", "preimage"]),
        ("holdinvoicecancel", &["payment_hash"]),
        ("holdinvoicelookup", &["payment_hash"]),
        (
            "holdaccept",
            &["payment_hash", "payment_secret", "parts", "blockheight"],
        ),
        ("syncchannels", &["channels", "blockheight"]),
        ("updatechannel", &["channel"]),
        ("autoclean-once", &["subsystem", "age"]),
        ("autoclean-status", &["subsystem"]),
    ];
    let n = 1_000_000;
    let shapes = [
        json!("1".repeat(n)),
        json!(vec!["1x1x1"; n / 45]),
        Value::Object((0..n / 80).map(|i| (format!("k{i}"), json!(i))).collect()),
    ];
    let started = Instant::now();
    let mut asked = 0;
    for (method, names) in methods {
        for name in *names {
            for shape in &shapes {
                let mut params = match *method {
                    "invoice" => json!({"amount_msat": 1000, "label": "huge", "description": "d"}),
                    "holdinvoice" => json!({"amount_msat": 1000, "description": "d"}),
                    _ => json!({}),
                };
                params[*name] = if *name == "fallbacks" && shape.is_string() {
                    json!([shape])
                } else {
                    shape.clone()
                };
                let raw = request(method, params);
                assert!(
                    raw.len() <= MAX_REQUEST_BYTES,
                    "{method}.{name}: {} bytes",
                    raw.len()
                );
                let t = Instant::now();
                let (answer, size) = answer_of(&d, &raw);
                // The client's read timeout (30 s) bounds each answer; a quadratic parser took
                // about 12 minutes for a megabyte.
                assert!(
                    size <= MAX_REFUSAL_BYTES,
                    "{method}.{name}: a {size}-byte answer in {:?}: {}...",
                    t.elapsed(),
                    start_of(&answer.to_string())
                );
                asked += 1;
            }
        }
    }
    // Names and methods are echoed cut too.
    let long = "m".repeat(n);
    for raw in [
        json!({"id": 1, "method": long}).to_string().into_bytes(),
        request("invoice", json!({ long.clone(): 1 })),
    ] {
        let (answer, size) = answer_of(&d, &raw);
        assert!(
            size <= MAX_REFUSAL_BYTES,
            "a {size}-byte answer: {}...",
            start_of(&answer.to_string())
        );
        asked += 1;
    }
    eprintln!(
        "{asked} requests of about a megabyte answered in {:?}",
        started.elapsed()
    );
    assert_eq!(d.head(), head, "nothing was appended");
}

#[test]
fn a_request_of_exactly_the_limit_is_read_and_one_byte_more_refused() {
    let d = Daemon::start();
    // `help` with a command name that fills the request to the byte.
    let sized = |total: usize| {
        let frame = |name_len: usize| {
            format!(
                r#"{{"id":7,"method":"help","params":["{}"]}}"#,
                "c".repeat(name_len)
            )
        };
        let overhead = frame(0).len();
        frame(total - overhead).into_bytes()
    };
    let exact = sized(MAX_REQUEST_BYTES);
    assert_eq!(exact.len(), MAX_REQUEST_BYTES);
    let (answer, _) = answer_of(&d, &exact);
    assert_eq!(
        (answer["id"].as_i64(), answer["error"]["code"].as_i64()),
        (Some(7), Some(-32601)),
        "read and answered: {}",
        start_of(&answer.to_string())
    );
    let (answer, _) = answer_of(&d, &sized(MAX_REQUEST_BYTES + 1));
    assert_eq!(answer["error"]["code"], json!(-32600));
    assert_eq!(
        answer["error"]["message"],
        json!(format!("Request over {MAX_REQUEST_BYTES} bytes"))
    );
    // Pipelined after a small one, the large one is refused alone, after the first is answered.
    let mut c = d.client();
    let mut both = request("getinfo", json!({}));
    both.extend_from_slice(&sized(MAX_REQUEST_BYTES + 1));
    c.send_raw_lossy(&both);
    assert!(into_result(c.read_response().unwrap()).unwrap()["id"].is_string());
    assert_eq!(c.read_response().unwrap()["error"]["code"], json!(-32600));
    assert!(c.read_response().is_none(), "closed after refusing it");
}

#[test]
fn waits_of_clients_that_leave_end_with_their_connections() {
    let d = Daemon::start();
    d.call("invoice", json!([1000, "awaited", "d"])).unwrap();
    let before = footprint(d.pid());
    // 300 clients wait on something that will not happen soon, and leave without an answer.
    for i in 0..300u64 {
        let wait = match i % 3 {
            0 => request("waitanyinvoice", json!([99_999_999_999u64])),
            1 => request("waitinvoice", json!(["awaited"])),
            _ => request("wait", json!(["invoices", "created", 1_000 + i])),
        };
        let mut s = UnixStream::connect(d.socket()).unwrap();
        s.write_all(&wait).unwrap();
        if i % 2 == 0 {
            // Half close only their side, as `nc -N` does; the others just go.
            s.shutdown(std::net::Shutdown::Write).unwrap();
        }
    }
    eventually(
        10,
        "the daemon's connections back to where they were",
        || footprint(d.pid()).sockets <= before.sockets,
    );

    // A wait still open is answered, and a request sent behind it is kept for afterwards.
    let mut waiting = d.client();
    let mut two = request("wait", json!(["invoices", "created", 2]));
    two.extend_from_slice(&request("listinvoices", json!({"label": "second"})));
    waiting.send_raw(&two);
    std::thread::sleep(Duration::from_millis(100));
    d.call("invoice", json!([1000, "second", "d"])).unwrap();
    assert_eq!(
        into_result(waiting.read_response().unwrap()).unwrap()["created"],
        json!(2)
    );
    assert_eq!(
        into_result(waiting.read_response().unwrap()).unwrap()["invoices"][0]["label"],
        json!("second")
    );
    // The payment the waits that left were waiting for finds nobody to tell, and harms nothing.
    let inv = d.call("listinvoices", json!({"label": "awaited"})).unwrap()["invoices"][0].clone();
    let decoded: lightning_invoice::Bolt11Invoice =
        inv["bolt11"].as_str().unwrap().parse().unwrap();
    let secret = hex::encode(decoded.payment_secret().0);
    d.call(
        "settleinvoice",
        json!({"payment_hash": inv["payment_hash"], "amount_msat": 1000, "payment_secret": secret}),
    )
    .unwrap();
    assert_eq!(
        d.call("waitanyinvoice", json!([0])).unwrap()["label"],
        json!("awaited")
    );
    // This test's own connection goes too: `before` was taken with none of its connections open
    // (or, if the daemon had not yet closed the first call's, with one more).
    drop(waiting);
    eventually(10, "descriptors as before", || {
        footprint(d.pid()).fds <= before.fds
    });
}

/// One hostile request of kind `k` on its own connection, and what it must get back.
fn hostile(d: &Daemon, k: usize, i: usize) {
    let socket = d.socket();
    let long = |c: char| c.to_string().repeat(100_000);
    let expect = |raw: Vec<u8>, code: i64| {
        let mut c = Client::connect(&socket);
        c.send_raw_lossy(&raw);
        let answer = c.read_response().expect("an answer");
        assert_eq!(
            answer["error"]["code"],
            json!(code),
            "kind {k}: {}",
            start_of(&answer.to_string())
        );
        assert!(
            answer.to_string().len() <= MAX_REFUSAL_BYTES,
            "kind {k}: a {}-byte answer",
            answer.to_string().len()
        );
    };
    let leave = |raw: &[u8]| {
        let mut s = UnixStream::connect(&socket).unwrap();
        let _ = s.write_all(raw);
    };
    match k {
        0 => expect(br#"{"id":1,"method":"getinfo",}"#.to_vec(), -32700),
        1 => expect(
            b"{\"id\":1,\"method\":\"getinfo\",\"x\":\"\xff\xfe\"}".to_vec(),
            -32700,
        ),
        2 => expect(
            json!({"id": 1, "method": long('m')})
                .to_string()
                .into_bytes(),
            -32601,
        ),
        3 => expect(
            request(
                "invoice",
                json!({"amount_msat": 1, "label": "f", "description": "d", "fallbacks": [long('1')]}),
            ),
            -1,
        ),
        4 => expect(
            request(
                "invoice",
                json!({"amount_msat": 1, "label": long('é'), "description": "d"}),
            ),
            -32602,
        ),
        5 => leave(&request(
            "wait",
            json!(["invoices", "created", 1_000_000 + i]),
        )),
        6 => leave(&request("waitanyinvoice", json!([99_999_999_999u64]))),
        7 => leave(br#"{"jsonrpc":"2.0","id":1,"method":"invo"#),
        8 => {
            let mut c = Client::connect(&socket);
            let mut three = request("decode", json!(["lnbcrt1garbage"]));
            three.extend_from_slice(&request("nosuch", json!([])));
            three.extend_from_slice(&request("getinfo", json!([1])));
            c.send_raw(&three);
            for code in [-32602, -32601, -32602] {
                assert_eq!(c.read_response().unwrap()["error"]["code"], json!(code));
            }
        }
        9 => {
            let part = json!({"htlc": "5x5x5/1", "amount_msat": 5000, "cltv_expiry": 900});
            expect(
                request(
                    "holdaccept",
                    json!({"payment_hash": "ab".repeat(32), "payment_secret": "cd".repeat(32), "parts": [part, part], "blockheight": 100}),
                ),
                -32602,
            );
        }
        10 => expect(
            request(
                "syncchannels",
                json!({"channels": [], "blockheight": 2_147_483_648u64}),
            ),
            -32602,
        ),
        11 => expect(b"nonsense".to_vec(), -32700),
        12 => expect(request("help", json!([long('c')])), -32601),
        13 => expect(
            format!(
                "{{\"id\":1,\"method\":\"invoice\",\"params\":[{}1{}]}}",
                "[".repeat(5000),
                "]".repeat(5000)
            )
            .into_bytes(),
            -32602,
        ),
        _ => expect(request("invoice", json!({ long('k'): 1 })), -32602),
    }
}

const KINDS: usize = 15;

/// Runs `count` hostile requests from 4 clients at once, every kind in turn.
fn hostile_run(d: &Daemon, count: usize) {
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for i in (t..count).step_by(4) {
                    hostile(d, i % KINDS, i);
                }
            });
        }
    });
}

/// 10,000 hostile requests (`INVOICED_HOSTILE_REQUESTS` for more), every kind in turn from 4
/// clients at once, leave the daemon with the descriptors and threads it had, its memory within
/// 16 MiB, nothing appended, and its log auditing clean.
#[test]
fn ten_thousand_hostile_requests_leave_no_trace() {
    let count = std::env::var("INVOICED_HOSTILE_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let d = Daemon::start();
    let head = d.head();
    // A first round lets the allocator and the runtimes reach their working size.
    hostile_run(&d, 1_000);
    std::thread::sleep(Duration::from_millis(500));
    let before = footprint(d.pid());
    let started = Instant::now();
    hostile_run(&d, count);
    let took = started.elapsed();
    eventually(10, "descriptors and threads as before", || {
        let now = footprint(d.pid());
        (now.fds, now.threads) == (before.fds, before.threads)
    });
    let after = footprint(d.pid());
    eprintln!("{count} hostile requests in {took:?}: before {before:?}, after {after:?}");
    assert!(
        after.rss_kib <= before.rss_kib + 16 * 1024,
        "memory grew from {} to {} KiB",
        before.rss_kib,
        after.rss_kib
    );
    assert_eq!(d.head(), head, "nothing was appended");
    d.call("invoice", json!([1000, "after", "d"])).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["audit", "--data-dir"])
        .arg(&d.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

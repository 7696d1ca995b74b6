//! Webhooks against a real HTTP receiver in the test: every invoice event arrives signed, in log
//! order, nothing lost — through a receiver that fails with 500, hangs, goes down, and a SIGKILL
//! of the daemon — and a stuck receiver never holds up an invoice.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::hashes::{hmac, sha256, Hash as _, HashEngine as _};
use serde_json::{json, Value};

use crate::harness::{eventually, Daemon};

const OK: u8 = 0;
const FAIL_500: u8 = 1;
const HANG: u8 = 2;

/// What the receiver got: every request's (signature header, body, taken): `taken` once it was
/// answered 200.
type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

/// A minimal HTTP/1.1 receiver: answers 200, or 500, or nothing (hangs) as `mode` says.
struct Receiver {
    port: u16,
    mode: Arc<AtomicU8>,
    seen: Seen,
    stop: Arc<AtomicU8>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(port: u16, seen: Seen, mode: Arc<AtomicU8>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicU8::new(0));
        let (s, m, st) = (seen.clone(), mode.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while st.load(Ordering::SeqCst) == 0 {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s, m, st) = (s.clone(), m.clone(), st.clone());
                        std::thread::spawn(move || serve(conn, &s, &m, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver {
            port,
            mode,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Down: the port stops listening (connections are refused).
    fn down(mut self) -> (u16, Seen, Arc<AtomicU8>) {
        self.stop.store(1, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        (self.port, self.seen.clone(), self.mode.clone())
    }
}

fn serve(conn: TcpStream, seen: &Seen, mode: &AtomicU8, stop: &AtomicU8) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let (mut length, mut signature) = (0usize, String::new());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        if lower.starts_with("x-invoiced-signature:") {
            signature = line["x-invoiced-signature:".len()..].trim().to_owned();
        }
        line.clear();
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let at = {
        let mut seen = seen.lock().unwrap();
        seen.push((signature, String::from_utf8(body).unwrap(), false));
        seen.len() - 1
    };
    while mode.load(Ordering::SeqCst) == HANG && stop.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let ok = mode.load(Ordering::SeqCst) != FAIL_500;
    let status = if ok {
        "200 OK"
    } else {
        "500 Internal Server Error"
    };
    let mut conn = conn;
    if write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .is_ok()
        && ok
    {
        seen.lock().unwrap()[at].2 = true;
    }
}

/// Whether a request whose body holds `needle` arrived (`taken` or not).
fn arrived(seen: &Seen, needle: &str) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(_, b, _)| b.contains(needle))
        .count()
}

fn hmac_hex(secret: &[u8], body: &str) -> String {
    let mut e = hmac::HmacEngine::<sha256::Hash>::new(secret);
    e.input(body.as_bytes());
    hex::encode(hmac::Hmac::<sha256::Hash>::from_engine(e).to_byte_array())
}

/// The invoice events of the log, as (seq, type), read by the offline tool.
fn logged(d: &Daemon) -> Vec<(u64, String)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["events", "--json", "--data-dir"])
        .arg(&d.dir)
        .output()
        .unwrap();
    let webhook_type = |kind: &str| match kind {
        "invoice_created" | "hold_invoice_created" => Some("invoice_created"),
        "invoice_paid" => Some("invoice_paid"),
        "hold_accepted" => Some("invoice_accepted"),
        "hold_settled" => Some("invoice_settled"),
        "hold_canceled" => Some("invoice_canceled"),
        "invoice_expired" => Some("invoice_expired"),
        "invoice_deleted" | "invoice_cleaned" => Some("invoice_deleted"),
        _ => None,
    };
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            Some((
                v["seq"].as_u64().unwrap(),
                webhook_type(v["kind"].as_str().unwrap())?.to_owned(),
            ))
        })
        .collect()
}

/// What the receiver took (answered 200), verified and deduplicated by seq (delivery is at least
/// once), in the order it arrived.
fn delivered(seen: &Seen, secret: &[u8]) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = Vec::new();
    for (sig, body, _) in seen.lock().unwrap().iter().filter(|(_, _, taken)| *taken) {
        assert_eq!(*sig, hmac_hex(secret, body), "every body is signed: {body}");
        let v: Value = serde_json::from_str(body).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        assert!(
            out.last().is_none_or(|(last, _)| seq >= *last),
            "in log order: {seq} after {out:?}"
        );
        if out.last().map(|(s, _)| *s) != Some(seq) {
            out.push((seq, v["type"].as_str().unwrap().to_owned()));
        }
    }
    out
}

#[test]
fn every_invoice_event_is_pushed_signed_in_order_through_failures_and_a_sigkill() {
    let seen: Seen = Arc::default();
    let mode = Arc::new(AtomicU8::new(OK));
    let receiver = Receiver::start(0, seen.clone(), mode.clone());
    let mut d = Daemon::start();
    d.args.push(format!(
        "--webhook-url=http://127.0.0.1:{}/hook",
        receiver.port
    ));
    d.restart();
    let secret = hex::decode(
        std::fs::read_to_string(d.dir.join("webhook_secret"))
            .unwrap()
            .trim(),
    )
    .unwrap();

    // Every kind: created, paid, accepted, settled, canceled, expired, deleted.
    let paid = d
        .call(
            "invoice",
            json!({"amount_msat": 1000, "label": "paid", "description": "p"}),
        )
        .unwrap();
    d.call("settleinvoice", json!({"payment_hash": paid["payment_hash"], "amount_msat": 1000, "payment_secret": paid["payment_secret"]})).unwrap();
    let held = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 2000, "description": "h"}),
        )
        .unwrap();
    let part = json!([{"htlc": "1x1x1/0", "amount_msat": 2000, "cltv_expiry": 500}]);
    d.call("holdaccept", json!({"payment_hash": held["payment_hash"], "payment_secret": held["payment_secret"], "parts": part, "blockheight": 100})).unwrap();
    d.call(
        "holdinvoicesettle",
        json!({"payment_hash": held["payment_hash"]}),
    )
    .unwrap();
    let canceled = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 3000, "description": "c"}),
        )
        .unwrap();
    d.call(
        "holdinvoicecancel",
        json!({"payment_hash": canceled["payment_hash"]}),
    )
    .unwrap();
    d.call(
        "invoice",
        json!({"amount_msat": 1000, "label": "gone", "description": "g"}),
    )
    .unwrap();
    d.call("delinvoice", json!({"label": "gone", "status": "unpaid"}))
        .unwrap();
    d.call(
        "invoice",
        json!({"amount_msat": 1000, "label": "short", "description": "s", "expiry": 1}),
    )
    .unwrap();
    eventually(10, "the short invoice expired", || {
        d.call("listinvoices", json!({"label": "short"})).unwrap()["invoices"][0]["status"]
            == json!("expired")
    });
    eventually(10, "all delivered", || {
        delivered(&seen, &secret) == logged(&d)
    });
    let types: Vec<String> = delivered(&seen, &secret)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    for t in [
        "invoice_created",
        "invoice_paid",
        "invoice_accepted",
        "invoice_settled",
        "invoice_canceled",
        "invoice_expired",
        "invoice_deleted",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
    let last_body: Value = serde_json::from_str(&seen.lock().unwrap().last().unwrap().1).unwrap();
    assert_eq!(last_body["invoice"]["label"], "short");
    let settled = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b, _)| serde_json::from_str::<Value>(b).unwrap())
        .find(|v| v["type"] == "invoice_settled")
        .unwrap();
    assert_eq!(
        (
            settled["invoice"]["payment_hash"].clone(),
            settled["invoice"]["amount_received_msat"].clone()
        ),
        (held["payment_hash"].clone(), json!(2000))
    );
    assert!(
        !settled
            .to_string()
            .contains(held["preimage"].as_str().unwrap()),
        "never the preimage"
    );

    // 500s: retried until taken.
    mode.store(FAIL_500, Ordering::SeqCst);
    d.call(
        "invoice",
        json!({"amount_msat": 1000, "label": "retried", "description": "r"}),
    )
    .unwrap();
    eventually(10, "two refused attempts", || {
        arrived(&seen, "\"retried\"") >= 2
    });
    mode.store(OK, Ordering::SeqCst);
    eventually(10, "taken once it answers 200", || {
        delivered(&seen, &secret) == logged(&d)
    });

    // A receiver that hangs holds up no invoice.
    mode.store(HANG, Ordering::SeqCst);
    d.call(
        "invoice",
        json!({"amount_msat": 1000, "label": "stuck-0", "description": "s"}),
    )
    .unwrap();
    eventually(10, "the receiver holds a request", || {
        arrived(&seen, "\"stuck-0\"") > 0
    });
    for i in 1..20 {
        d.call(
            "invoice",
            json!({"amount_msat": 1000, "label": format!("stuck-{i}"), "description": "s"}),
        )
        .unwrap();
    }
    mode.store(OK, Ordering::SeqCst);
    eventually(30, "the backlog delivered", || {
        delivered(&seen, &secret) == logged(&d)
    });

    // Down, and the daemon killed: nothing lost, nothing out of order, once both are back.
    let (port, seen, mode) = receiver.down();
    for i in 0..5 {
        d.call(
            "invoice",
            json!({"amount_msat": 1000, "label": format!("while-down-{i}"), "description": "d"}),
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(700));
    d.kill();
    d.spawn();
    d.call(
        "invoice",
        json!({"amount_msat": 1000, "label": "after-kill", "description": "k"}),
    )
    .unwrap();
    let _receiver = Receiver::start(port, seen.clone(), mode);
    eventually(90, "everything after the outage and the SIGKILL", || {
        delivered(&seen, &secret) == logged(&d)
    });
}

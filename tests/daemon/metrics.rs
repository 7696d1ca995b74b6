//! `--metrics-listen`: the real daemon's `/metrics`, scraped over HTTP after invoices, payments,
//! hold invoices, deletions, refusals and a webhook endpoint that takes nothing; every figure is
//! what was done, the exposition passes `promtool check metrics`, and after a restart the
//! counters start again while the hold invoices' states are read back from the log.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use serde_json::{json, Value};

use crate::harness::{eventually, Daemon};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /path` on the port: the status line and the body.
pub fn get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// Every sample of the exposition, by its name with labels as written (`name{a="b"}`).
pub fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

/// Checks the exposition with Prometheus' own `promtool`; in CI it must be there.
fn promtool_accepts(text: &str) {
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping promtool (not installed here: {e}; scripts/test.sh installs it)");
            return;
        }
        Err(e) => panic!("promtool is needed in CI: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn settle(d: &Daemon, inv: &Value, amount: u64) {
    d.call("settleinvoice", json!({"payment_hash": inv["payment_hash"], "amount_msat": amount, "payment_secret": inv["payment_secret"]}))
        .unwrap();
}

#[test]
fn metrics_count_what_was_done_and_pass_promtool() {
    let port = free_port();
    // Nothing listens on port 1: the endpoint takes nothing, and its backlog grows.
    let mut d = Daemon::start_with(&[
        format!("--metrics-listen=127.0.0.1:{port}"),
        "--webhook-url=http://127.0.0.1:1/hook".into(),
    ]);
    let plain = d.call("invoice", json!([1000, "a", "d"])).unwrap();
    d.call("invoice", json!([2000, "b", "d"])).unwrap();
    let keysend = d.call("invoice", json!([3000, "keysend-x", "d"])).unwrap();
    let held = d
        .call(
            "holdinvoice",
            json!({"amount_msat": 5000, "description": "h"}),
        )
        .unwrap();
    settle(&d, &plain, 1000);
    settle(&d, &keysend, 3100);
    d.call("holdinvoicecancel", json!([held["payment_hash"]]))
        .unwrap();
    d.call("delinvoice", json!(["b", "unpaid"])).unwrap();
    d.call("nosuchmethod", json!({})).unwrap_err();
    d.call("invoice", json!([1000, "c"])).unwrap_err();

    let want = [
        (r#"invoiced_invoices_created_total{kind="bolt11"}"#, 2.0),
        (r#"invoiced_invoices_created_total{kind="keysend"}"#, 1.0),
        (r#"invoiced_invoices_created_total{kind="hold"}"#, 1.0),
        ("invoiced_invoices_paid_total", 2.0),
        (r#"invoiced_payments_total{kind="bolt11"}"#, 1.0),
        (r#"invoiced_payments_total{kind="keysend"}"#, 1.0),
        (
            r#"invoiced_payments_received_msat_total{kind="keysend"}"#,
            3100.0,
        ),
        ("invoiced_invoices_deleted_total", 1.0),
        (r#"invoiced_hold_invoices{state="open"}"#, 0.0),
        (r#"invoiced_hold_invoices{state="canceled"}"#, 1.0),
        (
            r#"invoiced_rpc_requests_total{code="ok",method="invoice"}"#,
            3.0,
        ),
        (
            r#"invoiced_rpc_requests_total{code="-32601",method="unknown"}"#,
            1.0,
        ),
        (
            r#"invoiced_rpc_requests_total{code="-32602",method="invoice"}"#,
            1.0,
        ),
        (
            r#"invoiced_rpc_request_duration_seconds_count{method="invoice"}"#,
            4.0,
        ),
        ("invoiced_log_head_sequence", 8.0),
        ("invoiced_log_records_written_total", 8.0),
    ];
    // The events are counted as the log tells its subscribers, just after the callers.
    eventually(10, "every event is counted", || {
        let m = samples(&get(port, "/metrics").1);
        want.iter().all(|(name, value)| m.get(*name) == Some(value))
    });
    let (status, body) = get(port, "/metrics");
    assert!(status.contains("200"), "{status}");
    let m = samples(&body);
    for (name, value) in want {
        assert_eq!(m.get(name), Some(&value), "{name} in\n{body}");
    }
    assert!(m["invoiced_log_written_bytes_total"] > 8.0 * 100.0);
    assert!(m["invoiced_log_batch_records_count"] >= 1.0);
    assert_eq!(m["invoiced_log_batch_records_sum"], 8.0);
    assert!(m["invoiced_log_batch_write_duration_seconds_count"] >= 1.0);
    assert!(m.contains_key("invoiced_log_replay_duration_seconds"));
    let url = r#"{url="http://127.0.0.1:1/hook"}"#;
    assert_eq!(m[&format!("invoiced_webhook_backlog_records{url}")], 8.0);
    eventually(10, "the endpoint's failures are counted", || {
        samples(&get(port, "/metrics").1)[&format!("invoiced_webhook_failures_total{url}")] >= 1.0
    });
    promtool_accepts(&body);
    assert!(get(port, "/nothing").0.contains("404"));

    // A restart: counters start again, the hold invoices' states come back from the log, and
    // the checkpoint written at the clean stop has an age.
    d.restart();
    let m = samples(&get(port, "/metrics").1);
    // (Read from the projection when the daemon starts, so at once.)
    assert_eq!(m["invoiced_invoices_paid_total"], 0.0);
    assert_eq!(m[r#"invoiced_hold_invoices{state="canceled"}"#], 1.0);
    assert_eq!(m["invoiced_log_head_sequence"], 8.0);
    assert!(m["invoiced_log_checkpoint_age_seconds"] >= 0.0);
    assert!(m["invoiced_rpc_connections"] >= 0.0);

    // A port that cannot be had stops start-up, naming the option.
    assert!(d.stop().success());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (status, out) = d.refused_start(&[format!("--metrics-listen={addr}")]);
    assert!(
        !status.success() && out.contains("--metrics-listen"),
        "{out}"
    );
}

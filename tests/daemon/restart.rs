//! Restarts: the log rebuilds every listing, counters and uniqueness.

use serde_json::json;

use crate::harness::{check_bolt11, Daemon, FIXTURE_NODE_ID};

#[test]
fn state_is_identical_after_restart() {
    let mut d = Daemon::start();
    d.call("invoice", json!([1000, "a", "first"])).unwrap();
    d.call("invoice", json!({"amount_msat": "any", "label": 7, "description": "second", "preimage": "22".repeat(32), "expiry": 3600})).unwrap();
    d.call("invoice", json!({"amount_msat": "1.5btc", "label": "c", "description": "x".repeat(900), "deschashonly": true, "fallbacks": ["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"], "cltv": 40})).unwrap();
    let before = d.call("listinvoices", json!({})).unwrap();
    let info_before = d.call("getinfo", json!({})).unwrap();
    assert_eq!(info_before["log_head_seq"], json!(3));
    d.restart();
    assert_eq!(d.call("listinvoices", json!({})).unwrap(), before);
    assert_eq!(d.call("getinfo", json!({})).unwrap(), info_before);
    // Labels and hashes stay taken, created_index keeps counting.
    assert_eq!(
        d.call("invoice", json!([1000, "a", "again"]))
            .unwrap_err()
            .code,
        900
    );
    assert_eq!(
        d.call("invoice", json!([1000, "7", "again"]))
            .unwrap_err()
            .code,
        900
    );
    assert_eq!(
        d.call(
            "invoice",
            json!({"amount_msat": 1, "label": "z", "description": "d", "preimage": "22".repeat(32)})
        )
        .unwrap_err()
        .code,
        901
    );
    let r = d.call("invoice", json!([1000, "d", "fourth"])).unwrap();
    assert_eq!(r["created_index"], json!(4));
    for inv in before["invoices"].as_array().unwrap() {
        check_bolt11(inv["bolt11"].as_str().unwrap(), FIXTURE_NODE_ID);
    }
}

#[test]
fn data_dir_is_bound_to_its_network() {
    let mut d = Daemon::start();
    d.call("invoice", json!([1000, "a", "first"])).unwrap();
    assert!(d.stop().success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["serve", "--data-dir"])
        .arg(&d.dir)
        .args(["--network", "bitcoin"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("belongs to network regtest, not bitcoin"),
        "{err}"
    );
    d.spawn();
    assert_eq!(
        d.call("listinvoices", json!({})).unwrap()["invoices"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

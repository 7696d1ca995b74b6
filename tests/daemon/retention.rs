//! Retention (`autoclean`): old paid and expired invoices leave the listings but not the log,
//! their hashes stay used, the audit and a replay from before the clean still see them, and the
//! options clean on their own.

use serde_json::{json, Value};

use crate::harness::{eventually, Daemon};

fn labels(d: &Daemon) -> Vec<String> {
    let all = d.call("listinvoices", json!({})).unwrap();
    all["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_owned())
        .collect()
}

fn pay(d: &Daemon, inv: &Value) {
    d.call("settleinvoice", json!({"payment_hash": inv["payment_hash"], "amount_msat": 1000, "payment_secret": inv["payment_secret"]})).unwrap();
}

fn tool(d: &Daemon, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(args)
        .arg("--data-dir")
        .arg(&d.dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
#[cfg_attr(
    not(feature = "dev-hooks"),
    ignore = "needs the test hooks: --features invoiced/dev-hooks (scripts/test.sh)"
)]
fn autoclean_once_and_status_as_core_lightning_and_the_log_keeps_everything() {
    let mut d = Daemon::start();
    let invoice = |d: &Daemon, label: &str, extra: Value| {
        let mut p = json!({"amount_msat": 1000, "label": label, "description": label});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        d.call("invoice", p).unwrap()
    };
    let old_paid = invoice(&d, "old-paid", json!({"preimage": "11".repeat(32)}));
    pay(&d, &old_paid);
    invoice(&d, "old-expired", json!({"expiry": 1}));
    invoice(&d, "unpaid", json!({}));
    let head_before_clean = d.head();
    // Two hours on: "old-expired" expires at start-up; then one more is paid, just now.
    d.restart_at_offset(7200);
    eventually(5, "old-expired expired", || {
        d.call("listinvoices", json!({"label": "old-expired"}))
            .unwrap()["invoices"][0]["status"]
            == json!("expired")
    });
    let new_paid = d
        .call(
            "invoice",
            json!({"amount_msat": 1000, "label": "new-paid", "description": "n"}),
        )
        .unwrap();
    pay(&d, &new_paid);

    let status = d.call("autoclean-status", json!({})).unwrap();
    assert_eq!(
        status,
        json!({"autoclean": {
        "paidinvoices": {"enabled": false, "cleaned": 0},
        "expiredinvoices": {"enabled": false, "cleaned": 0}}})
    );
    let once = d
        .call("autoclean-once", json!(["paidinvoices", 3600]))
        .unwrap();
    assert_eq!(
        once,
        json!({"autoclean": {"paidinvoices": {"cleaned": 1, "uncleaned": 1}}})
    );
    let once = d
        .call(
            "autoclean-once",
            json!({"subsystem": "expiredinvoices", "age": 3600}),
        )
        .unwrap();
    assert_eq!(
        once,
        json!({"autoclean": {"expiredinvoices": {"cleaned": 1, "uncleaned": 0}}})
    );
    assert_eq!(labels(&d), ["unpaid", "new-paid"]);
    // As Core Lightning's autoclean deletes: the deleted index moved, the labels are free...
    assert_eq!(
        d.call(
            "wait",
            json!({"subsystem": "invoices", "indexname": "deleted", "nextvalue": 2})
        )
        .unwrap()["deleted"],
        json!(2)
    );
    invoice(&d, "old-expired", json!({}));
    // ...but a cleaned invoice's payment hash is never used again.
    let again = d.call("invoice", json!({"amount_msat": 1, "label": "reuse", "description": "r", "preimage": "11".repeat(32)})).unwrap_err();
    assert_eq!(
        (again.code, again.message.as_str()),
        (901, "preimage already used")
    );
    // Refusals name the parameter.
    let e = d
        .call("autoclean-once", json!(["paidinvoices", 0]))
        .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (-32602, "age: Must be non-zero: invalid token '0'")
    );
    let e = d
        .call("autoclean-once", json!(["failedpays", 10]))
        .unwrap_err();
    assert_eq!(e.code, -32602);
    assert!(
        e.message
            .starts_with("subsystem: should be a valid subsystem name"),
        "{}",
        e.message
    );

    // The totals come from the log: the same after a restart.
    d.restart();
    let status = d
        .call("autoclean-status", json!(["expiredinvoices"]))
        .unwrap();
    assert_eq!(
        status,
        json!({"autoclean": {"expiredinvoices": {"enabled": false, "cleaned": 1}}})
    );
    assert_eq!(labels(&d), ["unpaid", "new-paid", "old-expired"]);
    assert!(d.stop().success());
    // The audit proves every clean against its rule; a replay from before it still shows them.
    let (ok, out) = tool(&d, &["audit"]);
    assert!(ok, "{out}");
    let (ok, out) = tool(&d, &["replay", "--until", &head_before_clean.to_string()]);
    assert!(
        ok && out.contains("old-paid") && out.contains("old-expired"),
        "{out}"
    );
    let (ok, out) = tool(&d, &["events", "--json"]);
    assert!(ok && out.matches("invoice_cleaned").count() == 2, "{out}");
}

#[test]
#[cfg_attr(
    not(feature = "dev-hooks"),
    ignore = "needs the test hooks: --features invoiced/dev-hooks (scripts/test.sh)"
)]
fn the_age_options_clean_every_cycle() {
    let mut d = Daemon::start();
    d.call(
        "invoice",
        json!({"amount_msat": 5, "label": "soon", "description": "s", "expiry": 1}),
    )
    .unwrap();
    d.call(
        "invoice",
        json!({"amount_msat": 5, "label": "later", "description": "l"}),
    )
    .unwrap();
    d.args.extend([
        "--autoclean-expiredinvoices-age=60".to_owned(),
        "--autoclean-cycle=1".to_owned(),
    ]);
    d.restart_at_offset(600);
    eventually(10, "soon cleaned by the cycle", || labels(&d) == ["later"]);
    let status = d.call("autoclean-status", json!({})).unwrap();
    assert_eq!(
        status["autoclean"]["expiredinvoices"],
        json!({"enabled": true, "age": 60, "cleaned": 1})
    );
    assert_eq!(
        status["autoclean"]["paidinvoices"],
        json!({"enabled": false, "cleaned": 0})
    );
}

#[test]
#[cfg_attr(
    not(feature = "dev-hooks"),
    ignore = "needs the test hooks: --features invoiced/dev-hooks (scripts/test.sh)"
)]
fn cleaning_while_clients_create_and_list_loses_nothing_and_the_audit_agrees() {
    let mut d = Daemon::start();
    // 1,500 invoices that will have expired, and a few paid ones that stay (too recent).
    let mut c = d.client();
    for i in 0..1500 {
        c.call(
            "invoice",
            json!({"amount_msat": 5, "label": format!("old-{i}"), "description": "o", "expiry": 1}),
        )
        .unwrap();
    }
    d.restart_at_offset(7200);
    eventually(10, "the old ones expired", || {
        d.call("listinvoices", json!({"label": "old-1499"}))
            .unwrap()["invoices"][0]["status"]
            == json!("expired")
    });
    // Four clients create and list while the expired ones are cleaned, in several rounds.
    let sock = d.socket();
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut c = crate::harness::Client::connect(&sock);
                let mut made = Vec::new();
                for i in 0..150 {
                    let label = format!("new-{t}-{i}");
                    c.call(
                        "invoice",
                        json!({"amount_msat": 5, "label": label, "description": "n"}),
                    )
                    .unwrap();
                    made.push(label);
                    if i % 10 == 0 {
                        let all = c.call("listinvoices", json!({})).unwrap();
                        let listed: Vec<&str> = all["invoices"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|v| v["label"].as_str().unwrap())
                            .collect();
                        let unique: std::collections::HashSet<&&str> = listed.iter().collect();
                        assert_eq!(
                            unique.len(),
                            listed.len(),
                            "a listing never shows an invoice twice"
                        );
                        for m in &made {
                            assert!(
                                listed.contains(&m.as_str()),
                                "{m} made by this client is listed"
                            );
                        }
                    }
                }
                made
            })
        })
        .collect();
    let mut cleaned = 0;
    while cleaned < 1500 {
        let once = d
            .call("autoclean-once", json!(["expiredinvoices", 3600]))
            .unwrap();
        cleaned += once["autoclean"]["expiredinvoices"]["cleaned"]
            .as_u64()
            .unwrap();
    }
    let made: Vec<String> = clients
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(cleaned, 1500);
    let mut left = labels(&d);
    left.sort();
    let mut want = made.clone();
    want.sort();
    assert_eq!(
        left, want,
        "every client invoice is there, every old one is gone"
    );
    assert_eq!(
        d.call("autoclean-status", json!(["expiredinvoices"]))
            .unwrap()["autoclean"]["expiredinvoices"]["cleaned"],
        json!(1500)
    );
    assert!(d.stop().success());
    let (ok, out) = tool(&d, &["audit"]);
    assert!(ok, "{out}");
}

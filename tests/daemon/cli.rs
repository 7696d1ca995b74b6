//! `invoiced-cli` against the real daemon: positional and `-k` arguments, errors, `--qr`.

use std::process::Command;

use crate::harness::Daemon;

fn cli(d: &Daemon, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_invoiced-cli"))
        .arg("--data-dir")
        .arg(&d.dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn positional_keyword_errors_and_qr() {
    let d = Daemon::start();
    let out = cli(&d, &["invoice", "1000", "01", "a coffee"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["bolt11"].as_str().unwrap().starts_with("lnbcrt10n1"));
    // "01" was sent as a string, not as the number 1.
    let listed = d.call("listinvoices", serde_json::json!(["01"])).unwrap();
    assert_eq!(listed["invoices"][0]["description"], "a coffee");

    let out = cli(
        &d,
        &[
            "-k",
            "invoice",
            "amount_msat=10sat",
            "label=k",
            "description=by name",
            "expiry=3600",
        ],
    );
    assert!(out.status.success());
    let out = cli(
        &d,
        &[
            "-k",
            "invoice",
            "amount_msat=10sat",
            "label=k",
            "description=again",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["code"], 900);

    let out = cli(&d, &["--qr", "invoice", "any", "qr", "scan me"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .filter(|l| l.contains('▀') || l.contains('▄'))
            .count()
            > 10,
        "no QR code drawn"
    );

    let out = cli(&d, &["help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("listinvoices"));
}

//! `invoiced-cli` against the real daemon: positional and `-k` arguments, errors, `--qr`; every
//! binary's `--version`.

use std::process::{Command, Stdio};

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

/// `--version` (and `-V`) of each binary: the package's version and the commit build.rs named,
/// with no daemon, socket or lightningd (`invoiced-cln` answers instead of waiting for
/// lightningd on its stdin, where it would read the end of input and fail).
#[test]
fn every_binary_prints_its_version_and_commit() {
    let commit = env!("INVOICED_GIT_COMMIT");
    let hex = commit.strip_suffix("-dirty").unwrap_or(commit);
    assert!(
        commit == "unknown" || (hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit}"
    );
    for (name, exe) in [
        ("invoiced", env!("CARGO_BIN_EXE_invoiced")),
        ("invoiced-cli", env!("CARGO_BIN_EXE_invoiced-cli")),
        ("invoiced-cln", env!("CARGO_BIN_EXE_invoiced-cln")),
    ] {
        for flag in ["--version", "-V"] {
            let out = Command::new(exe)
                .arg(flag)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(out.status.success(), "{name} {flag}: {out:?}");
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                format!("{name} {} ({commit})\n", env!("CARGO_PKG_VERSION")),
                "{name} {flag}"
            );
        }
    }
}

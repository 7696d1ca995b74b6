//! A data dir written by an older invoiced (`tests/data/datadir-v4`, made at commit 570f2d3 by
//! `tests/data/make_old_datadir.py`) replays identically: the daemon started on it answers the
//! listings the old one answered, and the offline tools print what the old ones printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::Daemon;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// A copy of the old data dir (the daemon writes to the one it opens).
fn copy_of_old_datadir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let from = data().join("datadir-v4");
    std::fs::create_dir_all(dir.join("events")).unwrap();
    std::fs::copy(from.join("hsm_secret"), dir.join("hsm_secret")).unwrap();
    for f in std::fs::read_dir(from.join("events")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.join("events").join(f.file_name())).unwrap();
    }
    (tmp, dir)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(data().join("datadir-v4.expected.json")).unwrap())
        .unwrap()
}

fn tool(args: &[&str], dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_old_data_dir_replays_to_the_listings_the_old_invoiced_answered() {
    let (_tmp, dir) = copy_of_old_datadir();
    let want = expected();
    // Offline first: nothing has been written to the log yet.
    let events = tool(&["events", "--json"], &dir);
    let old_events = std::fs::read_to_string(data().join("datadir-v4.events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 22);
    for (new, old) in events.lines().zip(old_events.lines()) {
        let (new, old): (Value, Value) = (
            serde_json::from_str(new).unwrap(),
            serde_json::from_str(old).unwrap(),
        );
        assert_eq!(new, old, "invoiced events --json");
    }
    let replay: Value = serde_json::from_str(&tool(&["replay"], &dir)).unwrap();
    assert_eq!(replay, want["replay"], "invoiced replay");
    let audit = tool(&["audit"], &dir);
    assert!(audit.contains("22 records"), "{audit}");

    let d = Daemon::start_in(dir);
    for (method, params) in [
        ("listinvoices", json!({})),
        ("listincoming", json!({})),
        ("holdinvoicelookup", json!({})),
    ] {
        assert_eq!(d.call(method, params).unwrap(), want[method], "{method}");
    }
    assert_eq!(d.head(), 22, "starting on it wrote nothing");
}

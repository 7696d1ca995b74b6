//! Long work shows its progress on a terminal and nothing elsewhere: `invoiced audit` on a log
//! long enough to take seconds, under a pseudo-terminal (util-linux's `script`) and with its
//! stderr to a pipe.

use std::path::Path;
use std::process::Command;

/// Records in the log: about four seconds of `audit` in a debug build.
const RECORDS: u64 = 4000;

/// A stopped data dir with [`RECORDS`] real invoices, made by `invoiced-bench fill`.
fn filled() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_invoiced-bench"))
        .args(["fill", "--count", &RECORDS.to_string(), "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    tmp
}

/// `invoiced TOOL --data-dir DIR` on a pseudo-terminal: everything it wrote there.
fn on_a_terminal(tool: &str, dir: &Path) -> String {
    let command = format!(
        "'{}' {tool} --data-dir '{}'",
        env!("CARGO_BIN_EXE_invoiced"),
        dir.display()
    );
    let out = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .output()
        .expect("util-linux's script, for a pseudo-terminal");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `line` reads `audit: DONE/TOTAL records (P%), RATE/s, T left` with numbers.
fn is_progress(line: &str, total: u64) -> bool {
    let Some(rest) = line.strip_prefix("audit: ") else {
        return false;
    };
    let Some((done, rest)) = rest.split_once('/') else {
        return false;
    };
    let Some((of, rest)) = rest.split_once(" records (") else {
        return false;
    };
    let Some((_, rest)) = rest.split_once("%), ") else {
        return false;
    };
    let Some((rate, left)) = rest.split_once("/s, ") else {
        return false;
    };
    done.parse::<u64>().is_ok_and(|d| d > 0 && d < total)
        && of == total.to_string()
        && rate.parse::<u64>().is_ok_and(|r| r > 0)
        && left.ends_with(" left")
        && left.starts_with(|c: char| c.is_ascii_digit())
}

#[test]
fn audit_shows_progress_on_a_terminal_and_nothing_through_a_pipe() {
    let data = filled();
    let screen = on_a_terminal("audit", data.path());
    // Each draw returns to the line's start and clears what is left of the one before.
    let drawn: Vec<&str> = screen
        .split('\r')
        .filter_map(|s| s.strip_suffix("\x1b[K"))
        .filter(|s| !s.is_empty())
        .collect();
    assert!(
        drawn.iter().any(|l| is_progress(l, RECORDS)),
        "no progress line: {screen:?}"
    );
    assert!(
        screen.contains(&format!("\r\x1b[Kaudit ok: {RECORDS} records")),
        "the line is cleared before the summary: {screen:?}"
    );

    for tool in ["audit", "replay"] {
        let out = Command::new(env!("CARGO_BIN_EXE_invoiced"))
            .args([tool, "--data-dir"])
            .arg(data.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(out.stderr.is_empty(), "{tool}: {:?}", out.stderr);
    }
}

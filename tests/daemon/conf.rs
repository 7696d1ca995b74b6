//! The daemon's start-up options from a config file (`--conf FILE`, `DATA_DIR/config`), and its
//! logs as JSON lines (`--log-format json`).

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{fixture_secret, Daemon};

/// A data dir holding the fixture secret (and `config` with `config`, if given), in a temporary
/// folder that also holds the returned path's siblings.
fn data_dir(config: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("hsm_secret"), fixture_secret()).unwrap();
    if let Some(text) = config {
        std::fs::write(dir.join("config"), text).unwrap();
    }
    (tmp, dir)
}

/// The `min_final_cltv_expiry` of a new invoice of `d`, as `decode` reads it.
fn default_cltv(d: &Daemon) -> Value {
    let label = format!("cltv-{}", d.head());
    let r = d.call("invoice", json!([1000, label, "d"])).unwrap();
    d.call("decode", json!([r["bolt11"]])).unwrap()["min_final_cltv_expiry"].clone()
}

/// `invoiced serve --data-dir DIR ARGS` expected to refuse to start: exit code and stderr.
fn refused(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        !dir.join("events").exists(),
        "a refused start opened no log"
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_config_file_sets_the_daemons_options_and_flags_override_it() {
    let (tmp, _) = data_dir(None);
    let conf = tmp.path().join("invoiced.conf");
    std::fs::write(
        &conf,
        "# the daemon's defaults\n\ncltv-final = 33\nmin-free-disk-mb=1\n",
    )
    .unwrap();
    let conf = conf.to_str().unwrap().to_owned();
    let mut d = Daemon::start_with(&["--conf".into(), conf.clone()]);
    assert_eq!(default_cltv(&d), json!(33), "the file's cltv-final");
    d.stop();
    let mut d = Daemon::start_with(&["--conf".into(), conf, "--cltv-final=44".into()]);
    assert_eq!(default_cltv(&d), json!(44), "the flag over the file");
    d.stop();
}

#[test]
fn the_data_dirs_config_is_read_when_no_conf_is_given() {
    let (_tmp, dir) = data_dir(Some("cltv-final=35\n"));
    let mut d = Daemon::start_in(dir.clone());
    assert_eq!(default_cltv(&d), json!(35));
    d.stop();
    // --conf names the file read instead.
    let other = dir.with_file_name("other.conf");
    std::fs::write(&other, "cltv-final=36\n").unwrap();
    let mut d = Daemon::start_in_with(dir, &["--conf", other.to_str().unwrap()]);
    assert_eq!(default_cltv(&d), json!(36));
    d.stop();
}

#[test]
fn a_bad_config_file_stops_start_up_naming_the_file_and_the_line() {
    let (tmp, dir) = data_dir(None);
    let conf = tmp.path().join("invoiced.conf");
    let conf_arg = conf.to_str().unwrap();
    let cases = [
        (
            "cltv-final=20\n# fine so far\nbogus-option=1\n",
            ":3: unknown option 'bogus-option' (not an option of `invoiced serve`)",
        ),
        (
            "cltv-final=x\n",
            ":1: invalid value 'x' for 'cltv-final': invalid digit found in string",
        ),
        (
            "\nnetwork=mainnet\n",
            ":2: invalid value 'mainnet' for 'network': unknown network 'mainnet'",
        ),
        (
            "hsm-passphrase=yes\n",
            ":1: 'hsm-passphrase' is a switch and takes no value",
        ),
        (
            "conf=/etc/other\n",
            ":1: 'conf' cannot be set in a config file",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&conf, text).unwrap();
        let (code, err) = refused(&dir, &["--conf", conf_arg]);
        assert_eq!(code, Some(2), "{text:?}: {err}");
        assert!(
            err.starts_with(&format!("invoiced: {conf_arg}{want}")),
            "{text:?}: {err}"
        );
    }
    // A file line that conflicts with a flag is blamed on the line.
    std::fs::write(&conf, "hsm-passphrase\n").unwrap();
    let (code, err) = refused(&dir, &["--conf", conf_arg, "--hsm-passphrase-file=/p"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!("invoiced: {conf_arg}:1: the argument")),
        "{err}"
    );
}

#[test]
fn a_missing_conf_file_and_a_data_dir_named_in_its_own_config_are_refused() {
    let (tmp, dir) = data_dir(None);
    let missing = tmp.path().join("missing.conf");
    let (code, err) = refused(&dir, &["--conf", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!(
            "invoiced: {}: cannot read the config file: No such file",
            missing.display()
        )),
        "{err}"
    );
    std::fs::write(dir.join("config"), "data-dir=/elsewhere\n").unwrap();
    let (code, err) = refused(&dir, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!(
            "invoiced: {}:1: 'data-dir' cannot be set in the data dir's own config file",
            dir.join("config").display()
        )),
        "{err}"
    );
}

/// `invoiced serve ARGS` on `dir` with its stderr in `dir/../stderr.log`, up once its socket
/// answers.
fn spawn_logging(dir: &Path, args: &[&str]) -> (Child, PathBuf) {
    let log = dir.with_file_name("stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(dir.join("lightning-rpc")).is_err() {
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, log)
}

/// Every line of `log`, each checked to be a JSON object with a timestamp, level, target and
/// message.
fn json_lines(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
            for key in ["timestamp", "level", "target", "message"] {
                assert!(v[key].is_string(), "no {key}: {line}");
            }
            v
        })
        .collect()
}

#[test]
fn logs_are_json_lines_with_log_format_json_even_the_error_that_stops_the_daemon() {
    // From the data dir's config, to see the file reach the logging too.
    let (_tmp, dir) = data_dir(Some("log-format=json\nlog-level=info\nnetwork=regtest\n"));
    let (mut child, log) = spawn_logging(&dir, &[]);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let lines = json_lines(&log);
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    let read_from = format!("options read from {}", dir.join("config").display());
    assert!(messages.contains(&read_from.as_str()), "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("node ") && m.contains(" on regtest: ")),
        "{messages:?}"
    );
    assert!(lines.iter().all(|l| l["level"] != "ERROR"), "{lines:?}");
    assert!(messages.contains(&"shutting down"), "{messages:?}");

    // The error that stops start-up is a JSON line too (the data dir belongs to regtest).
    let out = Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["serve", "--network=signet", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    std::fs::write(&log, &out.stderr).unwrap();
    let lines = json_lines(&log);
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR", "{lines:?}");
    assert!(
        last["message"].as_str().unwrap().contains("regtest"),
        "{last}"
    );
}

#[test]
fn lnd_api_logs_json_lines_with_log_format_json() {
    use std::io::BufRead as _;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["lnd-api", "--log-format", "json"])
        .args([
            "--rest-listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .arg("--invoiced-rpc-file")
        .arg(tmp.path().join("invoiced-rpc"))
        .arg("--node-rpc-file")
        .arg(tmp.path().join("node-rpc"))
        .arg("--lnd-dir")
        .arg(tmp.path().join("lnd"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let log = tmp.path().join("first.log");
    std::fs::write(&log, &first).unwrap();
    let lines = json_lines(&log);
    assert_eq!(lines.len(), 1, "{first:?}");
    assert_eq!(lines[0]["target"], "invoiced::lnd", "{first}");
}

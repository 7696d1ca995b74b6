//! Starts the real daemon on a temporary data dir and talks to it over its socket.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The `hsm_secret` of Core Lightning's fixture: bytes 0x01..0x20.
pub fn fixture_secret() -> [u8; 32] {
    core::array::from_fn(|i| i as u8 + 1)
}

/// Core Lightning's node id for [`fixture_secret`].
pub const FIXTURE_NODE_ID: &str =
    "037d8d1109836a88daf2b86d6e52e12351f9c274f597b78eca941525b309096ca8";

/// A running daemon.
pub struct Daemon {
    pub dir: PathBuf,
    pub network: String,
    /// More options.
    pub args: Vec<String>,
    /// `serve`, or `standby`.
    pub command: &'static str,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl Daemon {
    /// A daemon on a new data dir holding the fixture secret, on regtest.
    pub fn start() -> Daemon {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("hsm_secret"), fixture_secret()).unwrap();
        let mut d = Daemon {
            dir,
            network: "regtest".into(),
            args: vec![],
            command: "serve",
            child: None,
            _tmp: Some(tmp),
        };
        d.spawn();
        d
    }

    /// A daemon on a new data dir holding the fixture secret, on regtest, with more `serve`
    /// options.
    pub fn start_with(args: &[String]) -> Daemon {
        Self::start_command("serve", args)
    }

    /// `command` (`serve` or `standby`) on a new data dir holding the fixture secret, on regtest.
    pub fn start_command(command: &'static str, args: &[String]) -> Daemon {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("hsm_secret"), fixture_secret()).unwrap();
        let mut d = Daemon {
            dir,
            network: "regtest".into(),
            args: args.to_vec(),
            command,
            child: None,
            _tmp: Some(tmp),
        };
        d.spawn();
        d
    }

    /// `serve` on this data dir with `args`, expected to refuse to start: its exit status and
    /// what it printed.
    pub fn refused_start(&self, args: &[String]) -> (std::process::ExitStatus, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_invoiced"))
            .args(["serve", "--data-dir"])
            .arg(&self.dir)
            .args(["--network", &self.network, "--log-level", "warn"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status,
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// A daemon on `dir`, which need not exist yet (the daemon creates it and its secret).
    pub fn start_in(dir: PathBuf) -> Daemon {
        Self::start_in_with(dir, &[])
    }

    /// As [`Daemon::start_in`], with more `serve` options.
    pub fn start_in_with(dir: PathBuf, args: &[&str]) -> Daemon {
        let args = args.iter().map(|a| a.to_string()).collect();
        let mut d = Daemon {
            dir,
            network: "regtest".into(),
            args,
            command: "serve",
            child: None,
            _tmp: None,
        };
        d.spawn();
        d
    }

    /// Starts the process on `self.dir` and waits for its socket.
    pub fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new(env!("CARGO_BIN_EXE_invoiced"))
            .args([self.command, "--data-dir"])
            .arg(&self.dir)
            .args(["--network", &self.network, "--log-level", "warn"])
            .args(&self.args)
            .stdout(Stdio::null())
            // INVOICED_TEST_LOGS=1 shows the daemons' logs.
            .stderr(if std::env::var_os("INVOICED_TEST_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(self.socket()).is_err() {
            assert!(Instant::now() < deadline, "daemon did not start");
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited at start: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("lightning-rpc")
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.socket())
    }

    /// One call on a fresh connection.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcErr> {
        self.client().call(method, params)
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY-free: use the kill command to send SIGTERM.
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap()
    }

    /// The running daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn restart(&mut self) {
        assert!(self.stop().success());
        self.spawn();
    }

    /// Restarts it with its clock `secs` later than the system's (`--dev-clock-offset`): the way
    /// to reach an expiry without waiting for it.
    pub fn restart_at_offset(&mut self, secs: i64) {
        assert!(self.stop().success());
        self.args.retain(|a| !a.starts_with("--dev-clock-offset"));
        self.args.push(format!("--dev-clock-offset={secs}"));
        self.spawn();
    }

    /// The log head sequence number from `getinfo`.
    pub fn head(&self) -> u64 {
        self.call("getinfo", json!([])).unwrap()["log_head_seq"]
            .as_u64()
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An error reply.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcErr {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

/// One connection.
pub struct Client {
    stream: UnixStream,
    next_id: u64,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(path: &Path) -> Client {
        let stream = UnixStream::connect(path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Client {
            stream,
            next_id: 1,
            buf: Vec::new(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends what the daemon accepts of `bytes`; it may close the connection part-way.
    pub fn send_raw_lossy(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Reads one response (a JSON object followed by a blank line); `None` on EOF.
    pub fn read_response(&mut self) -> Option<Value> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let v = serde_json::from_slice(&self.buf[..pos]).expect("response is JSON");
                self.buf.drain(..pos + 2);
                return Some(v);
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, RpcErr> {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(req.to_string().as_bytes());
        let resp = self.read_response().expect("a response");
        assert_eq!(resp["id"], json!(id));
        into_result(resp)
    }
}

pub fn into_result(resp: Value) -> Result<Value, RpcErr> {
    match resp.get("error") {
        Some(e) => Err(RpcErr {
            code: e["code"].as_i64().unwrap(),
            message: e["message"].as_str().unwrap().to_owned(),
            data: e.get("data").cloned(),
        }),
        None => Ok(resp["result"].clone()),
    }
}

/// Parses a bolt11 with lightning-invoice, checks its signature and that it recovers `node_id`.
pub fn check_bolt11(bolt11: &str, node_id: &str) -> lightning_invoice::Bolt11Invoice {
    let inv: lightning_invoice::Bolt11Invoice =
        bolt11.parse().expect("lightning-invoice parses it");
    inv.check_signature().expect("signature valid");
    assert_eq!(inv.recover_payee_pub_key().to_string(), node_id);
    inv
}

/// Polls `check` until it holds, for at most `secs` seconds: for what the daemon does on its own
/// after answering (a sweep at start-up, a timer).
pub fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

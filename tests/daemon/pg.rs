//! Replication to a real PostgreSQL 15 (`serve --replicate-to`): every batch shipped before it
//! is acknowledged, nothing unacknowledged in PostgreSQL, fencing by epoch, the start-up
//! reconciliation, and a replicated data dir that refuses to run alone.
//!
//! The cluster is made per test with `initdb` and `pg_ctl` in a temporary directory, run as the
//! `postgres` user (PostgreSQL refuses root), on 127.0.0.1 and a free port. Without PostgreSQL
//! (or without root to run it as `postgres`) the tests are skipped with a message, except in CI
//! (`CI=true`), where they fail.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{eventually, Daemon};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL cluster of a test's own.
pub struct Pg {
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .unwrap()
}

impl Pg {
    /// A running cluster, or `None` (with the reason printed) where this machine cannot run one
    /// and this is not CI.
    pub fn start() -> Option<Pg> {
        let why = if !PathBuf::from(BIN).join("initdb").exists() {
            Some("PostgreSQL 15 is not installed (scripts/test.sh installs Debian's postgresql)")
        } else if unsafe_uid() != 0 {
            Some("not root: cannot run PostgreSQL as the postgres user")
        } else {
            None
        };
        if let Some(why) = why {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI needs PostgreSQL for these tests: {why}"
            );
            eprintln!("skipping a PostgreSQL test: {why}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_owned();
        assert!(Command::new("chown")
            .args(["postgres:postgres", &path])
            .status()
            .unwrap()
            .success());
        let out = as_postgres(&[
            &format!("{BIN}/initdb"),
            "-D",
            &format!("{path}/db"),
            "-A",
            "trust",
            "-U",
            "postgres",
        ]);
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Pg { dir, port };
        pg.up();
        Some(pg)
    }

    fn path(&self) -> String {
        self.dir.path().to_str().unwrap().to_owned()
    }

    /// Starts the server (again).
    pub fn up(&self) {
        let p = self.path();
        let opts = format!("-p {} -k {p} -c listen_addresses=127.0.0.1", self.port);
        let out = as_postgres(&[
            &format!("{BIN}/pg_ctl"),
            "-D",
            &format!("{p}/db"),
            "-o",
            &opts,
            "-l",
            &format!("{p}/log"),
            "-w",
            "start",
        ]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops it (fast: open connections are cut).
    pub fn down(&self) {
        let p = self.path();
        let out = as_postgres(&[
            &format!("{BIN}/pg_ctl"),
            "-D",
            &format!("{p}/db"),
            "-m",
            "fast",
            "-w",
            "stop",
        ]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).unwrap()
    }

    /// seq → hex hash of every record PostgreSQL holds.
    pub fn records(&self) -> BTreeMap<u64, String> {
        self.client()
            .query("SELECT seq, hash FROM invoiced_log ORDER BY seq", &[])
            .unwrap()
            .iter()
            .map(|r| {
                (
                    u64::try_from(r.get::<_, i64>(0)).unwrap(),
                    hex::encode(r.get::<_, Vec<u8>>(1)),
                )
            })
            .collect()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let p = self.path();
        let _ = as_postgres(&[
            &format!("{BIN}/pg_ctl"),
            "-D",
            &format!("{p}/db"),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
    }
}

fn unsafe_uid() -> u32 {
    // The real uid, from /proc (no libc call needed).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

/// seq → hex hash of every record of the local log, read by the offline tool.
fn local_records(d: &Daemon) -> BTreeMap<u64, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["events", "--json", "--data-dir"])
        .arg(&d.dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["seq"].as_u64().unwrap(),
                v["hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn invoice(d: &Daemon, label: &str) -> Result<Value, crate::harness::RpcErr> {
    d.call(
        "invoice",
        json!({"amount_msat": 1000, "label": label, "description": "replicated"}),
    )
}

#[test]
fn every_acknowledged_batch_is_in_postgres_and_nothing_else_is() {
    let Some(pg) = Pg::start() else { return };
    let mut d = Daemon::start_with(&[format!("--replicate-to={}", pg.url())]);
    assert_eq!(
        d.call("getinfo", json!({})).unwrap()["replication"],
        json!({"role": "primary", "epoch": 1, "lag_ms": 0})
    );
    // Concurrent clients: batches of several records each.
    let sock = d.socket();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut c = crate::harness::Client::connect(&sock);
                for i in 0..25 {
                    c.call("invoice", json!({"amount_msat": 1000, "label": format!("c{t}-{i}"), "description": "d"})).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let paid = invoice(&d, "paid").unwrap();
    d.call("settleinvoice", json!({"payment_hash": paid["payment_hash"], "amount_msat": 1000, "payment_secret": paid["payment_secret"]})).unwrap();
    assert_eq!(
        pg.records(),
        local_records(&d),
        "the same records, hash for hash"
    );
    assert_eq!(pg.records().len() as u64, d.head());

    // PostgreSQL down: writes fail with -1 naming replication, and nothing is stored anywhere.
    let head = d.head();
    pg.down();
    let e = invoice(&d, "while-down").unwrap_err();
    assert_eq!(e.code, -1);
    assert!(e.message.contains("replication"), "{}", e.message);
    assert_eq!(d.head(), head);
    assert!(d
        .call("listinvoices", json!({"label": "while-down"}))
        .unwrap()["invoices"]
        .as_array()
        .unwrap()
        .is_empty());
    pg.up();
    eventually(20, "writes resume once PostgreSQL is back", || {
        invoice(&d, "after").is_ok()
    });
    assert_eq!(pg.records(), local_records(&d));
    assert!(!d
        .call("listinvoices", json!({}))
        .unwrap()
        .to_string()
        .contains("while-down"));

    // A replicated data dir does not start alone: its writes would never reach the copy.
    assert!(d.stop().success());
    let (status, out) = d.refused_start(&[]);
    assert!(
        !status.success() && out.contains("start it with --replicate-to"),
        "{out}"
    );
    d.spawn();
    assert!(invoice(&d, "again").is_ok());
}

#[test]
fn a_deposed_primary_stops_writing_and_a_live_lease_makes_a_standby() {
    let Some(pg) = Pg::start() else { return };
    let args = [format!("--replicate-to={}", pg.url())];
    let d = Daemon::start_with(&args);
    invoice(&d, "first").unwrap();
    // A second invoiced for the same node (same hsm_secret, another data dir) while the lease is
    // renewed: it does not take the stream, it follows it as a standby.
    let second = Daemon::start_with(&args);
    assert_eq!(
        second.call("getinfo", json!({})).unwrap()["replication"]["role"],
        json!("standby")
    );
    eventually(10, "the second caught up", || second.head() == d.head());
    let e = invoice(&second, "on-the-standby").unwrap_err();
    assert_eq!(e.code, -1);
    assert!(e.message.contains("standby"), "{}", e.message);
    drop(second);

    // Another process takes the stream (as a promotion does): the old primary's next append
    // fails, naming why, and its log does not grow.
    pg.client()
        .execute(
            "UPDATE invoiced_lease SET epoch = epoch + 1, holder = 'elsewhere'",
            &[],
        )
        .unwrap();
    let head = d.head();
    let e = invoice(&d, "split-brain").unwrap_err();
    assert_eq!(e.code, -1);
    assert!(
        e.message.contains("deposed") && e.message.contains("epoch 2"),
        "{}",
        e.message
    );
    assert_eq!(d.head(), head);
    assert_eq!(
        pg.records().len() as u64,
        head,
        "only one append per epoch: nothing of the deposed one"
    );
    assert_eq!(
        d.call("getinfo", json!({})).unwrap()["replication"]["role"],
        json!("deposed")
    );
    assert!(invoice(&d, "still-deposed")
        .unwrap_err()
        .message
        .contains("deposed"));
}

#[test]
#[cfg_attr(
    not(feature = "dev-hooks"),
    ignore = "needs the test hooks: --features invoiced/dev-hooks (scripts/test.sh)"
)]
fn a_local_tail_that_never_reached_postgres_is_dropped_at_start() {
    let Some(pg) = Pg::start() else { return };
    let url = format!("--replicate-to={}", pg.url());
    let mut d = Daemon::start_with(&[url.clone(), "--dev-crash-before-ship=3".into()]);
    for i in 0..3 {
        invoice(&d, &format!("acked-{i}")).unwrap();
    }
    // The fourth batch reaches the local log, then the process dies before shipping it: the
    // client gets no answer.
    let mut c = d.client();
    c.send_raw(br#"{"jsonrpc":"2.0","id":1,"method":"invoice","params":[1000,"never-acked","d"]}"#);
    assert_eq!(c.read_response(), None);
    d.kill();
    assert_eq!(
        local_records(&d).len(),
        4,
        "the unacknowledged record is in the local log"
    );
    d.args = vec![url];
    d.spawn();
    assert_eq!(d.head(), 3, "dropped at start: it never reached PostgreSQL");
    assert_eq!(pg.records(), local_records(&d));
    assert!(d
        .call("listinvoices", json!({"label": "never-acked"}))
        .unwrap()["invoices"]
        .as_array()
        .unwrap()
        .is_empty());
    invoice(&d, "never-acked").unwrap();
    assert_eq!(pg.records(), local_records(&d));
    let out = Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["audit", "--data-dir"])
        .arg(&d.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// What one client saw: acknowledged (label, bolt11), and the labels left unanswered.
type Outcome = (Vec<(String, String)>, Vec<String>);

/// `n` clients creating invoices (with `idempotent`) until told to stop; what was acknowledged,
/// label → bolt11, and the labels whose request got no answer or an error.
fn clients(
    d: &Daemon,
    n: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<Outcome>> {
    (0..n)
        .map(|t| {
            let (sock, stop) = (d.socket(), stop.clone());
            std::thread::spawn(move || {
                let (mut acked, mut unanswered) = (Vec::new(), Vec::new());
                let mut c = crate::harness::Client::connect(&sock);
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let label = format!("k{t}-{i}");
                    i += 1;
                    let req = json!({"jsonrpc": "2.0", "id": i, "method": "invoice",
                                     "params": {"amount_msat": 1000 + i, "label": label, "description": "ha", "idempotent": true}});
                    c.send_raw(req.to_string().as_bytes());
                    match c.read_response() {
                        Some(v) if v.get("result").is_some() => acked.push((label, v["result"]["bolt11"].as_str().unwrap().to_owned())),
                        _ => {
                            unanswered.push(label);
                            break;
                        }
                    }
                }
                (acked, unanswered)
            })
        })
        .collect()
}

#[test]
fn the_standby_has_every_acknowledged_invoice_after_the_primary_is_killed_and_promoted() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.url();
    let mut primary = Daemon::start_with(&[format!("--replicate-to={url}")]);
    let standby = Daemon::start_command("standby", &[format!("--replicate-from={url}")]);
    assert_eq!(
        standby.call("getinfo", json!({})).unwrap()["replication"],
        json!({"role": "standby", "epoch": 1, "lag_ms": 0})
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let running = clients(&primary, 64, stop.clone());
    std::thread::sleep(std::time::Duration::from_millis(1500));
    primary.kill();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut acked, mut unanswered) = (Vec::new(), Vec::new());
    for t in running {
        let (a, u) = t.join().unwrap();
        acked.extend(a);
        unanswered.extend(u);
    }
    assert!(
        acked.len() > 100,
        "the load ran: {} acknowledged",
        acked.len()
    );
    // Reads are served while standing by; writes are not.
    assert!(invoice(&standby, "too-early")
        .unwrap_err()
        .message
        .contains("standby"));
    let promoted = standby.call("promote", json!({})).unwrap();
    assert_eq!(promoted, json!({"role": "primary", "epoch": 2}));
    assert_eq!(
        standby.call("getinfo", json!({})).unwrap()["replication"]["role"],
        json!("primary")
    );
    // Every acknowledged invoice is there, with the same bolt11.
    for (label, bolt11) in &acked {
        let listed = standby
            .call("listinvoices", json!({"label": label}))
            .unwrap();
        assert_eq!(
            listed["invoices"][0]["bolt11"].as_str(),
            Some(bolt11.as_str()),
            "{label} lost in the takeover"
        );
    }
    // The copies agree, hash for hash.
    assert_eq!(pg.records(), local_records(&standby));
    // Clients retry against the new primary: the acknowledged get their original invoice back,
    // the unanswered get theirs made now.
    for (label, bolt11) in acked.iter().take(20) {
        let i: u64 = label.rsplit('-').next().unwrap().parse().unwrap();
        let again = standby.call("invoice", json!({"amount_msat": 1001 + i, "label": label, "description": "ha", "idempotent": true})).unwrap();
        assert_eq!(again["bolt11"].as_str(), Some(bolt11.as_str()));
    }
    for label in &unanswered {
        let i: u64 = label.rsplit('-').next().unwrap().parse().unwrap();
        standby.call("invoice", json!({"amount_msat": 1001 + i, "label": label, "description": "ha", "idempotent": true})).unwrap();
    }
    assert_eq!(pg.records(), local_records(&standby));
    let out = Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["audit", "--data-dir"])
        .arg(&standby.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The old primary comes back: a newer epoch holds the stream, so it follows as a standby,
    // its unacknowledged tail (if the kill left one) dropped.
    primary.spawn();
    assert_eq!(
        primary.call("getinfo", json!({})).unwrap()["replication"]["role"],
        json!("standby")
    );
    eventually(10, "the old primary caught up", || {
        local_records(&primary) == pg.records()
    });
    assert!(invoice(&primary, "old-primary")
        .unwrap_err()
        .message
        .contains("standby"));
}

#[test]
fn a_standby_takes_over_once_the_primary_lease_lapses() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.url();
    let mut primary = Daemon::start_with(&[format!("--replicate-to={url}")]);
    let port = crate::metrics::free_port();
    let standby = Daemon::start_command(
        "standby",
        &[
            format!("--replicate-from={url}"),
            format!("--metrics-listen=127.0.0.1:{port}"),
        ],
    );
    let role = |name: &str| {
        let m = crate::metrics::samples(&crate::metrics::get(port, "/metrics").1);
        (
            m[&format!("invoiced_replication_role{{role=\"{name}\"}}")],
            m["invoiced_replication_epoch"],
        )
    };
    assert_eq!(role("standby"), (1.0, 1.0), "the metrics show a standby");
    invoice(&primary, "before").unwrap();
    primary.kill();
    // Renewed every 3 s, lapsed after 10 s without: then the standby takes over by itself.
    eventually(30, "the standby took over", || {
        standby.call("getinfo", json!({})).unwrap()["replication"]["role"] == json!("primary")
    });
    assert_eq!(
        standby.call("getinfo", json!({})).unwrap()["replication"]["epoch"],
        json!(2)
    );
    assert_eq!(
        standby
            .call("listinvoices", json!({"label": "before"}))
            .unwrap()["invoices"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    invoice(&standby, "after").unwrap();
    assert_eq!(pg.records(), local_records(&standby));
    assert_eq!(
        role("primary"),
        (1.0, 2.0),
        "and then the primary it became"
    );
    assert_eq!(role("standby").0, 0.0);
}

#[test]
fn every_kind_of_event_replicates_and_the_standby_lists_what_the_primary_lists() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.url();
    let mut primary = Daemon::start_with(&[format!("--replicate-to={url}")]);
    let standby = Daemon::start_command("standby", &[format!("--replicate-from={url}")]);
    let paid = invoice(&primary, "paid").unwrap();
    primary.call("settleinvoice", json!({"payment_hash": paid["payment_hash"], "amount_msat": 1000, "payment_secret": paid["payment_secret"]})).unwrap();
    invoice(&primary, "deleted").unwrap();
    primary
        .call(
            "delinvoice",
            json!({"label": "deleted", "status": "unpaid"}),
        )
        .unwrap();
    primary
        .call(
            "invoice",
            json!({"amount_msat": 5, "label": "expired", "description": "e", "expiry": 1}),
        )
        .unwrap();
    let held = primary
        .call(
            "holdinvoice",
            json!({"amount_msat": 2000, "description": "h"}),
        )
        .unwrap();
    let parts = json!([{"htlc": "1x1x1/0", "amount_msat": 2000, "cltv_expiry": 500}]);
    primary.call("holdaccept", json!({"payment_hash": held["payment_hash"], "payment_secret": held["payment_secret"], "parts": parts, "blockheight": 100})).unwrap();
    let channels = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/listpeerchannels.json"
    ))
    .unwrap();
    let channels: Value = serde_json::from_str(&channels).unwrap();
    primary
        .call("syncchannels", json!({"channels": channels["channels"]}))
        .unwrap();
    eventually(10, "the expired one expired", || {
        primary
            .call("listinvoices", json!({"label": "expired"}))
            .unwrap()["invoices"][0]["status"]
            == json!("expired")
    });
    let same = |method: &str| {
        let (p, s) = (
            primary.call(method, json!({})).unwrap(),
            standby.call(method, json!({})).unwrap(),
        );
        (p == s)
            .then_some(())
            .ok_or(format!("{method}: primary {p} standby {s}"))
    };
    eventually(10, "the standby caught up", || {
        standby.head() == primary.head()
    });
    for method in ["listinvoices", "holdinvoicelookup", "listincoming"] {
        same(method).unwrap();
    }
    assert_eq!(pg.records(), local_records(&standby));
    // A waiter on the standby is woken by the primary's events.
    let mut waiter = crate::harness::Client::connect(&standby.socket());
    let next = standby
        .call(
            "wait",
            json!({"subsystem": "invoices", "indexname": "created", "nextvalue": 0}),
        )
        .unwrap()["created"]
        .as_u64()
        .unwrap()
        + 1;
    let wait = std::thread::spawn(move || {
        waiter.call(
            "wait",
            json!({"subsystem": "invoices", "indexname": "created", "nextvalue": next}),
        )
    });
    invoice(&primary, "woken").unwrap();
    let woke = wait.join().unwrap().unwrap();
    assert_eq!(woke["invoices"]["label"], json!("woken"), "{woke}");
    assert!(primary.stop().success());
}

#[test]
fn postgres_stopped_under_load_loses_nothing_acknowledged_and_shows_nothing_else() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.url();
    let primary = Daemon::start_with(&[format!("--replicate-to={url}")]);
    let standby = Daemon::start_command("standby", &[format!("--replicate-from={url}")]);
    let sock = primary.socket();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (sock, stop) = (sock.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut c = crate::harness::Client::connect(&sock);
                let (mut acked, mut refused, mut doubtful) = (Vec::new(), Vec::new(), Vec::new());
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let label = format!("l{t}-{i}");
                    i += 1;
                    match c.call(
                        "invoice",
                        json!({"amount_msat": 1000, "label": label, "description": "d"}),
                    ) {
                        Ok(v) => acked.push((label, v["bolt11"].as_str().unwrap().to_owned())),
                        // The batch cut by the stop: it may or may not be there.
                        Err(e) if e.message.contains("in doubt") => doubtful.push(label),
                        Err(e) => {
                            assert_eq!(e.code, -1, "{}", e.message);
                            refused.push(label);
                        }
                    }
                }
                (acked, refused, doubtful)
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    pg.down();
    // Longer than the writer looks up a commit whose answer was lost (5 s): the stop may cut one
    // in flight, and the writer then waits that long before it refuses anything.
    std::thread::sleep(std::time::Duration::from_millis(6000));
    pg.up();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut acked, mut refused, mut doubtful) = (Vec::new(), Vec::new(), Vec::new());
    for t in threads {
        let (a, r, d) = t.join().unwrap();
        acked.extend(a);
        refused.extend(r);
        doubtful.extend(d);
    }
    eprintln!(
        "outage: {} acknowledged, {} refused, {} in doubt",
        acked.len(),
        refused.len(),
        doubtful.len()
    );
    assert!(!refused.is_empty(), "PostgreSQL's outage refused some");
    eventually(10, "the standby caught up", || {
        standby.head() == primary.head()
    });
    assert_eq!(pg.records(), local_records(&primary));
    assert_eq!(pg.records(), local_records(&standby));
    let listed = standby.call("listinvoices", json!({})).unwrap();
    let on_standby: BTreeMap<String, String> = listed["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["label"].as_str().unwrap().to_owned(),
                i["bolt11"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (label, bolt11) in &acked {
        assert_eq!(
            on_standby.get(label),
            Some(bolt11),
            "acknowledged {label} missing"
        );
    }
    for label in &refused {
        assert!(!on_standby.contains_key(label), "refused {label} appeared");
    }
    // A batch in doubt is all there or all absent, as PostgreSQL decided.
    let appeared = doubtful
        .iter()
        .filter(|l| on_standby.contains_key(*l))
        .count();
    assert!(
        appeared == 0 || appeared == doubtful.len(),
        "{appeared} of {} in doubt appeared",
        doubtful.len()
    );
    assert_eq!(on_standby.len(), acked.len() + appeared);
}

#[test]
fn split_brain_never_forks_the_stream() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.url();
    let old = Daemon::start_with(&[format!("--replicate-to={url}")]);
    let new = Daemon::start_command("standby", &[format!("--replicate-from={url}")]);
    invoice(&old, "shared").unwrap();
    eventually(10, "caught up", || new.head() == old.head());
    // Promoted while the old primary still runs and believes it is the primary.
    assert_eq!(new.call("promote", json!({})).unwrap()["epoch"], json!(2));
    // Both write at once; only the new epoch's appends reach the stream.
    let both: Vec<_> = [(old.socket(), "old"), (new.socket(), "new")]
        .into_iter()
        .map(|(sock, who)| {
            std::thread::spawn(move || {
                let mut c = crate::harness::Client::connect(&sock);
                (0..50).filter(|i| c.call("invoice", json!({"amount_msat": 1000, "label": format!("{who}-{i}"), "description": "d"})).is_ok()).count()
            })
        })
        .collect();
    let counts: Vec<usize> = both.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        counts,
        [0, 50],
        "the deposed primary wrote nothing, the new one everything"
    );
    // The stream is one chain: every record continues the one before it.
    let rows = pg
        .client()
        .query(
            "SELECT seq, prev_hash, hash FROM invoiced_log ORDER BY seq",
            &[],
        )
        .unwrap();
    let mut prev = vec![0u8; 32];
    for (n, r) in rows.iter().enumerate() {
        assert_eq!(r.get::<_, i64>(0), i64::try_from(n).unwrap() + 1);
        assert_eq!(r.get::<_, Vec<u8>>(1), prev);
        prev = r.get(2);
    }
    assert_eq!(pg.records(), local_records(&new));
}

#[test]
fn losing_the_standby_costs_the_primary_nothing_and_it_catches_up_on_return() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.url();
    let primary = Daemon::start_with(&[format!("--replicate-to={url}")]);
    let mut standby = Daemon::start_command("standby", &[format!("--replicate-from={url}")]);
    invoice(&primary, "a").unwrap();
    standby.kill();
    for i in 0..20 {
        invoice(&primary, &format!("while-away-{i}")).unwrap();
    }
    standby.spawn();
    eventually(10, "the standby caught up", || {
        standby.head() == primary.head()
    });
    assert_eq!(pg.records(), local_records(&standby));
    assert_eq!(
        primary.call("listinvoices", json!({})).unwrap(),
        standby.call("listinvoices", json!({})).unwrap()
    );
    // The lag reads 0 once a look finds nothing more to fetch.
    eventually(5, "lag back to 0", || {
        standby.call("getinfo", json!({})).unwrap()["replication"]["lag_ms"] == json!(0)
    });
}

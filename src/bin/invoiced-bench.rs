//! `invoiced-bench`: measures a running daemon over its socket, and the machine's limits.
//!
//! - `invoiced-bench load --rpc-file PATH --clients C --seconds S [--daemon-pid PID]
//!   [--method M] [--cpu NAME=PID ...]`: C clients, each on its own connection, send `invoice`
//!   (or M with no params: a ceiling) one after another for S seconds, to any socket that speaks
//!   Core Lightning's framing (invoiced's, or lightningd's); prints calls/s and latency
//!   p50/p99/max, with `--daemon-pid` the CPU time per call of each daemon thread and of the load
//!   tool itself, and with `--cpu` that of each named process (lightningd, the plugin, ...).
//! - `invoiced-bench list --rpc-file PATH --repeat N [--lookups-only]`: times `listinvoices` of
//!   everything, and lookups by label and payment hash (of 200 invoices spread over the index).
//! - `invoiced-bench channels --rpc-file PATH --count N`: feeds N synthetic public channels
//!   (`syncchannels`), so that load runs choose route hints among them.
//! - `invoiced-bench fill --data-dir DIR --count N`: appends N real signed invoices straight to
//!   a stopped data dir's log (batches of 1,000), to measure replay and start-up at scale.
//! - `invoiced-bench raw-replay --data-dir DIR`: iterates and decodes a stopped data dir's
//!   records (the floor for replay); `replay` runs the daemon's own replay of it, in process.
//! - `invoiced-bench drop-checkpoint --data-dir DIR`: removes a stopped data dir's checkpoint,
//!   so the next start replays the whole log.
//! - `invoiced-bench startup --data-dir DIR [--drop-checkpoint]`: starts `invoiced serve` (the
//!   binary beside this one) on a stopped data dir, times until its socket accepts, reads its
//!   peak and current RSS, then stops it with SIGTERM and times the clean shutdown.
//! - `invoiced-bench limits --dir DIR`: the physical limits in the same run: raw in-process
//!   build+sign+encode on 1 and 2 threads, raw fdatasync latency and RocksDB sync-write latency
//!   on DIR's disk.


use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use invoiced_actors::policy::bolt11::{build_raw, InvoiceDraft};
use invoiced_actors::key_signer::{EntropySource, KeySigner, OsEntropy};
use invoiced_events::Network;
use clap::{Args, Parser, Subcommand};
use invoiced_actors::store::keys::CF_EVENTS;
use invoiced_actors::store::open::open_read_only;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "invoiced-bench", about = "Measures a running invoiced over its socket, and this machine's limits")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Clients send calls one after another for a while; calls/s, latency, CPU per call.
    Load(LoadArgs),
    /// Times `listinvoices` of everything, and lookups by label and payment hash.
    List {
        /// The socket.
        #[arg(long)]
        rpc_file: PathBuf,
        /// Whole listings to time.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Only the lookups (of 200 invoices spread over the index), no whole listing.
        #[arg(long)]
        lookups_only: bool,
    },
    /// Feeds synthetic public channels (`syncchannels`).
    Channels {
        /// The socket.
        #[arg(long)]
        rpc_file: PathBuf,
        /// How many.
        #[arg(long, default_value_t = 1000)]
        count: u32,
    },
    /// Appends real signed invoices straight to a stopped data dir's log.
    Fill {
        /// The data dir.
        #[arg(long)]
        data_dir: PathBuf,
        /// How many.
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
    },
    /// Iterates and decodes a stopped data dir's records: the floor for replay.
    RawReplay {
        /// The data dir.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// The daemon's own replay of a stopped data dir, in process.
    Replay {
        /// The data dir.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Removes a stopped data dir's checkpoint.
    DropCheckpoint {
        /// The data dir.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Starts `invoiced serve` on a stopped data dir: time to the socket, RSS, shutdown time.
    Startup {
        /// The data dir.
        #[arg(long)]
        data_dir: PathBuf,
        /// Remove the checkpoint first (a full replay).
        #[arg(long)]
        drop_checkpoint: bool,
    },
    /// The machine's limits: raw sign+encode on 1 and 2 threads, fdatasync, RocksDB sync put.
    Limits {
        /// Where to probe the disk.
        #[arg(long)]
        dir: PathBuf,
        /// Seconds per signing measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
}

#[derive(Args)]
struct LoadArgs {
    /// The socket (invoiced's, or lightningd's).
    #[arg(long)]
    rpc_file: PathBuf,
    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// How long.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// invoiced's pid: report its CPU per call by thread.
    #[arg(long)]
    daemon_pid: Option<u32>,
    /// The method (`invoice` by default; any other is sent with no params).
    #[arg(long, default_value = "invoice")]
    method: String,
    /// NAME=PID: report that process's CPU per call too (repeatable).
    #[arg(long = "cpu", value_parser = named_pid)]
    cpu: Vec<(String, u32)>,
}

fn named_pid(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s.split_once('=').ok_or("expected NAME=PID")?;
    Ok((name.to_owned(), pid.parse().map_err(|_| format!("not a pid: {pid}"))?))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Conn {
    s: UnixStream,
    buf: Vec<u8>,
}

impl Conn {
    fn new(path: &Path) -> Conn {
        Conn { s: UnixStream::connect(path).expect("connect to the daemon"), buf: Vec::new() }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        serde_json::from_slice(&self.call_raw(method, params)).expect("json")
    }

    /// Sends a request and returns the response's bytes once all have arrived (unparsed, so
    /// that timings measure the daemon, not this client's JSON parser).
    fn call_raw(&mut self, method: &str, params: Value) -> Vec<u8> {
        let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        self.s.write_all(req.to_string().as_bytes()).expect("write");
        let mut scanned = 0;
        loop {
            if let Some(pos) = self.buf[scanned..].windows(2).position(|w| w == b"\n\n") {
                let end = scanned + pos;
                let response = self.buf[..end].to_vec();
                self.buf.drain(..end + 2);
                return response;
            }
            scanned = self.buf.len().saturating_sub(1);
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).expect("read");
            assert!(n > 0, "daemon closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// CPU seconds (user + system) of each thread of process `pid`, with the thread's name. Threads
/// that end during a run drop out of the sums; the daemon's threads live as long as it does.
fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let ticks = 100.0; // USER_HZ on Linux
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return vec![] };
    tasks
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let main = dir.file_name().and_then(|n| n.to_str()) == Some(&pid.to_string());
            // The main thread runs the RPC server and the actors; the daemon's unnamed others are
            // the KeySigner threads.
            let name = if main { "main".to_owned() } else { std::fs::read_to_string(dir.join("comm")).ok()?.trim().to_owned() };
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let (u, s): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
            Some((name, (u + s) / ticks))
        })
        .collect()
}

/// One load client: its own connection, one `invoice` after another until `deadline`; returns
/// the latencies and how many answers were errors.
async fn client(path: PathBuf, prefix: String, method: String, deadline: Instant) -> (Vec<Duration>, u64) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::UnixStream::connect(&path).await.expect("connect to the daemon");
    let (mut lat, mut errors, mut buf) = (Vec::new(), 0u64, Vec::with_capacity(4096));
    let mut chunk = vec![0u8; 16384];
    let mut i = 0u64;
    while Instant::now() < deadline {
        let req = if method == "invoice" {
            json!({"jsonrpc": "2.0", "id": 1, "method": "invoice", "params": [1000 + i, format!("{prefix}-{i}"), "bench"]})
        } else {
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}})
        };
        let t = Instant::now();
        s.write_all(req.to_string().as_bytes()).await.expect("write");
        let end = loop {
            if let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
                break pos;
            }
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "daemon closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        };
        lat.push(t.elapsed());
        // invoiced writes `{"jsonrpc":"2.0","id":1,` then `"result"` or `"error"`; others are parsed.
        if !buf[..end].starts_with(br#"{"jsonrpc":"2.0","id":1,"result""#)
            && serde_json::from_slice::<Value>(&buf[..end]).map_or(true, |v| v.get("result").is_none())
        {
            errors += 1;
        }
        buf.drain(..end + 2);
        i += 1;
    }
    (lat, errors)
}

fn load(args: LoadArgs) {
    let LoadArgs { rpc_file: path, clients, seconds, daemon_pid, method, cpu: processes } = args;
    let run = format!("{:08x}", std::process::id() ^ (Instant::now().elapsed().subsec_nanos()));
    let run = format!("{run}{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    let process_cpu = |pid: u32| thread_cpu(pid).iter().map(|(_, s)| s).sum::<f64>();
    let processes_before: Vec<f64> = processes.iter().map(|(_, pid)| process_cpu(*pid)).collect();
    let before = daemon_pid.map(thread_cpu);
    let own_before = thread_cpu(std::process::id());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    // One thread multiplexes every client's connection (epoll), so the load tool takes as
    // little as it can of the cores the daemon runs on.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|c| tokio::spawn(client(path.clone(), format!("bench-{run}-{c}"), method.clone(), deadline)))
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("client task"));
        }
        results
    });
    let mut all = Vec::new();
    let mut errors = 0;
    for (l, e) in results {
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    // CPU per invoice, by thread name (summed over threads of one name), in microseconds.
    let per_invoice = |before: &[(String, f64)], after: &[(String, f64)]| -> Value {
        let mut by_name = serde_json::Map::new();
        for (name, secs) in after {
            let was: f64 = before.iter().filter(|(n, _)| n == name).map(|(_, s)| s).sum();
            let entry = by_name.entry(name.clone()).or_insert(json!(0.0));
            *entry = json!(entry.as_f64().unwrap_or(0.0) + (secs - was) * 1e6 / all.len().max(1) as f64);
        }
        Value::Object(by_name)
    };
    let sum_names = |v: &[(String, f64)]| -> Vec<(String, f64)> { vec![("total".into(), v.iter().map(|(_, s)| s).sum())] };
    let cpu = daemon_pid.zip(before).map(|(pid, before)| {
        let after = thread_cpu(pid);
        json!({
            "daemon_us_per_invoice_by_thread": per_invoice(&before, &after),
            "daemon_us_per_invoice": per_invoice(&sum_names(&before), &sum_names(&after))["total"],
            "load_tool_us_per_invoice": per_invoice(&sum_names(&own_before), &sum_names(&thread_cpu(std::process::id())))["total"],
        })
    });
    let mut by_process = serde_json::Map::new();
    for ((name, pid), was) in processes.iter().zip(&processes_before) {
        by_process.insert(name.clone(), json!((process_cpu(*pid) - was) * 1e6 / all.len().max(1) as f64));
    }
    by_process.insert("load tool".into(), json!((process_cpu(std::process::id()) - own_before.iter().map(|(_, s)| s).sum::<f64>()) * 1e6 / all.len().max(1) as f64));
    let out = json!({
        "method": method,
        "cpu_us_per_call_by_process": by_process,
        "clients": clients,
        "invoices": all.len(),
        "errors": errors,
        "seconds": elapsed,
        "invoices_per_s": all.len() as f64 / elapsed,
        "p50_ms": ms(percentile(&all, 0.5)),
        "p99_ms": ms(percentile(&all, 0.99)),
        "max_ms": ms(all.last().copied().unwrap_or_default()),
        "cpu": cpu,
    });
    println!("{out}");
}

fn list(path: &Path, repeat: usize, lookups_only: bool) {
    let mut conn = Conn::new(path);
    let mut list_times = Vec::new();
    let invoices: Vec<Value> = if lookups_only {
        // Sample 200 invoices spread over the created index instead of listing them all.
        let info = conn.call("getinfo", json!([]));
        let n = info["result"]["last_created_index"].as_u64().unwrap_or(0);
        (0..200u64)
            .filter_map(|i| {
                let r = conn.call("listinvoices", json!({"index": "created", "start": 1 + i * n / 200, "limit": 1}));
                r["result"]["invoices"].get(0).cloned()
            })
            .collect()
    } else {
        let mut last = Vec::new();
        for _ in 0..repeat {
            let t = Instant::now();
            last = conn.call_raw("listinvoices", json!({}));
            list_times.push(t.elapsed());
        }
        let last: Value = serde_json::from_slice(&last).expect("json");
        last["result"]["invoices"].as_array().cloned().unwrap_or_default()
    };
    let mut label_times = Vec::new();
    let mut hash_times = Vec::new();
    for inv in invoices.iter().step_by((invoices.len() / 200).max(1)) {
        let t = Instant::now();
        conn.call_raw("listinvoices", json!({"label": inv["label"]}));
        label_times.push(t.elapsed());
        let t = Instant::now();
        conn.call_raw("listinvoices", json!({"payment_hash": inv["payment_hash"]}));
        hash_times.push(t.elapsed());
    }
    list_times.sort();
    label_times.sort();
    hash_times.sort();
    println!("{}", json!({
        "invoices": invoices.len(),
        "listinvoices_p50_ms": ms(percentile(&list_times, 0.5)),
        "lookup_label_p50_ms": ms(percentile(&label_times, 0.5)),
        "lookup_hash_p50_ms": ms(percentile(&hash_times, 0.5)),
    }));
}

fn channels(path: &Path, count: u32) {
    let secp = secp256k1::Secp256k1::signing_only();
    let list: Vec<Value> = (0..count)
        .map(|i| {
            let mut sk = [1u8; 32];
            sk[28..].copy_from_slice(&(i + 1).to_be_bytes());
            let key = secp256k1::SecretKey::from_slice(&sk).expect("key");
            let peer = secp256k1::PublicKey::from_secret_key(&secp, &key);
            json!({
                "peer_id": peer.to_string(),
                "peer_connected": i % 10 != 0,
                "state": "CHANNELD_NORMAL",
                "short_channel_id": format!("{}x1x0", 500_000 + i),
                "private": i % 7 == 0,
                "total_msat": 1_000_000_000u64,
                "to_us_msat": 500_000_000u64,
                "receivable_msat": 490_000_000u64 - u64::from(i) * 1000,
                "our_reserve_msat": 10_000_000u64,
                "their_reserve_msat": 10_000_000u64,
                "updates": {"remote": {"fee_base_msat": 1000, "fee_proportional_millionths": 100, "cltv_expiry_delta": 40,
                                       "htlc_minimum_msat": 1, "htlc_maximum_msat": 990_000_000u64}},
                "incoming_capacity_msat": if i % 13 == 0 { 0u64 } else { 5_000_000_000u64 },
            })
        })
        .collect();
    let t = Instant::now();
    let r = Conn::new(path).call("syncchannels", json!({ "channels": list }));
    println!("{}", json!({ "result": r["result"], "sync_ms": ms(t.elapsed()) }));
}

fn fill(dir: &Path, count: u64) {
    use invoiced_actors::clock::SystemClock;
    use invoiced_actors::store::RocksEventLog;
    use invoiced_events::{Event, InvoiceCreated, Label, Warning};
    std::fs::create_dir_all(dir).expect("data dir");
    let secret_path = dir.join("hsm_secret");
    let secret = invoiced_actors::hsm_secret::load_or_create(&secret_path, None, &mut OsEntropy).expect("hsm_secret");
    let mut signer = KeySigner::new(&secret, Box::new(Seeded(7))).expect("key");
    let log = RocksEventLog::open(&dir.join("events"), Network::Regtest, std::sync::Arc::new(SystemClock)).expect("log");
    let handle = log.handle();
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let start = Instant::now();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut done = 0u64;
    while done < count {
        let n = (count - done).min(1000);
        let batch: Vec<Event> = (done..done + n)
            .map(|i| {
                let keys = signer.derive_payment_keys(None);
                let description = format!("fill invoice {i}");
                let draft = InvoiceDraft {
                    network: Network::Regtest,
                    amount_msat: Some(1000 + i),
                    timestamp: now,
                    payment_secret: keys.payment_secret,
                    payment_hash: keys.payment_hash,
                    description: description.clone(),
                    deschashonly: false,
                    expiry: 604_800 * 52,
                    cltv: 10,
                    fallbacks: vec![],
                    route_hints: vec![],
                };
                let bolt11 = signer.sign_invoice(build_raw(&draft).expect("draft")).to_string();
                Event::InvoiceCreated(InvoiceCreated {
                    created_index: 0,
                    label: Label::new(format!("fill-{i}")).expect("label"),
                    bolt11,
                    payment_hash: keys.payment_hash,
                    payment_secret: keys.payment_secret,
                    preimage: keys.seal,
                    amount_msat: Some(1000 + i),
                    description,
                    deschashonly: false,
                    created_at: now,
                    expiry: draft.expiry,
                    expires_at: now + draft.expiry,
                    cltv: 10,
                    fallbacks: vec![],
                    route_hints: vec![],
                    warnings: vec![Warning::Capacity],
                })
            })
            .collect();
        rt.block_on(handle.append_all(batch)).expect("append");
        done += n;
    }
    drop(handle);
    log.close();
    println!("{}", json!({ "filled": count, "seconds": start.elapsed().as_secs_f64() }));
}

struct Seeded(u64);
impl EntropySource for Seeded {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (self.0 >> 33) as u8;
        }
    }
}

/// Raw derive + build + sign + encode rate, in-process, on `threads` threads.
fn raw_sign_rate(threads: usize, secs: f64) -> f64 {
    let mut secret = [0u8; 32];
    OsEntropy.fill(&mut secret);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut signer = KeySigner::new(&secret, Box::new(Seeded(t as u64))).expect("key");
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let keys = signer.derive_payment_keys(None);
                    let draft = InvoiceDraft {
                        network: Network::Regtest,
                        amount_msat: Some(1000 + n),
                        timestamp: 1_795_532_824,
                        payment_secret: keys.payment_secret,
                        payment_hash: keys.payment_hash,
                        description: "bench".into(),
                        deschashonly: false,
                        expiry: 604_800,
                        cltv: 10,
                        fallbacks: vec![],
                        route_hints: vec![],
                    };
                    let s = signer.sign_invoice(build_raw(&draft).expect("draft")).to_string();
                    std::hint::black_box(s);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let counts: Vec<u64> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    counts.iter().sum::<u64>() as f64 / start.elapsed().as_secs_f64()
}

fn limits(dir: &Path, secs: f64) {
    std::fs::create_dir_all(dir).expect("dir");
    let one = raw_sign_rate(1, secs);
    let two = raw_sign_rate(2, secs);

    // Raw fdatasync of a 600-byte append, 2,000 times.
    let path = dir.join("fsync-probe");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("probe file");
    let rec = [0x5au8; 600];
    let mut lat = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let t = Instant::now();
        f.write_all(&rec).expect("write");
        f.sync_data().expect("fdatasync");
        lat.push(t.elapsed());
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    lat.sort();

    // RocksDB put with sync=true, 2,000 times.
    let db_path = dir.join("rocksdb-probe");
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    let db = rocksdb::DB::open(&opts, &db_path).expect("probe db");
    let mut w = rocksdb::WriteOptions::default();
    w.set_sync(true);
    let mut rlat = Vec::with_capacity(2000);
    for i in 0u64..2000 {
        let t = Instant::now();
        db.put_opt(i.to_be_bytes(), rec, &w).expect("put");
        rlat.push(t.elapsed());
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&db_path);
    rlat.sort();
    println!("{}", json!({
        "raw_sign_encode_1_thread_per_s": one,
        "raw_sign_encode_2_threads_per_s": two,
        "fdatasync_p50_ms": ms(percentile(&lat, 0.5)),
        "fdatasync_p99_ms": ms(percentile(&lat, 0.99)),
        "rocksdb_sync_put_p50_ms": ms(percentile(&rlat, 0.5)),
        "rocksdb_sync_put_p99_ms": ms(percentile(&rlat, 0.99)),
    }));
}

/// A `/proc/PID/status` field in MiB.
fn proc_status_mib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    kib / 1024
}

fn startup(dir: &Path, drop_first: bool) {
    if drop_first {
        drop_checkpoint(dir);
    }
    let exe = std::env::current_exe().expect("own path").with_file_name("invoiced");
    let sock = dir.join("lightning-rpc");
    let _ = std::fs::remove_file(&sock);
    let t = Instant::now();
    let mut child = std::process::Command::new(exe)
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--network", "regtest", "--log-level", "warn"])
        .spawn()
        .expect("start invoiced");
    while UnixStream::connect(&sock).is_err() {
        assert!(child.try_wait().expect("wait").is_none(), "invoiced exited during start-up");
        std::thread::sleep(Duration::from_millis(2));
    }
    let started = t.elapsed();
    let (peak, rss) = (proc_status_mib(child.id(), "VmHWM"), proc_status_mib(child.id(), "VmRSS"));
    let t = Instant::now();
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    child.wait().expect("wait");
    println!("{}", json!({
        "startup_s": started.as_secs_f64(),
        "peak_rss_mib": peak,
        "rss_mib": rss,
        "shutdown_s": t.elapsed().as_secs_f64(),
    }));
}

fn drop_checkpoint(dir: &Path) {
    let file = invoiced_actors::store::keys::checkpoint_path(&dir.join("events"));
    match std::fs::remove_file(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("removing {}: {e}", file.display()),
    }
}

fn raw_replay(dir: &Path) {
    // The floor for replay: iterate the events column family and decode each record.
    let db = open_read_only(&dir.join("events")).expect("open");
    let t = Instant::now();
    let mut it = db.raw_iterator_cf(db.cf_handle(CF_EVENTS).expect("events"));
    it.seek_to_first();
    let mut n = 0u64;
    while let Some(v) = it.value() {
        std::hint::black_box(invoiced_events::codec::decode_record(v).expect("record"));
        n += 1;
        it.next();
    }
    let s = t.elapsed().as_secs_f64();
    println!("{}", json!({ "records": n, "seconds": s, "records_per_s": n as f64 / s }));
}

fn replay(dir: &Path) {
    // The daemon's own replay (chain checks, projection) of the whole log, in process.
    let db = open_read_only(&dir.join("events")).expect("open");
    let t = Instant::now();
    let state = invoiced_actors::store::replay::replay(&db).expect("replay");
    let s = t.elapsed().as_secs_f64();
    let n = state.head().0;
    println!("{}", json!({ "records": n, "invoices": state.invoices.len(), "seconds": s, "records_per_s": n as f64 / s }));
}

fn main() {
    match Cli::parse().command {
        Command::Load(args) => load(args),
        Command::List { rpc_file, repeat, lookups_only } => list(&rpc_file, repeat, lookups_only),
        Command::Channels { rpc_file, count } => channels(&rpc_file, count),
        Command::Fill { data_dir, count } => fill(&data_dir, count),
        Command::RawReplay { data_dir } => raw_replay(&data_dir),
        Command::Replay { data_dir } => replay(&data_dir),
        Command::DropCheckpoint { data_dir } => drop_checkpoint(&data_dir),
        Command::Startup { data_dir, drop_checkpoint } => startup(&data_dir, drop_checkpoint),
        Command::Limits { dir, seconds } => limits(&dir, seconds),
    }
}

//! `invoiced-bench`: measures a running daemon over its socket, and the machine's limits.
//!
//! - `invoiced-bench load --rpc-file PATH --clients C --seconds S [--daemon-pid PID]
//!   [--method M] [--cpu NAME=PID ...]`: C clients, each on its own connection, send `invoice`
//!   (or M with no params: a ceiling) one after another for S seconds, to any socket that speaks
//!   Core Lightning's framing (invoiced's, or lightningd's); prints calls/s and latency
//!   p50/p99/max, with `--daemon-pid` the CPU time per call of each daemon thread and of the load
//!   tool itself, and with `--cpu` that of each named process (lightningd, the plugin, ...).
//! - `invoiced-bench lnd-load --grpc HOST:PORT --lnd-dir DIR --clients C --seconds S [--cpu
//!   NAME=PID ...]`: C clients send LND's `AddInvoice` over gRPC to `invoiced lnd-api`.
//! - `invoiced-bench list --rpc-file PATH --repeat N [--lookups-only]`: times `listinvoices` of
//!   everything, and lookups by label and payment hash (of 200 invoices spread over the index).
//! - `invoiced-bench channels --rpc-file PATH --count N`: feeds N synthetic public channels
//!   (`syncchannels`), so that load runs choose route hints among them.
//! - `invoiced-bench retire --data-dir DIR --count N`: pays and cleans the oldest N of them, as
//!   retention would.
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
//!
//! Its rooms: [`load`] (the load client and CPU accounting), [`lnd_load`] (the gRPC one), [`scale`] (listings, filling a log,
//! replay and start-up at scale), [`limits`] (the machine's own limits).

mod limits;
mod lnd_load;
mod load;
mod repl;
mod scale;
mod sink;

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "invoiced-bench",
    about = "Measures a running invoiced over its socket, and this machine's limits"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Clients send calls one after another for a while; calls/s, latency, CPU per call.
    Load(LoadArgs),
    /// Clients send LND's `AddInvoice` over gRPC to `invoiced lnd-api`; calls/s, latency.
    LndLoad(lnd_load::LndLoadArgs),
    /// Serves LND's `AddInvoice` with no invoice behind it: what the gRPC layer alone costs.
    LndFloor(lnd_load::LndFloorArgs),
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
    /// Pays and cleans (retention) the oldest invoices of a stopped, filled data dir.
    Retire {
        /// The data dir.
        #[arg(long)]
        data_dir: PathBuf,
        /// How many.
        #[arg(long, default_value_t = 900_000)]
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
    /// PostgreSQL's commit latency: one-row INSERT transactions one after another.
    PgCommit {
        /// postgres://…
        #[arg(long)]
        url: String,
        /// How many.
        #[arg(long, default_value_t = 2000)]
        count: usize,
    },
    /// Samples a standby's replication lag from its getinfo.
    Lag {
        /// The standby's socket.
        #[arg(long)]
        rpc_file: PathBuf,
        /// For how long.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// A webhook receiver: answers every POST 200, its count and last arrival in COUNT_FILE.
    WebhookSink {
        /// The port on 127.0.0.1.
        #[arg(long)]
        port: u16,
        /// Where to keep `{"received": N, "last_ms": T}`.
        #[arg(long)]
        count_file: PathBuf,
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
    /// One OS thread and one blocking connection per client, as a simple client is written
    /// (the default multiplexes every client on one epoll thread).
    #[arg(long)]
    threads: bool,
}

fn named_pid(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s.split_once('=').ok_or("expected NAME=PID")?;
    Ok((
        name.to_owned(),
        pid.parse().map_err(|_| format!("not a pid: {pid}"))?,
    ))
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
        Conn {
            s: UnixStream::connect(path).expect("connect to the daemon"),
            buf: Vec::new(),
        }
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

fn main() {
    match Cli::parse().command {
        Command::Load(args) => load::load(args),
        Command::LndLoad(args) => lnd_load::lnd_load(args),
        Command::LndFloor(args) => lnd_load::lnd_floor(&args),
        Command::List {
            rpc_file,
            repeat,
            lookups_only,
        } => scale::list(&rpc_file, repeat, lookups_only),
        Command::Channels { rpc_file, count } => scale::channels(&rpc_file, count),
        Command::Fill { data_dir, count } => scale::fill(&data_dir, count),
        Command::Retire { data_dir, count } => scale::retire(&data_dir, count),
        Command::RawReplay { data_dir } => scale::raw_replay(&data_dir),
        Command::Replay { data_dir } => scale::replay(&data_dir),
        Command::DropCheckpoint { data_dir } => scale::drop_checkpoint(&data_dir),
        Command::Startup {
            data_dir,
            drop_checkpoint,
        } => scale::startup(&data_dir, drop_checkpoint),
        Command::Limits { dir, seconds } => limits::limits(&dir, seconds),
        Command::WebhookSink { port, count_file } => sink::sink(port, &count_file),
        Command::PgCommit { url, count } => repl::pg_commit(&url, count),
        Command::Lag { rpc_file, seconds } => repl::lag(&rpc_file, seconds),
    }
}

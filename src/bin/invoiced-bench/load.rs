//! `load`: concurrent clients on one epoll thread (or, with `--threads`, one OS thread each),
//! latencies, and CPU per call read from `/proc`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{ms, percentile, LoadArgs};

/// CPU seconds (user + system) in the text of a `/proc/…/stat` file: utime and stime are
/// fields 14 and 15, counted after the parenthesised name (which may hold spaces).
fn stat_cpu_secs(stat: &str) -> Option<f64> {
    let ticks = 100.0; // USER_HZ on Linux
    let f: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    let (u, s): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((u + s) / ticks)
}

/// CPU seconds of each thread of process `pid`, with the thread's name (`main` for the main
/// thread, which accepts connections and runs the main arbiter's actors). Threads that end
/// during a run drop out of the sums; the daemon's threads live as long as it does.
fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return vec![];
    };
    tasks
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let main = dir.file_name().and_then(|n| n.to_str()) == Some(&pid.to_string());
            let name = if main {
                "main".to_owned()
            } else {
                std::fs::read_to_string(dir.join("comm"))
                    .ok()?
                    .trim()
                    .to_owned()
            };
            Some((
                name,
                stat_cpu_secs(&std::fs::read_to_string(dir.join("stat")).ok()?)?,
            ))
        })
        .collect()
}

/// CPU seconds of process `pid`, threads that have ended included.
pub(crate) fn process_cpu(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_cpu_secs(&s))
        .unwrap_or(0.0)
}

/// The `i`th request of a client.
fn request(method: &str, prefix: &str, i: u64) -> Vec<u8> {
    let req = if method == "invoice" {
        json!({"jsonrpc": "2.0", "id": 1, "method": "invoice", "params": [1000 + i, format!("{prefix}-{i}"), "bench"]})
    } else {
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}})
    };
    req.to_string().into_bytes()
}

/// Whether `answer` is an error. invoiced writes
/// `{"jsonrpc":"2.0","id":1,` then `"result"` or `"error"`; other daemons' answers are parsed.
fn is_error(answer: &[u8]) -> bool {
    !answer.starts_with(br#"{"jsonrpc":"2.0","id":1,"result""#)
        && serde_json::from_slice::<Value>(answer).map_or(true, |v| v.get("result").is_none())
}

/// What one client has seen: its latencies, its error count, and the bytes of answers not yet
/// complete.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    errors: u64,
    buf: Vec<u8>,
}

impl Seen {
    /// Records the answer at the front of the buffer if it is complete (the request was sent at
    /// `sent`); whether it was.
    fn answered(&mut self, sent: Instant) -> bool {
        let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") else {
            return false;
        };
        self.latencies.push(sent.elapsed());
        self.errors += u64::from(is_error(&self.buf[..end]));
        self.buf.drain(..end + 2);
        true
    }

    fn received(&mut self, bytes: &[u8]) {
        assert!(!bytes.is_empty(), "daemon closed the connection");
        self.buf.extend_from_slice(bytes);
    }
}

/// One load client: its own connection, one `invoice` after another until `deadline`; returns
/// the latencies and how many answers were errors.
async fn client(
    path: PathBuf,
    prefix: String,
    method: String,
    deadline: Instant,
) -> (Vec<Duration>, u64) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::UnixStream::connect(&path)
        .await
        .expect("connect to the daemon");
    let (mut seen, mut chunk) = (Seen::default(), vec![0u8; 16384]);
    for i in 0.. {
        if Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        s.write_all(&request(&method, &prefix, i))
            .await
            .expect("write");
        while !seen.answered(sent) {
            let n = s.read(&mut chunk).await.expect("read");
            seen.received(&chunk[..n]);
        }
    }
    (seen.latencies, seen.errors)
}

/// The same client on an OS thread of its own, with a blocking connection.
fn blocking_client(
    path: PathBuf,
    prefix: String,
    method: String,
    deadline: Instant,
) -> (Vec<Duration>, u64) {
    use std::io::{Read as _, Write as _};
    let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect to the daemon");
    let (mut seen, mut chunk) = (Seen::default(), vec![0u8; 16384]);
    for i in 0.. {
        if Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        s.write_all(&request(&method, &prefix, i)).expect("write");
        while !seen.answered(sent) {
            let n = s.read(&mut chunk).expect("read");
            seen.received(&chunk[..n]);
        }
    }
    (seen.latencies, seen.errors)
}

pub(crate) fn load(args: LoadArgs) {
    let LoadArgs {
        rpc_file: path,
        clients,
        seconds,
        daemon_pid,
        method,
        cpu: processes,
        threads,
    } = args;
    let run = format!(
        "{:08x}",
        std::process::id() ^ (Instant::now().elapsed().subsec_nanos())
    );
    let run = format!(
        "{run}{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let processes_before: Vec<f64> = processes.iter().map(|(_, pid)| process_cpu(*pid)).collect();
    let before = daemon_pid.map(thread_cpu);
    let own_before = process_cpu(std::process::id());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let results: Vec<(Vec<Duration>, u64)> = if threads {
        let spawned: Vec<_> = (0..clients)
            .map(|c| {
                let (path, prefix, method) =
                    (path.clone(), format!("bench-{run}-{c}"), method.clone());
                std::thread::spawn(move || blocking_client(path, prefix, method, deadline))
            })
            .collect();
        spawned
            .into_iter()
            .map(|t| t.join().expect("client thread"))
            .collect()
    } else {
        // One thread multiplexes every client's connection (epoll), so the load tool takes as
        // little as it can of the cores the daemon runs on.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let tasks: Vec<_> = (0..clients)
                .map(|c| {
                    tokio::spawn(client(
                        path.clone(),
                        format!("bench-{run}-{c}"),
                        method.clone(),
                        deadline,
                    ))
                })
                .collect();
            let mut results = Vec::new();
            for t in tasks {
                results.push(t.await.expect("client task"));
            }
            results
        })
    };
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
            let was: f64 = before
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, s)| s)
                .sum();
            let entry = by_name.entry(name.clone()).or_insert(json!(0.0));
            *entry =
                json!(entry.as_f64().unwrap_or(0.0) + (secs - was) * 1e6 / all.len().max(1) as f64);
        }
        Value::Object(by_name)
    };
    let sum_names = |v: &[(String, f64)]| -> Vec<(String, f64)> {
        vec![("total".into(), v.iter().map(|(_, s)| s).sum())]
    };
    let cpu = daemon_pid.zip(before).map(|(pid, before)| {
        let after = thread_cpu(pid);
        json!({
            "daemon_us_per_invoice_by_thread": per_invoice(&before, &after),
            "daemon_us_per_invoice": per_invoice(&sum_names(&before), &sum_names(&after))["total"],
            "load_tool_us_per_invoice": (process_cpu(std::process::id()) - own_before) * 1e6 / all.len().max(1) as f64,
        })
    });
    let mut by_process = serde_json::Map::new();
    for ((name, pid), was) in processes.iter().zip(&processes_before) {
        by_process.insert(
            name.clone(),
            json!((process_cpu(*pid) - was) * 1e6 / all.len().max(1) as f64),
        );
    }
    by_process.insert(
        "load tool".into(),
        json!((process_cpu(std::process::id()) - own_before) * 1e6 / all.len().max(1) as f64),
    );
    let out = json!({
        "method": method,
        "cpu_us_per_call_by_process": by_process,
        "clients": clients,
        "load_tool": if threads { "thread-per-client" } else { "epoll" },
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

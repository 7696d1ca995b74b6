//! Replication figures: PostgreSQL's own commit latency, and a standby's lag sampled from its
//! `getinfo`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{ms, percentile, Conn};

/// `count` one-row INSERT transactions, one after another: the floor of a shipped batch.
pub(crate) fn pg_commit(url: &str, count: usize) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    c.batch_execute("CREATE TABLE IF NOT EXISTS bench_commit (id bigint PRIMARY KEY, v bytea); TRUNCATE bench_commit").expect("table");
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let t = Instant::now();
        let mut tx = c.transaction().expect("begin");
        tx.execute(
            "INSERT INTO bench_commit VALUES ($1, $2)",
            &[&(i as i64), &vec![7u8; 600]],
        )
        .expect("insert");
        tx.commit().expect("commit");
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "{}",
        json!({ "commits": count, "commit_p50_ms": ms(percentile(&times, 0.5)), "commit_p99_ms": ms(percentile(&times, 0.99)) })
    );
}

/// Samples a standby's `getinfo.replication.lag_ms` every 5 ms for `seconds`.
pub(crate) fn lag(rpc_file: &Path, seconds: f64) {
    let mut conn = Conn::new(rpc_file);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut lags = Vec::new();
    while Instant::now() < deadline {
        let info = conn.call("getinfo", json!({}));
        if let Some(l) = info["result"]["replication"]["lag_ms"].as_u64() {
            lags.push(Duration::from_millis(l));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    lags.sort();
    println!(
        "{}",
        json!({
            "samples": lags.len(),
            "lag_p50_ms": ms(percentile(&lags, 0.5)),
            "lag_p99_ms": ms(percentile(&lags, 0.99)),
            "lag_max_ms": ms(lags.last().copied().unwrap_or_default()),
        })
    );
}

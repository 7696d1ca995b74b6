//! Figures at scale: listings and lookups, synthetic channels, filling a stopped data dir with
//! real signed invoices, raw and real replay, start-up and shutdown.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use invoiced_actors::key_signer::{KeySigner, OsEntropy};
use invoiced_actors::policy::bolt11::{build_raw, InvoiceDraft};
use invoiced_actors::store::keys::scan_records;
use invoiced_actors::store::RocksStorage;
use invoiced_events::{CreatedIndex, InvoiceBody, Msat, Network};
use serde_json::{json, Value};

use crate::limits::Seeded;
use crate::{ms, percentile, Conn};

pub(crate) fn list(path: &Path, repeat: usize, lookups_only: bool) {
    let mut conn = Conn::new(path);
    let mut list_times = Vec::new();
    let invoices: Vec<Value> = if lookups_only {
        // Sample 200 invoices spread over the created index instead of listing them all.
        let info = conn.call("getinfo", json!([]));
        let n = info["result"]["last_created_index"].as_u64().unwrap_or(0);
        (0..200u64)
            .filter_map(|i| {
                let r = conn.call(
                    "listinvoices",
                    json!({"index": "created", "start": 1 + i * n / 200, "limit": 1}),
                );
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
        last["result"]["invoices"]
            .as_array()
            .cloned()
            .unwrap_or_default()
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
    println!(
        "{}",
        json!({
            "invoices": invoices.len(),
            "listinvoices_p50_ms": ms(percentile(&list_times, 0.5)),
            "lookup_label_p50_ms": ms(percentile(&label_times, 0.5)),
            "lookup_hash_p50_ms": ms(percentile(&hash_times, 0.5)),
        })
    );
}

pub(crate) fn channels(path: &Path, count: u32) {
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
    println!(
        "{}",
        json!({ "result": r["result"], "sync_ms": ms(t.elapsed()) })
    );
}

pub(crate) fn fill(dir: &Path, count: u64) {
    use invoiced_actors::clock::SystemClock;
    use invoiced_actors::store::EventLog;
    use invoiced_events::{Label, NewInvoice, Proposal, Warning};
    std::fs::create_dir_all(dir).expect("data dir");
    let secret_path = dir.join("hsm_secret");
    let secret = invoiced_actors::hsm_secret::load_or_create(&secret_path, None, &mut OsEntropy)
        .expect("hsm_secret");
    let mut signer = KeySigner::new(&secret, Box::new(Seeded(7))).expect("key");
    let log = EventLog::open(
        &dir.join("events"),
        Network::Regtest,
        std::sync::Arc::new(SystemClock),
    )
    .expect("log");
    let handle = log.handle();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut done = 0u64;
    while done < count {
        let n = (count - done).min(1000);
        let batch: Vec<Proposal> = (done..done + n)
            .map(|i| {
                let keys = signer
                    .derive_payment_keys(invoiced_actors::key_signer::PreimageSource::Generate);
                let description = format!("fill invoice {i}");
                let draft = InvoiceDraft {
                    network: Network::Regtest,
                    amount: invoiced_actors::policy::bolt11::InvoiceAmount::from_msat(Some(Msat(
                        1000 + i,
                    )))
                    .expect("amount"),
                    timestamp: now,
                    description: invoiced_events::Description::new(description.clone(), false)
                        .expect("description"),
                    expiry: invoiced_actors::policy::bolt11::Expiry::new(604_800 * 52)
                        .expect("expiry"),
                    cltv: invoiced_actors::policy::bolt11::Cltv::new(10).expect("cltv"),
                    fallbacks: vec![],
                    route_hints: vec![],
                };
                let bolt11 = signer
                    .sign_invoice(
                        build_raw(&draft, &keys.payment_hash, &keys.payment_secret).expect("draft"),
                    )
                    .to_string();
                Proposal::Invoice(NewInvoice {
                    body: InvoiceBody {
                        label: Label::new(format!("fill-{i}")).expect("label"),
                        bolt11,
                        payment_hash: keys.payment_hash,
                        payment_secret: keys.payment_secret,
                        preimage: keys.seal,
                        amount_msat: Some(Msat(1000 + i)),
                        description,
                        deschashonly: false,
                        created_at: now,
                        expiry: draft.expiry.secs(),
                        expires_at: now + draft.expiry.secs(),
                        cltv: 10,
                        fallbacks: vec![],
                        route_hints: vec![],
                        warnings: vec![Warning::Capacity],
                    },
                    kind: invoiced_events::InvoiceKind::Bolt11,
                })
            })
            .collect();
        rt.block_on(handle.append_all(batch)).expect("append");
        done += n;
    }
    drop(handle);
    log.close();
    println!(
        "{}",
        json!({ "filled": count, "seconds": start.elapsed().as_secs_f64() })
    );
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

/// Pays the first `count` invoices of a stopped, filled data dir two days ago and cleans them as
/// `autoclean-once paidinvoices 86400` would: the events a node that keeps only its recent
/// invoices has in its log.
pub(crate) fn retire(dir: &Path, count: u64) {
    use invoiced_actors::clock::SystemClock;
    use invoiced_actors::store::EventLog;
    use invoiced_events::{InvoiceStatus, Proposal};
    let log = EventLog::open(
        &dir.join("events"),
        Network::Regtest,
        std::sync::Arc::new(SystemClock),
    )
    .expect("log");
    let handle = log.handle();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let first = log
        .reader()
        .pick(|s| {
            s.invoices
                .from_created_index(CreatedIndex::default())
                .next()
                .map(|e| e.created_index.get())
        })
        .expect("state")
        .unwrap_or(1);
    let mut done = 0u64;
    while done < count {
        let n = (count - done).min(1000);
        let range = first + done..first + done + n;
        let paid = range.clone().map(|i| Proposal::Paid {
            created_index: CreatedIndex(i),
            amount_received_msat: Msat(1000 + i),
            paid_at: now - 2 * 86_400,
            parts: vec![],
        });
        rt.block_on(handle.append_all(paid.collect())).expect("pay");
        let cleaned = range.map(|i| Proposal::Cleaned {
            created_index: CreatedIndex(i),
            status: InvoiceStatus::Paid,
            age_s: 86_400,
            now_s: now,
        });
        rt.block_on(handle.append_all(cleaned.collect()))
            .expect("clean");
        done += n;
    }
    drop(handle);
    log.close();
    println!(
        "{}",
        json!({ "cleaned": count, "seconds": start.elapsed().as_secs_f64() })
    );
}

pub(crate) fn startup(dir: &Path, drop_first: bool) {
    if drop_first {
        drop_checkpoint(dir);
    }
    let exe = std::env::current_exe()
        .expect("own path")
        .with_file_name("invoiced");
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
        assert!(
            child.try_wait().expect("wait").is_none(),
            "invoiced exited during start-up"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let started = t.elapsed();
    let (peak, rss) = (
        proc_status_mib(child.id(), "VmHWM"),
        proc_status_mib(child.id(), "VmRSS"),
    );
    let t = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    child.wait().expect("wait");
    println!(
        "{}",
        json!({
            "startup_s": started.as_secs_f64(),
            "peak_rss_mib": peak,
            "rss_mib": rss,
            "shutdown_s": t.elapsed().as_secs_f64(),
        })
    );
}

pub(crate) fn drop_checkpoint(dir: &Path) {
    let file = invoiced_actors::store::keys::checkpoint_path(&dir.join("events"));
    match std::fs::remove_file(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("removing {}: {e}", file.display()),
    }
}

pub(crate) fn raw_replay(dir: &Path) {
    // The floor for replay: iterate the records and decode each.
    let engine = RocksStorage::new(dir.join("events"))
        .read_only()
        .expect("open");
    let t = Instant::now();
    let mut n = 0u64;
    scan_records(&engine, 0, &mut |_, v| {
        std::hint::black_box(invoiced_events::codec::decode_record(v).expect("record"));
        n += 1;
        true
    })
    .expect("scan");
    let s = t.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({ "records": n, "seconds": s, "records_per_s": n as f64 / s })
    );
}

pub(crate) fn replay(dir: &Path) {
    // The daemon's own replay (chain checks, projection) of the whole log, in process.
    let engine = RocksStorage::new(dir.join("events"))
        .read_only()
        .expect("open");
    let t = Instant::now();
    let state = invoiced_actors::store::replay::replay(&engine).expect("replay");
    let s = t.elapsed().as_secs_f64();
    let n = state.head().0;
    println!(
        "{}",
        json!({ "records": n, "invoices": state.invoices.len(), "seconds": s, "records_per_s": n as f64 / s })
    );
}

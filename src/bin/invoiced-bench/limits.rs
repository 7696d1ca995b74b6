//! `limits`: what this machine can do, measured in the same run as the figures compared with
//! it — raw build+sign+encode on 1 and 2 threads, fdatasync, RocksDB sync put.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use invoiced_actors::key_signer::{EntropySource, KeySigner, OsEntropy};
use invoiced_actors::policy::bolt11::{build_raw, InvoiceDraft};
use invoiced_events::{Msat, Network};
use serde_json::json;

use crate::{ms, percentile};

pub(crate) struct Seeded(pub(crate) u64);
impl EntropySource for Seeded {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
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
                    let keys = signer
                        .derive_payment_keys(invoiced_actors::key_signer::PreimageSource::Generate);
                    let draft = InvoiceDraft {
                        network: Network::Regtest,
                        amount: invoiced_actors::policy::bolt11::InvoiceAmount::from_msat(Some(
                            Msat(1000 + n),
                        ))
                        .expect("amount"),
                        timestamp: 1_795_532_824,
                        description: invoiced_events::Description::new("bench".into(), false)
                            .expect("description"),
                        expiry: invoiced_actors::policy::bolt11::Expiry::new(604_800)
                            .expect("expiry"),
                        cltv: invoiced_actors::policy::bolt11::Cltv::new(10).expect("cltv"),
                        fallbacks: vec![],
                        route_hints: vec![],
                    };
                    let s = signer
                        .sign_invoice(
                            build_raw(&draft, &keys.payment_hash, &keys.payment_secret)
                                .expect("draft"),
                        )
                        .to_string();
                    std::hint::black_box(s);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let counts: Vec<u64> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    counts.iter().sum::<u64>() as f64 / start.elapsed().as_secs_f64()
}

pub(crate) fn limits(dir: &Path, secs: f64) {
    std::fs::create_dir_all(dir).expect("dir");
    let one = raw_sign_rate(1, secs);
    let two = raw_sign_rate(2, secs);

    // Raw fdatasync of a 600-byte append, 2,000 times.
    let path = dir.join("fsync-probe");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("probe file");
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
    println!(
        "{}",
        json!({
            "raw_sign_encode_1_thread_per_s": one,
            "raw_sign_encode_2_threads_per_s": two,
            "fdatasync_p50_ms": ms(percentile(&lat, 0.5)),
            "fdatasync_p99_ms": ms(percentile(&lat, 0.99)),
            "rocksdb_sync_put_p50_ms": ms(percentile(&rlat, 0.5)),
            "rocksdb_sync_put_p99_ms": ms(percentile(&rlat, 0.99)),
        })
    );
}

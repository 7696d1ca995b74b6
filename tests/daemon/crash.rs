//! Crash safety: SIGKILL while clients create invoices loses nothing that was acknowledged.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::harness::{Client, Daemon};

#[test]
fn sigkill_under_load_keeps_every_acknowledged_invoice() {
    let mut d = Daemon::start();
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let socket = d.socket();
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (acked, stop, socket) = (acked.clone(), stop.clone(), socket.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(&socket);
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) || i > 100_000 {
                        break;
                    }
                    let label = format!("w{w}-{i}");
                    let req = json!({"jsonrpc": "2.0", "id": i, "method": "invoice", "params": [1000, label, "crash test"]});
                    c.send_raw(req.to_string().as_bytes());
                    let Some(resp) = c.read_response() else { break };
                    if let Some(b) = resp["result"]["bolt11"].as_str() {
                        acked.lock().unwrap().insert(label, b.to_owned());
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    d.kill();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 50, "only {} invoices acknowledged", acked.len());
    d.spawn();
    let listed = d.call("listinvoices", json!({})).unwrap();
    let listed = listed["invoices"].as_array().unwrap();
    let mut labels = HashSet::new();
    let mut hashes = HashSet::new();
    for (i, inv) in listed.iter().enumerate() {
        assert!(labels.insert(inv["label"].as_str().unwrap().to_owned()), "duplicate label");
        assert!(hashes.insert(inv["payment_hash"].as_str().unwrap().to_owned()), "duplicate hash");
        assert_eq!(inv["created_index"], json!(i + 1), "created_index has a gap or reuse");
    }
    let by_label: HashMap<&str, &str> =
        listed.iter().map(|i| (i["label"].as_str().unwrap(), i["bolt11"].as_str().unwrap())).collect();
    for (label, bolt11) in &acked {
        assert_eq!(by_label.get(label.as_str()), Some(&bolt11.as_str()), "acknowledged {label} lost");
    }
    // And it keeps working.
    let r = d.call("invoice", json!([1000, "after-crash", "d"])).unwrap();
    assert_eq!(r["created_index"], json!(listed.len() + 1));
}

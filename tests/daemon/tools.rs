//! The offline tools against real data dirs: events, replay, audit — and audit catching faults
//! injected into copies of a real log.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use invoiced_events::codec::{
    decode_record, encode_record, record_hash, EventRecord, GENESIS_HASH,
};
use invoiced_events::{CreatedIndex, Event, Msat};
use rocksdb::{Options, DB};
use serde_json::{json, Value};

use crate::harness::Daemon;

fn tool(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn audit(dir: &Path) -> (i32, String) {
    let (code, out, err) = tool(&["audit"], dir);
    (code, format!("{out}{err}"))
}

/// A data dir with invoices, a payment, an expiry, a deletion and channels, stopped cleanly.
fn real_data_dir() -> (Daemon, Vec<Value>) {
    let mut d = Daemon::start();
    let mut states = vec![];
    let a = d.call("invoice", json!([1000, "a", "first"])).unwrap();
    d.call("invoice", json!({"amount_msat": "any", "label": "b", "description": "second", "preimage": "55".repeat(32)})).unwrap();
    d.call("invoice", json!({"amount_msat": 5000, "label": "c", "description": "third", "fallbacks": ["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"]})).unwrap();
    d.call("settleinvoice", json!({"payment_hash": a["payment_hash"], "amount_msat": 1000, "payment_secret": a["payment_secret"]})).unwrap();
    d.call("delinvoice", json!(["c", "unpaid"])).unwrap();
    d.call(
        "invoice",
        json!({"amount_msat": 7, "label": "d", "description": "short", "expiry": 1}),
    )
    .unwrap();
    d.restart_at_offset(60);
    crate::harness::eventually(5, "d expired at start-up", || {
        d.call("listinvoices", json!({"label": "d"})).unwrap()["invoices"][0]["status"]
            == json!("expired")
    });
    states.push(d.call("listinvoices", json!({})).unwrap());
    assert!(d.stop().success());
    (d, states)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn open_db(dir: &Path) -> DB {
    DB::open_cf(&Options::default(), dir.join("events"), ["events", "meta"]).unwrap()
}

fn records(db: &DB) -> Vec<Vec<u8>> {
    let cf = db.cf_handle("events").unwrap();
    db.iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|kv| kv.unwrap().1.to_vec())
        .collect()
}

/// Rewrites the log as `events`, with a valid chain and head, and drops the checkpoint: what a
/// careful forger would do.
fn forge(db: &DB, events: Vec<Event>) {
    let (cf, meta) = (
        db.cf_handle("events").unwrap(),
        db.cf_handle("meta").unwrap(),
    );
    let keys: Vec<Vec<u8>> = db
        .iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|kv| kv.unwrap().0.to_vec())
        .collect();
    for k in keys {
        db.delete_cf(cf, k).unwrap();
    }
    let mut prev = GENESIS_HASH;
    for (i, event) in events.into_iter().enumerate() {
        let rec = EventRecord {
            seq: i as u64 + 1,
            time_ms: 1_000,
            prev_hash: prev,
            event,
        };
        let bytes = encode_record(&rec).unwrap();
        prev = record_hash(&bytes);
        db.put_cf(cf, rec.seq.to_be_bytes(), bytes).unwrap();
        let mut head = rec.seq.to_be_bytes().to_vec();
        head.extend_from_slice(&prev);
        db.put_cf(meta, b"head", head).unwrap();
    }
    let _ = std::fs::remove_file(db.path().with_extension("checkpoint"));
}

fn events_of(db: &DB) -> Vec<Event> {
    records(db)
        .iter()
        .map(|b| decode_record(b).unwrap().event)
        .collect()
}

fn failed_at(dir: &Path) -> u64 {
    let (code, out) = audit(dir);
    assert_eq!(code, 1, "audit should fail: {out}");
    let at = out
        .split("audit FAILED at record ")
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"));
    at.split(':').next().unwrap().parse().unwrap()
}

fn scratch(original: &Path, name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_dir(original, &dir);
    (tmp, dir)
}

#[test]
#[cfg_attr(
    not(feature = "dev-hooks"),
    ignore = "needs the test hooks: --features invoiced/dev-hooks (scripts/test.sh)"
)]
fn audit_passes_a_clean_log_and_catches_every_injected_fault() {
    let (d, _) = real_data_dir();
    let (code, out) = audit(&d.dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("audit ok: "), "{out}");
    assert!(out.contains("checkpoint at"), "{out}");

    // A flipped byte in record 2.
    let (_t, dir) = scratch(&d.dir, "flip");
    {
        let db = open_db(&dir);
        let mut rec = records(&db)[1].clone();
        let mid = rec.len() / 2;
        rec[mid] ^= 0x01;
        db.put_cf(db.cf_handle("events").unwrap(), 2u64.to_be_bytes(), rec)
            .unwrap();
    }
    let at = failed_at(&dir);
    assert!(at == 2 || at == 3, "flip in record 2 reported at {at}");

    // A removed record.
    let (_t, dir) = scratch(&d.dir, "removed");
    {
        let db = open_db(&dir);
        db.delete_cf(db.cf_handle("events").unwrap(), 3u64.to_be_bytes())
            .unwrap();
    }
    assert_eq!(failed_at(&dir), 3);

    // The last record removed: only the stored head tells.
    let (_t, dir) = scratch(&d.dir, "tail");
    let n = {
        let db = open_db(&dir);
        let n = records(&db).len() as u64;
        db.delete_cf(db.cf_handle("events").unwrap(), n.to_be_bytes())
            .unwrap();
        n
    };
    assert_eq!(failed_at(&dir), n);

    // A record from another log.
    let other = Daemon::start();
    other.call("invoice", json!([1, "x", "elsewhere"])).unwrap();
    other.call("invoice", json!([2, "y", "elsewhere"])).unwrap();
    let mut other = other;
    assert!(other.stop().success());
    let foreign = records(&open_db(&other.dir))[1].clone();
    let (_t, dir) = scratch(&d.dir, "foreign");
    {
        let db = open_db(&dir);
        db.put_cf(db.cf_handle("events").unwrap(), 2u64.to_be_bytes(), foreign)
            .unwrap();
    }
    assert_eq!(failed_at(&dir), 2);

    // A bolt11 whose amount differs from its event, with the chain forged to match.
    let (_t, dir) = scratch(&d.dir, "amount");
    {
        let db = open_db(&dir);
        let mut events = events_of(&db);
        let Event::InvoiceCreated(c) = &mut events[2] else {
            panic!("record 3 is an invoice")
        };
        c.body.amount_msat = Some(Msat(5001));
        forge(&db, events);
    }
    let (code, out) = audit(&dir);
    assert_eq!(code, 1);
    assert!(
        out.contains("audit FAILED at record 3: amount or network differs"),
        "{out}"
    );

    // A duplicated label, with the chain forged to match.
    let (_t, dir) = scratch(&d.dir, "duplabel");
    {
        let db = open_db(&dir);
        let mut events = events_of(&db);
        let Event::InvoiceCreated(mut dup) = events[1].clone() else {
            panic!()
        };
        dup.created_index = CreatedIndex(5);
        events.push(Event::InvoiceCreated(dup));
        forge(&db, events);
    }
    let n = events_of(&open_db(&dir)).len() as u64;
    let (code, out) = audit(&dir);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "audit FAILED at record {n}: record {n} creates label 'b' which exists"
        )),
        "{out}"
    );

    // A checkpoint that does not match the log.
    let (_t, dir) = scratch(&d.dir, "checkpoint");
    {
        let file = dir.join("events.checkpoint");
        let mut snap =
            invoiced_events::codec::decode_snapshot(&std::fs::read(&file).unwrap()).unwrap();
        snap.counters.pay = snap.counters.pay.next();
        std::fs::write(
            &file,
            invoiced_events::codec::encode_snapshot(&snap).unwrap(),
        )
        .unwrap();
    }
    let (code, out) = audit(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the checkpoint differs from a fresh replay"),
        "{out}"
    );
    // The original is still clean.
    assert_eq!(audit(&d.dir).0, 0);
}

#[test]
fn events_replay_and_audit_beside_a_running_daemon() {
    let d = Daemon::start();
    let mut after = vec![];
    for i in 0..5 {
        d.call("invoice", json!([1000 + i, format!("l{i}"), "d"]))
            .unwrap();
        after.push(d.call("listinvoices", json!({})).unwrap()["invoices"].clone());
    }
    let inv = d.call("listinvoices", json!(["l2"])).unwrap()["invoices"][0].clone();
    let paid = d.call("invoice", json!({"amount_msat": 9, "label": "p", "description": "d", "preimage": "66".repeat(32)})).unwrap();
    d.call("settleinvoice", json!({"payment_hash": paid["payment_hash"], "amount_msat": 9, "payment_secret": paid["payment_secret"]})).unwrap();
    let info = d.call("getinfo", json!({})).unwrap();

    let (code, out) = audit(&d.dir);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "head {} {}",
            info["log_head_seq"],
            info["log_head_hash"].as_str().unwrap()
        )),
        "{out} vs {info}"
    );

    let (code, out, _) = tool(&["events", "--json"], &d.dir);
    assert_eq!(code, 0);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[2]["kind"], json!("invoice_created"));
    assert_eq!(lines[2]["event"]["label"], json!("l2"));
    assert_eq!(lines[2]["event"]["bolt11"], inv["bolt11"]);
    assert_eq!(lines[6]["kind"], json!("invoice_paid"));
    assert_eq!(lines[6]["hash"], info["log_head_hash"]);
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    let (_, from5, _) = tool(&["events", "--json", "--from", "5"], &d.dir);
    assert_eq!(from5.lines().count(), 3);

    // replay --until N is the state after record N, in listinvoices' shape.
    for (n, want) in after.iter().enumerate() {
        let (code, out, err) = tool(&["replay", "--until", &(n + 1).to_string()], &d.dir);
        assert_eq!(code, 0, "{err}");
        let state: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(&state["invoices"], want, "replay --until {}", n + 1);
        assert_eq!(state["head"]["seq"], json!(n + 1));
    }
    let (_, out, _) = tool(&["replay"], &d.dir);
    let state: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        state["invoices"],
        d.call("listinvoices", json!({})).unwrap()["invoices"]
    );
    assert_eq!(
        state["counters"],
        json!({"created": 6, "pay": 1, "updated": 1, "deleted": 0})
    );
    let (_, out, _) = tool(&["replay", "--at", "1000"], &d.dir);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["invoices"],
        json!([])
    );

    // --follow streams what the daemon writes next.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_invoiced"))
        .args(["events", "--json", "--follow", "--from", "8", "--data-dir"])
        .arg(&d.dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.call("invoice", json!([1, "followed", "d"])).unwrap();
    let mut line = String::new();
    BufReader::new(follow.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    follow.kill().unwrap();
    follow.wait().unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (v["seq"].clone(), v["event"]["label"].clone()),
        (json!(8), json!("followed"))
    );
}

#[test]
#[cfg_attr(
    not(feature = "dev-hooks"),
    ignore = "needs the test hooks: --features invoiced/dev-hooks (scripts/test.sh)"
)]
fn start_up_uses_the_checkpoint_and_survives_a_stale_or_missing_one() {
    let (mut d, states) = real_data_dir();
    // Clean stop wrote a checkpoint; drop it: a full replay gives the same state.
    std::fs::remove_file(d.dir.join("events.checkpoint")).unwrap();
    d.spawn();
    assert_eq!(d.call("listinvoices", json!({})).unwrap(), states[0]);
    // Kill (no new checkpoint) after more records: the stale checkpoint plus the tail replays.
    assert!(d.stop().success());
    d.spawn();
    d.call("invoice", json!([1, "after-checkpoint", "d"]))
        .unwrap();
    let now = d.call("listinvoices", json!({})).unwrap();
    d.kill();
    d.spawn();
    assert_eq!(d.call("listinvoices", json!({})).unwrap(), now);
    assert_eq!(audit(&d.dir).0, 0);
    // A damaged checkpoint (cut short, or garbage) is ignored: the whole log is replayed.
    assert!(d.stop().success());
    let file = d.dir.join("events.checkpoint");
    let bytes = std::fs::read(&file).unwrap();
    for damaged in [
        bytes[..bytes.len() / 2].to_vec(),
        vec![3, 3, 0xff, 0xff, 0xff],
    ] {
        std::fs::write(&file, damaged).unwrap();
        d.spawn();
        assert_eq!(d.call("listinvoices", json!({})).unwrap(), now);
        assert!(d.stop().success());
    }
    // A clean stop always leaves a fresh checkpoint, and no temporary file.
    assert!(std::fs::read(&file).unwrap().len() > 34);
    assert!(!d.dir.join("events.checkpoint.tmp").exists());
}

//! The offline tools: `invoiced events`, `invoiced replay`, `invoiced audit`.
//!
//! They read a data dir's log through a secondary RocksDB instance, so they work on a stopped
//! data dir and beside a running daemon alike, and never change anything.

pub mod audit;
pub mod events;
pub mod replay;

use std::path::Path;

use anyhow::Context as _;
use invoiced_actors::key_signer::{KeySigner, OsEntropy};
use invoiced_actors::store::reader::LogReader;
use invoiced_events::codec::EventRecord;
use invoiced_events::Network;
use serde_json::{json, Value};

use crate::config::event_log_path;

/// Opens the log of `data_dir` for reading, with its network.
pub fn open(data_dir: &Path) -> anyhow::Result<(LogReader, Network)> {
    let reader = LogReader::open(&event_log_path(data_dir))
        .with_context(|| format!("reading {}", data_dir.display()))?;
    let network = reader
        .network()?
        .context("the log has no network")?
        .parse::<Network>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((reader, network))
}

/// The key holder, when `hsm_secret` is readable (to check signatures and reveal preimages).
pub fn signer(data_dir: &Path) -> Option<KeySigner> {
    let bytes = std::fs::read(data_dir.join("hsm_secret")).ok()?;
    let seed = invoiced_actors::hsm_secret::extract(&bytes, None, "hsm_secret").ok()?;
    KeySigner::new(&seed, Box::new(OsEntropy)).ok()
}

/// One record as a JSON line: seq, time, kind, the event's fields, and the chain hashes.
pub fn record_json(rec: &EventRecord, hash: &[u8; 32]) -> Value {
    json!({
        "seq": rec.seq,
        "time_ms": rec.time_ms,
        "kind": rec.event.kind(),
        "event": rec.event.fields_json(),
        "hash": hex::encode(hash),
        "prev_hash": hex::encode(rec.prev_hash),
    })
}

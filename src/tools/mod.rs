//! The offline tools: `invoiced events`, `invoiced replay`, `invoiced audit`.
//!
//! They read a data dir's log through a secondary RocksDB instance, so they work on a stopped
//! data dir and beside a running daemon alike, and never change anything.

pub mod audit;
pub mod events;
pub mod replay;

use std::io::IsTerminal as _;
use std::path::Path;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use invoiced_actors::key_signer::{KeySigner, OsEntropy};
use invoiced_actors::store::reader::LogReader;
use invoiced_events::codec::EventRecord;
use invoiced_events::{Network, ShortChannelId};
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

/// A progress bar on a terminal (stderr), hidden otherwise.
pub fn progress(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} ({per_sec}, {eta})")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// Byte arrays as hex and scids as `BxTxO`, recursively, for people.
fn humanise(v: Value, key: Option<&str>) -> Value {
    match v {
        Value::Array(items)
            if !items.is_empty()
                && items.iter().all(|i| i.as_u64().is_some_and(|n| n <= 255))
                && items.len() >= 16 =>
        {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(|i| i.as_u64().map(|n| n as u8))
                .collect();
            Value::String(hex::encode(bytes))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|i| humanise(i, None)).collect()),
        Value::Number(n)
            if matches!(
                key,
                Some("short_channel_id" | "alias_local" | "alias_remote" | "Scid" | "LocalAlias")
            ) =>
        {
            n.as_u64().map_or(Value::Number(n), |s| {
                Value::String(ShortChannelId::from_u64(s).to_string())
            })
        }
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let v = humanise(v, Some(&k));
                    (k, v)
                })
                .collect(),
        ),
        other => other,
    }
}

/// An event's fields as JSON, hashes in hex and scids as `NxNxN`.
pub fn event_fields(event: &invoiced_events::Event) -> Value {
    let fields = match serde_json::to_value(event) {
        Ok(Value::Object(m)) => m.into_iter().next().map(|(_, v)| v).unwrap_or(Value::Null),
        Ok(v) => v,
        Err(_) => Value::Null,
    };
    humanise(fields, None)
}

/// One record as a JSON line: seq, time, kind, the event's fields, and the chain hashes.
pub fn record_json(rec: &EventRecord, hash: &[u8; 32]) -> Value {
    json!({
        "seq": rec.seq,
        "time_ms": rec.time_ms,
        "kind": rec.event.kind(),
        "event": event_fields(&rec.event),
        "hash": hex::encode(hash),
        "prev_hash": hex::encode(rec.prev_hash),
    })
}

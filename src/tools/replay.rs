//! `invoiced replay --data-dir DIR [--until SEQ | --at UNIXTIME]`: the state at a point of the log,
//! rebuilt from the log alone, in the shapes of the RPC results.

use std::path::Path;

use invoiced_actors::store::reader::LogReader;
use invoiced_events::codec::{decode_record, record_hash};
use invoiced_events::{CreatedIndex, InvoiceStatus, Projections};
use serde_json::{json, Value};

use super::{open, signer};
use crate::progress::Progress;
use crate::rpc::object::invoice_json;

/// Where to stop.
#[derive(Clone, Copy, Debug)]
pub enum Until {
    /// The whole log.
    End,
    /// Up to and including this sequence number.
    Seq(u64),
    /// Records committed at or before this UNIX time (seconds).
    Time(u64),
}

/// Folds the log of `reader` up to `until`.
pub fn fold(reader: &LogReader, until: Until) -> anyhow::Result<Projections> {
    let head = reader.stored_head()?.map_or(0, |h| h.0);
    let total = match until {
        Until::Seq(n) => head.min(n),
        Until::End | Until::Time(_) => head,
    };
    let mut progress = Progress::on_stderr("replay", total);
    let mut state = Projections::new();
    for (seq, bytes) in reader.records_from(1)? {
        let rec = decode_record(&bytes).map_err(|e| anyhow::anyhow!("record {seq}: {e}"))?;
        match until {
            Until::Seq(n) if rec.seq > n => break,
            Until::Time(t) if rec.time_ms > t.saturating_mul(1000).saturating_add(999) => break,
            _ => {}
        }
        state
            .apply(&rec, record_hash(&bytes))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        progress.inc(1);
    }
    progress.finish();
    Ok(state)
}

/// The state as JSON: head, counters, invoices (as `listinvoices`) and channels.
///
/// # Errors
/// When an invoice's record cannot be read.
pub fn state_json(
    state: &Projections,
    reader: &LogReader,
    data_dir: &Path,
) -> anyhow::Result<Value> {
    let signer = signer(data_dir);
    let records = reader.invoices(
        state
            .invoices
            .from_created_index(CreatedIndex(0))
            .cloned()
            .collect(),
    )?;
    let invoices: Vec<Value> = records
        .iter()
        .map(|r| {
            let preimage = match (&signer, r.status, r.preimage_seal()) {
                (Some(s), InvoiceStatus::Paid, Some(seal)) => {
                    s.open_seal(seal, &r.created.body.payment_hash).ok()
                }
                _ => None,
            };
            invoice_json(r, preimage.as_ref())
        })
        .collect();
    let channels: Vec<Value> = state
        .channels
        .iter()
        .map(|c| {
            json!({
                "channel": c.key.to_string(),
                "peer_id": c.peer_id.to_hex(),
                "short_channel_id": c.short_channel_id.map(|s| s.to_string()),
                "state": c.state,
                "peer_connected": c.peer_connected,
                "private": c.private,
                "total_msat": c.total_msat,
                "receivable_msat": c.receivable_msat,
            })
        })
        .collect();
    let (seq, hash) = state.head();
    Ok(json!({
        "head": { "seq": seq, "hash": hex::encode(hash) },
        "counters": {
            "created": state.invoices.last_created_index(),
            "pay": state.invoices.last_pay_index(),
            "updated": state.invoices.last_updated_index(),
            "deleted": state.invoices.last_deleted_index(),
        },
        "invoices": invoices,
        "channels": channels,
    }))
}

/// Prints the state at `until`.
pub fn run(data_dir: &Path, until: Until) -> anyhow::Result<()> {
    let (reader, _) = open(data_dir)?;
    let state = fold(&reader, until)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&state_json(&state, &reader, data_dir)?)?
    );
    Ok(())
}

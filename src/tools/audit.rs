//! `invoiced audit --data-dir DIR`: verify everything the log claims, change nothing.
//!
//! Checks, record by record: the key holds its own sequence number and they follow each other;
//! the chain links (`prev_hash`) and the stored head; each record decodes; each `InvoiceCreated`'s
//! bolt11 is signed by the node and is exactly what its event's fields lay out; the fold's rules
//! (labels unique among live invoices, payment hashes never reused, counters monotonic,
//! lifecycle events naming live invoices in the right state). Then the stored checkpoint must
//! equal a fresh replay to the same point. The first failure names its sequence number.

use std::path::Path;

use invoiced_actors::policy::bolt11::verify_against_event;
use invoiced_events::codec::{decode_record, decode_snapshot, record_hash, GENESIS_HASH};
use invoiced_events::{Projections, Snapshot};
use secp256k1::PublicKey;

use super::{open, progress, signer};

/// An audit failure at a sequence number.
#[derive(Debug)]
pub struct Finding {
    /// The first bad record (0 for the log as a whole).
    pub seq: u64,
    /// What is wrong.
    pub what: String,
}

/// A clean audit's figures.
#[derive(Debug)]
pub struct Summary {
    /// Records checked.
    pub records: u64,
    /// Invoices created (bolt11 checked).
    pub invoices_checked: u64,
    /// The final state.
    pub state: Projections,
    /// Whether the node id came from `hsm_secret` (else from the first invoice).
    pub node_from_secret: bool,
    /// The node id.
    pub node_id: Option<PublicKey>,
    /// The checkpoint's seq, if one was compared.
    pub checkpoint: Option<u64>,
}

/// Audits the log of `data_dir`.
///
/// # Errors
/// `Err(Ok(finding))` for an inconsistency, `Err(Err(e))` when the log cannot be read at all.
pub fn audit(data_dir: &Path) -> Result<Summary, Result<Finding, anyhow::Error>> {
    let (reader, network) = open(data_dir).map_err(Err)?;
    let fail = |seq: u64, what: String| Err(Ok(Finding { seq, what }));
    let mut node_id = signer(data_dir).map(|s| s.node_id());
    let node_from_secret = node_id.is_some();
    let stored_head = reader.stored_head().map_err(|e| Err(e.into()))?;
    let checkpoint = match reader.checkpoint().map_err(|e| Err(e.into()))? {
        Some(b) => Some(decode_snapshot(&b).map_err(|e| {
            Ok(Finding {
                seq: 0,
                what: format!("checkpoint unreadable: {e}"),
            })
        })?),
        None => None,
    };
    let bar = progress(stored_head.map_or(0, |h| h.0), "audit");
    let mut state = Projections::new();
    let mut prev_hash = GENESIS_HASH;
    let mut invoices_checked = 0u64;
    let mut checkpoint_seen = None;
    for (expected_seq, (key, bytes)) in
        (1u64..).zip(reader.records_from(1).map_err(|e| Err(e.into()))?)
    {
        if key != expected_seq {
            return fail(
                expected_seq,
                format!("record {expected_seq} is missing (next stored key is {key})"),
            );
        }
        let rec = match decode_record(&bytes) {
            Ok(r) => r,
            Err(e) => return fail(key, format!("record does not decode: {e}")),
        };
        if rec.seq != key {
            return fail(key, format!("key {key} holds record {}", rec.seq));
        }
        if rec.prev_hash != prev_hash {
            // This record was not written after the one before it: it was taken from another
            // log or forged, or the one before it was altered.
            return fail(key, format!("record {key} does not link to record {}: one of them was altered, or {key} comes from another log", key - 1));
        }
        if let Some(c) = rec.event.created() {
            let bolt12 = matches!(rec.event, invoiced_events::Event::Bolt12InvoiceCreated(_));
            let id = match node_id {
                Some(id) => id,
                None if bolt12 => {
                    match invoiced_actors::policy::bolt12::Invoice::decode(&c.body.bolt11)
                        .ok()
                        .and_then(|i| i.node_id())
                    {
                        Some(pk) => *node_id.insert(pk),
                        None => return fail(key, "bolt12 does not parse".into()),
                    }
                }
                None => match c
                    .body
                    .bolt11
                    .parse::<lightning_invoice::SignedRawBolt11Invoice>()
                    .ok()
                    .and_then(|s| s.recover_payee_pub_key().ok())
                {
                    Some(pk) => *node_id.insert(pk.0),
                    None => return fail(key, "bolt11 does not parse".into()),
                },
            };
            let verified = if bolt12 {
                invoiced_actors::policy::bolt12::verify_against_event(c, &id)
            } else {
                verify_against_event(c, network, &id)
            };
            if let Err(what) = verified {
                return fail(key, what);
            }
            invoices_checked += 1;
        }
        let hash = record_hash(&bytes);
        if let Err(e) = state.apply(&rec, hash) {
            return fail(key, e.to_string());
        }
        if checkpoint.as_ref().is_some_and(|c| c.head_seq == key) {
            checkpoint_seen = Some(Snapshot::from(&state));
        }
        prev_hash = hash;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let (seq, hash) = state.head();
    match stored_head {
        Some((s, h)) if s == seq && h == hash => {}
        None if seq == 0 => {}
        Some((s, _)) if s > seq => {
            return fail(
                seq + 1,
                format!("the stored head is {s} but the log ends at {seq}: records are missing"),
            )
        }
        _ => return fail(seq, "the stored head does not match the last record".into()),
    }
    if let Some(c) = &checkpoint {
        if c.head_seq > 0 {
            match &checkpoint_seen {
                Some(replayed) if replayed == c => {}
                Some(_) => {
                    return fail(
                        c.head_seq,
                        "the checkpoint differs from a fresh replay to its record".into(),
                    )
                }
                None => {
                    return fail(
                        c.head_seq,
                        "the checkpoint names a record that is not in the log".into(),
                    )
                }
            }
        }
    }
    Ok(Summary {
        records: seq,
        invoices_checked,
        state,
        node_from_secret,
        node_id,
        checkpoint: checkpoint.map(|c| c.head_seq),
    })
}

/// Runs the audit, printing a one-line summary; the exit status says whether it held.
pub fn run(data_dir: &Path) -> std::process::ExitCode {
    match audit(data_dir) {
        Ok(s) => {
            let (seq, hash) = s.state.head();
            println!(
                "audit ok: {} records, head {seq} {}, {} invoices created and verified ({} live), {} channels, node {}{}{}",
                s.records,
                hex::encode(hash),
                s.invoices_checked,
                s.state.invoices.len(),
                s.state.channels.len(),
                s.node_id.map_or("-".into(), |n| n.to_string()),
                if s.node_from_secret { "" } else { " (recovered; no hsm_secret to check it against)" },
                s.checkpoint.map_or(String::new(), |c| format!(", checkpoint at {c} matches replay")),
            );
            std::process::ExitCode::SUCCESS
        }
        Err(Ok(f)) => {
            println!("audit FAILED at record {}: {}", f.seq, f.what);
            std::process::ExitCode::from(1)
        }
        Err(Err(e)) => {
            eprintln!("invoiced audit: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

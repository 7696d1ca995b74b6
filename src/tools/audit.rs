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
use invoiced_events::{Hash32, InvoiceCreated, Network, Projections, Snapshot};
use secp256k1::PublicKey;

use super::{open, signer};
use crate::progress::Progress;

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
    let node_id = signer(data_dir).map(|s| s.node_id());
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
    let mut progress = Progress::on_stderr("audit", stored_head.map_or(0, |h| h.0));
    let mut replay = Replay::new(network, node_id, checkpoint.as_ref());
    for (expected_seq, (key, bytes)) in
        (1u64..).zip(reader.records_from(1).map_err(|e| Err(e.into()))?)
    {
        replay.record(expected_seq, key, &bytes).map_err(Ok)?;
        progress.inc(1);
    }
    progress.finish();
    let Replay {
        node_id,
        state,
        invoices_checked,
        checkpoint_seen,
        ..
    } = replay;
    let (seq, hash) = state.head();
    check_stored_head(stored_head, seq, hash).map_err(Ok)?;
    if let Some(c) = &checkpoint {
        check_checkpoint(c, checkpoint_seen.as_ref()).map_err(Ok)?;
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

/// A finding at `seq`, as an audit's answer.
fn fail<T>(seq: u64, what: String) -> Result<T, Finding> {
    Err(Finding { seq, what })
}

/// The audit's replay of the log, record by record: the state so far, the hash the next record
/// must link to, and the node the invoices must be signed by.
struct Replay<'c> {
    network: Network,
    /// From `hsm_secret`, else recovered from the first invoice.
    node_id: Option<PublicKey>,
    state: Projections,
    prev_hash: Hash32,
    invoices_checked: u64,
    /// The stored checkpoint, to take the replayed state at its record.
    checkpoint: Option<&'c Snapshot>,
    /// The replayed state at the checkpoint's record.
    checkpoint_seen: Option<Snapshot>,
}

impl<'c> Replay<'c> {
    /// A replay from genesis.
    fn new(network: Network, node_id: Option<PublicKey>, checkpoint: Option<&'c Snapshot>) -> Self {
        Replay {
            network,
            node_id,
            state: Projections::new(),
            prev_hash: GENESIS_HASH,
            invoices_checked: 0,
            checkpoint,
            checkpoint_seen: None,
        }
    }

    /// Checks the record stored under `key` (expected: `expected_seq`) and applies it: its key,
    /// its encoding, its link to the one before, its invoice, the fold's rules.
    fn record(&mut self, expected_seq: u64, key: u64, bytes: &[u8]) -> Result<(), Finding> {
        if key != expected_seq {
            return fail(
                expected_seq,
                format!("record {expected_seq} is missing (next stored key is {key})"),
            );
        }
        let rec = match decode_record(bytes) {
            Ok(r) => r,
            Err(e) => return fail(key, format!("record does not decode: {e}")),
        };
        if rec.seq != key {
            return fail(key, format!("key {key} holds record {}", rec.seq));
        }
        if rec.prev_hash != self.prev_hash {
            // This record was not written after the one before it: it was taken from another
            // log or forged, or the one before it was altered.
            return fail(key, format!("record {key} does not link to record {}: one of them was altered, or {key} comes from another log", key - 1));
        }
        if let Some(c) = rec.event.created() {
            self.verify_invoice(key, c, &rec.event)?;
        }
        let hash = record_hash(bytes);
        if let Err(e) = self.state.apply(&rec, hash) {
            return fail(key, e.to_string());
        }
        if self.checkpoint.is_some_and(|c| c.head_seq == key) {
            self.checkpoint_seen = Some(Snapshot::from(&self.state));
        }
        self.prev_hash = hash;
        Ok(())
    }

    /// Checks that the invoice `c` created by `event` at `key` is signed by the node and is
    /// exactly what the event's fields lay out.
    fn verify_invoice(
        &mut self,
        key: u64,
        c: &InvoiceCreated,
        event: &invoiced_events::Event,
    ) -> Result<(), Finding> {
        let bolt12 = matches!(event, invoiced_events::Event::Bolt12InvoiceCreated(_));
        let id = self.signing_node(key, c, bolt12)?;
        let verified = if bolt12 {
            invoiced_actors::policy::bolt12::verify_against_event(c, &id)
        } else {
            verify_against_event(c, event.given_description_hash(), self.network, &id)
        };
        if let Err(what) = verified {
            return fail(key, what);
        }
        self.invoices_checked += 1;
        Ok(())
    }

    /// The node invoices must be signed by: the one from `hsm_secret`, else the payee of the
    /// first invoice, recovered from its signature.
    fn signing_node(
        &mut self,
        key: u64,
        c: &InvoiceCreated,
        bolt12: bool,
    ) -> Result<PublicKey, Finding> {
        if let Some(id) = self.node_id {
            return Ok(id);
        }
        let payee = if bolt12 {
            invoiced_actors::policy::bolt12::Invoice::decode(&c.body.bolt11)
                .ok()
                .and_then(|i| i.node_id())
        } else {
            c.body
                .bolt11
                .parse::<lightning_invoice::SignedRawBolt11Invoice>()
                .ok()
                .and_then(|s| s.recover_payee_pub_key().ok())
                .map(|pk| pk.0)
        };
        match payee {
            Some(pk) => Ok(*self.node_id.insert(pk)),
            None if bolt12 => fail(key, "bolt12 does not parse".into()),
            None => fail(key, "bolt11 does not parse".into()),
        }
    }
}

/// The stored head must be the last record's `(seq, hash)`, and no record may be missing after
/// it.
fn check_stored_head(
    stored_head: Option<(u64, Hash32)>,
    seq: u64,
    hash: Hash32,
) -> Result<(), Finding> {
    match stored_head {
        Some((s, h)) if s == seq && h == hash => Ok(()),
        None if seq == 0 => Ok(()),
        Some((s, _)) if s > seq => fail(
            seq + 1,
            format!("the stored head is {s} but the log ends at {seq}: records are missing"),
        ),
        _ => fail(seq, "the stored head does not match the last record".into()),
    }
}

/// The stored checkpoint must equal the replayed state at its record (`replayed`), unless it is
/// the empty log's.
fn check_checkpoint(checkpoint: &Snapshot, replayed: Option<&Snapshot>) -> Result<(), Finding> {
    if checkpoint.head_seq == 0 {
        return Ok(());
    }
    match replayed {
        Some(replayed) if replayed == checkpoint => Ok(()),
        Some(_) => fail(
            checkpoint.head_seq,
            "the checkpoint differs from a fresh replay to its record".into(),
        ),
        None => fail(
            checkpoint.head_seq,
            "the checkpoint names a record that is not in the log".into(),
        ),
    }
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

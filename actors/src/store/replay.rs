//! Replay: the log folded into a projection on two threads (one reads and decodes, this one
//! hashes and applies), with the chain and the stored head checked.

use invoiced_events::codec::{decode_record, record_hash};
use invoiced_events::{EventRecord, Projections};

use super::engine::Engine;
use super::keys::{decode_head, head_seq, read_head, scan_records};
use super::{ReplayProgress, StoreError};

/// Records per message from the replay's reading thread.
const REPLAY_CHUNK: usize = 4096;

/// A record as the replay's reading thread hands it over: decoded, with its stored bytes (for
/// the chain hash).
struct ReadRecord {
    record: EventRecord,
    bytes: Vec<u8>,
}

/// Folds every record after `start`'s head into it, checking the chain and the stored head.
///
/// Two threads share the work: one iterates the log and decodes (and checks each record's key),
/// this one hashes each record for the chain check and applies it, in order, telling
/// `progress` (if given) after each chunk. The stored head must then be the replayed one.
///
/// # Errors
/// [`StoreError`] on an unreadable record or an inconsistent log.
pub fn replay_onto(
    engine: &dyn Engine,
    start: Projections,
    mut progress: Option<ReplayProgress>,
) -> Result<Projections, StoreError> {
    let mut state = start;
    let stored_head = read_head(engine)?;
    let stored_seq = head_seq(stored_head.as_deref());
    let to_replay = stored_seq.saturating_sub(state.head().0);
    state.reserve_invoices(usize::try_from(to_replay).unwrap_or(0));
    let from = state.head().0 + 1;
    let mut tell = |replayed: u64| {
        if let Some(p) = progress.as_mut() {
            p(replayed, to_replay);
        }
    };
    tell(0);
    std::thread::scope(|scope| -> Result<(), StoreError> {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (spent_tx, spent_rx) = crossbeam_channel::unbounded();
        scope.spawn(move || read_and_decode(engine, from, &tx, &spent_rx));
        for chunk in rx {
            let chunk = chunk?;
            for r in &chunk {
                state
                    .apply(&r.record, record_hash(&r.bytes))
                    .map_err(|e| StoreError::Inconsistent(e.to_string()))?;
            }
            tell(state.head().0 + 1 - from);
            // Freed by the thread that allocated it: the allocator's fast path, no lock.
            let _ = spent_tx.send(chunk);
        }
        Ok(())
    })?;
    let (seq, hash) = state.head();
    match stored_head {
        Some(stored) if decode_head(&stored) == Some((seq, hash)) => {}
        None if seq == 0 => {}
        _ => {
            return Err(StoreError::Inconsistent(format!(
                "stored head differs from the replayed head at {seq}"
            )))
        }
    }
    state.shrink_to_fit();
    Ok(state)
}

/// The reading side of [`replay_onto`]: sends the records from `from` on in chunks, or the first
/// error (and stops). Stops too when the receiver is gone. Drops the chunks that come back spent.
fn read_and_decode(
    engine: &dyn Engine,
    from: u64,
    tx: &crossbeam_channel::Sender<Result<Vec<ReadRecord>, StoreError>>,
    spent: &crossbeam_channel::Receiver<Vec<ReadRecord>>,
) {
    let mut chunk = Vec::with_capacity(REPLAY_CHUNK);
    let mut failed = None;
    let mut receiver_gone = false;
    let scanned = scan_records(engine, from, &mut |seq, value| {
        match decode_record(value) {
            Ok(record) if record.seq == seq => chunk.push(ReadRecord {
                record,
                bytes: value.to_vec(),
            }),
            Ok(record) => {
                failed = Some(StoreError::Inconsistent(format!(
                    "key {seq} holds record {}",
                    record.seq
                )));
                return false;
            }
            Err(source) => {
                failed = Some(StoreError::Codec { seq, source });
                return false;
            }
        }
        if chunk.len() == REPLAY_CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(REPLAY_CHUNK));
            if tx.send(Ok(full)).is_err() {
                receiver_gone = true;
                return false;
            }
            spent.try_iter().for_each(drop);
        }
        true
    });
    if receiver_gone {
        return;
    }
    // The records before a failure are sent first, so the error names the first bad record
    // after everything good has been applied.
    if !chunk.is_empty() && tx.send(Ok(chunk)).is_err() {
        return;
    }
    if let Some(e) = failed.or(scanned.err()) {
        let _ = tx.send(Err(e));
    }
}

/// Folds the whole log into a new projection.
///
/// # Errors
/// As [`replay_onto`].
pub fn replay(engine: &dyn Engine) -> Result<Projections, StoreError> {
    replay_onto(engine, Projections::new(), None)
}

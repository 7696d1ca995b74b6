//! The checkpoint: the projection saved beside the log at a clean stop, and read back at
//! start-up only if it matches the log (see docs/EVENTS.md). Where it is kept is the
//! storage's business ([`Storage::save_checkpoint`]).

use invoiced_events::codec::{decode_snapshot, encode_snapshot, record_hash};
use invoiced_events::{Projections, Snapshot};

use super::engine::{Engine, Storage};
use super::keys::read_record;
use super::StoreError;

/// The checkpointed projections if the checkpoint is readable and matches the log (its record
/// exists with its hash); otherwise an empty projection, so that the whole log is replayed.
pub fn load_checkpoint(storage: &dyn Storage, engine: &dyn Engine) -> Projections {
    let load = || -> Option<Snapshot> {
        let bytes = storage
            .load_checkpoint()
            .map_err(|e| tracing::warn!("ignoring unreadable checkpoint: {e}"))
            .ok()??;
        let snap = decode_snapshot(&bytes)
            .map_err(|e| tracing::warn!("ignoring unreadable checkpoint: {e}"))
            .ok()?;
        if snap.head_seq == 0 {
            return Some(snap);
        }
        let record = read_record(engine, snap.head_seq).ok()??;
        (record_hash(&record) == snap.head_hash).then_some(snap)
    };
    match load().map(Projections::try_from) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            tracing::warn!("ignoring a checkpoint that contradicts itself: {e}");
            Projections::new()
        }
        None => Projections::new(),
    }
}

/// Saves a checkpoint of `state` on `storage`.
///
/// # Errors
/// [`StoreError`] when it cannot be encoded or saved.
pub fn save_checkpoint(storage: &dyn Storage, state: &Projections) -> Result<(), StoreError> {
    let bytes = encode_snapshot(&Snapshot::from(state)).map_err(|source| StoreError::Codec {
        seq: state.head().0,
        source,
    })?;
    storage.save_checkpoint(&bytes)
}

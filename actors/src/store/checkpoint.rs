//! The checkpoint: the projection written beside the log at a clean stop, and read back at
//! start-up only if it matches the log (see docs/EVENTS.md).

use std::path::Path;

use invoiced_events::codec::{decode_snapshot, encode_snapshot, record_hash};
use invoiced_events::{Projections, Snapshot};
use rocksdb::DB;

use super::keys::{
    event_key, CF_EVENTS,
};
use super::StoreError;

/// The checkpointed projections if the checkpoint is readable and matches the log (its record
/// exists with its hash); otherwise an empty projection, so that the whole log is replayed.
pub fn load_checkpoint(db: &DB, file: &Path) -> Projections {
    let load = || -> Option<Snapshot> {
        let bytes = match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!("ignoring unreadable checkpoint {}: {e}", file.display());
                return None;
            }
        };
        let snap = decode_snapshot(&bytes).map_err(|e| tracing::warn!("ignoring unreadable checkpoint: {e}")).ok()?;
        if snap.head_seq == 0 {
            return Some(snap);
        }
        let record = db.get_cf(db.cf_handle(CF_EVENTS)?, event_key(snap.head_seq)).ok()??;
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

/// Writes a checkpoint of `state` to `file` atomically: a temporary file, synced, renamed over
/// the old one, and the directory synced.
///
/// # Errors
/// [`StoreError`] when it cannot be encoded or written.
pub fn write_checkpoint(file: &Path, state: &Projections) -> Result<(), StoreError> {
    use std::io::Write as _;
    let bytes = encode_snapshot(&Snapshot::from(state)).map_err(|source| StoreError::Codec { seq: state.head().0, source })?;
    let io = |e: std::io::Error| StoreError::Inconsistent(format!("writing checkpoint {}: {e}", file.display()));
    let tmp = file.with_extension("checkpoint.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, file).map_err(io)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}


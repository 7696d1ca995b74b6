//! The log's layout on its engine, in one place: which column and key hold what — the records
//! under their big-endian seq, the head, the network, the replica marker — and the reads and
//! writes that know it. The rest of the store asks these functions and names no key or column
//! itself; nothing outside the store does either.
//!
//! The one way a log's tail is dropped is here too: [`truncate_after`], used by the writer's
//! recovery and by replication's reconciliation before the log opens.

use invoiced_events::codec::record_hash;
use invoiced_events::Hash32;

use super::engine::{Batch, Column, Engine, VisitValue};
use super::StoreError;

/// Column family of the records: key = big-endian `u64` seq, so iteration order is log order.
pub const CF_EVENTS: &str = "events";
/// Column family of small metadata.
pub const CF_META: &str = "meta";
/// Meta key: the network name this data dir belongs to.
pub const META_NETWORK: &[u8] = b"network";
/// Meta key: the head, `seq (8 bytes BE) ‖ hash (32 bytes)`, written in every batch.
pub const META_HEAD: &[u8] = b"head";
/// Meta key: set once the log is shipped to a replica; its value names the replica's kind.
pub const META_REPLICA: &[u8] = b"replica";

/// Meta key where versions before checkpoint v3 kept the checkpoint (removed at open).
pub const LEGACY_META_CHECKPOINT: &[u8] = b"checkpoint";

/// The checkpoint of the log at `log` (a versioned `Snapshot` naming its seq and hash): a file
/// beside the database, `DIR/events.checkpoint`, so that a projection of a million invoices
/// never passes through RocksDB's WAL, memtable and compactions.
pub fn checkpoint_path(log: &std::path::Path) -> std::path::PathBuf {
    log.with_extension("checkpoint")
}

/// The key of record `seq`.
pub fn event_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The seq a record's key names; 0 when the key is not 8 bytes.
pub fn seq_of_key(key: &[u8]) -> u64 {
    <[u8; 8]>::try_from(key).map_or(0, u64::from_be_bytes)
}

/// The stored head: `seq` (8 bytes, big-endian) ‖ its record's chain hash (32 bytes).
pub fn encode_head(seq: u64, hash: &[u8; 32]) -> [u8; 40] {
    let mut head = [0u8; 40];
    head[..8].copy_from_slice(&seq.to_be_bytes());
    head[8..].copy_from_slice(hash);
    head
}

/// A stored head read back, or `None` if it is not 40 bytes.
pub fn decode_head(bytes: &[u8]) -> Option<(u64, [u8; 32])> {
    let bytes: &[u8; 40] = bytes.try_into().ok()?;
    let (seq, hash) = bytes.split_at(8);
    Some((
        u64::from_be_bytes(seq.try_into().ok()?),
        hash.try_into().ok()?,
    ))
}

/// The seq of a stored head, 0 when there is none or it is malformed.
pub(super) fn head_seq(stored: Option<&[u8]>) -> u64 {
    stored.and_then(decode_head).map_or(0, |(seq, _)| seq)
}

/// The head as stored (see [`decode_head`]), if any.
///
/// # Errors
/// [`StoreError`] when the engine refuses.
pub(super) fn read_head(engine: &dyn Engine) -> Result<Option<Vec<u8>>, StoreError> {
    engine.get(Column::Meta, META_HEAD)
}

/// The stored bytes of record `seq`, if any.
///
/// # Errors
/// [`StoreError`] when the engine refuses.
pub(super) fn read_record(engine: &dyn Engine, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
    engine.get(Column::Events, &event_key(seq))
}

/// The network name the log belongs to, as stored.
///
/// # Errors
/// [`StoreError`] when the engine refuses.
pub(super) fn read_network(engine: &dyn Engine) -> Result<Option<Vec<u8>>, StoreError> {
    engine.get(Column::Meta, META_NETWORK)
}

/// The replica marker ([`META_REPLICA`]), if the log was ever shipped.
///
/// # Errors
/// [`StoreError`] when the engine refuses.
pub(super) fn read_replica_marker(engine: &dyn Engine) -> Result<Option<Vec<u8>>, StoreError> {
    engine.get(Column::Meta, META_REPLICA)
}

/// Whether an older version's checkpoint is still in the meta column.
///
/// # Errors
/// [`StoreError`] when the engine refuses.
pub(super) fn has_legacy_checkpoint(engine: &dyn Engine) -> Result<bool, StoreError> {
    Ok(engine.get(Column::Meta, LEGACY_META_CHECKPOINT)?.is_some())
}

/// Hands every record from `from` on to `visit` as `(seq of its key, stored bytes)`, in log
/// order, until it returns `false`.
///
/// # Errors
/// [`StoreError`] when the engine fails mid-scan.
pub fn scan_records(
    engine: &dyn Engine,
    from: u64,
    visit: &mut dyn FnMut(u64, &[u8]) -> bool,
) -> Result<(), StoreError> {
    engine.scan(Column::Events, &event_key(from), &mut |key, value| {
        visit(seq_of_key(key), value)
    })
}

/// Reads the records `seqs` (ascending) in one lookup, handing each to `visit` with its place
/// in `seqs`.
///
/// # Errors
/// The first error of the engine or of `visit`.
pub(super) fn read_records_sorted(
    engine: &dyn Engine,
    seqs: &[u64],
    visit: &mut VisitValue<'_>,
) -> Result<(), StoreError> {
    let keys: Vec<[u8; 8]> = seqs.iter().map(|&seq| event_key(seq)).collect();
    engine.get_sorted(Column::Events, &keys, visit)
}

/// Adds record `seq`'s bytes to `batch`.
pub(super) fn put_record(batch: &mut Batch, seq: u64, bytes: Vec<u8>) {
    batch.put(Column::Events, event_key(seq), bytes);
}

/// Adds the head `(seq, hash)` to `batch` (every batch that adds records ends with it).
pub(super) fn put_head(batch: &mut Batch, seq: u64, hash: &Hash32) {
    batch.put(Column::Meta, META_HEAD, encode_head(seq, hash));
}

/// Adds the network's name to `batch`.
pub(super) fn put_network(batch: &mut Batch, name: &str) {
    batch.put(Column::Meta, META_NETWORK, name);
}

/// Adds the removal of an older version's checkpoint to `batch`.
pub(super) fn delete_legacy_checkpoint(batch: &mut Batch) {
    batch.delete(Column::Meta, LEGACY_META_CHECKPOINT);
}

/// Adds the replica marker to `batch`.
pub(super) fn put_replica_marker(batch: &mut Batch, value: &[u8]) {
    batch.put(Column::Meta, META_REPLICA, value);
}

/// Removes every record after `seq` and makes record `seq` the head (its chain hash read from
/// the log; none for `seq` 0), in one batch. The one way a tail is dropped: a write reported as
/// failed that reached the log after all (the writer's recovery), and records a replica never
/// took (replication, before the log opens). Returns the head it cut back from, or `None` when
/// nothing follows `seq` (then nothing is written).
///
/// # Errors
/// [`StoreError::Inconsistent`] when the log ends before `seq` or record `seq` is missing;
/// [`StoreError`] when the engine refuses.
pub(super) fn truncate_after(engine: &dyn Engine, seq: u64) -> Result<Option<u64>, StoreError> {
    let stored = head_seq(read_head(engine)?.as_deref());
    let after = seq.saturating_add(1);
    if stored < seq {
        return Err(StoreError::Inconsistent(format!(
            "the log ends at {stored}, before record {seq}"
        )));
    }
    if stored == seq && read_record(engine, after)?.is_none() {
        return Ok(None);
    }
    let hash = match seq {
        0 => [0; 32],
        _ => record_hash(
            &read_record(engine, seq)?
                .ok_or_else(|| StoreError::Inconsistent(format!("record {seq} is missing")))?,
        ),
    };
    let mut batch = Batch::new();
    batch.delete_range(Column::Events, event_key(after), event_key(u64::MAX));
    put_head(&mut batch, seq, &hash);
    engine.write(batch)?;
    Ok(Some(stored))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::engine::Storage as _;
    use crate::store::MemStorage;

    #[test]
    fn the_head_round_trips_and_a_wrong_length_is_refused() {
        let head = encode_head(0x0102_0304_0506_0708, &[9; 32]);
        assert_eq!(head[..8], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(decode_head(&head), Some((0x0102_0304_0506_0708, [9; 32])));
        assert_eq!(decode_head(&head[..39]), None);
        assert_eq!(decode_head(&[0; 41]), None);
    }

    #[test]
    fn truncation_keeps_the_prefix_with_its_head_and_refuses_a_seq_past_the_end() {
        let engine = MemStorage::new().open().unwrap();
        let mut batch = Batch::new();
        for seq in 1..=4u64 {
            put_record(&mut batch, seq, vec![u8::try_from(seq).unwrap(); 3]);
        }
        put_head(&mut batch, 4, &record_hash(&[4; 3]));
        engine.write(batch).unwrap();
        assert_eq!(truncate_after(engine.as_ref(), 4).unwrap(), None);
        assert!(matches!(
            truncate_after(engine.as_ref(), 5),
            Err(StoreError::Inconsistent(_))
        ));
        assert_eq!(truncate_after(engine.as_ref(), 2).unwrap(), Some(4));
        let mut left = Vec::new();
        scan_records(engine.as_ref(), 0, &mut |seq, _| {
            left.push(seq);
            true
        })
        .unwrap();
        assert_eq!(left, [1, 2]);
        assert_eq!(
            read_head(engine.as_ref())
                .unwrap()
                .as_deref()
                .and_then(decode_head),
            Some((2, record_hash(&[2; 3])))
        );
        // A stray record after the head is removed too; to nothing, the head is all zeros.
        let mut batch = Batch::new();
        put_record(&mut batch, 3, vec![3; 3]);
        engine.write(batch).unwrap();
        assert_eq!(truncate_after(engine.as_ref(), 2).unwrap(), Some(2));
        assert_eq!(read_record(engine.as_ref(), 3).unwrap(), None);
        assert_eq!(truncate_after(engine.as_ref(), 0).unwrap(), Some(2));
        assert_eq!(
            read_head(engine.as_ref())
                .unwrap()
                .as_deref()
                .and_then(decode_head),
            Some((0, [0; 32]))
        );
    }
}

//! [`LocalLog`]: a log on its storage while no [`EventLog`](super::EventLog) runs on it, for
//! what is done to it before it opens — replication's reconciliation with its replica (the
//! head, the records' chain hashes, dropping a tail the replica never took) and the replica
//! marker. It reads and writes through [`super::keys`], like the rest of the store, so its
//! callers name no column, key or engine.

use std::sync::Arc;

use invoiced_events::codec::record_hash;
use invoiced_events::Hash32;

use super::engine::{Batch, Engine, Storage};
use super::keys;
use super::StoreError;

/// A log opened read-write while no [`EventLog`](super::EventLog) runs on it. Drop it before
/// one opens on the same storage.
pub struct LocalLog {
    engine: Arc<dyn Engine>,
}

impl core::fmt::Debug for LocalLog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalLog").finish_non_exhaustive()
    }
}

impl LocalLog {
    /// Opens the log on `storage` (creating it if new).
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be opened.
    pub fn open(storage: &dyn Storage) -> Result<Self, StoreError> {
        Ok(LocalLog {
            engine: storage.open()?,
        })
    }

    /// The stored head `(seq, hash)`; `(0, zeros)` when there is none (or it is malformed).
    ///
    /// # Errors
    /// [`StoreError`] when the engine refuses.
    pub fn head(&self) -> Result<(u64, Hash32), StoreError> {
        Ok(keys::read_head(self.engine.as_ref())?
            .as_deref()
            .and_then(keys::decode_head)
            .unwrap_or((0, [0; 32])))
    }

    /// The chain hash of record `seq` as stored, if it is there.
    ///
    /// # Errors
    /// [`StoreError`] when the engine refuses.
    pub fn hash_at(&self, seq: u64) -> Result<Option<Hash32>, StoreError> {
        Ok(keys::read_record(self.engine.as_ref(), seq)?.map(|bytes| record_hash(&bytes)))
    }

    /// Removes every record after `seq`, record `seq` becoming the head; the head it cut back
    /// from, or `None` when nothing followed (see [`keys::truncate_after`]).
    ///
    /// # Errors
    /// [`StoreError`] when the log ends before `seq`, or the write fails.
    pub fn truncate_after(&self, seq: u64) -> Result<Option<u64>, StoreError> {
        keys::truncate_after(self.engine.as_ref(), seq)
    }

    /// The replica the log was ever shipped to (the marker's value), if any.
    ///
    /// # Errors
    /// [`StoreError`] when the engine refuses.
    pub fn replica_marker(&self) -> Result<Option<String>, StoreError> {
        Ok(keys::read_replica_marker(self.engine.as_ref())?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Marks the log as shipped to a replica of kind `kind` (kept for good: a log once shipped
    /// must not be written without its replica).
    ///
    /// # Errors
    /// [`StoreError`] when the write fails.
    pub fn set_replica_marker(&self, kind: &str) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        keys::put_replica_marker(&mut batch, kind.as_bytes());
        self.engine.write(batch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::MemStorage;

    #[test]
    fn a_local_log_reads_its_head_keeps_the_marker_and_drops_a_tail() {
        let storage = MemStorage::new();
        let log = LocalLog::open(&storage).unwrap();
        assert_eq!(log.head().unwrap(), (0, [0; 32]));
        assert_eq!(log.replica_marker().unwrap(), None);
        let mut batch = Batch::new();
        keys::put_record(&mut batch, 1, b"one".to_vec());
        keys::put_record(&mut batch, 2, b"two".to_vec());
        keys::put_head(&mut batch, 2, &record_hash(b"two"));
        log.engine.write(batch).unwrap();
        assert_eq!(log.head().unwrap(), (2, record_hash(b"two")));
        assert_eq!(log.hash_at(1).unwrap(), Some(record_hash(b"one")));
        assert_eq!(log.hash_at(3).unwrap(), None);
        log.set_replica_marker("postgres").unwrap();
        assert_eq!(log.truncate_after(1).unwrap(), Some(2));
        drop(log);
        let again = LocalLog::open(&storage).unwrap();
        assert_eq!(again.head().unwrap(), (1, record_hash(b"one")));
        assert_eq!(again.replica_marker().unwrap().as_deref(), Some("postgres"));
    }
}

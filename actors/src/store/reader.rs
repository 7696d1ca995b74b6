//! Reading a log without writing it: a RocksDB secondary instance, safe while a daemon runs.
//!
//! The offline tools (`invoiced events | replay | audit`) read through this. A secondary
//! instance keeps its own small folder (a temporary one, removed on drop) and can catch up with
//! the primary's new writes, which is how `events --follow` streams.

use std::path::{Path, PathBuf};

use invoiced_events::{Hash32, InvoiceEntry, InvoiceRecord};

use super::engine::{Column, Storage as _};
use super::keys::{decode_head, event_key, read_head, read_network, seq_of_key};
use super::rocks::{Pairs, RocksEngine, RocksStorage};
use super::StoreError;

/// A read-only view of an event log.
pub struct LogReader {
    engine: RocksEngine,
    storage: RocksStorage,
    secondary: PathBuf,
}

impl core::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LogReader").finish_non_exhaustive()
    }
}

impl LogReader {
    /// Opens the log at `path` as a secondary instance.
    ///
    /// # Errors
    /// [`StoreError`] when there is no log there or RocksDB refuses.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.join("CURRENT").exists() {
            return Err(StoreError::Inconsistent(format!(
                "no event log in {}",
                path.display()
            )));
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let secondary =
            std::env::temp_dir().join(format!("invoiced-reader-{}-{nanos}", std::process::id()));
        let storage = RocksStorage::new(path);
        let engine = storage.secondary(&secondary)?;
        Ok(LogReader {
            engine,
            storage,
            secondary,
        })
    }

    /// Catches up with what the daemon wrote since.
    ///
    /// # Errors
    /// [`StoreError`] when RocksDB refuses.
    pub fn catch_up(&self) -> Result<(), StoreError> {
        self.engine.catch_up()
    }

    /// The network the log belongs to.
    ///
    /// # Errors
    /// [`StoreError`] when RocksDB refuses.
    pub fn network(&self) -> Result<Option<String>, StoreError> {
        Ok(read_network(&self.engine)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// The head stored with the last batch, `(seq, hash)`.
    ///
    /// # Errors
    /// [`StoreError`] when RocksDB refuses or the head is malformed.
    pub fn stored_head(&self) -> Result<Option<(u64, Hash32)>, StoreError> {
        let Some(b) = read_head(&self.engine)? else {
            return Ok(None);
        };
        decode_head(&b)
            .map(Some)
            .ok_or_else(|| StoreError::Inconsistent("malformed head".into()))
    }

    /// The stored checkpoint's bytes.
    ///
    /// # Errors
    /// [`StoreError`] when it exists but cannot be read.
    pub fn checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.storage.load_checkpoint()
    }

    /// The whole invoices of `entries` (of a projection folded from this log), in their order.
    ///
    /// # Errors
    /// As [`super::join_entries`].
    pub fn invoices(&self, entries: Vec<InvoiceEntry>) -> Result<Vec<InvoiceRecord>, StoreError> {
        super::join_entries(&self.engine, entries)
    }

    /// The stored records from `seq` on, as `(key seq, bytes)`.
    ///
    /// # Errors
    /// [`StoreError`] when RocksDB refuses.
    pub fn records_from(&self, seq: u64) -> Result<Records<'_>, StoreError> {
        let pairs = self.engine.pairs_from(Column::Events, &event_key(seq))?;
        Ok(Records { pairs })
    }
}

impl Drop for LogReader {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.secondary);
    }
}

/// An iterator over stored records.
pub struct Records<'a> {
    pairs: Pairs<'a>,
}

impl Iterator for Records<'_> {
    /// `(key as seq, record bytes)`; a key that is not 8 bytes yields seq 0.
    type Item = (u64, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        let (key, value) = self.pairs.next()?;
        Some((seq_of_key(&key), value))
    }
}

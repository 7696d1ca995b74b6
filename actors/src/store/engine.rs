//! The storage seam beneath the event log: what the log needs of a key-value store, as two
//! traits, so that the log, its writer and every actor above it run the same on RocksDB (the
//! daemon, [`super::rocks`]) and in memory (tests, [`super::memory`]).
//!
//! An [`Engine`] is an open store: point reads, ordered scans, and atomic, durable batches over
//! two columns. A [`Storage`] is the place a log lives: it opens engines on it (read-write, one
//! at a time; read-only, beside it), keeps the checkpoint, and knows its free space. The writer
//! reopens its engine through the storage after a failed write, which is why opening is not a
//! one-off constructor. Nothing here knows what a record means, nor which engine is beneath:
//! keys and values are bytes, laid out by [`super::keys`], and an engine's own errors arrive as
//! [`StoreError::Engine`].

use std::sync::Arc;

use super::StoreError;

/// The two columns of a log (RocksDB column families).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    /// The records, keyed by big-endian seq.
    Events,
    /// Small metadata: the network, the head.
    Meta,
}

impl Column {
    /// Both columns.
    pub const ALL: [Column; 2] = [Column::Events, Column::Meta];

    /// The column family's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Column::Events => super::keys::CF_EVENTS,
            Column::Meta => super::keys::CF_META,
        }
    }
}

/// One change in a [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Sets `key` to `value`.
    Put(Column, Vec<u8>, Vec<u8>),
    /// Removes `key`.
    Delete(Column, Vec<u8>),
    /// Removes every key in `from..to` (never empty).
    DeleteRange(Column, Vec<u8>, Vec<u8>),
}

/// Changes written together or not at all, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Adds a put.
    pub fn put(&mut self, column: Column, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(column, key.into(), value.into()));
    }

    /// Adds a removal.
    pub fn delete(&mut self, column: Column, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete(column, key.into()));
    }

    /// Adds the removal of `from..to`; an empty range (`to` not after `from`) removes nothing.
    pub fn delete_range(
        &mut self,
        column: Column,
        from: impl Into<Vec<u8>>,
        to: impl Into<Vec<u8>>,
    ) {
        let (from, to) = (from.into(), to.into());
        if from < to {
            self.ops.push(Op::DeleteRange(column, from, to));
        }
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Its changes, in order.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}

/// Called with each value of an [`Engine::get_many`] read: the key's place in the request and
/// its value, if any. An error stops the read and is returned by it.
pub type VisitValue<'a> = dyn FnMut(usize, Option<&[u8]>) -> Result<(), StoreError> + 'a;

/// Called with each pair of a [`Engine::scan`], in key order; `false` stops the scan.
pub type VisitPair<'a> = dyn FnMut(&[u8], &[u8]) -> bool + 'a;

/// An open key-value store under a log. Shared by the writer and readers (so `Sync`); only the
/// writer calls [`Engine::write`].
pub trait Engine: Send + Sync {
    /// The value of `key`.
    ///
    /// # Errors
    /// [`StoreError`] when the store refuses.
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Reads `keys` (ascending) in one lookup, handing each value to `visit` without copying it.
    /// Called through [`get_sorted`](#method.get_sorted), which takes keys of any byte type.
    ///
    /// # Errors
    /// The first error of the store or of `visit`.
    fn get_many(
        &self,
        column: Column,
        keys: &[&[u8]],
        visit: &mut VisitValue<'_>,
    ) -> Result<(), StoreError>;

    /// Hands every pair from `from` on to `visit`, in key order, until it returns `false`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails mid-scan.
    fn scan(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut VisitPair<'_>,
    ) -> Result<(), StoreError>;

    /// Writes `batch` atomically and durably (synced before it returns).
    ///
    /// # Errors
    /// [`StoreError`] when it could not be written; then the engine may have to be reopened, and
    /// part of the batch may be found there (the writer's recovery removes it again with
    /// `keys::truncate_after`).
    fn write(&self, batch: Batch) -> Result<(), StoreError>;

    /// Makes what is written cheap to open again (RocksDB: the WAL moved into table files).
    ///
    /// # Errors
    /// [`StoreError`] when the store refuses.
    fn flush(&self) -> Result<(), StoreError>;
}

impl dyn Engine + '_ {
    /// Reads `keys` (ascending, each any bytes) in one lookup, handing each value to `visit`
    /// with the key's place in `keys` ([`Engine::get_many`]).
    ///
    /// # Errors
    /// The first error of the store or of `visit`.
    pub fn get_sorted<K: AsRef<[u8]>>(
        &self,
        column: Column,
        keys: &[K],
        visit: &mut VisitValue<'_>,
    ) -> Result<(), StoreError> {
        let keys: Vec<&[u8]> = keys.iter().map(AsRef::as_ref).collect();
        self.get_many(column, &keys, visit)
    }
}

/// The place a log lives: it opens engines on it and keeps the checkpoint beside them.
pub trait Storage: Send + Sync {
    /// Opens it for reading and writing (creating it if new). One at a time: the previous
    /// read-write engine must be dropped first.
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be opened.
    fn open(&self) -> Result<Arc<dyn Engine>, StoreError>;

    /// Opens it read-only, as it is now, beside a read-write engine or none; it refuses writes.
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be opened.
    fn open_read_only(&self) -> Result<Arc<dyn Engine>, StoreError>;

    /// Bytes free for it to grow into; `None` when it is not on a filesystem.
    ///
    /// # Errors
    /// [`StoreError`] when the filesystem cannot say.
    fn free_bytes(&self) -> Result<Option<u64>, StoreError>;

    /// The checkpoint written by [`Storage::save_checkpoint`], if any.
    ///
    /// # Errors
    /// [`StoreError`] when it exists but cannot be read.
    fn load_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError>;

    /// Replaces the checkpoint atomically: afterwards the old one or the new one is found whole.
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be written (the old one stays).
    fn save_checkpoint(&self, bytes: &[u8]) -> Result<(), StoreError>;
}

//! The RocksDB [`Storage`]: a log is a database directory with two column families, and its
//! checkpoint a file beside it (`DIR/events.checkpoint`).
//!
//! The one module that names RocksDB: its errors become [`StoreError::Engine`] here (with
//! RocksDB's message), and what only RocksDB does (a secondary instance catching up, raw
//! iteration for the tools) is offered as methods of [`RocksEngine`] in engine terms.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBRawIteratorWithThreadMode, Options, WriteBatch,
    WriteOptions, DB,
};

use super::engine::{Batch, Column, Engine, Op, Storage, VisitPair, VisitValue};
use super::keys::checkpoint_path;
use super::StoreError;

/// RocksDB's error as the store's: engine-neutral, with RocksDB's message.
fn engine_error(e: rocksdb::Error) -> StoreError {
    StoreError::Engine(e.into_string())
}

/// A log's directory on disk.
#[derive(Clone, Debug)]
pub struct RocksStorage {
    path: PathBuf,
}

impl RocksStorage {
    /// The log at `path` (a directory, created at the first [`Storage::open`]).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RocksStorage { path: path.into() }
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens it read-only as a concrete engine (for tools that iterate RocksDB directly).
    ///
    /// # Errors
    /// [`StoreError::Engine`] when RocksDB refuses.
    pub fn read_only(&self) -> Result<RocksEngine, StoreError> {
        let db = DB::open_cf_for_read_only(
            &Options::default(),
            &self.path,
            Column::ALL.map(Column::name),
            false,
        )
        .map_err(engine_error)?;
        Ok(RocksEngine { db })
    }

    /// Opens it as a secondary instance keeping its own files in `secondary`: read-only, and able
    /// to catch up with a primary that keeps writing.
    ///
    /// # Errors
    /// [`StoreError::Engine`] when RocksDB refuses.
    pub fn secondary(&self, secondary: &Path) -> Result<RocksEngine, StoreError> {
        let mut opts = Options::default();
        opts.set_max_open_files(-1);
        let db = DB::open_cf_as_secondary(
            &opts,
            &self.path,
            &secondary.to_path_buf(),
            Column::ALL.map(Column::name),
        )
        .map_err(engine_error)?;
        Ok(RocksEngine { db })
    }
}

/// The options the log's database is opened with.
pub(super) fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts
}

impl Storage for RocksStorage {
    fn open(&self) -> Result<Arc<dyn Engine>, StoreError> {
        let cfs = Column::ALL.map(|c| ColumnFamilyDescriptor::new(c.name(), Options::default()));
        let db = DB::open_cf_descriptors(&db_options(), &self.path, cfs).map_err(engine_error)?;
        Ok(Arc::new(RocksEngine { db }))
    }

    fn open_read_only(&self) -> Result<Arc<dyn Engine>, StoreError> {
        Ok(Arc::new(self.read_only()?))
    }

    fn free_bytes(&self) -> Result<Option<u64>, StoreError> {
        let free = fs4::available_space(&self.path)
            .map_err(|e| StoreError::Inconsistent(format!("cannot read free space: {e}")))?;
        Ok(Some(free))
    }

    fn load_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let file = checkpoint_path(&self.path);
        match std::fs::read(&file) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Inconsistent(format!(
                "reading {}: {e}",
                file.display()
            ))),
        }
    }

    /// A temporary file, synced, renamed over the old one, and the directory synced.
    fn save_checkpoint(&self, bytes: &[u8]) -> Result<(), StoreError> {
        use std::io::Write as _;
        let file = checkpoint_path(&self.path);
        let io = |e: std::io::Error| {
            StoreError::Inconsistent(format!("writing checkpoint {}: {e}", file.display()))
        };
        let tmp = file.with_extension("checkpoint.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &file).map_err(io)?;
        if let Some(dir) = file.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

/// An open RocksDB database of a log.
pub struct RocksEngine {
    db: DB,
}

impl core::fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RocksEngine")
            .field("path", &self.db.path())
            .finish()
    }
}

impl RocksEngine {
    /// Catches up with what the primary instance wrote since (a secondary instance,
    /// [`RocksStorage::secondary`]).
    ///
    /// # Errors
    /// [`StoreError::Engine`] when RocksDB refuses.
    pub fn catch_up(&self) -> Result<(), StoreError> {
        self.db.try_catch_up_with_primary().map_err(engine_error)
    }

    /// The pairs of `column` from `from` on, in key order, each copied out as it is reached
    /// (for tools that stream a log; the log itself uses [`Engine::scan`]).
    ///
    /// # Errors
    /// [`StoreError::Inconsistent`] when the column family is missing.
    pub fn pairs_from(&self, column: Column, from: &[u8]) -> Result<Pairs<'_>, StoreError> {
        let mut it = self.db.raw_iterator_cf(self.cf(column)?);
        it.seek(from);
        Ok(Pairs { it, started: false })
    }

    fn cf(&self, column: Column) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(column.name())
            .ok_or_else(|| StoreError::Inconsistent(format!("no {} column family", column.name())))
    }
}

impl Engine for RocksEngine {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(column)?, key).map_err(engine_error)
    }

    fn get_many(
        &self,
        column: Column,
        keys: &[&[u8]],
        visit: &mut VisitValue<'_>,
    ) -> Result<(), StoreError> {
        for (i, value) in self
            .db
            .batched_multi_get_cf(self.cf(column)?, keys, true)
            .into_iter()
            .enumerate()
        {
            visit(i, value.map_err(engine_error)?.as_deref())?;
        }
        Ok(())
    }

    fn scan(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut VisitPair<'_>,
    ) -> Result<(), StoreError> {
        let mut it = self.db.raw_iterator_cf(self.cf(column)?);
        it.seek(from);
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            if !visit(key, value) {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(engine_error)
    }

    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        let mut rocks = WriteBatch::default();
        for op in batch.into_ops() {
            match op {
                Op::Put(c, key, value) => rocks.put_cf(self.cf(c)?, key, value),
                Op::Delete(c, key) => rocks.delete_cf(self.cf(c)?, key),
                Op::DeleteRange(c, from, to) => rocks.delete_range_cf(self.cf(c)?, from, to),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(rocks, &opts).map_err(engine_error)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_wal(true).map_err(engine_error)?;
        self.db.flush().map_err(engine_error)
    }
}

/// Pairs of a column in key order ([`RocksEngine::pairs_from`]). A read error ends them, as the
/// end of the column would.
pub struct Pairs<'a> {
    it: DBRawIteratorWithThreadMode<'a, DB>,
    started: bool,
}

impl Iterator for Pairs<'_> {
    /// `(key, value)`.
    type Item = (Vec<u8>, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.started {
            self.it.next();
        }
        self.started = true;
        let value = self.it.value()?.to_vec();
        Some((self.it.key().map(<[u8]>::to_vec).unwrap_or_default(), value))
    }
}

//! The in-memory [`Storage`]: the log's columns as ordered maps, for tests of the log and of the
//! actors above it without a disk.
//!
//! It keeps RocksDB's contract where the log relies on it: batches are atomic, scans run in
//! byte order of the keys, a read-only engine refuses writes, and the data outlives the engines
//! opened on it — clone a [`MemStorage`] to keep "the disk" and open a log on it again, as after
//! a restart. Every write is durable the moment it returns, so a restart loses nothing; crash
//! tests that need torn writes use RocksDB.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::engine::{Batch, Column, Engine, Op, Storage, VisitPair, VisitValue};
use super::StoreError;

type Columns = [BTreeMap<Vec<u8>, Vec<u8>>; 2];

/// A log kept in memory; clones share it.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    columns: Arc<RwLock<Columns>>,
    checkpoint: Arc<Mutex<Option<Vec<u8>>>>,
}

impl MemStorage {
    /// An empty one.
    pub fn new() -> Self {
        MemStorage::default()
    }

    fn engine(&self, writable: bool) -> Arc<dyn Engine> {
        Arc::new(MemEngine {
            columns: self.columns.clone(),
            writable,
        })
    }
}

impl Storage for MemStorage {
    fn open(&self) -> Result<Arc<dyn Engine>, StoreError> {
        Ok(self.engine(true))
    }

    fn open_read_only(&self) -> Result<Arc<dyn Engine>, StoreError> {
        Ok(self.engine(false))
    }

    fn free_bytes(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    fn load_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .checkpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    fn save_checkpoint(&self, bytes: &[u8]) -> Result<(), StoreError> {
        *self
            .checkpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(bytes.to_vec());
        Ok(())
    }
}

/// An engine on a [`MemStorage`].
struct MemEngine {
    columns: Arc<RwLock<Columns>>,
    writable: bool,
}

fn index(column: Column) -> usize {
    match column {
        Column::Events => 0,
        Column::Meta => 1,
    }
}

impl MemEngine {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Columns> {
        self.columns.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Engine for MemEngine {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read()[index(column)].get(key).cloned())
    }

    fn get_many(
        &self,
        column: Column,
        keys: &[&[u8]],
        visit: &mut VisitValue<'_>,
    ) -> Result<(), StoreError> {
        let columns = self.read();
        for (i, key) in keys.iter().enumerate() {
            visit(i, columns[index(column)].get(*key).map(Vec::as_slice))?;
        }
        Ok(())
    }

    fn scan(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut VisitPair<'_>,
    ) -> Result<(), StoreError> {
        // A snapshot of the range, so `visit` may take its time without holding the lock.
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = self.read()[index(column)]
            .range(from.to_vec()..)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, value) in &pairs {
            if !visit(key, value) {
                break;
            }
        }
        Ok(())
    }

    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        if !self.writable {
            return Err(StoreError::Inconsistent(
                "a read-only engine refuses writes".into(),
            ));
        }
        let mut columns = self.columns.write().unwrap_or_else(PoisonError::into_inner);
        for op in batch.into_ops() {
            match op {
                Op::Put(c, key, value) => {
                    columns[index(c)].insert(key, value);
                }
                Op::Delete(c, key) => {
                    columns[index(c)].remove(&key);
                }
                Op::DeleteRange(c, from, to) => {
                    let doomed: Vec<Vec<u8>> = columns[index(c)]
                        .range(from..to)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in doomed {
                        columns[index(c)].remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

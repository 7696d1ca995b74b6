//! Recovery: the read-write engine, shared with readers, and what happens to it after a failed
//! write. RocksDB stays in its error state after a failed write (and its background recovery can
//! trip an assertion in Debian's build), so the engine is closed at once ([`WriteSide::break_with`])
//! and readers are served by a read-only one meanwhile; before the next write it is reopened
//! ([`Writer::ensure_writable`]) and any record past the projection's head — a write reported as
//! failed that reached the log after all, or a batch the replica refused — is removed
//! ([`keys::truncate_after`]), so that what callers were told stays true.
//!
//! Closing waits on something: the engine is shared as a [`Released`] handle, whose last holder
//! closes it and then drops the sender a close waits on.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::super::engine::{Batch, Column, Engine, Storage, VisitPair, VisitValue};
use super::super::keys::{self, head_seq, read_head};
use super::super::{EngineSlot, StoreError};
use super::{poisoned, Writer};

/// How long a close waits for reads in progress to let go of the engine.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The read-write engine as the writer and the readers share it. Whoever drops the last handle
/// closes the engine (its only other owner is gone by then), and then `_released` goes: the
/// receiver a close waits on learns that the engine is closed.
struct Released {
    engine: Arc<dyn Engine>,
    _released: Sender<Infallible>,
}

/// The write side of the log: the read-write engine (shared with readers through the slot) and
/// whether the last write broke it.
pub(super) struct WriteSide {
    storage: Arc<dyn Storage>,
    /// `None` while the engine is closed after a failed write and could not be reopened yet.
    engine: Option<Open>,
    /// The same engine, for readers.
    slot: EngineSlot,
    /// The error that broke the last write, until the database is reopened cleanly.
    broken: Option<String>,
}

/// The open engine and the signal of its release by the last holder.
struct Open {
    engine: Arc<dyn Engine>,
    released: Receiver<Infallible>,
}

impl WriteSide {
    /// The write side of `engine`, opened on `storage`, shared with readers through `slot`.
    pub(super) fn new(
        storage: Arc<dyn Storage>,
        engine: Arc<dyn Engine>,
        slot: EngineSlot,
    ) -> Self {
        let mut side = WriteSide {
            storage,
            engine: None,
            slot,
            broken: None,
        };
        side.install(engine);
        side
    }

    /// The storage the log lives on.
    pub(super) fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The engine, while it is open.
    pub(super) fn engine(&self) -> Option<Arc<dyn Engine>> {
        self.engine.as_ref().map(|open| open.engine.clone())
    }

    /// The engine, if it is open and no write broke it.
    pub(super) fn intact(&self) -> Option<&Arc<dyn Engine>> {
        match self.broken {
            Some(_) => None,
            None => self.engine.as_ref().map(|open| &open.engine),
        }
    }

    /// Marks the engine broken by `cause`: the next write reopens it first.
    pub(super) fn mark_broken(&mut self, cause: String) {
        self.broken = Some(cause);
    }

    /// Marks the engine broken by `cause`, closes it now, and serves readers from a read-only
    /// engine until it is reopened.
    pub(super) fn break_with(&mut self, cause: String) {
        self.broken = Some(cause);
        self.close();
        self.serve_reads_read_only();
    }

    /// Closes the engine and opens it again with nothing after record `seq` (the projection's
    /// head); readers are then served by it.
    fn reopen_at(&mut self, seq: u64) -> Result<(), StoreError> {
        self.close();
        let engine = self.storage.open()?;
        let stored_seq = head_seq(read_head(engine.as_ref())?.as_deref());
        if stored_seq < seq {
            return Err(StoreError::Inconsistent(format!(
                "reopened log ends at {stored_seq}, before acknowledged record {seq}"
            )));
        }
        if let Some(stored_seq) = keys::truncate_after(engine.as_ref(), seq)? {
            tracing::warn!(
                "removed records {}..={stored_seq} of a write reported as failed",
                seq + 1
            );
        }
        self.install(engine);
        self.broken = None;
        Ok(())
    }

    /// Shares `engine` with readers as a [`Released`] handle, and keeps it.
    fn install(&mut self, engine: Arc<dyn Engine>) {
        let (tx, released) = crossbeam_channel::bounded(0);
        let engine: Arc<dyn Engine> = Arc::new(Released {
            engine,
            _released: tx,
        });
        if let Ok(mut slot) = self.slot.write() {
            *slot = Some(engine.clone());
        }
        self.engine = Some(Open { engine, released });
    }

    /// While the log is closed after a failed write, readers are served by a read-only engine
    /// (it takes no lock, so the primary can be reopened beside it).
    fn serve_reads_read_only(&self) {
        match self.storage.open_read_only() {
            Ok(engine) => {
                if let Ok(mut slot) = self.slot.write() {
                    *slot = Some(engine);
                }
            }
            Err(e) => tracing::warn!("cannot open the log read-only for readers: {e}"),
        }
    }

    /// Takes the engine away from readers and closes it, waiting (up to 10 s) for reads in
    /// progress to let go of it, so that it can be reopened.
    pub(super) fn close(&mut self) {
        if let Ok(mut slot) = self.slot.write() {
            slot.take();
        }
        let Some(Open { engine, released }) = self.engine.take() else {
            return;
        };
        drop(engine);
        // The slot is empty, so no reader takes a new handle: wait for the ones in use.
        match released.recv_timeout(CLOSE_WAIT) {
            Ok(never) => match never {},
            Err(RecvTimeoutError::Disconnected) => {}
            Err(RecvTimeoutError::Timeout) => tracing::warn!(
                "a reader still holds the engine after 10 s; it closes when that read ends"
            ),
        }
    }
}

impl Writer {
    /// Reopens the engine if the last write broke it (see the module docs); why it cannot be
    /// written yet, if so.
    pub(super) fn ensure_writable(&mut self) -> Result<(), String> {
        let Some(cause) = self.engine.broken.clone() else {
            return Ok(());
        };
        let reopened = self
            .state
            .read()
            .map_err(|_| poisoned())
            .map(|state| state.head().0)
            .and_then(|seq| self.engine.reopen_at(seq));
        match reopened {
            Ok(()) => {
                tracing::info!("event log writable again after: {cause}");
                Ok(())
            }
            Err(e) => {
                tracing::warn!("event log still unwritable ({cause}): {e}");
                Err(format!("{cause} (not recovered yet: {e})"))
            }
        }
    }
}

impl Engine for Released {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.engine.get(column, key)
    }

    fn get_many(
        &self,
        column: Column,
        keys: &[&[u8]],
        visit: &mut VisitValue<'_>,
    ) -> Result<(), StoreError> {
        self.engine.get_many(column, keys, visit)
    }

    fn scan(
        &self,
        column: Column,
        from: &[u8],
        visit: &mut VisitPair<'_>,
    ) -> Result<(), StoreError> {
        self.engine.scan(column, from, visit)
    }

    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        self.engine.write(batch)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.engine.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::RwLock;
    use std::time::Instant;

    use super::*;
    use crate::store::MemStorage;

    fn side() -> WriteSide {
        let storage: Arc<dyn Storage> = Arc::new(MemStorage::new());
        let engine = storage.open().unwrap();
        WriteSide::new(storage, engine, Arc::new(RwLock::new(None)))
    }

    #[test]
    fn a_close_waits_for_the_reader_that_holds_the_engine_and_no_longer() {
        let mut side = side();
        let held = side.slot.read().unwrap().clone().unwrap();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(held);
        });
        let started = Instant::now();
        side.close();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        assert!(waited < CLOSE_WAIT, "{waited:?}");
        assert!(side.slot.read().unwrap().is_none(), "readers get no engine");
        assert!(side.engine().is_none());
        reader.join().unwrap();
        // Nobody holds it: the close is immediate.
        let mut side = self::side();
        let started = Instant::now();
        side.close();
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn a_broken_engine_serves_readers_read_only_until_it_is_reopened() {
        let mut side = side();
        side.break_with("boom".into());
        assert!(side.intact().is_none());
        let reader = side.slot.read().unwrap().clone().unwrap();
        assert!(reader.write(Batch::new()).is_err(), "read-only");
        side.reopen_at(0).unwrap();
        assert!(side.intact().is_some());
        assert!(side.broken.is_none());
    }
}

//! Recovery: the read-write engine, shared with readers, and what happens to it after a failed
//! write. RocksDB stays in its error state after a failed write (and its background recovery can
//! trip an assertion in Debian's build), so the engine is closed at once ([`WriteSide::break_with`])
//! and readers are served by a read-only one meanwhile; before the next write it is reopened
//! ([`Writer::ensure_writable`]) and any record past the projection's head — a write reported as
//! failed that reached the log after all, or a batch the replica refused — is removed
//! ([`keys::truncate_after`]), so that what callers were told stays true.

use std::sync::Arc;

use super::super::engine::{Engine, Storage};
use super::super::keys::{self, head_seq, read_head};
use super::super::{EngineSlot, StoreError};
use super::{poisoned, Writer};

/// The write side of the log: the read-write engine (shared with readers through the slot) and
/// whether the last write broke it.
pub(super) struct WriteSide {
    storage: Arc<dyn Storage>,
    /// `None` while the engine is closed after a failed write and could not be reopened yet.
    engine: Option<Arc<dyn Engine>>,
    /// The same engine, for readers.
    slot: EngineSlot,
    /// The error that broke the last write, until the database is reopened cleanly.
    broken: Option<String>,
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
        self.engine.clone()
    }

    /// The engine, if it is open and no write broke it.
    pub(super) fn intact(&self) -> Option<&Arc<dyn Engine>> {
        match self.broken {
            Some(_) => None,
            None => self.engine.as_ref(),
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

    /// Shares `engine` with readers, and keeps it.
    fn install(&mut self, engine: Arc<dyn Engine>) {
        if let Ok(mut slot) = self.slot.write() {
            *slot = Some(engine.clone());
        }
        self.engine = Some(engine);
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
        let Some(engine) = self.engine.take() else {
            return;
        };
        // The slot is empty, so no reader takes a new reference: wait for the ones in use.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&engine) > 1 {
            if std::time::Instant::now() >= deadline {
                tracing::warn!(
                    "a reader still holds the engine after 10 s; it closes when that read ends"
                );
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        drop(engine);
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

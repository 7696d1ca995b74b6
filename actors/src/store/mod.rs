//! The event log: durable, hash-chained, group-committed.
//!
//! Owns the path from "an actor wants this event recorded" to "it is on disk and in the live
//! projection". Appends go through a crossbeam channel to one writer thread
//! ([`rocks::RocksEventLog`]), which takes everything waiting, stamps it, writes it as one
//! RocksDB `WriteBatch` with one fsync, applies it to the [`SharedState`](crate::SharedState) and
//! only then answers each caller. A failed write answers every caller of that batch with an error
//! and changes nothing.

pub mod keys;
pub mod rocks;

use invoiced_events::{Event, EventRecord, Hash32};
use tokio::sync::oneshot;

pub use rocks::RocksEventLog;

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB refused an operation.
    #[error("database: {0}")]
    Db(#[from] rocksdb::Error),
    /// A stored record could not be decoded.
    #[error("record {seq}: {source}")]
    Codec {
        /// Where.
        seq: u64,
        /// Why.
        source: invoiced_events::CodecError,
    },
    /// The log contradicts itself.
    #[error("log inconsistent: {0}")]
    Inconsistent(String),
    /// The data dir belongs to another network.
    #[error("this data dir belongs to network {stored}, not {wanted}")]
    WrongNetwork {
        /// The data dir's network.
        stored: String,
        /// The one asked for.
        wanted: String,
    },
    /// The writer thread has stopped.
    #[error("event log writer has stopped")]
    WriterGone,
}

/// A committed event, as its caller gets it back (stamped, with its place in the log).
#[derive(Clone, Debug)]
pub struct Committed {
    /// Its record.
    pub record: EventRecord,
    /// Its chain hash.
    pub hash: Hash32,
}

/// A request to the writer: events that are committed together or not at all.
pub(crate) struct AppendRequest {
    pub(crate) events: Vec<Event>,
    pub(crate) reply: oneshot::Sender<Result<Vec<Committed>, String>>,
}

/// A cloneable handle for appending to the log.
#[derive(Clone, Debug)]
pub struct LogHandle {
    tx: crossbeam_channel::Sender<AppendRequest>,
}

impl LogHandle {
    /// Appends `event`, returning once it is durable and applied to the projection.
    ///
    /// # Errors
    /// [`AppendError`] when the write failed or the writer is gone.
    pub async fn append(&self, event: Event) -> Result<Committed, AppendError> {
        self.append_all(vec![event]).await?.pop().ok_or(AppendError::WriterGone)
    }

    /// Appends `events` atomically (one batch, in order), returning once all are durable.
    ///
    /// # Errors
    /// [`AppendError`] when the write failed (none was written) or the writer is gone.
    pub async fn append_all(&self, events: Vec<Event>) -> Result<Vec<Committed>, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(AppendRequest { events, reply }).map_err(|_| AppendError::WriterGone)?;
        match rx.await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(msg)) => Err(AppendError::Write(msg)),
            Err(_) => Err(AppendError::WriterGone),
        }
    }
}

/// Why an append failed. Nothing of the event was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The batch write failed (disk full, I/O error); carries the database's message.
    #[error("event log write failed: {0}")]
    Write(String),
    /// The writer thread has stopped.
    #[error("event log writer has stopped")]
    WriterGone,
}

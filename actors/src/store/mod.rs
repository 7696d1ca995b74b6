//! The event log: durable, hash-chained, group-committed.
//!
//! Owns the path from "an actor wants this event recorded" to "it is on disk and in the live
//! projection". Appends go through a crossbeam channel to one writer thread
//! ([`log::EventLog`]), which takes everything waiting, stamps it, writes it as one atomic batch
//! with one fsync, applies it to the [`SharedState`](crate::SharedState) and only then answers
//! each caller. A failed write answers every caller of that batch with an error and changes
//! nothing.
//!
//! The log runs on any [`engine::Storage`]: RocksDB on disk ([`rocks`]) in the daemon, or
//! memory ([`memory`]) in tests of the log and the actors; the offline tools read RocksDB
//! directly ([`reader`]). Where each thing lies on the engine is [`keys`]' business alone;
//! what is done to a log before it opens (replication's reconciliation) goes through
//! [`LocalLog`].
//!
//! The projection keeps only a lean entry per invoice; [`InvoiceReader`] joins entries with their
//! creation records, read from the log beside the writer (the records are immutable once written,
//! and every entry in the projection names a durable one).

pub mod checkpoint;
pub mod engine;
pub mod keys;
mod local;
pub mod log;
pub mod memory;
mod open;
pub mod reader;
pub mod replay;
pub mod replica;
pub mod rocks;
mod writer;

use std::sync::{Arc, RwLock};

use invoiced_events::codec::decode_record;
use invoiced_events::{
    CreatedIndex, EventRecord, Hash32, InvoiceCreated, InvoiceEntry, InvoiceRecord, Proposal,
    Rejection,
};
use tokio::sync::{mpsc, oneshot};

use crate::SharedState;
use engine::Engine;

pub use engine::Storage;
pub use local::LocalLog;
pub use log::EventLog;
pub use memory::MemStorage;
pub use rocks::RocksStorage;

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine refused an operation; its own message (an engine converts its errors
    /// into this one, so nothing above the engine names it).
    #[error("database: {0}")]
    Engine(String),
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
    /// A fault injected by a test ([`Faults`]); handled as a failed database write.
    #[error("injected fault: {0}")]
    Injected(&'static str),
    /// The replica did not take the batch; it is rolled back locally.
    #[error("replication: {0}")]
    Replica(#[from] replica::ReplicaError),
    /// Too little disk space left to write safely.
    #[error("disk nearly full: {free} bytes free, below the reserve of {reserve} bytes (--min-free-disk-mb); free some space")]
    DiskFull {
        /// Bytes free.
        free: u64,
        /// The reserve.
        reserve: u64,
    },
}

/// How the log is run.
pub struct LogOptions {
    /// Writes are refused (with a clear error) while the filesystem has less than this free, so
    /// RocksDB never meets a full disk mid-write (its recovery from that is fragile).
    pub min_free_bytes: u64,
    /// Faults to inject, for tests of the writer's recovery; none in the daemon.
    pub faults: Faults,
    /// Where every batch must also be committed before it is acknowledged (none: local only).
    pub replica: Option<Box<dyn replica::Replica>>,
    /// Start as a standby: every append refused until [`LogHandle::become_primary`].
    pub standby: bool,
    /// Told how the opening replay goes (a terminal's progress line); none by default.
    pub replay_progress: Option<ReplayProgress>,
    /// Told of each batch the writer makes durable (metrics).
    pub observer: Option<Arc<dyn WriteObserver>>,
}

/// What the writer reports of each batch it makes durable, on its own thread (so it must be
/// quick: metrics count it).
pub trait WriteObserver: Send + Sync {
    /// `records` records of `bytes` stored bytes were written, durable after `took` (the write
    /// and its fsync).
    fn batch_written(&self, records: usize, bytes: usize, took: std::time::Duration);
}

/// Told, as the opening replay goes, the records replayed so far and the records to replay:
/// once before the first and after each chunk. Dropped when the replay ends.
pub type ReplayProgress = Box<dyn FnMut(u64, u64) + Send>;

impl core::fmt::Debug for LogOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LogOptions")
            .field("min_free_bytes", &self.min_free_bytes)
            .field("replica", &self.replica.is_some())
            .finish()
    }
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            min_free_bytes: 128 << 20,
            faults: Faults::default(),
            replica: None,
            standby: false,
            observer: None,
            replay_progress: None,
        }
    }
}

/// Faults the writer injects into its own writes (a test seam: a real I/O error cannot be
/// provoked on demand). Shared, so a test can arm one while the log runs.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// The next this-many batch writes reach the database and are then reported as failed, as
    /// when RocksDB fails after its WAL append: the worst case for recovery, which must remove
    /// them again before anything else is written.
    pub fail_after_write: Arc<std::sync::atomic::AtomicUsize>,
}

impl Faults {
    /// Arms `n` failures after write.
    pub fn fail_next_writes(&self, n: usize) {
        self.fail_after_write
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    fn take_failure_after_write(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        self.fail_after_write
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A committed event, as its caller and the subscribers get it (stamped, with its place in the
/// log, and the invoice it concerns as it stands after it — or, for a deletion, as it was).
#[derive(Clone, Debug)]
pub struct Committed {
    /// Its record.
    pub record: EventRecord,
    /// Its chain hash.
    pub hash: Hash32,
    /// The invoice the event concerns, if any.
    pub invoice: Option<InvoiceRecord>,
}

/// Every committed batch, in commit order, for subscribers (waiters, the expiry timer). Each
/// event is shared with its caller's answer, not copied: the writer, the one serial stage of
/// every append, only counts references. Whoever needs an event of its own takes it with
/// [`Arc::unwrap_or_clone`], on its own thread.
pub type CommittedBatch = Arc<Vec<Arc<Committed>>>;

/// A committed batch as the message an actor that follows the log receives
/// ([`LogHandle::forward_to`]).
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct Observe(pub CommittedBatch);

impl From<CommittedBatch> for Observe {
    fn from(b: CommittedBatch) -> Self {
        Observe(b)
    }
}

/// A request to the writer: proposals that are committed together or not at all.
pub(crate) struct AppendRequest {
    pub(crate) proposals: Vec<Proposal>,
    pub(crate) reply: oneshot::Sender<Result<Vec<Arc<Committed>>, AppendError>>,
}

/// Records written elsewhere (by the primary), to be stored verbatim: a standby's appends.
pub(crate) struct RawRequest {
    pub(crate) records: Vec<Vec<u8>>,
    pub(crate) reply: oneshot::Sender<Result<u64, AppendError>>,
}

/// What the writer is asked.
pub(crate) enum WriterMsg {
    Append(AppendRequest),
    Raw(RawRequest),
    Role(Role),
    Subscribe(mpsc::UnboundedSender<CommittedBatch>),
}

/// The writer's role from now on.
pub(crate) enum Role {
    /// Refuse appends: only the primary's records are stored.
    Standby,
    /// Take appends, shipping each batch to this replica, if any (e.g. once promoted).
    Primary(Option<Box<dyn replica::Replica>>),
}

/// A cloneable handle for appending to the log.
#[derive(Clone, Debug)]
pub struct LogHandle {
    tx: crossbeam_channel::Sender<WriterMsg>,
}

impl LogHandle {
    /// Appends `event`, returning once it is durable and applied to the projection.
    ///
    /// # Errors
    /// [`AppendError`] when the write failed or the writer is gone.
    pub async fn append(&self, proposal: Proposal) -> Result<Arc<Committed>, AppendError> {
        self.append_all(vec![proposal])
            .await?
            .pop()
            .ok_or(AppendError::WriterGone)
    }

    /// Appends `proposals` atomically (one batch, in order; the writer stamps their counters),
    /// returning the committed events once all are durable.
    ///
    /// # Errors
    /// [`AppendError`] when the write failed (none was written) or the writer is gone.
    pub async fn append_all(
        &self,
        proposals: Vec<Proposal>,
    ) -> Result<Vec<Arc<Committed>>, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriterMsg::Append(AppendRequest { proposals, reply }))
            .map_err(|_| AppendError::WriterGone)?;
        rx.await.map_err(|_| AppendError::WriterGone)?
    }

    /// Appends each proposal as a request of its own (one refused takes no other with it), all
    /// sent before any answer is awaited so the writer commits them together; the outcomes in
    /// order.
    pub async fn append_each(
        &self,
        proposals: Vec<Proposal>,
    ) -> Vec<Result<Arc<Committed>, AppendError>> {
        let pending: Vec<_> = proposals
            .into_iter()
            .map(|p| {
                let (reply, rx) = oneshot::channel();
                let sent = self.tx.send(WriterMsg::Append(AppendRequest {
                    proposals: vec![p],
                    reply,
                }));
                (sent.is_ok(), rx)
            })
            .collect();
        let mut out = Vec::with_capacity(pending.len());
        for (sent, rx) in pending {
            let outcome = match (sent, rx.await) {
                (true, Ok(result)) => {
                    result.and_then(|mut v| v.pop().ok_or(AppendError::WriterGone))
                }
                _ => Err(AppendError::WriterGone),
            };
            out.push(outcome);
        }
        out
    }

    /// Stores records another writer made (the primary's, as a standby receives them) verbatim,
    /// after checking that they continue this log's chain and its rules; returns the new head.
    /// Blocks: call it from a thread of its own, not from the actors' runtime.
    ///
    /// # Errors
    /// [`AppendError`] when a record does not decode, continue the chain or replay, or the write
    /// failed; nothing of the call is then stored.
    pub fn append_raw_blocking(&self, records: Vec<Vec<u8>>) -> Result<u64, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriterMsg::Raw(RawRequest { records, reply }))
            .map_err(|_| AppendError::WriterGone)?;
        rx.blocking_recv().map_err(|_| AppendError::WriterGone)?
    }

    /// Makes the writer refuse every append from now on (a standby: only records from the
    /// primary are stored).
    pub fn become_standby(&self) {
        let _ = self.tx.send(WriterMsg::Role(Role::Standby));
    }

    /// Makes the writer take appends again, each batch shipped to `replica` before it is
    /// acknowledged (a promoted standby).
    pub fn become_primary(&self, replica: Option<Box<dyn replica::Replica>>) {
        let _ = self.tx.send(WriterMsg::Role(Role::Primary(replica)));
    }

    /// Sends every batch committed from now on to `recipient`, in commit order, until it is gone.
    /// Call from within an actix system.
    pub fn forward_to<M>(&self, recipient: actix::Recipient<M>)
    where
        M: actix::Message<Result = ()> + From<CommittedBatch> + Send + 'static,
    {
        let mut rx = self.subscribe();
        actix::spawn(async move {
            while let Some(batch) = rx.recv().await {
                if recipient.send(M::from(batch)).await.is_err() {
                    break;
                }
            }
        });
    }

    /// Receives every batch committed from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<CommittedBatch> {
        let (tx, rx) = mpsc::unbounded_channel();
        // If the writer is gone, the receiver just ends.
        let _ = self.tx.send(WriterMsg::Subscribe(tx));
        rx
    }
}

/// The open engine, shared by the writer with readers. Empty while the writer reopens it after a
/// failed write, and once the log is closed; a reader holds its `Arc` only for one read.
pub(crate) type EngineSlot = Arc<RwLock<Option<Arc<dyn Engine>>>>;

/// Reads whole invoices: entries of the live projection joined with their creation records.
#[derive(Clone)]
pub struct InvoiceReader {
    state: SharedState,
    engine: EngineSlot,
}

impl core::fmt::Debug for InvoiceReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InvoiceReader").finish_non_exhaustive()
    }
}

impl InvoiceReader {
    pub(crate) fn new(state: SharedState, engine: EngineSlot) -> Self {
        InvoiceReader { state, engine }
    }

    /// The live projections.
    pub fn state(&self) -> &SharedState {
        &self.state
    }

    /// Copies out of the live projection what `pick` chooses (under the read lock, briefly).
    ///
    /// # Errors
    /// [`StoreError::Inconsistent`] if the lock is poisoned.
    pub fn pick<T>(
        &self,
        pick: impl FnOnce(&invoiced_events::Projections) -> T,
    ) -> Result<T, StoreError> {
        let state = self
            .state
            .read()
            .map_err(|_| StoreError::Inconsistent("projection lock poisoned".into()))?;
        Ok(pick(&state))
    }

    /// The whole invoices of `entries`, in their order. Blocks for the reads: call it off the
    /// RPC thread for long listings.
    ///
    /// # Errors
    /// [`StoreError`] when the log is unreadable or reopening, or contradicts an entry.
    pub fn invoices(&self, entries: Vec<InvoiceEntry>) -> Result<Vec<InvoiceRecord>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let engine = self
            .engine
            .read()
            .map_err(|_| StoreError::Inconsistent("engine lock poisoned".into()))?
            .clone()
            .ok_or(StoreError::WriterGone)?;
        join_entries(engine.as_ref(), entries)
    }

    /// The whole invoice of one entry.
    ///
    /// # Errors
    /// As [`InvoiceReader::invoices`].
    pub fn invoice(&self, entry: InvoiceEntry) -> Result<InvoiceRecord, StoreError> {
        self.invoices(vec![entry])?
            .pop()
            .ok_or_else(|| StoreError::Inconsistent("no invoice read".into()))
    }

    fn engine(&self) -> Result<Arc<dyn Engine>, StoreError> {
        self.engine
            .read()
            .map_err(|_| StoreError::Inconsistent("engine lock poisoned".into()))?
            .clone()
            .ok_or(StoreError::WriterGone)
    }

    /// Up to `max` records from `from` on, in log order (for followers of the log: webhooks).
    ///
    /// # Errors
    /// [`StoreError`] when the log is unreadable or reopening.
    pub fn records_from(&self, from: u64, max: usize) -> Result<Vec<EventRecord>, StoreError> {
        let engine = self.engine()?;
        let mut out = Vec::new();
        let mut failed = None;
        keys::scan_records(engine.as_ref(), from, &mut |seq, value| {
            match decode_record(value) {
                Ok(r) => out.push(r),
                Err(source) => failed = Some(StoreError::Codec { seq, source }),
            }
            failed.is_none() && out.len() < max
        })?;
        failed.map_or(Ok(out), Err)
    }

    /// The creation of invoice `created_index` as the log recorded it, also once deleted: the
    /// live entry names its record; for a deleted one, creations are found by bisecting the log,
    /// since `created_index` grows with `seq`.
    ///
    /// # Errors
    /// [`StoreError`] when the log is unreadable or reopening.
    pub fn creation(
        &self,
        created_index: CreatedIndex,
    ) -> Result<Option<InvoiceCreated>, StoreError> {
        let (live, head) =
            self.pick(|s| (s.invoices.get(created_index).map(|e| e.seq), s.head().0))?;
        if let Some(seq) = live {
            return Ok(self
                .records_from(seq, 1)?
                .pop()
                .and_then(|r| r.event.created().cloned()));
        }
        // The first creation at or after `seq`, with its own seq.
        let first_creation = |seq: u64| -> Result<Option<(u64, InvoiceCreated)>, StoreError> {
            let mut at = seq;
            while at <= head {
                let batch = self.records_from(at, 64)?;
                let Some(last) = batch.last().map(|r| r.seq) else {
                    return Ok(None);
                };
                if let Some(r) = batch.into_iter().find(|r| r.event.created().is_some()) {
                    return Ok(r.event.created().cloned().map(|c| (r.seq, c)));
                }
                at = last + 1;
            }
            Ok(None)
        };
        // Its record is at or after seq `created_index` (one creation per record at most).
        let (mut lo, mut hi) = (created_index.get().max(1), head);

        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            match first_creation(mid)? {
                Some((_, c)) if c.created_index == created_index => return Ok(Some(c)),
                Some((seq, c)) if c.created_index < created_index => lo = seq + 1,
                // No creation at or after `mid`, or a later one: it is before `mid` (lo >= 1).
                _ => hi = mid - 1,
            }
        }
        Ok(None)
    }
}

/// Joins each entry with the `InvoiceCreated` of its record `seq`, read in one batched lookup.
///
/// # Errors
/// [`StoreError`] when a record is missing, unreadable or not the entry's invoice.
pub fn join_entries(
    engine: &dyn Engine,
    entries: Vec<InvoiceEntry>,
) -> Result<Vec<InvoiceRecord>, StoreError> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_unstable_by_key(|&i| entries[i].seq);
    let seqs: Vec<u64> = order.iter().map(|&i| entries[i].seq).collect();
    let mut joined: Vec<Option<InvoiceRecord>> = vec![None; entries.len()];
    keys::read_records_sorted(engine, &seqs, &mut |k, value| {
        let i = order[k];
        let entry = &entries[i];
        let seq = entry.seq;
        let not_its_record = || {
            StoreError::Inconsistent(format!(
                "record {seq} does not create invoice {}",
                entry.created_index
            ))
        };
        let bytes = value.ok_or_else(|| {
            StoreError::Inconsistent(format!(
                "record {seq} of invoice {} is missing",
                entry.created_index
            ))
        })?;
        let record = decode_record(bytes).map_err(|source| StoreError::Codec { seq, source })?;
        joined[i] = Some(entry.join(&record.event).ok_or_else(not_its_record)?);
        Ok(())
    })?;
    Ok(joined.into_iter().flatten().collect())
}

/// Why an append failed. Nothing of the request was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The writer refused it at commit time: it conflicts with the state.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The filesystem is below the free-space reserve: nothing was written.
    #[error("event log write failed: disk nearly full")]
    DiskFull,
    /// The batch write failed (an I/O error); carries the database's message, for the log.
    #[error("event log write failed: {0}")]
    Write(String),
    /// The replica did not take the batch (unreachable, or this process was deposed); it was
    /// rolled back locally. The message names the reason.
    #[error("event log write failed: {0}")]
    Replica(String),
    /// This invoiced is a standby: only the primary writes.
    #[error("this invoiced is a standby: it serves reads, writes go to the primary (or `promote` this one)")]
    Standby,
    /// The writer thread has stopped.
    #[error("event log writer has stopped")]
    WriterGone,
}

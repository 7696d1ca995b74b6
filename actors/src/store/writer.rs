//! The writer thread: the one place the log is written. Its loop only gathers what is waiting
//! and hands each job to its room:
//! - [`commit`]: group commit — the appends gathered are admitted against the projection,
//!   stamped, written as one batch with one fsync, applied; each caller is answered and the
//!   subscribers are told;
//! - [`shipping`]: each such batch to the replica, if there is one, before anyone is answered
//!   (and a batch the replica turns out to hold after all, taken back);
//! - [`standby`]: the role — a standby refuses appends and stores the primary's records
//!   verbatim instead ([`Writer::store_raw`]); a promotion makes it a primary again;
//! - [`recovery`]: after a failed write (or a batch the replica refused) the engine is closed,
//!   readers are served read-only, and before the next write the log is reopened without what
//!   was not reported; a close waits for the last reader to let go of the engine;
//! - checkpointing ([`Writer::shut_down`]): at a clean stop, the projection saved beside the log.

mod commit;
mod recovery;
mod shipping;
mod standby;

use std::sync::Arc;

use invoiced_events::{Event, EventRecord, Hash32, InvoiceEntry, Projections};

use super::checkpoint::save_checkpoint;
use super::engine::{Engine, Storage};
use super::{
    join_entries, AppendError, AppendRequest, Committed, CommittedBatch, EngineSlot, Faults,
    LogOptions, StoreError, WriterMsg,
};
use crate::clock::Clock;
use crate::SharedState;
use recovery::WriteSide;
use shipping::Shipping;

/// Most events written in one batch.
const MAX_BATCH: usize = 1024;

/// A durable record folded into the projections, with its chain hash and the invoice it
/// concerns as it now stands (a deleted or cleaned one: as it was).
type Folded = (EventRecord, Hash32, Option<InvoiceEntry>);

/// The writer thread's state; it owns the database's write side.
pub(super) struct Writer {
    /// The read-write engine, shared with readers, and its recovery after a failed write.
    engine: WriteSide,
    /// Free-space reserve below which writes are refused.
    min_free: u64,
    /// Faults a test asked for.
    faults: Faults,
    /// Where each batch is also committed before it is acknowledged.
    shipping: Shipping,
    /// A standby refuses appends: only the primary's records are stored ([`WriterMsg::Raw`]).
    standby: bool,
    state: SharedState,
    clock: Arc<dyn Clock>,
    subscribers: Vec<tokio::sync::mpsc::UnboundedSender<CommittedBatch>>,
    /// Told of each batch made durable (metrics).
    observer: Option<Arc<dyn super::WriteObserver>>,
}

/// The appends gathered for the next group commit.
struct Gathered {
    requests: Vec<AppendRequest>,
    /// Their proposals, counted against [`MAX_BATCH`].
    events: usize,
}

impl Writer {
    /// A writer for the log on `storage`, opened as `engine`, which it shares with readers
    /// through `slot` from now on.
    pub(super) fn new(
        storage: Arc<dyn Storage>,
        engine: Arc<dyn Engine>,
        slot: EngineSlot,
        state: SharedState,
        clock: Arc<dyn Clock>,
        options: LogOptions,
    ) -> Self {
        let LogOptions {
            min_free_bytes: min_free,
            faults,
            replica,
            standby,
            observer,
            replay_progress: _,
        } = options;
        Writer {
            engine: WriteSide::new(storage, engine, slot),
            min_free,
            faults,
            shipping: Shipping::new(replica),
            standby,
            state,
            clock,
            subscribers: Vec::new(),
            observer,
        }
    }

    /// Serves appends, subscriptions and role changes until the channel closes; then
    /// checkpoints and closes the engine.
    pub(super) fn run(mut self, rx: crossbeam_channel::Receiver<WriterMsg>) {
        let mut gathered = Gathered {
            requests: Vec::with_capacity(MAX_BATCH),
            events: 0,
        };
        while let Ok(first) = rx.recv() {
            self.gather(first, &rx, &mut gathered);
            self.commit_gathered(&mut gathered);
        }
        self.shut_down();
        self.engine.close();
    }

    /// Takes `first` and whatever else is waiting, up to [`MAX_BATCH`] events gathered.
    fn gather(
        &mut self,
        first: WriterMsg,
        rx: &crossbeam_channel::Receiver<WriterMsg>,
        gathered: &mut Gathered,
    ) {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            self.take(msg, gathered);
            if gathered.events < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
    }

    /// One message: an append is gathered (or refused, by a standby); anything else is served
    /// in order, after what was gathered before it is committed.
    fn take(&mut self, msg: WriterMsg, gathered: &mut Gathered) {
        match msg {
            WriterMsg::Append(req) if self.standby => {
                let _ = req.reply.send(Err(AppendError::Standby));
            }
            WriterMsg::Append(req) => {
                gathered.events += req.proposals.len();
                gathered.requests.push(req);
            }
            WriterMsg::Raw(req) => {
                self.commit_gathered(gathered);
                let outcome = self.store_raw(req.records);
                let _ = req.reply.send(outcome);
            }
            WriterMsg::Role(role) => {
                self.commit_gathered(gathered);
                self.set_role(role);
            }
            WriterMsg::Subscribe(tx) => self.subscribers.push(tx),
        }
    }

    /// Commits what was gathered, if anything.
    fn commit_gathered(&mut self, gathered: &mut Gathered) {
        if !gathered.requests.is_empty() {
            self.commit(&mut gathered.requests);
        }
        gathered.events = 0;
    }

    /// Checkpointing, at a clean shutdown: the projections saved so that the next start replays
    /// nothing, and the WAL moved into table files so that the next open does not replay it.
    /// Nothing is saved while the engine is closed or broken after a failed write.
    fn shut_down(&self) {
        let Some(engine) = self.engine.intact() else {
            return;
        };
        match self.state.read() {
            Ok(state) => {
                if let Err(e) = save_checkpoint(self.engine.storage(), &state) {
                    tracing::error!("cannot write checkpoint: {e}");
                }
            }
            Err(_) => tracing::error!("projection lock poisoned; no checkpoint written"),
        }
        if let Err(e) = engine.flush() {
            tracing::warn!("flush at shutdown failed: {e}");
        }
    }

    /// Sends `committed` (if any) to every subscriber still listening.
    fn publish(&mut self, committed: Vec<Arc<Committed>>) {
        if committed.is_empty() {
            return;
        }
        let batch: CommittedBatch = Arc::new(committed);
        self.subscribers.retain(|s| s.send(batch.clone()).is_ok());
    }

    /// The committed events with the invoice each concerns: a creation joins its own event, a
    /// lifecycle event reads the creation record (one batched read for the whole batch). The
    /// events are durable and applied already, so a failed read only leaves `invoice` empty.
    fn join_committed(&self, engine: &dyn Engine, applied: Vec<Folded>) -> Vec<Arc<Committed>> {
        let lookups: Vec<InvoiceEntry> = applied
            .iter()
            .filter(|(r, ..)| r.event.created().is_none())
            .filter_map(|(_, _, e)| e.clone())
            .collect();
        let mut read = match join_entries(engine, lookups) {
            Ok(v) => v.into_iter(),
            Err(e) => {
                tracing::error!("cannot read back the invoices of committed events: {e}");
                Vec::new().into_iter()
            }
        };
        applied
            .into_iter()
            .map(|(record, hash, entry)| {
                let invoice = match (record.event.created(), entry) {
                    (Some(_), Some(e)) => e.join(&record.event),
                    (None, Some(_)) => read.next(),
                    (_, None) => None,
                };
                Arc::new(Committed {
                    record,
                    hash,
                    invoice,
                })
            })
            .collect()
    }
}

/// The error of a poisoned projection lock.
fn poisoned() -> StoreError {
    StoreError::Inconsistent("projection lock poisoned".into())
}

/// Folds `records` into `state` in order, each into `applied` with the invoice it concerns;
/// stops at the first one the projection refuses (those before it stay applied).
fn fold_all(
    state: &mut Projections,
    records: Vec<(EventRecord, Hash32)>,
    applied: &mut Vec<Folded>,
) -> Result<(), invoiced_events::ApplyError> {
    for (record, hash) in records {
        applied.push(fold(state, record, hash)?);
    }
    Ok(())
}

/// Folds one durable record into the projections, with the invoice it concerns as it now stands
/// (a deleted or cleaned one: as it was).
fn fold(
    state: &mut Projections,
    record: EventRecord,
    hash: Hash32,
) -> Result<Folded, invoiced_events::ApplyError> {
    let target = record.event.invoice_index();
    let before = match (&record.event, target) {
        (Event::InvoiceDeleted(_) | Event::InvoiceCleaned(_), Some(idx)) => {
            state.invoices.get(idx).cloned()
        }
        _ => None,
    };
    state.apply(&record, hash)?;
    let entry = before.or_else(|| target.and_then(|idx| state.invoices.get(idx).cloned()));
    Ok((record, hash, entry))
}

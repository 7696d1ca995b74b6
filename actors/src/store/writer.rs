//! The writer thread: group commit. It drains whatever appends are waiting, admits them against
//! the projection, writes them as one batch with one fsync, ships it to the replica if there is
//! one, applies it, answers each caller and tells the subscribers; after a failed write (or a
//! batch the replica refused) it closes the database and reopens it (rolling back what was not
//! reported) before the next. As a standby it refuses appends and stores the primary's records
//! verbatim instead ([`Writer::store_raw`]); a promotion makes it a primary again.

use std::sync::Arc;

use invoiced_events::codec::{encode_record, record_hash};
use invoiced_events::{Event, EventRecord, Hash32, InvoiceEntry};

use super::checkpoint::save_checkpoint;
use super::engine::{Batch, Engine, Storage};
use super::keys::{head_seq, put_head, put_record, read_head, truncate_after};
use super::replica::{Replica, ReplicaError, ShippedRecord};
use super::{
    join_entries, AppendError, AppendRequest, Committed, CommittedBatch, EngineSlot, Faults,
    LogOptions, StoreError, WriterMsg,
};
use crate::clock::Clock;
use crate::SharedState;

/// Most events written in one batch.
const MAX_BATCH: usize = 1024;

/// The writer thread's state; it owns the database's write side.
pub(super) struct Writer {
    storage: Arc<dyn Storage>,
    /// `None` while the engine is closed after a failed write and could not be reopened yet.
    engine: Option<Arc<dyn Engine>>,
    /// The same engine, for readers.
    slot: EngineSlot,
    /// The error that broke the last write, until the database is reopened cleanly.
    broken: Option<String>,
    /// Free-space reserve below which writes are refused.
    min_free: u64,
    /// Faults a test asked for.
    faults: Faults,
    /// Where each batch is also committed before it is acknowledged.
    replica: Option<Box<dyn Replica>>,
    /// A standby refuses appends: only the primary's records are stored ([`WriterMsg::Raw`]).
    standby: bool,
    state: SharedState,
    clock: Arc<dyn Clock>,
    subscribers: Vec<tokio::sync::mpsc::UnboundedSender<CommittedBatch>>,
}

impl Writer {
    /// A writer for the log on `storage`, opened as `engine` and shared with readers through `slot`.
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
        } = options;
        Writer {
            storage,
            engine: Some(engine),
            slot,
            broken: None,
            min_free,
            faults,
            replica,
            standby,
            state,
            clock,
            subscribers: Vec::new(),
        }
    }

    /// Serves appends, subscriptions and the stop until the channel closes.
    pub(super) fn run(mut self, rx: crossbeam_channel::Receiver<WriterMsg>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut events = 0usize;
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    WriterMsg::Append(req) if self.standby => {
                        let _ = req.reply.send(Err(AppendError::Standby));
                    }
                    WriterMsg::Append(req) => {
                        events += req.proposals.len();
                        batch.push(req);
                    }
                    WriterMsg::Raw(req) => {
                        // In order: what was gathered so far goes first.
                        if !batch.is_empty() {
                            self.commit(&mut batch);
                            events = 0;
                        }
                        let outcome = self.store_raw(req.records);
                        let _ = req.reply.send(outcome);
                    }
                    WriterMsg::Role(role) => {
                        if !batch.is_empty() {
                            self.commit(&mut batch);
                            events = 0;
                        }
                        match role {
                            None => self.standby = true,
                            Some(replica) => {
                                self.standby = false;
                                self.replica = replica;
                            }
                        }
                    }
                    WriterMsg::Subscribe(tx) => self.subscribers.push(tx),
                }
                if events < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit(&mut batch);
            }
            events = 0;
        }
        self.shut_down();
        self.close_engine();
    }

    /// At a clean shutdown: checkpoints the projections and flushes.
    fn shut_down(&self) {
        let Some(engine) = &self.engine else { return };
        if self.broken.is_some() {
            return;
        }
        // Clean shutdown: checkpoint the projections so the next start replays nothing.
        match self.state.read() {
            Ok(state) => {
                if let Err(e) = save_checkpoint(self.storage.as_ref(), &state) {
                    tracing::error!("cannot write checkpoint: {e}");
                }
            }
            Err(_) => tracing::error!("projection lock poisoned; no checkpoint written"),
        }
        // Move everything out of the WAL into table files, so the next open does not replay it.
        if let Err(e) = engine.flush() {
            tracing::warn!("flush at shutdown failed: {e}");
        }
    }

    /// Admits what it can of `pending`, writes it as one batch with one fsync, applies it,
    /// answers every caller and tells the subscribers.
    fn commit(&mut self, pending: &mut Vec<AppendRequest>) {
        if let Some(cause) = self.broken.clone() {
            if let Err(e) = self.recover() {
                tracing::warn!("event log still unwritable ({cause}): {e}");
                for req in pending.drain(..) {
                    let _ = req.reply.send(Err(AppendError::Write(format!(
                        "{cause} (not recovered yet: {e})"
                    ))));
                }
                return;
            }
            tracing::info!("event log writable again after: {cause}");
        }
        match self.write(pending) {
            Ok((outcomes, all)) => {
                for (req, outcome) in pending.drain(..).zip(outcomes) {
                    let _ = req.reply.send(outcome);
                }
                if !all.is_empty() {
                    let all = Arc::new(all);
                    self.subscribers.retain(|s| s.send(all.clone()).is_ok());
                }
            }
            Err(e) => {
                tracing::error!("event log batch of {} requests failed: {e}", pending.len());
                let msg = e.to_string();
                if matches!(
                    e,
                    StoreError::Engine(_) | StoreError::Injected(_) | StoreError::Replica(_)
                ) {
                    // RocksDB stays in its error state after a failed write, and its background
                    // recovery can trip an assertion in Debian's build: close it now, and reopen
                    // before the next write. A batch the replica refused is in RocksDB already:
                    // the reopening removes it (it was never acknowledged).
                    self.broken = Some(msg.clone());
                    self.close_engine();
                    self.serve_reads_read_only();
                }
                let (refusal, adopt) = match e {
                    StoreError::DiskFull { .. } => (AppendError::DiskFull, None),
                    StoreError::Replica(ReplicaError::Ahead(records)) => (
                        AppendError::Replica(ReplicaError::Ahead(Vec::new()).to_string()),
                        Some(records),
                    ),
                    StoreError::Replica(r) => (AppendError::Replica(r.to_string()), None),
                    _ => (AppendError::Write(msg), None),
                };
                for req in pending.drain(..) {
                    let _ = req.reply.send(Err(refusal.clone()));
                }
                // The replica holds a batch this log rolled back: take it back, verbatim.
                if let Some(records) = adopt {
                    match self.store_raw(records) {
                        Ok(head) => tracing::warn!("stored again, up to record {head}, a batch the replica had committed after all"),
                        Err(e) => tracing::error!("cannot store the batch the replica holds: {e}"),
                    }
                }
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn write(
        &mut self,
        pending: &mut [AppendRequest],
    ) -> Result<
        (
            Vec<Result<Vec<Arc<Committed>>, AppendError>>,
            Vec<Arc<Committed>>,
        ),
        StoreError,
    > {
        let poisoned = || StoreError::Inconsistent("projection lock poisoned".into());
        // Each request's proposals become its stamped events (or its refusal).
        let (admitted, (mut seq, mut prev_hash)) = {
            let state = self.state.read().map_err(|_| poisoned())?;
            let mut admission = state.admission();
            let admitted: Vec<Result<Vec<Event>, AppendError>> = pending
                .iter_mut()
                .map(|r| {
                    admission
                        .admit(std::mem::take(&mut r.proposals))
                        .map_err(AppendError::from)
                })
                .collect();
            (admitted, state.head())
        };
        let engine = self.engine.as_ref().ok_or(StoreError::WriterGone)?;
        if self.min_free > 0 {
            if let Some(free) = self.storage.free_bytes()? {
                if free < self.min_free {
                    return Err(StoreError::DiskFull {
                        free,
                        reserve: self.min_free,
                    });
                }
            }
        }
        let time_ms = self.clock.now_ms();
        let mut batch = Batch::new();
        let mut records = Vec::new();
        let mut shipped_bytes: Vec<Vec<u8>> = Vec::new();
        // Each request's events move into its records (only their count is needed afterwards).
        let mut counts: Vec<Result<usize, AppendError>> = Vec::with_capacity(admitted.len());
        for request in admitted {
            let events = match request {
                Ok(events) => events,
                Err(refused) => {
                    counts.push(Err(refused));
                    continue;
                }
            };
            counts.push(Ok(events.len()));
            for event in events {
                seq += 1;
                let record = EventRecord {
                    seq,
                    time_ms,
                    prev_hash,
                    event,
                };
                let bytes =
                    encode_record(&record).map_err(|source| StoreError::Codec { seq, source })?;
                let hash = record_hash(&bytes);
                if self.replica.is_some() {
                    shipped_bytes.push(bytes.clone());
                }
                put_record(&mut batch, seq, bytes);
                prev_hash = hash;
                records.push((record, hash));
            }
        }
        if !records.is_empty() {
            put_head(&mut batch, seq, &prev_hash);
            engine.write(batch)?;
            if self.faults.take_failure_after_write() {
                return Err(StoreError::Injected(
                    "the batch reached the log but is reported as failed",
                ));
            }
            if let Some(replica) = self.replica.as_mut() {
                let shipped: Vec<ShippedRecord<'_>> = records
                    .iter()
                    .zip(&shipped_bytes)
                    .map(|((r, hash), bytes)| ShippedRecord {
                        seq: r.seq,
                        prev_hash: &r.prev_hash,
                        hash,
                        bytes,
                    })
                    .collect();
                replica.ship(&shipped)?;
            }
        }

        // Apply under the lock; join the invoices with their creation records after it.
        let mut applied = Vec::with_capacity(records.len());
        {
            let mut state = self.state.write().map_err(|_| poisoned())?;
            for (record, hash) in records {
                applied.push(
                    fold(&mut state, record, hash)
                        .map_err(|e| StoreError::Inconsistent(e.to_string()))?,
                );
            }
        }
        let all = self.join_committed(engine.as_ref(), applied);
        let mut it = all.iter();
        let outcomes = counts
            .into_iter()
            .map(|n| n.map(|n| it.by_ref().take(n).cloned().collect()))
            .collect();
        Ok((outcomes, all))
    }
}

impl Writer {
    /// Stores the primary's records verbatim: each must decode and continue the chain; then one
    /// batch, one fsync, the projection updated (its fold checks every rule again) and the
    /// subscribers told. A record the fold refuses (a primary's log can only break a rule if it
    /// is damaged) leaves the writer broken: the next operation reopens the log and removes what
    /// the projection does not hold.
    fn store_raw(&mut self, raw: Vec<Vec<u8>>) -> Result<u64, AppendError> {
        let refuse = |why: String| AppendError::Write(why);
        let poisoned = || refuse("projection lock poisoned".into());
        if let Some(cause) = self.broken.clone() {
            self.recover()
                .map_err(|e| refuse(format!("{cause} (not recovered yet: {e})")))?;
        }
        let (mut seq, mut prev) = self.state.read().map_err(|_| poisoned())?.head();
        let mut records = Vec::with_capacity(raw.len());
        for bytes in &raw {
            let record = invoiced_events::codec::decode_record(bytes)
                .map_err(|e| refuse(format!("a shipped record does not decode: {e}")))?;
            if record.seq != seq + 1 || record.prev_hash != prev {
                return Err(refuse(format!(
                    "shipped record {} does not continue this log at {seq}",
                    record.seq
                )));
            }
            (seq, prev) = (record.seq, record_hash(bytes));
            records.push((record, prev));
        }
        if records.is_empty() {
            return Ok(seq);
        }
        let engine = self.engine.clone().ok_or(AppendError::WriterGone)?;
        let mut batch = Batch::new();
        for ((record, _), bytes) in records.iter().zip(raw) {
            put_record(&mut batch, record.seq, bytes);
        }
        put_head(&mut batch, seq, &prev);
        engine.write(batch).map_err(|e| refuse(e.to_string()))?;
        let mut applied = Vec::with_capacity(records.len());
        let folded: Result<(), AppendError> = (|| {
            let mut state = self.state.write().map_err(|_| poisoned())?;
            for (record, hash) in records {
                applied.push(fold(&mut state, record, hash).map_err(|e| {
                    refuse(format!("a shipped record breaks this log's rules: {e}"))
                })?);
            }
            Ok(())
        })();
        if let Err(e) = &folded {
            self.broken = Some(e.to_string());
        }
        if !applied.is_empty() {
            let all = Arc::new(self.join_committed(engine.as_ref(), applied));
            self.subscribers.retain(|s| s.send(all.clone()).is_ok());
        }
        folded.map(|()| seq)
    }

    /// The committed events with the invoice each concerns: a creation joins its own event, a
    /// lifecycle event reads the creation record (one batched read for the whole batch). The
    /// events are durable and applied already, so a failed read only leaves `invoice` empty.
    fn join_committed(
        &self,
        engine: &dyn Engine,
        applied: Vec<(EventRecord, Hash32, Option<InvoiceEntry>)>,
    ) -> Vec<Arc<Committed>> {
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
                    (Some(c), Some(e)) => e.join(c.clone()),
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

    /// Closes and reopens the engine after a failed write. A batch reported as failed must not
    /// survive: if the reopened log holds records past the projection's head (the failed write
    /// reached the WAL after all), they are removed again, so what callers were told stays true.
    fn recover(&mut self) -> Result<(), StoreError> {
        self.close_engine();
        let engine = self.storage.open()?;
        let seq = self
            .state
            .read()
            .map_err(|_| StoreError::Inconsistent("projection lock poisoned".into()))?
            .head()
            .0;
        let stored_seq = head_seq(read_head(engine.as_ref())?.as_deref());
        if stored_seq < seq {
            return Err(StoreError::Inconsistent(format!(
                "reopened log ends at {stored_seq}, before acknowledged record {seq}"
            )));
        }
        if let Some(stored_seq) = truncate_after(engine.as_ref(), seq)? {
            tracing::warn!(
                "removed records {}..={stored_seq} of a write reported as failed",
                seq + 1
            );
        }
        if let Ok(mut slot) = self.slot.write() {
            *slot = Some(engine.clone());
        }
        self.engine = Some(engine);
        self.broken = None;
        Ok(())
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
    fn close_engine(&mut self) {
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

/// Folds one durable record into the projections, with the invoice it concerns as it now stands
/// (a deleted or cleaned one: as it was).
fn fold(
    state: &mut invoiced_events::Projections,
    record: EventRecord,
    hash: Hash32,
) -> Result<(EventRecord, Hash32, Option<InvoiceEntry>), invoiced_events::ApplyError> {
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

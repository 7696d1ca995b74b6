//! Group commit: the appends gathered are admitted against the projection, stamped with their
//! seq, time and chain hash, written as one batch with one fsync, shipped, applied, and each
//! caller answered with its own events ([`GroupOutcome`]). A failed write answers every caller
//! of the batch with the same refusal, and one that may have left the engine in an error state
//! hands it to the recovery.

use std::sync::Arc;

use invoiced_events::codec::{encode_record, record_hash};
use invoiced_events::{Event, EventRecord, Hash32};

use super::super::engine::Batch;
use super::super::keys::{put_head, put_record};
use super::super::replica::ReplicaError;
use super::{fold_all, poisoned, Folded, Writer};
use crate::store::{AppendError, AppendRequest, Committed, StoreError};

/// Each request's events as admitted, or its refusal.
type Admitted = Vec<Result<Vec<Event>, AppendError>>;

/// What a group commit hands back: each request's answer, in request order, and every event
/// committed, for the subscribers.
struct GroupOutcome {
    answers: Vec<Result<Vec<Arc<Committed>>, AppendError>>,
    committed: Vec<Arc<Committed>>,
}

impl GroupOutcome {
    /// Deals `committed` out to the requests, `counts` events each (a refused one keeps its
    /// refusal).
    fn deal(counts: Vec<Result<usize, AppendError>>, committed: Vec<Arc<Committed>>) -> Self {
        let mut it = committed.iter();
        let answers = counts
            .into_iter()
            .map(|n| n.map(|n| it.by_ref().take(n).cloned().collect()))
            .collect();
        GroupOutcome { answers, committed }
    }
}

/// A group's records, stamped and encoded into one batch (the head last).
struct Stamped {
    batch: Batch,
    /// The records with their chain hashes, in order.
    records: Vec<(EventRecord, Hash32)>,
    /// Their stored bytes, when they are shipped (empty otherwise).
    shipped: Vec<Vec<u8>>,
    /// How many records each request has, or its refusal.
    counts: Vec<Result<usize, AppendError>>,
    /// The records' stored bytes, in all.
    bytes: usize,
}

impl Writer {
    /// Admits what it can of `pending`, writes it as one batch with one fsync, applies it,
    /// answers every caller and tells the subscribers. The engine is reopened first if the last
    /// write broke it.
    pub(super) fn commit(&mut self, pending: &mut Vec<AppendRequest>) {
        if let Err(why) = self.ensure_writable() {
            for req in pending.drain(..) {
                let _ = req.reply.send(Err(AppendError::Write(why.clone())));
            }
            return;
        }
        match self.write_group(pending) {
            Ok(outcome) => {
                for (req, answer) in pending.drain(..).zip(outcome.answers) {
                    let _ = req.reply.send(answer);
                }
                self.publish(outcome.committed);
            }
            Err(e) => self.fail_group(pending, e),
        }
    }

    /// The group commit proper: admission, the free-space check, stamping, the durable write,
    /// shipping, the projection, the join of each event with its invoice.
    fn write_group(&mut self, pending: &mut [AppendRequest]) -> Result<GroupOutcome, StoreError> {
        let (admitted, head) = self.admit(pending)?;
        let engine = self.engine.engine().ok_or(StoreError::WriterGone)?;
        self.check_free_space()?;
        let keep_bytes = self.shipping.is_on();
        let stamped = stamp(admitted, head, self.clock.now_ms(), keep_bytes)?;
        if !stamped.records.is_empty() {
            let started = std::time::Instant::now();
            engine.write(stamped.batch)?;
            if let Some(o) = &self.observer {
                o.batch_written(stamped.records.len(), stamped.bytes, started.elapsed());
            }
            if self.faults.take_failure_after_write() {
                return Err(StoreError::Injected(
                    "the batch reached the log but is reported as failed",
                ));
            }
            self.shipping.ship(&stamped.records, &stamped.shipped)?;
        }
        let applied = self.apply(stamped.records)?;
        let committed = self.join_committed(engine.as_ref(), applied);
        Ok(GroupOutcome::deal(stamped.counts, committed))
    }

    /// Each request's proposals become its events (or its refusal), against the projection as
    /// it stands; with the head they continue.
    fn admit(
        &self,
        pending: &mut [AppendRequest],
    ) -> Result<(Admitted, (u64, Hash32)), StoreError> {
        let state = self.state.read().map_err(|_| poisoned())?;
        let mut admission = state.admission();
        let admitted = pending
            .iter_mut()
            .map(|r| {
                admission
                    .admit(std::mem::take(&mut r.proposals))
                    .map_err(AppendError::from)
            })
            .collect();
        Ok((admitted, state.head()))
    }

    /// Refuses to write below the free-space reserve.
    fn check_free_space(&self) -> Result<(), StoreError> {
        if self.min_free == 0 {
            return Ok(());
        }
        match self.engine.storage().free_bytes()? {
            Some(free) if free < self.min_free => Err(StoreError::DiskFull {
                free,
                reserve: self.min_free,
            }),
            _ => Ok(()),
        }
    }

    /// Folds the durable records into the projection, under its lock.
    fn apply(&self, records: Vec<(EventRecord, Hash32)>) -> Result<Vec<Folded>, StoreError> {
        let mut applied = Vec::with_capacity(records.len());
        let mut state = self.state.write().map_err(|_| poisoned())?;
        fold_all(&mut state, records, &mut applied)
            .map_err(|e| StoreError::Inconsistent(e.to_string()))?;
        Ok(applied)
    }

    /// Answers every request of a failed group with the same refusal. A failure that may have
    /// left the engine in an error state (or a batch in it the replica refused) breaks it, for
    /// the recovery; a batch the replica holds after all is taken back.
    fn fail_group(&mut self, pending: &mut Vec<AppendRequest>, e: StoreError) {
        tracing::error!("event log batch of {} requests failed: {e}", pending.len());
        let msg = e.to_string();
        if matches!(
            e,
            StoreError::Engine(_) | StoreError::Injected(_) | StoreError::Replica(_)
        ) {
            self.engine.break_with(msg.clone());
        }
        let (refusal, adopt) = refusal(e, msg);
        for req in pending.drain(..) {
            let _ = req.reply.send(Err(refusal.clone()));
        }
        if let Some(records) = adopt {
            self.adopt(records);
        }
    }
}

/// What the callers of a failed group are told, and the records the replica holds after all
/// (to be taken back), if that is why.
fn refusal(e: StoreError, msg: String) -> (AppendError, Option<Vec<Vec<u8>>>) {
    match e {
        StoreError::DiskFull { .. } => (AppendError::DiskFull, None),
        StoreError::Replica(ReplicaError::Ahead(records)) => (
            AppendError::Replica(ReplicaError::Ahead(Vec::new()).to_string()),
            Some(records),
        ),
        StoreError::Replica(r) => (AppendError::Replica(r.to_string()), None),
        _ => (AppendError::Write(msg), None),
    }
}

/// Stamps each admitted event with its seq, `time_ms` and the chain from `head`, encodes it into
/// one batch (with the new head), and keeps each record's bytes if `keep_bytes` (for shipping).
fn stamp(
    admitted: Admitted,
    head: (u64, Hash32),
    time_ms: u64,
    keep_bytes: bool,
) -> Result<Stamped, StoreError> {
    let (mut seq, mut prev_hash) = head;
    let mut stamped = Stamped {
        batch: Batch::new(),
        records: Vec::new(),
        shipped: Vec::new(),
        counts: Vec::with_capacity(admitted.len()),
        bytes: 0,
    };
    // Each request's events move into its records (only their count is needed afterwards).
    for events in admitted {
        let events = match events {
            Ok(events) => events,
            Err(refused) => {
                stamped.counts.push(Err(refused));
                continue;
            }
        };
        stamped.counts.push(Ok(events.len()));
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
            prev_hash = record_hash(&bytes);
            stamped.bytes += bytes.len();
            if keep_bytes {
                stamped.shipped.push(bytes.clone());
            }
            put_record(&mut stamped.batch, seq, bytes);
            stamped.records.push((record, prev_hash));
        }
    }
    if !stamped.records.is_empty() {
        put_head(&mut stamped.batch, seq, &prev_hash);
    }
    Ok(stamped)
}

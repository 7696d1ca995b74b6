//! The standby role: a standby's writer refuses every append and stores the primary's records
//! verbatim instead, each checked to continue the chain; a promotion makes it a primary again,
//! shipping to the replica it is given.

use invoiced_events::codec::{decode_record, record_hash};
use invoiced_events::{EventRecord, Hash32};

use super::super::engine::{Batch, Engine};
use super::super::keys::{put_head, put_record};
use super::{fold_all, Shipping, Writer};
use crate::store::{AppendError, Role};

impl Writer {
    /// Takes up `role`.
    pub(super) fn set_role(&mut self, role: Role) {
        match role {
            Role::Standby => self.standby = true,
            Role::Primary(replica) => {
                self.standby = false;
                self.shipping = Shipping::new(replica);
            }
        }
    }

    /// Stores the primary's records verbatim: each must decode and continue the chain; then one
    /// batch, one fsync, the projection updated (its fold checks every rule again) and the
    /// subscribers told. A record the fold refuses (a primary's log can only break a rule if it
    /// is damaged) leaves the writer broken: the next operation reopens the log and removes what
    /// the projection does not hold.
    pub(super) fn store_raw(&mut self, raw: Vec<Vec<u8>>) -> Result<u64, AppendError> {
        self.ensure_writable().map_err(AppendError::Write)?;
        let head = self.state.read().map_err(|_| poisoned())?.head();
        let records = continue_chain(&raw, head)?;
        let Some((seq, hash)) = records.last().map(|(r, hash)| (r.seq, *hash)) else {
            return Ok(head.0);
        };
        let engine = self.engine.engine().ok_or(AppendError::WriterGone)?;
        let mut batch = Batch::new();
        for ((record, _), bytes) in records.iter().zip(raw) {
            put_record(&mut batch, record.seq, bytes);
        }
        put_head(&mut batch, seq, &hash);
        engine.write(batch).map_err(|e| refuse(e.to_string()))?;
        self.fold_raw(engine.as_ref(), records).map(|()| seq)
    }

    /// Folds stored records into the projection and tells the subscribers of those it took; a
    /// refusal breaks the writer (see [`Writer::store_raw`]).
    fn fold_raw(
        &mut self,
        engine: &dyn Engine,
        records: Vec<(EventRecord, Hash32)>,
    ) -> Result<(), AppendError> {
        let mut applied = Vec::with_capacity(records.len());
        let folded = match self.state.write() {
            Ok(mut state) => fold_all(&mut state, records, &mut applied)
                .map_err(|e| refuse(format!("a shipped record breaks this log's rules: {e}"))),
            Err(_) => Err(poisoned()),
        };
        if let Err(e) = &folded {
            self.engine.mark_broken(e.to_string());
        }
        if !applied.is_empty() {
            let committed = self.join_committed(engine, applied);
            self.publish(committed);
        }
        folded
    }
}

/// `raw` decoded, each record checked to continue the chain from `head`, with its chain hash.
fn continue_chain(
    raw: &[Vec<u8>],
    head: (u64, Hash32),
) -> Result<Vec<(EventRecord, Hash32)>, AppendError> {
    let (mut seq, mut prev) = head;
    let mut records = Vec::with_capacity(raw.len());
    for bytes in raw {
        let record = decode_record(bytes)
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
    Ok(records)
}

/// A refusal of the primary's records.
fn refuse(why: String) -> AppendError {
    AppendError::Write(why)
}

/// The refusal of a poisoned projection lock.
fn poisoned() -> AppendError {
    refuse("projection lock poisoned".into())
}
